"""Print one small SymPy expression as one line of plain Python, for each backend.

A staged program is a list of steps ``name = <expression over earlier names>``; this module prints
the right-hand sides. ``print_expr`` returns the text and the names of the module-level helper
functions the text calls (``sigmoid``, ``erf``, ...; ``runtime.helper_source`` has their text).
Generated ``math`` code imports only ``math`` and works on Python floats; generated ``numpy``
code imports only ``numpy as np`` and works elementwise on arrays with broadcasting; torch
and jax code is numpy's in ``torch`` and ``jnp`` (``TorchPrinter``, ``JaxPrinter``).

``MathPrinter`` and ``NumpyPrinter`` subclass SymPy's ``PythonCodePrinter`` and ``NumPyPrinter``
with ``StagedPrinter`` mixed in first (staged_printer.py: what both backends share, and the check
that every node is supported), and override only what SymPy's printers get wrong for symdiff
(laziness, overflow, negative integer powers, the ``np.`` prefix); each override says why.
"""

from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .array_ops import ARRAY_GATES
from .errors import ArgumentError, UnsupportedFunctionError
from .gate_printer import ArrayGates
from .ops import OPS, How
from .staged_printer import StagedPrinter


class MathPrinter(StagedPrinter, PythonCodePrinter):
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


