"""What the math and numpy printers share: ``StagedPrinter``, mixed in before SymPy's printer.

``StagedPrinter.line`` prints one small expression as one line. The commonest small steps
(``a + b``, ``a*b``, ``2*a``, ``a**2``) take a fast path (``_fast_text``) that gives SymPy's text
without its dispatch; every other expression is first checked, node by node, against an explicit
list of supported SymPy classes (``check_supported``), so nothing SymPy would print as a comment,
a complex literal or a ``functools.reduce`` call slips through: anything else raises
``UnsupportedFunctionError``. The shared overrides are the forms of powers, long sums, floats and
infinities, the precedence of ``1/x``, and the ops of the table (ops.py) printed as each row says.
"""

from __future__ import annotations

import keyword
import math
from typing import ClassVar

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.core.mul import _keep_coeff
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanFalse, BooleanTrue
from sympy.printing.precedence import PRECEDENCE, precedence

from .array_ops import ARRAY_GATES
from .errors import ArgumentError, UnsupportedFunctionError
from .ops import BY_CLASS, OPS, How, row
from .runtime import NAMED_CONSTANTS, has_helper

LONG_SUM = 32  # sums with more terms print as one call (see StagedPrinter._print_Add)

_STRUCTURE = (
    sp.Symbol, sp.Rational, sp.Float, sp.core.numbers.Infinity,
    sp.core.numbers.NegativeInfinity, sp.core.numbers.NaN, sp.core.numbers.Pi,
    sp.core.numbers.Exp1, sp.Add, sp.Mul, sp.Pow, sp.core.relational.Relational,
    sp.And, sp.Or, sp.Not, sp.ITE, BooleanTrue, BooleanFalse, sp.Piecewise, ExprCondPair,
)
# Every op of the table prints in both backends (each row says how).
_SUPPORTED = ARRAY_GATES + _STRUCTURE + tuple(BY_CLASS) + tuple(type(c) for c in NAMED_CONSTANTS)
# Ops printed 1/g(x) are parenthesized as a quotient, also where a helper prints them (sech).
_RECIPROCALS = tuple(op.cls for op in OPS if op.reciprocal is not None)
_NOT_SUPPORTED = (sp.Dummy, sp.Wild)


def _describe(node: sp.Basic) -> str:
    """A short name of ``node`` for an error message."""
    if isinstance(node, AppliedUndef):
        return f"the undefined function {node.func.__name__}"
    if isinstance(node, sp.Function):
        return node.func.__name__
    return type(node).__name__


def check_supported(expr: sp.Basic, backend: str) -> None:
    """Raise ``UnsupportedFunctionError`` for the outermost node no printer here can emit.

    >>> check_supported(sp.LambertW(sp.Symbol("x")), "math")
    Traceback (most recent call last):
    symdiff.errors.UnsupportedFunctionError: no math-backend implementation of LambertW
    """
    if not isinstance(expr, sp.Basic):
        raise ArgumentError(f"expected a SymPy expression, got {type(expr).__name__}")
    stack, seen = [expr], {expr}
    while stack:
        node = stack.pop()
        if not isinstance(node, _SUPPORTED) or isinstance(node, _NOT_SUPPORTED):
            raise UnsupportedFunctionError(
                f"no {backend}-backend implementation of {_describe(node)}"
            )
        for arg in node.args:
            if arg not in seen:
                seen.add(arg)
                stack.append(arg)


def _fast_text(expr: sp.Basic) -> str | None:
    """The text SymPy's printer gives the commonest small steps (``a + b``, ``a - b``, ``a*b``,
    ``2*a``, ``-a``, ``a**2``), without its dispatch; None for anything else. Lowering a big
    formula prints tens of thousands of such steps (tests/test_printers.py checks the two agree).
    """
    if _is_name(expr):
        return expr.name
    args = expr.args
    if expr.is_Pow:
        base, e = args
        if _is_name(base) and e.is_Integer and e >= 2:
            return f"{base.name}**{e}"
        return None
    if expr.is_Mul and len(args) == 2:
        first, second = args
        if not _is_name(second):
            return None
        if _is_name(first):
            return f"{first.name}*{second.name}"
        if first.is_Integer:
            return f"-{second.name}" if first == -1 else f"{first}*{second.name}" \
                if first > 0 else None
        return None
    if expr.is_Add and len(args) == 2:
        terms = [_signed_term(t) for t in args]
        if None in terms:
            return None
        (neg0, t0), (neg1, t1) = terms
        return f"{'-' if neg0 else ''}{t0} {'-' if neg1 else '+'} {t1}"
    return None


def _signed_term(term: sp.Basic) -> tuple[bool, str] | None:
    if _is_name(term):
        return False, term.name
    if term.is_Integer and term >= 0:
        return False, str(term)
    if term.is_Mul and len(term.args) == 2 and term.args[0] == -1 and _is_name(term.args[1]):
        return True, term.args[1].name
    return None


