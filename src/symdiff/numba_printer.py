"""The printer of numba-backend lines: the math backend's, with NumPy's nan conventions.

A numba module compiles the math program per point and runs it over whole arrays, where one
point has no exception of its own: ``math.log(-1.0)`` and ``math.sqrt(-1.0)`` are nan under
numba, and a Piecewise with no branch for the point is nan too (the math backend raises
ValueError). Each override keeps such a nan visible, as NumPy's functions do, where Python's
builtins would hide it (``max(1.0, nan)`` is 1.0, and a ``t > 0`` test sends nan to 0).
Everything else prints as in ``MathPrinter`` (the ops table's math column, ops.py).
"""

from __future__ import annotations

from .printers import MathPrinter


class NumbaPrinter(MathPrinter):
    """Plain Python over floats that numba compiles; calls only ``math`` and helpers."""

    backend_name = "numba"
    sum_call = "sum"  # numba has no math.fsum: a long sum of a tuple, left to right

    def _print_NaN(self, expr):
        """nan where the formula is undefined (see the module docstring)."""
        return "math.nan"

    def _print_Max(self, expr):
        """Nested ``maximum``: nan if any argument is, as np.maximum."""
        return self._nested("maximum", expr.args)

    def _print_Min(self, expr):
        """Nested ``minimum``: nan if any argument is, as np.minimum."""
        return self._nested("minimum", expr.args)

    def _print_Heaviside(self, expr):
        """``heaviside(t, at_zero)``: nan for nan (the math form's test would give 0)."""
        self.helpers.add("heaviside")
        at_zero = self._print_value(self._heaviside_at_zero(expr))
        return f"heaviside({self._print(expr.args[0])}, {at_zero})"

    def _print_sign(self, expr):
        """``np.sign``: nan for nan, 0 at 0 (the math form's comparisons give 0 for nan)."""
        return f"np.sign({self._print(expr.args[0])})"

    def _print_floor(self, expr):
        """``np.floor``, a float: numba's math.floor is an integer, undefined for inf and nan."""
        return f"np.floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr):
        """``np.ceil``, a float (see _print_floor)."""
        return f"np.ceil({self._print(expr.args[0])})"

    def _print_helper_call(self, expr):
        """Integer arguments as floats: numba types ``*terms`` as a tuple of its items' types,
        and a loop over a tuple of an int and floats (logsumexp(x, y, 0)) does not compile."""
        name = expr.func.__name__
        self._helper(name, name)
        args = [f"{int(a)}.0" if a.is_Integer else self._print(a) for a in expr.args]
        return f"{name}({', '.join(args)})"

    def _nested(self, helper: str, args) -> str:
        self.helpers.add(helper)
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{helper}({text}, {self._print(arg)})"
        return text
