"""The parser's size guards: what SymPy would fold is bounded before SymPy is asked to fold it.

SymPy simplifies while it builds, so ``9**9**9`` would hang it. The parser (parse.py) and its
node builders (spellings.py) call these checks before they build a node; each raises
``InputTooLargeError`` naming the 1-based column:

* a number literal has at most ``max_digits`` digits, and a float's magnitude lies within
  ``1e-FLOAT_EXPONENT`` to ``1e+FLOAT_EXPONENT`` (past it, mpmath's exp grows cubic);
* exact numbers folded by a power, a product, a sum of fractions or an ``exp`` of a logarithm
  stay below ``NUMBER_DIGITS`` digits;
* roots are taken only of exact numbers below ``ROOT_DIGITS`` digits;
* gamma and loggamma of an exact number are evaluated only up to ``GAMMA_ARGUMENT``.
"""

from __future__ import annotations

import math

import sympy as sp

from .errors import InputTooLargeError

NUMBER_DIGITS = 10_000  # digits an exact number folded while parsing may reach
ROOT_DIGITS = 400  # digits of an exact number whose root SymPy may try to simplify
FLOAT_EXPONENT = 330  # largest |log10| of a float (past it, mpmath's exp grows cubic)
GAMMA_ARGUMENT = 3_000  # largest |n| for which gamma(n) is evaluated exactly


def number(tok: str, col: int, max_digits: int) -> sp.Number:
    """The SymPy number a literal spells, within ``max_digits`` digits and the float range.

    >>> number("12", 1, 1000), number("1.5e3", 1, 1000)
    (12, 1500.00000000000)
    """
    mantissa, _, exponent = tok.lower().partition("e")
    digits = len(mantissa) - ("." in mantissa)
    if digits > max_digits:
        raise InputTooLargeError(f"number literal with {digits} digits, more than "
                                 f"max_digits={max_digits}, at column {col}")
    if not exponent and "." not in mantissa:
        value = 0
        for start in range(0, len(mantissa), 4000):  # int() refuses more than 4300 digits
            chunk = mantissa[start:start + 4000]
            value = value * 10 ** len(chunk) + int(chunk)
        return sp.Integer(value)
    shift = exponent.lstrip("+-").lstrip("0")
    if len(shift) > 6 or (shift and int(shift) > FLOAT_EXPONENT + digits):
        raise _float_out_of_range(col)
    value = sp.Float(tok)
    if abs(_magnitude(value)) > FLOAT_EXPONENT:
        raise _float_out_of_range(col)
    return value


def _float_out_of_range(col: int) -> InputTooLargeError:
    return InputTooLargeError(f"float literal too large or too small (outside "
                              f"1e-{FLOAT_EXPONENT} to 1e{FLOAT_EXPONENT}) at column {col}")


def _digits(num: sp.Basic) -> float:
    """Digits of an exact number (numerator and denominator); a float's |log10| in that scale."""
    if isinstance(num, sp.Rational):
        return (math.log10(abs(num.p)) if num.p else 0.0) + math.log10(num.q)
    if isinstance(num, sp.Float) and num._mpf_[1]:
        return abs(_magnitude(num)) * NUMBER_DIGITS / FLOAT_EXPONENT
    return 0.0


def _magnitude(num: sp.Basic) -> float:
    """log10 |num| (minus infinity for zero and non-finite numbers)."""
    if isinstance(num, sp.Rational) and num.p:
        return math.log10(abs(num.p)) - math.log10(num.q)
    if isinstance(num, sp.Float) and num._mpf_[1]:
        _, man, exp, _ = num._mpf_
        return math.log10(man) + exp * math.log10(2)
    return -math.inf


def _sizes(*exprs: sp.Basic) -> tuple[float, float, float]:
    """What SymPy could fold when ``exprs`` are multiplied or raised to a power.

    Returns the digits of the numbers (weighted by the powers they are under), the digits of the
    exact numbers, and the digits of the exact numbers already under a root. Walks only the
    Mul/Pow/Piecewise layer on top, where SymPy combines numbers; an Add or a function keeps its
    numbers to itself.
    """
    digits = exact = rooted = 0.0
    stack = [(expr, 1.0) for expr in exprs]
    while stack:
        node, scale = stack.pop()
        if isinstance(node, sp.Number):
            digits += scale * _digits(node) if _digits(node) else 0.0
            exact += _digits(node) if isinstance(node, sp.Rational) else 0.0
        elif isinstance(node, sp.Mul):
            stack.extend((arg, scale) for arg in node.args)
        elif isinstance(node, sp.Piecewise):  # a power of it is the power of every branch
            stack.extend((pair.expr, scale) for pair in node.args)
        elif isinstance(node, sp.Pow) and isinstance(node.exp, sp.Number):
            exp = node.exp
            digits += _digits(exp)
            if _fractional(exp) and isinstance(node.base, sp.Rational):
                rooted += _digits(node.base)
            stack.append((node.base, scale * 10.0 ** min(_magnitude(exp), 300.0)))
    return digits, exact, rooted