def _is_name(node: sp.Basic) -> bool:
    """A plain Symbol (not a Dummy or Wild) whose name is a Python identifier."""
    return type(node) is sp.Symbol and node.name.isidentifier() and not keyword.iskeyword(
        node.name)


class StagedPrinter:
    """What both backends share; mixed in before SymPy's printer class."""

    # What differs between backends, set by each subclass (backends.Backend reads it here):
    backend_name: ClassVar[str]  # the backend's name, in error messages
    module: ClassVar[str]  # the module prefix of generated calls and constants
    sum_call: ClassVar[str]  # a sum of more than LONG_SUM terms (see _print_Add)
    atan2_call: ClassVar[str]  # the two-argument arctangent (see _print_atan2)
    _one: ClassVar[str]  # the numerator of a reciprocal

    def __init__(self, settings=None):
        super().__init__(dict({"order": "none"}, **(settings or {})))
        self.helpers: set[str] = set()

    def line(self, expr: sp.Basic) -> str:
        """One expression as code. Skips ``doprint``'s whole-tree rewrite of unevaluated
        expressions, which costs more than the printing itself for small steps."""
        text = _fast_text(expr)
        if text is not None:
            return text
        check_supported(expr, self.backend_name)
        return self._print(expr)

    def _print_not_supported(self, expr):
        """Raise instead of SymPy's '# Not supported' comment, in case a check was missed."""
        raise UnsupportedFunctionError(
            f"no {self.backend_name}-backend implementation of {_describe(expr)}"
        )

    def _print_Symbol(self, expr):
        """Print the name as is: SymPy would rename keywords, the caller's names must match."""
        if not expr.name.isidentifier() or keyword.iskeyword(expr.name):
            raise ArgumentError(f"symbol name {expr.name!r} is not a Python identifier")
        return expr.name

    def _print_Float(self, expr):
        """Print the shortest repr of the double (SymPy prints 17 digits); inf/nan by name."""
        value = float(expr)
        if math.isnan(value):
            return f"{self.module}.nan"
        if math.isinf(value):
            return f"{'-' if value < 0 else ''}{self.module}.inf"
        return repr(value)

    def _print_Infinity(self, expr):
        """Name inf in the backend module (SymPy's math printer writes float('inf'))."""
        return f"{self.module}.inf"

    def _print_NegativeInfinity(self, expr):
        """Name -inf in the backend module (SymPy's math printer writes float('-inf'))."""
        return f"-{self.module}.inf"

    def _print_NaN(self, expr):
        """Name nan in the backend module."""
        return f"{self.module}.nan"

    def _print_Mul(self, expr):
        """SymPy parenthesizes the denominators of a negative product at the precedence of a
        sum, which ``1/math.tan(y)`` (Mul precedence) passes: ``-x/cot(y)`` printed as
        ``-x/1/math.tan(y)``, that is -x/tan(y). Print the positive product and negate it."""
        c, rest = expr.as_coeff_Mul()
        if c < 0 and any(f.is_Pow and f.exp == -1 and isinstance(f.base, _RECIPROCALS)
                         for f in sp.Mul.make_args(rest)):
            return "-" + super()._print_Mul(_keep_coeff(-c, rest))
        return super()._print_Mul(expr)

    def _print_Add(self, expr, order=None):
        """A long sum as one call over a tuple: Python's compiler recurses on a + b + c + ...

        (a 4,000-term chain of ``+`` is a RecursionError at compile time). The math backend
        uses ``math.fsum`` (exactly rounded), numpy the builtin ``sum`` (it broadcasts).
        """
        if len(expr.args) <= LONG_SUM:
            return super()._print_Add(expr, order=order)
        lines, line = [], ""
        for term in (self._print(a) for a in expr.args):
            if line and len(line) + len(term) > 80:
                lines.append(line)
                line = ""
            line += term + ", "
        body = "\n    ".join(lines + [line.rstrip()])
        return f"{self.sum_call}((\n    {body}\n))"

    def _print_atan2(self, expr):
        """``y + 0.0`` turns -0.0 into 0.0: over the reals atan2(0, x < 0) is pi, never -pi."""
        y, x = (self._print(a) for a in expr.args)
        return f"{self.atan2_call}({y} + 0.0, {x})"

    def parenthesize(self, item, level, strict=False):
        """Use the precedence of the emitted text: a Pow may print as ``1/x`` or a call."""
        prec = self._precedence(item)
        if prec < level or (not strict and prec <= level):
            return f"({self._print(item)})"
        return self._print(item)

    def _precedence(self, item) -> int:
        """Precedence of the text ``_print(item)`` emits."""
        if isinstance(item, _RECIPROCALS):
            return PRECEDENCE["Mul"]
        if isinstance(item, sp.Pow):
            return self._pow_precedence[self._pow_form(item)]
        return precedence(item)

    _pow_precedence: ClassVar[dict[str, int]] = {
        "power": PRECEDENCE["Pow"], "reciprocal": PRECEDENCE["Mul"],
        "negative": PRECEDENCE["Pow"], "sqrt": PRECEDENCE["Func"],
        "rsqrt": PRECEDENCE["Mul"], "general": PRECEDENCE["Func"],
    }

    @staticmethod
    def _pow_form(expr: sp.Pow) -> str:
        """Which of the printed forms of a power ``expr`` takes."""
        e = expr.exp
        if e.is_Integer:
            if e.is_nonnegative:
                return "power"
            return "reciprocal" if e == -1 else "negative"
        if e == sp.S.Half:
            return "sqrt"
        if e == -sp.S.Half:
            return "rsqrt"
        return "general"

    def _print_Pow(self, expr, rational=False):
        """Choose a form by exponent: integer, -1, +-1/2, or anything else (see the forms)."""
        form = self._pow_form(expr)
        base, e = expr.args
        prec = PRECEDENCE["Pow"]
        if form == "power":
            return f"{self.parenthesize(base, prec)}**{self._print(e)}"
        if form == "reciprocal":
            return f"{self._one}/{self.parenthesize(base, prec)}"
        if form == "negative":
            return self._negative_power(base, e)
        if form in ("sqrt", "rsqrt"):
            text = f"{self.module}.sqrt({self._print(base)})"
            return text if form == "sqrt" else f"1/{text}"
        return self._general_power(base, e)

    def _print_Relational(self, expr):
        """Infix ``x > 0``, also for Eq/Ne (SymPy prints Eq(...) or np.greater(...))."""
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_op(self, expr):
        """An op of the table (ops.py) printed as its row says for this backend (installed as
        ``_print_<class>`` for every row without a method of its own, see printers._install_ops)."""
        how = row(expr.func).printing(self.backend_name)
        if how is How.HELPER:
            return self._print_helper_call(expr)
        if how is How.RECIPROCAL:
            return self._print_reciprocal(expr)
        if how is How.INVERSE:
            return self._print_inverse_of_reciprocal(expr)
        return f"{self._module_format(how)}({', '.join(self._print(a) for a in expr.args)})"

    def _print_reciprocal(self, expr):
        """cot, sec, csc, coth have no math/numpy function: print 1/tan(x), ..."""
        inner = row(expr.func).reciprocal(expr.args[0], evaluate=False)
        return f"1/{self._print(inner)}"

    def _print_inverse_of_reciprocal(self, expr):
        """asec, acsc, ... have no math/numpy function: print acos(1/x), ... (SymPy's branch)."""
        arg = sp.Pow(expr.args[0], -1, evaluate=False)
        return self._print(row(expr.func).inverse(arg, evaluate=False))

    def _print_helper_call(self, expr):
        """Call a module-level helper of the function's own name and record that it is used."""
        name = expr.func.__name__
        self._helper(name, name)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_named_constant(self, expr):
        """The module-level float of the constant (see NAMED_CONSTANTS): math has no
        euler_gamma, and SymPy's 15-digit literal (0.577215664901533 for EulerGamma) is not
        the double nearest the constant."""
        name = NAMED_CONSTANTS[expr][0]
        self.helpers.add(name)
        return name

    _print_EulerGamma = _print_Catalan = _print_named_constant
    _print_GoldenRatio = _print_TribonacciConstant = _print_named_constant

    def _print_polygamma(self, expr):
        """polygamma(0, x) is digamma, the derivative of loggamma: a helper (math has none)."""
        order, arg = expr.args
        if order != 0:
            raise UnsupportedFunctionError(
                f"no {self.backend_name}-backend implementation of polygamma of order {order}")
        self._helper("digamma", "polygamma")
        return f"digamma({self._print(arg)})"

    def _helper(self, name: str, what: str) -> None:
        """Record that the text calls helper ``name``; a backend without it cannot print
        ``what`` (torch has no besseli)."""
        if not has_helper(name, self.backend_name):
            raise UnsupportedFunctionError(
                f"no {self.backend_name}-backend implementation of {what}")
        self.helpers.add(name)

    @staticmethod
    def _heaviside_at_zero(expr) -> sp.Basic:
        """SymPy's value of Heaviside at 0 (its second argument, 1/2 when omitted)."""
        return expr.args[1] if len(expr.args) > 1 else sp.S.Half

    def _print_value(self, value: sp.Basic) -> str:
        """A number as a float literal (so results stay floats), anything else as usual."""
        if value.is_Number and value.is_finite:
            return repr(float(value))
        return self._print(value)

    def _piecewise_parts(self, expr):
        """(conditions, values, default) texts of a Piecewise; default nan without a True branch.

        Number values print as float literals, so a Piecewise of constants is float-valued.
        """
        pairs = list(expr.args)
        default = self._print(sp.nan)
        if pairs and pairs[-1].cond is sp.true:
            default = self._print_value(pairs.pop().expr)
        conds = [self._print(p.cond) for p in pairs]
        values = [self._print_value(p.expr) for p in pairs]
        return conds, values, default
