"""Print one small SymPy expression as one JavaScript expression (the interactive page's code).

``JsPrinter`` subclasses SymPy's ``JavascriptCodePrinter`` and prints what the math backend
prints, with the math backend's numbers: each op of the table (ops.py) by its ``math`` column
(``math.exp`` -> ``Math.exp``), a runtime helper of the same name where the math backend calls
one (``runtime_js.js``: the overflow-safe ``sigmoid``, ``softplus``, ...), and the same forms
of powers, conditionals and the non-smooth gates (``sign``, ``Heaviside``, ``Max``/``Min``);
a long sum is ``fsum([...])``, exactly rounded like the math backend's ``math.fsum``.
Where the math backend raises (a domain error, an undefined branch) the JavaScript value is
``NaN``. JavaScript's Math has no erf or erfc (helpers here, to 1e-13 of math's), and no
gamma, lgamma or Bessel function: those are refused (``UnsupportedFunctionError``), as are
the whole-array gates of matrix programs.

Names: every program name is a Python identifier; one that JavaScript reserves or that the
generated code itself uses (``Math``, ``NaN``, the helpers) is written ``$name`` (``js_name``):
``$`` is in no Python identifier, so the renamed name meets no other.
"""

from __future__ import annotations

import math
import re
from importlib.resources import files

import sympy as sp
from sympy.printing.jscode import JavascriptCodePrinter

from .array_ops import ARRAY_GATES
from .dag import postorder
from .errors import UnsupportedFunctionError
from .ops import OPS, How, row
from .runtime import NAMED_CONSTANTS
from .staged_printer import LONG_SUM, check_supported

BACKEND = "js"

_WORDS = """
    arguments await break case catch class const continue debugger default delete do else enum
    eval export extends false finally for function if implements import in instanceof interface
    let new null package private protected public return static super switch this throw true try
    typeof var void while with yield undefined NaN Infinity Math Number Object Array JSON String
    Symbol globalThis window document console self top parent name length constructor prototype
    """
_JS_WORDS = frozenset(_WORDS.split())

# The math column's callees that JavaScript's Math object has under the same name.
_MATH_NAMES = "exp log sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh log1p expm1 " \
    "hypot"
_MATH_FUNCTIONS = frozenset(_MATH_NAMES.split())


def _helpers(filename: str) -> dict[str, str]:
    """The text of each top-level ``function name(...) {...}`` of a JavaScript runtime file,
    with the comment block above it, by name (a function ends at the first ``}`` in column 0).
    A comment line ``// needs: a, b`` names the other helpers a helper calls (``JS_NEEDS``)."""
    text = files(__package__).joinpath(filename).read_text(encoding="utf-8")
    found, comment, current, name = {}, [], [], None
    for line in text.splitlines():
        if name is None:
            head = re.match(r"function (\w+)\(", line)
            if head:
                name, current = head.group(1), [*comment, line]
            comment = [*comment, line] if line.startswith("//") else []
            continue
        current.append(line)
        if line.startswith("}"):
            found[name], name, comment = "\n".join(current) + "\n", None, []
    return found


JS_HELPERS: dict[str, str] = _helpers("runtime_js.js")
JS_NEEDS: dict[str, tuple[str, ...]] = {
    name: tuple(n.strip() for line in text.splitlines() if line.startswith("// needs:")
                for n in line.removeprefix("// needs:").split(","))
    for name, text in JS_HELPERS.items()}
RESERVED_JS = _JS_WORDS | frozenset(JS_HELPERS)


def js_name(name: str) -> str:
    """The JavaScript spelling of a program name: itself, or ``$name`` where JavaScript (or
    the generated code) reserves it.

    >>> js_name("x"), js_name("var"), js_name("sigmoid")
    ('x', '$var', '$sigmoid')
    """
    return f"${name}" if name in RESERVED_JS else name


def js_helper_source(name: str) -> str:
    """The text of one JavaScript helper (ends with a newline)."""
    return JS_HELPERS[name]