def _fractional(num: sp.Basic) -> bool:
    return isinstance(num, sp.Rational) and num.q != 1


def _check_sizes(sizes: tuple[float, float, float], exp: sp.Basic, col: int) -> None:
    digits, exact, rooted = sizes
    if digits > 0 and _magnitude(exp) + math.log10(digits) > math.log10(NUMBER_DIGITS):
        raise InputTooLargeError(f"power too large: the number would have more than "
                                 f"{NUMBER_DIGITS} digits, at column {col}")
    if _fractional(exp) and exact + rooted > ROOT_DIGITS:
        raise InputTooLargeError(f"root of a number with more than {ROOT_DIGITS} digits "
                                 f"at column {col}")


def check_power(base: sp.Basic, exp: sp.Basic, col: int) -> None:
    """Refuse ``base**exp`` if SymPy would fold it into a number too large or a root too hard.

    >>> check_power(sp.Integer(10)**500, sp.Rational(1, 3), 4)
    Traceback (most recent call last):
    symdiff.errors.InputTooLargeError: root of a number with more than 400 digits at column 4
    """
    if isinstance(exp, sp.Number):
        _check_sizes(_sizes(base), exp, col)
    elif base is sp.E:
        check_exp(exp, col)


def check_exp(arg: sp.Basic, col: int) -> None:
    """exp(c*log(b)) becomes b**c: guard it as that power, term by term of the argument."""
    for term in sp.Add.make_args(arg):
        logs: list[sp.Basic] = []
        biggest: sp.Basic = sp.S.Zero
        seen, stack = {term}, [term]
        while stack:
            node = stack.pop()
            if isinstance(node, sp.log):
                logs.append(node.args[0])
            elif isinstance(node, sp.Number) and _magnitude(node) > _magnitude(biggest):
                biggest = node
            else:
                fresh = [arg for arg in node.args if arg not in seen]
                seen.update(fresh)
                stack.extend(fresh)
        if logs:
            _check_sizes(_sizes(*logs), biggest, col)


def check_product(factors: list[sp.Basic], col: int) -> None:
    """Refuse a product whose numbers SymPy would fold past NUMBER_DIGITS (or roots past ROOT)."""
    digits, _, rooted = _sizes(*factors)
    if digits > NUMBER_DIGITS or rooted > ROOT_DIGITS:
        raise InputTooLargeError(f"product of numbers with more than {NUMBER_DIGITS} digits "
                                 f"(or roots of more than {ROOT_DIGITS}) at column {col}")


def check_sum(terms: list[sp.Basic], col: int) -> None:
    """Like terms add their coefficients; bound the digits of the common denominators."""
    denominators: dict[sp.Basic, float] = {}
    for term in terms:
        for part in sp.Add.make_args(term):
            coeff, rest = part.as_coeff_Mul()
            if isinstance(coeff, sp.Rational) and coeff.q != 1:
                total = denominators.get(rest, 0.0) + math.log10(coeff.q)
                if total > NUMBER_DIGITS:
                    raise InputTooLargeError(f"sum of fractions with more than {NUMBER_DIGITS}"
                                             f" digits at column {col}")
                denominators[rest] = total


def check_gamma(cls: type, arg: sp.Basic, col: int) -> None:
    """Refuse gamma (or loggamma) of an exact number beyond GAMMA_ARGUMENT: SymPy computes it."""
    if isinstance(arg, sp.Rational) and abs(arg) > GAMMA_ARGUMENT:
        raise InputTooLargeError(f"{cls.__name__} of a number beyond {GAMMA_ARGUMENT} at "
                                 f"column {col}")


def check_result(obj: sp.Basic, name: str, col: int) -> None:
    """Refuse a call's evaluated result holding a number too large (exp(1000.0): a huge float)."""
    if _sizes(obj)[0] > NUMBER_DIGITS:
        raise InputTooLargeError(f"{name} gives a number too large to work with at "
                                 f"column {col}")
