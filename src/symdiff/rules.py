"""Local derivatives of every gate: the one rule table of symdiff.

A rule receives the gate's output symbol ``out`` and the gate's arguments and returns one local
derivative per argument (``None`` for a constant argument). The reverse pass multiplies each by the
upstream gradient. Rules reuse the forward output where that is cheaper than recomputing
(exp -> out, 1/x -> -out**2, sigmoid -> out*(1 - out), tanh -> 1 - out**2).

Non-smooth convention: at a kink a gate takes its minimum-norm subgradient. Abs and relu have
derivative 0 at 0; Max/Min against a constant give 0 at the tie; Max/Min of two variables split the
gradient equally (1/2 each) at a tie; sign, Heaviside, floor and ceiling have derivative 0 everywhere
(their Dirac deltas are dropped). Piecewise is differentiated branch by branch, and each branch's
derivative is used only where that branch is taken.

Functions without a rule here fall back to SymPy's own ``fdiff``; one without a derivative is a
``NonDifferentiableError`` naming the node.
"""

from __future__ import annotations

from typing import Callable

import sympy as sp
from sympy.core.function import ArgumentIndexError

from .errors import NonDifferentiableError
from .functions import relu, sigmoid, softplus

RULES: dict[type, Callable] = {}


def rule(*funcs: type) -> Callable:
    """Register the decorated rule for each SymPy function class in ``funcs``."""

    def register(fn: Callable) -> Callable:
        for f in funcs:
            RULES[f] = fn
        return fn

    return register


@rule(sp.Add)
def _add(out, *terms):
    return tuple(None if t.is_Number else t.as_coeff_Mul()[0] for t in terms)


@rule(sp.Mul)
def _mul(out, *factors):
    def others(i):
        return sp.Mul(*(f for j, f in enumerate(factors) if j != i))

    return tuple(None if f.is_Number else others(i) for i, f in enumerate(factors))


@rule(sp.Pow)
def _pow(out, base, exp):
    if exp.is_Number:
        if exp == -1:
            return -out**2, None
        if exp == sp.S.Half:
            return 1 / (2 * out), None
        if exp == -sp.S.Half:
            return -out**3 / 2, None
        return exp * base ** (exp - 1), None
    dbase = None if base.is_Number else exp * base ** (exp - 1)
    return dbase, out * sp.log(base)


rule(sp.exp)(lambda out, a: (out,))
rule(sp.log)(lambda out, a: (1 / a,))

rule(sp.sin)(lambda out, a: (sp.cos(a),))
rule(sp.cos)(lambda out, a: (-sp.sin(a),))
rule(sp.tan)(lambda out, a: (1 + out**2,))
rule(sp.cot)(lambda out, a: (-1 - out**2,))
rule(sp.sec)(lambda out, a: (out * sp.tan(a),))
rule(sp.csc)(lambda out, a: (-out * sp.cot(a),))

rule(sp.asin)(lambda out, a: (1 / sp.sqrt(1 - a**2),))
rule(sp.acos)(lambda out, a: (-1 / sp.sqrt(1 - a**2),))
rule(sp.atan)(lambda out, a: (1 / (1 + a**2),))
rule(sp.acot)(lambda out, a: (-1 / (1 + a**2),))
rule(sp.asec)(lambda out, a: (1 / (a**2 * sp.sqrt(1 - 1 / a**2)),))
rule(sp.acsc)(lambda out, a: (-1 / (a**2 * sp.sqrt(1 - 1 / a**2)),))

rule(sp.sinh)(lambda out, a: (sp.cosh(a),))
rule(sp.cosh)(lambda out, a: (sp.sinh(a),))
rule(sp.tanh, sp.coth)(lambda out, a: (1 - out**2,))
rule(sp.sech)(lambda out, a: (-out * sp.tanh(a),))
rule(sp.csch)(lambda out, a: (-out * sp.coth(a),))

rule(sp.asinh)(lambda out, a: (1 / sp.sqrt(a**2 + 1),))
rule(sp.acosh)(lambda out, a: (1 / sp.sqrt(a**2 - 1),))
rule(sp.atanh, sp.acoth)(lambda out, a: (1 / (1 - a**2),))
rule(sp.asech)(lambda out, a: (-1 / (a * sp.sqrt(1 - a**2)),))
rule(sp.acsch)(lambda out, a: (-1 / (a**2 * sp.sqrt(1 + 1 / a**2)),))

rule(sp.erf)(lambda out, a: (2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi),))
rule(sp.erfc)(lambda out, a: (-2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi),))
rule(sp.atan2)(lambda out, y, x: (x / (x**2 + y**2), -y / (x**2 + y**2)))

