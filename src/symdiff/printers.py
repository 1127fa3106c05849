"""Print one small SymPy expression as one line of plain Python, for the math or numpy backend.

A staged program is a list of steps ``name = <expression over earlier names>``; this module prints
the right-hand sides. ``print_expr`` returns the text and the names of the module-level helper
functions the text calls (``sigmoid``, ``erf``, ...; ``runtime.helper_source`` has their text).
Generated ``math`` code imports only ``math`` and works on Python floats; generated ``numpy``
code imports only ``numpy as np`` and works elementwise on arrays with broadcasting.

The printers subclass SymPy's ``PythonCodePrinter`` and ``NumPyPrinter`` and override only what
those get wrong for symdiff (laziness, overflow, negative integer powers, precedence of ``1/x``,
``np.`` prefix). Before printing, every node of the expression is checked against an explicit list
of supported SymPy classes, so nothing SymPy would print as a comment, a complex literal or a
``functools.reduce`` call slips through: anything else raises ``UnsupportedFunctionError``.
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
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pycode import PythonCodePrinter

from .array_ops import ARRAY_GATES
from .errors import ArgumentError, UnsupportedFunctionError
from .ops import BY_CLASS, OPS, How, row
from .runtime import NAMED_CONSTANTS

LONG_SUM = 32  # sums with more terms print as one call (see _StagedPrinter._print_Add)

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


class _StagedPrinter:
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
        ``_print_<class>`` for every row without a method of its own, see _install_ops)."""
        how = getattr(row(expr.func), self.backend_name)
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
        self.helpers.add(name)
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
        self.helpers.add("digamma")
        return f"digamma({self._print(arg)})"

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


class MathPrinter(_StagedPrinter, PythonCodePrinter):
    """Plain Python over floats; calls only ``math`` and builtins."""

    backend_name = "math"
    module = "math"
    sum_call = "math.fsum"  # exactly rounded
    atan2_call = "math.atan2"
    _one = "1.0"  # 1.0/x: a float over a float, no int conversion (CPython: 1/x is slower)

    def line(self, expr: sp.Basic) -> str:
        """A square of a name as a product (``xpy*xpy``, ``-invden*invden``): CPython's float
        ``**`` is a general power, twice the time of a multiplication."""
        negated = expr.is_Mul and len(expr.args) == 2 and expr.args[0] == -1
        square = expr.args[1] if negated else expr
        if square.is_Pow and square.exp == 2 and type(square.base) is sp.Symbol:
            name = self._print(square.base)
            return f"{'-' if negated else ''}{name}*{name}"
        return super().line(expr)

    def _negative_power(self, base, e):
        """``x**(-2)``: Python floats accept negative integer powers."""
        return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**({self._print(e)})"

    def _general_power(self, base, e):
        """``math.pow``: a negative base raises ValueError where ``**`` returns a complex."""
        return f"math.pow({self._print(base)}, {self._print(e)})"


    def _print_NaN(self, expr):
        """An undefined value (a Piecewise branch SymPy folds to zoo or a complex number, or
        no branch for the point) raises ValueError, as math.log(-1) does: a nan would pass
        through max() unseen (max(1.0, nan) is 1.0)."""
        self.helpers.add("undefined")
        return "undefined()"

    def _print_Piecewise(self, expr):
        """A lazy nested conditional expression (SymPy's falls back to None, not nan)."""
        conds, values, text = self._piecewise_parts(expr)
        if not conds:
            return f"({text})"
        for cond, value in zip(reversed(conds), reversed(values)):
            text = f"({value} if {cond} else {text})"
        return text

    def _print_And(self, expr):
        """Parenthesized ``and`` so the text is safe inside any other expression."""
        return "(" + " and ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        """Parenthesized ``or`` so the text is safe inside any other expression."""
        return "(" + " or ".join(self._print(a) for a in expr.args) + ")"

    def _print_ITE(self, expr):
        """``ITE(a, b, c)`` (SymPy makes it when it merges nested Piecewise conditions)."""
        a, b, c = (self._print(arg) for arg in expr.args)
        return f"({b} if {a} else {c})"

    def _print_Not(self, expr):
        """Parenthesized ``not`` so the text is safe inside any other expression."""
        return f"(not {self._print(expr.args[0])})"

    def _print_sign(self, expr):
        """Comparisons instead of SymPy's copysign form: 0 at 0 with no call."""
        arg = self._print(expr.args[0])
        return f"(({arg} > 0) - ({arg} < 0))"

    def _print_Heaviside(self, expr):
        """A conditional expression; SymPy's second argument is the value at 0."""
        arg = self._print(expr.args[0])
        h0 = self._heaviside_at_zero(expr)
        if h0.is_zero:
            return f"(1.0 if {arg} > 0 else 0.0)"
        return f"(1.0 if {arg} > 0 else ({self._print_value(h0)} if {arg} == 0 else 0.0))"

    def _print_floor(self, expr):
        """``math.floor`` returns an int; keep results floats."""
        return f"float(math.floor({self._print(expr.args[0])}))"

    def _print_ceiling(self, expr):
        """``math.ceil`` returns an int; keep results floats."""
        return f"float(math.ceil({self._print(expr.args[0])}))"