class JsPrinter(JavascriptCodePrinter):
    """One small expression as one JavaScript expression over doubles; ``helpers`` collects
    the runtime helpers the text calls."""

    backend_name = BACKEND

    def __init__(self, settings=None):
        super().__init__(dict({"order": "none"}, **(settings or {})))
        self.helpers: set[str] = set()

    def line(self, expr: sp.Basic) -> str:
        """One expression as code, after the check that every node is printable."""
        check_supported(expr, BACKEND)
        for node in postorder(expr):
            if isinstance(node, ARRAY_GATES):
                raise UnsupportedFunctionError(
                    f"no js-backend implementation of {type(node).__name__} (the interactive "
                    "page computes scalar programs only)")
        negated = expr.is_Mul and len(expr.args) == 2 and expr.args[0] == -1
        square = expr.args[1] if negated else expr
        if square.is_Pow and square.exp == 2 and type(square.base) is sp.Symbol:
            name = self._print(square.base)  # as the math backend writes it: xpy*xpy
            return f"{'-' if negated else ''}{name}*{name}"
        return self._print(expr)

    def _print_not_supported(self, expr):
        """Raise instead of SymPy's comment, in case a check was missed."""
        raise UnsupportedFunctionError(f"no js-backend implementation of {type(expr).__name__}")

    def _print_Add(self, expr, order=None):
        """A long sum as ``fsum([...])``, exactly rounded as the math backend's ``math.fsum``."""
        if len(expr.args) <= LONG_SUM:
            return super()._print_Add(expr, order=order)
        self.helpers.add("fsum")
        return f"fsum([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Symbol(self, expr):
        return js_name(expr.name)

    def _print_Float(self, expr):
        """The shortest repr of the double (the one Python prints); inf and nan by name."""
        return self._number(float(expr))

    @staticmethod
    def _number(value: float) -> str:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "(-Infinity)"
        return repr(value) if value >= 0 else f"({value!r})"

    def _print_Infinity(self, expr):
        return "Infinity"

    def _print_NegativeInfinity(self, expr):
        return "(-Infinity)"

    def _print_NaN(self, expr):
        """Undefined: NaN (the math backend raises ValueError there)."""
        return "NaN"

    def _print_named_constant(self, expr):
        """The double nearest the constant, as the math backend's module-level float."""
        return f"{float(expr.evalf(30))!r} /* {NAMED_CONSTANTS[expr][0]} */"

    _print_EulerGamma = _print_Catalan = _print_named_constant
    _print_GoldenRatio = _print_TribonacciConstant = _print_named_constant

    def _print_Pow(self, expr, rational=False):
        """The math backend's forms: 1/x, Math.sqrt, and Math.pow otherwise (never Math.cbrt,
        which is real below 0 where x**(1/3) is not)."""
        base, e = expr.args
        if e == -1:
            return f"(1/{self.parenthesize(base, 60, strict=True)})"
        if e == sp.S.Half:
            return f"Math.sqrt({self._print(base)})"
        if e == -sp.S.Half:
            return f"(1/Math.sqrt({self._print(base)}))"
        return f"Math.pow({self._print(base)}, {self._print(e)})"

    def _print_Relational(self, expr):
        op = {"==": "===", "!=": "!=="}.get(expr.rel_op, expr.rel_op)
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"(!{self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr):
        return "true"

    def _print_BooleanFalse(self, expr):
        return "false"

    def _print_ITE(self, expr):
        a, b, c = (self._print(arg) for arg in expr.args)
        return f"({a} ? {b} : {c})"

    def _print_Piecewise(self, expr):
        """Nested conditional expressions, evaluated lazily as in the math backend; NaN where
        no branch holds."""
        pairs = list(expr.args)
        text = "NaN"
        if pairs and pairs[-1].cond is sp.true:
            text = self._value(pairs.pop().expr)
        for pair in reversed(pairs):
            text = f"({self._print(pair.cond)} ? {self._value(pair.expr)} : {text})"
        return text

    def _value(self, value: sp.Basic) -> str:
        if value.is_Number and value.is_finite:
            return self._number(float(value))
        return self._print(value)

    def _print_sign(self, expr):
        """0 at 0 (and at NaN, as the math backend's comparisons give)."""
        arg = self._print(expr.args[0])
        return f"(({arg} > 0) - ({arg} < 0))"

    def _print_Heaviside(self, expr):
        """SymPy's second argument is the value at 0 (1/2 when omitted)."""
        arg = self._print(expr.args[0])
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        if h0.is_zero:
            return f"({arg} > 0 ? 1.0 : 0.0)"
        return f"({arg} > 0 ? 1.0 : ({arg} === 0 ? {self._value(h0)} : 0.0))"

    def _print_floor(self, expr):
        return f"Math.floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr):
        return f"Math.ceil({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return f"Math.max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr):
        return f"Math.min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr):
        return f"Math.abs({self._print(expr.args[0])})"

    def _print_atan2(self, expr):
        """``y + 0.0`` turns -0 into 0: over the reals atan2(0, x < 0) is pi, never -pi."""
        y, x = (self._print(a) for a in expr.args)
        return f"Math.atan2({y} + 0.0, {x})"

    def _print_Exp1(self, expr):
        return "Math.E"

    def _print_Pi(self, expr):
        return "Math.PI"

    def _print_polygamma(self, expr):
        order, arg = expr.args
        if order != 0:
            raise UnsupportedFunctionError(
                f"no js-backend implementation of polygamma of order {order}")
        return self._call("digamma", [arg], "polygamma")

    def _print_op(self, expr):
        """An op of the table printed as the math backend prints it (its ``math`` column)."""
        op = row(expr.func)
        how = op.math
        if how is How.RECIPROCAL:
            return f"(1/{self._print(op.reciprocal(expr.args[0], evaluate=False))})"
        if how is How.INVERSE:
            arg = sp.Pow(expr.args[0], -1, evaluate=False)
            return self._print(op.inverse(arg, evaluate=False))
        if how is How.HELPER:
            return self._call(expr.func.__name__, expr.args, expr.func.__name__)
        name = how.removeprefix("math.")
        if name in JS_HELPERS:  # erf, erfc: JavaScript's Math has none
            return self._call(name, expr.args, name)
        if name not in _MATH_FUNCTIONS:
            raise UnsupportedFunctionError(f"no js-backend implementation of {expr.func.__name__}"
                                           " (JavaScript's Math has none)")
        return f"Math.{name}({', '.join(self._print(a) for a in expr.args)})"

    def _call(self, helper: str, args, what: str) -> str:
        if helper not in JS_HELPERS:
            raise UnsupportedFunctionError(f"no js-backend implementation of {what}")
        self.helpers.update((helper, *JS_NEEDS[helper]))
        return f"{helper}({', '.join(self._print(a) for a in args)})"


for _op in OPS:  # every op of the table without a method of its own prints by its row
    if f"_print_{_op.cls.__name__}" not in JsPrinter.__dict__:
        setattr(JsPrinter, f"_print_{_op.cls.__name__}", JsPrinter._print_op)


def print_js(expr: sp.Basic) -> tuple[str, frozenset[str]]:
    """JavaScript for a small expression, and the helpers it calls.

    >>> from symdiff.functions import sigmoid
    >>> x = sp.Symbol("x")
    >>> print_js(sigmoid(x) / x**2)
    ('sigmoid(x)/Math.pow(x, 2)', frozenset({'sigmoid'}))
    """
    printer = JsPrinter()
    return printer.line(expr), frozenset(printer.helpers)