class NumpyPrinter(StagedPrinter, ArrayGates, NumPyPrinter):
    """Elementwise code over arrays with broadcasting; calls only ``np`` and helpers."""

    backend_name = "numpy"
    module = "np"
    sum_call = "sum"  # the builtin: it broadcasts
    atan2_call = "np.arctan2"
    _one = "1"
    _pow_precedence: ClassVar[dict[str, int]] = dict(
        StagedPrinter._pow_precedence, negative=PRECEDENCE["Mul"], general=PRECEDENCE["Pow"]
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
        return (f"{self._np('select')}([{', '.join(conds)}], [{', '.join(values)}], "
                f"default={default})")

    def _np(self, name: str) -> str:
        """The backend's spelling of ``numpy.<name>`` (``np.select``; jax: ``jnp.select``)."""
        return self._module_format(f"numpy.{name}")

    def _fold(self, func: str, args) -> str:
        """``func(func(a, b), c)``: binary ufuncs broadcast; ``.reduce`` over a tuple does not."""
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{self._np(func)}({text}, {self._print(arg)})"
        return text

    def _print_And(self, expr):
        """Nested ``np.logical_and`` (SymPy's ``.reduce`` fails on differently shaped args)."""
        return self._fold("logical_and", expr.args)

    def _print_Or(self, expr):
        """Nested ``np.logical_or`` (SymPy's ``.reduce`` fails on differently shaped args)."""
        return self._fold("logical_or", expr.args)

    def _print_ITE(self, expr):
        """``ITE(a, b, c)`` elementwise (SymPy makes it when merging Piecewise conditions)."""
        return "{}({}, {}, {})".format(self._np("where"), *(self._print(a) for a in expr.args))

    def _print_Not(self, expr):
        """``np.logical_not`` under the np prefix."""
        return f"{self._np('logical_not')}({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        """Nested ``np.maximum`` instead of SymPy's ``functools.reduce`` (needs an import)."""
        return self._fold("maximum", expr.args)

    def _print_Min(self, expr):
        """Nested ``np.minimum`` instead of SymPy's ``functools.reduce`` (needs an import)."""
        return self._fold("minimum", expr.args)

    def _print_Heaviside(self, expr):
        """``np.heaviside`` with SymPy's value at 0 as its second argument."""
        h0 = self._print_value(self._heaviside_at_zero(expr))
        return f"{self._np('heaviside')}({self._print(expr.args[0])}, {h0})"


class ArraysOnly:
    """What torch and the Array API share, mixed in before NumpyPrinter: their functions take
    arrays, not numbers, and they have no ``select``."""

    def _print(self, expr, **kwargs):
        """A number that is not a literal (``sqrt(2)``, ``log(2)``, ``pi/2``) as the double
        nearest it: ``torch.sqrt(2)`` raises (torch's functions take tensors)."""
        if (isinstance(expr, sp.Expr) and not expr.is_Atom and expr.is_number
                and not isinstance(expr, ARRAY_GATES)):
            value = expr.evalf(30)
            if value.is_Float:
                return self._print_Float(value)
        return super()._print(expr, **kwargs)

    def _print_Heaviside(self, expr):
        """The ``heaviside`` helper: the standard has none, and torch.heaviside takes its value
        at 0 as a tensor."""
        self.helpers.add("heaviside")
        h0 = self._print_value(self._heaviside_at_zero(expr))
        return f"heaviside({self._print(expr.args[0])}, {h0})"

    def _print_as_1x1(self, expr):
        return f"{self._np('reshape')}({self._print(expr.args[0])}, (1, 1))"

    def _print_block(self, expr):
        """Concatenations of rows, each a concatenation: ``block`` is numpy's alone."""
        concat = self._np("concat")
        rows = (f"{concat}([{', '.join(map(self._print, row))}], axis=1)" for row in expr.grid)
        return f"{concat}([{', '.join(rows)}], axis=0)"

    def _print_Piecewise(self, expr):
        """Nested ``where``. When every value is a number the default is an array like one of
        the formula's (``torch.where`` of two numbers would be float32 on the CPU)."""
        conds, values, text = self._piecewise_parts(expr)
        if not conds:
            return f"({text})"
        if all(pair.expr.is_number for pair in expr.args):
            like = min(s.name for s in expr.free_symbols)
            text = f"{self._np('full_like')}({like}, {text})"
        for cond, value in zip(reversed(conds), reversed(values)):
            text = f"{self._np('where')}({cond}, {value}, {text})"
        return text



class TorchPrinter(ArraysOnly, NumpyPrinter):
    """Elementwise torch code over tensors of any device and float dtype; calls only ``torch``
    and helpers. Where torch is not numpy: its functions take tensors, not numbers, it has no
    ``select``, and reductions say ``dim``/``keepdim``."""

    backend_name = "torch"
    module = "torch"
    atan2_call = "atan2"  # a helper: torch.atan2 refuses a number
    _CLAMP: ClassVar[dict[str, str]] = {"maximum": "min", "minimum": "max"}

    def _module_format(self, fqn, register=True):
        """``torch.`` for ``numpy.``: torch has numpy's names for every function printed."""
        if fqn.startswith("numpy."):
            fqn = "torch." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_constant(self, expr):
        """``torch.tensor(..., dtype=torch.float64)``: torch has no ``array``, and an integer
        tensor does not multiply a float one."""
        table = super()._print_constant(expr)[len("torch.array("):-1]
        return f"torch.tensor({table}, dtype=torch.float64)"

    def _fold(self, func: str, args) -> str:
        """``torch.maximum`` takes two tensors: a number operand is a ``torch.clamp`` bound."""
        numbers = [a for a in args if a.is_number]
        rest = [a for a in args if not a.is_number]
        text = super()._fold(func, rest)
        for n in numbers:
            text = f"torch.clamp({text}, {self._CLAMP[func]}={self._print(n)})"
        return text

    def _print_atan2(self, expr):
        """The ``atan2`` helper, which takes a number for either argument."""
        self.helpers.add("atan2")
        return super()._print_atan2(expr)

    def _reduction(self, method: str, expr) -> str:
        a, axis = expr.args
        dim = "(0, 1)" if axis == 2 else str(int(axis))
        name = "amax" if method == "max" else method  # Tensor.max(dim) returns (values, indices)
        return f"{self._operand(a)}.{name}(dim={dim}, keepdim=True)"


    def _print_eye(self, expr):
        """Refused: ``torch.eye(n)`` has torch's default dtype and device, not the inputs'."""
        raise UnsupportedFunctionError("no torch-backend implementation of eye (the gradient "
                                       "of a trace)")


class ArrayApiPrinter(ArraysOnly, NumpyPrinter):
    """Code over the arrays of any library of the Array API standard, in their namespace ``xp``
    (each function binds ``xp = namespace(...)``, runtime_array_api): numpy's forms under the
    standard's names (``xp.atan2``, ``xp.asin`` from the ops table's array_api column,
    ``xp.linalg.trace``), reductions as functions
    (an array's methods are not in the standard); what it lacks is a helper (heaviside) or
    refused (erf, gamma: no array_api helper)."""

    backend_name = "array_api"
    module = "xp"
    atan2_call = "xp.atan2"
    _STANDARD: ClassVar[dict[str, str]] = {"trace": "linalg.trace"}  # (ops rows: their column)

    def _module_format(self, fqn, register=True):
        """``xp.`` and the standard's name for ``numpy.`` and numpy's name."""
        if fqn.startswith("numpy."):
            name = fqn[len("numpy."):]
            fqn = "xp." + self._STANDARD.get(name, name)
        return super()._module_format(fqn, register)

    def _reduction(self, method: str, expr) -> str:
        a, axis = expr.args
        where = "" if axis == 2 else f"axis={int(axis)}, "
        return f"xp.{method}({self._print(a)}, {where}keepdims=True)"


    def _print_constant(self, expr):
        """``xp.asarray(..., dtype=xp.float64)``: the standard has no ``array``."""
        table = super()._print_constant(expr)[len("xp.array("):-1]
        return f"xp.asarray({table}, dtype=xp.float64)"

    def _print_eye(self, expr):
        """Refused: ``xp.eye(n)`` has the library's default dtype and device, not the inputs'."""
        raise UnsupportedFunctionError("no array_api-backend implementation of eye (the "
                                       "gradient of a trace)")


class JaxPrinter(NumpyPrinter):
    """jax.numpy code: numpy's, under ``jnp``; it runs under jit, vmap and grad."""

    backend_name = "jax"
    module = "jnp"
    atan2_call = "jnp.arctan2"

    def _module_format(self, fqn, register=True):
        """``jnp.`` for ``numpy.``: generated code imports jax.numpy as jnp."""
        if fqn.startswith("numpy."):
            fqn = "jnp." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)


def _install_ops(printer: type) -> None:
    """Print every op of the table by its row, unless the row says the printer has its own."""
    for op in OPS:
        if op.printing(printer.backend_name) is not How.OWN:
            setattr(printer, f"_print_{op.cls.__name__}", printer._print_op)


PRINTERS = (MathPrinter, NumpyPrinter, TorchPrinter, JaxPrinter, ArrayApiPrinter)
for _printer in PRINTERS:
    _install_ops(_printer)


def _printers() -> dict[str, type]:
    """The printers by name, with subclasses in later modules (numba_printer); tested equal
    to backends.BACKENDS."""
    found, stack = {}, list(PRINTERS)
    while stack:
        printer = stack.pop(0)
        found.setdefault(printer.backend_name, printer)
        stack += printer.__subclasses__()
    return found


def _check_backend(backend: str) -> None:
    names = _printers()
    if not isinstance(backend, str) or backend not in names:
        raise ArgumentError(f"unknown backend {backend!r}; expected one of {', '.join(names)}")


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
    return _printers()[backend]()