rule(sigmoid)(lambda out, a: (out * (1 - out),))
rule(relu)(lambda out, a: (sp.Heaviside(a, 0),))
rule(softplus)(lambda out, a: (sigmoid(a),))

rule(sp.Abs)(lambda out, a: (sp.sign(a),))
rule(sp.sign, sp.floor, sp.ceiling)(lambda out, a: (sp.S.Zero,))
rule(sp.Heaviside)(lambda out, a, *h0: (sp.S.Zero,) + (None,) * len(h0))


def _extremum(larger: bool) -> Callable:
    """Max (larger=True) or Min of two operands: the gradient goes to the winner."""

    def rule_fn(out, a, b):
        def wins(u, v):  # derivative with respect to u; v is the other operand
            if u.is_Number:
                return None
            margin = u - v if larger else v - u
            # At a tie: 0 against a constant, 1/2 against a variable (minimum-norm subgradient).
            return sp.Heaviside(margin, 0 if v.is_Number else sp.S.Half)

        return wins(a, b), wins(b, a)

    return rule_fn


RULES[sp.Max] = _extremum(larger=True)
RULES[sp.Min] = _extremum(larger=False)


def local_partials(rhs: sp.Expr, out: sp.Symbol) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Local derivative of the gate ``out = rhs`` with respect to each symbol in ``rhs``.

    Zero derivatives are dropped. Arguments must be symbols or numbers, except in a compound gate
    (a Piecewise with inline branches), which is differentiated symbol by symbol.

    >>> x, out = sp.symbols("x out", real=True)
    >>> local_partials(sp.exp(x), out)
    [(x, out)]
    """
    atoms = [a if not isinstance(rhs, sp.Add) else a.as_coeff_Mul()[1] for a in rhs.args]
    rule_fn = _find_rule(type(rhs))
    if rule_fn is None or not all(a.is_Symbol or a.is_number for a in atoms):
        # Compound gates and functions without a rule: SymPy's own derivative (fdiff).
        pairs = [(s, _compound_partial(rhs, s, out)) for s in _symbols_in_order(rhs)]
    else:
        parts = rule_fn(out, *rhs.args)
        assert len(parts) == len(rhs.args), f"rule for {type(rhs).__name__}: wrong arity"
        pairs = [(a, p) for a, p in zip(atoms, parts) if p is not None and a.is_Symbol]
    merged: dict[sp.Symbol, sp.Expr] = {}
    for symbol, part in pairs:
        merged[symbol] = merged.get(symbol, 0) + part
    return [(s, p) for s, p in merged.items() if p != 0]


def _find_rule(cls: type) -> Callable | None:
    for base in cls.__mro__:
        if base in RULES:
            return RULES[base]
    return None


def _symbols_in_order(expr: sp.Basic) -> list[sp.Symbol]:
    from .dag import postorder

    return [n for n in postorder(expr) if n.is_Symbol]


def _compound_partial(rhs: sp.Expr, symbol: sp.Symbol, out: sp.Symbol) -> sp.Expr:
    """d rhs / d symbol through SymPy, reusing the output where it reappears (e.g. LambertW)."""
    try:
        part = derivative(rhs, symbol)
    except NonDifferentiableError as exc:
        raise NonDifferentiableError(f"{exc} (in the gate {rhs})") from None
    return part.xreplace({rhs: out})


def derivative(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """``sympy.diff`` with the almost-everywhere-zero derivatives of step functions dropped.

    DiracDelta terms and derivatives of floor/ceiling/sign/Heaviside become 0; any other
    derivative SymPy leaves unevaluated is a NonDifferentiableError.
    """
    try:
        part = sp.diff(expr, symbol)
    except (ArgumentIndexError, NotImplementedError, ValueError, TypeError) as exc:
        raise NonDifferentiableError(f"cannot differentiate with respect to {symbol}: {exc}") \
            from None
    part = part.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    part = part.replace(
        lambda e: isinstance(e, sp.Derivative) and _piecewise_constant(e.expr),
        lambda e: sp.S.Zero,
    )
    # floor(g(x))' comes back as Subs(Derivative(floor(xi), xi), xi, g(x))*g'(x)
    part = part.replace(lambda e: isinstance(e, sp.Subs) and e.expr == 0, lambda e: sp.S.Zero)
    if part.has(sp.Derivative, sp.Subs):
        found = next(iter(part.atoms(sp.Derivative, sp.Subs)))
        raise NonDifferentiableError(f"no known derivative: {found}")
    return part


def _piecewise_constant(expr: sp.Basic) -> bool:
    return isinstance(expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside))