class NumpyPrinter(_StagedPrinter, NumPyPrinter):
    """Elementwise code over arrays with broadcasting; calls only ``np`` and helpers."""

    backend_name = "numpy"
    module = "np"
    sum_call = "sum"  # the builtin: it broadcasts
    atan2_call = "np.arctan2"
    _one = "1"
    _pow_precedence: ClassVar[dict[str, int]] = dict(
        _StagedPrinter._pow_precedence, negative=PRECEDENCE["Mul"], general=PRECEDENCE["Pow"]
    )

    def _module_format(self, fqn, register=True):
        """Write ``np.`` for ``numpy.``: generated code imports numpy as np."""
        if fqn.startswith("numpy."):
            fqn = "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _negative_power(self, base, e):
        """``1/x**2``: numpy refuses integer arrays to negative integer powers."""
        return f"1/{self.parenthesize(base, PRECEDENCE['Pow'])}**{self._print(-e)}"

    def _general_power(self, base, e):
        """``x**e`` is elementwise; nan (with a warning) for a negative base, like np.power."""
        prec = PRECEDENCE["Pow"]
        return f"{self.parenthesize(base, prec)}**{self.parenthesize(e, prec)}"

    def _print_Piecewise(self, expr):
        """``np.select`` with the True branch as default (SymPy's always defaults to nan)."""
        conds, values, default = self._piecewise_parts(expr)
        if not conds:
            return f"({default})"
        return f"np.select([{', '.join(conds)}], [{', '.join(values)}], default={default})"

    def _fold(self, func: str, args) -> str:
        """``func(func(a, b), c)``: binary ufuncs broadcast; ``.reduce`` over a tuple does not."""
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{func}({text}, {self._print(arg)})"
        return text

    def _print_And(self, expr):
        """Nested ``np.logical_and`` (SymPy's ``.reduce`` fails on differently shaped args)."""
        return self._fold("np.logical_and", expr.args)

    def _print_Or(self, expr):
        """Nested ``np.logical_or`` (SymPy's ``.reduce`` fails on differently shaped args)."""
        return self._fold("np.logical_or", expr.args)

    def _print_ITE(self, expr):
        """``ITE(a, b, c)`` elementwise (SymPy makes it when merging Piecewise conditions)."""
        return "np.where({}, {}, {})".format(*(self._print(arg) for arg in expr.args))

    def _print_Not(self, expr):
        """``np.logical_not`` under the np prefix."""
        return f"np.logical_not({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        """Nested ``np.maximum`` instead of SymPy's ``functools.reduce`` (needs an import)."""
        return self._fold("np.maximum", expr.args)

    def _print_Min(self, expr):
        """Nested ``np.minimum`` instead of SymPy's ``functools.reduce`` (needs an import)."""
        return self._fold("np.minimum", expr.args)

    def _print_Heaviside(self, expr):
        """``np.heaviside`` with SymPy's value at 0 as its second argument."""
        h0 = self._print_value(self._heaviside_at_zero(expr))
        return f"np.heaviside({self._print(expr.args[0])}, {h0})"

    # -- whole-array gates of matrix programs (see array_ops) --------------------------------

    def _operand(self, expr) -> str:
        """An operand of ``.T``, ``.sum(...)`` or ``[0, 0]``: parenthesized unless a name."""
        return self.parenthesize(expr, PRECEDENCE["Atom"], strict=True)

    def _print_matmul(self, expr):
        a, b = expr.args
        return (f"{self.parenthesize(a, PRECEDENCE['Mul'], strict=True)} @ "
                f"{self.parenthesize(b, PRECEDENCE['Mul'], strict=False)}")

    def _print_transpose(self, expr):
        return f"{self._operand(expr.args[0])}.T"

    def _print_axis_sum(self, expr):
        return self._reduction("sum", expr)

    def _print_axis_max(self, expr):
        return self._reduction("max", expr)

    def _reduction(self, method: str, expr) -> str:
        a, axis = expr.args
        where = "" if axis == 2 else f"axis={int(axis)}, "
        return f"{self._operand(a)}.{method}({where}keepdims=True)"

    def _print_total(self, expr):
        return f"np.sum({self._print(expr.args[0])})"

    def _print_item(self, expr):
        return f"{self._operand(expr.args[0])}[0, 0]"

    def _print_as_1x1(self, expr):
        return f"np.full((1, 1), {self._print(expr.args[0])})"

    def _print_broadcast(self, expr):
        a, r, c = (self._print(e) for e in expr.args)
        return f"np.broadcast_to({a}, ({r}, {c}))"

    def _print_max_mask(self, expr):
        self.helpers.add("max_mask")
        a, m, axis = expr.args
        return f"max_mask({self._print(a)}, {self._print(m)}, axis={int(axis)})"


def _install_ops(printer: type) -> None:
    """Print every op of the table by its row, unless the row says the printer has its own."""
    for op in OPS:
        if getattr(op, printer.backend_name) is not How.OWN:
            setattr(printer, f"_print_{op.cls.__name__}", printer._print_op)


_install_ops(MathPrinter)
_install_ops(NumpyPrinter)
# By name, for print_expr and make_printer; backends.BACKENDS lists the same names (tested).
_PRINTERS = {p.backend_name: p for p in (MathPrinter, NumpyPrinter)}


def _check_backend(backend: str) -> None:
    if not isinstance(backend, str) or backend not in _PRINTERS:
        raise ArgumentError(f"unknown backend {backend!r}; expected one of {', '.join(_PRINTERS)}")


def print_expr(expr: sp.Basic, backend: str) -> tuple[str, frozenset[str]]:
    """Python source for a small expression whose Symbols are already valid identifiers, and the
    names of module-level helper functions the text calls (e.g. {'sigmoid'}).

    >>> from symdiff.functions import sigmoid
    >>> x = sp.Symbol("x")
    >>> print_expr(sigmoid(x) / x**2, "numpy")
    ('sigmoid(x)/x**2', frozenset({'sigmoid'}))
    """
    printer = make_printer(backend)
    return printer.line(expr), frozenset(printer.helpers)


def make_printer(backend: str):
    """A printer to reuse for many lines of one module (``printer.line(expr)``); its
    ``helpers`` collects the helper functions all the lines call."""
    _check_backend(backend)
    return _PRINTERS[backend]()
