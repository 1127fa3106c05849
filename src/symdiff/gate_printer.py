"""How numpy-like backends print the whole-array gates of matrix programs (array_ops).

``ArrayGates`` is mixed into ``printers.NumpyPrinter`` (and so into the torch, jax and
array_api printers, which override what their library spells otherwise): one method per gate,
each spelling the library's names through ``_np``/``_module_format`` (``np.trace``,
``jnp.trace``), never a literal module prefix, and calling a runtime helper where the library
has no single function (``entry_grad``, ``logdet``, ``cholesky``, the max masks).
"""

from __future__ import annotations

from sympy.printing.precedence import PRECEDENCE

from .tensor_ops import TENSOR_GATES


class ArrayGates:
    """The ``_print_<gate>`` methods of the whole-array gates; mixed in before SymPy's printer."""

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
        return f"{self._np('sum')}({self._print(expr.args[0])})"

    def _print_item(self, expr):
        return f"{self._operand(expr.args[0])}[0, 0]"

    def _print_as_1x1(self, expr):
        return f"{self._np('full')}((1, 1), {self._print(expr.args[0])})"

    def _print_broadcast(self, expr):
        a, r, c = (self._print(e) for e in expr.args)
        return f"{self._np('broadcast_to')}({a}, ({r}, {c}))"

    def _print_entry(self, expr):
        a, i, j = expr.args
        return f"{self._operand(a)}[{int(i)}, {int(j)}]"

    def _print_entry_grad(self, expr):
        self.helpers.add("entry_grad")
        s, i, j, r, c = (self._print(e) for e in expr.args)
        return f"entry_grad({s}, {i}, {j}, ({r}, {c}))"

    def _print_submatrix(self, expr):
        a, r0, r1, c0, c1 = expr.args
        rows, cols = (f"{self._print(lo)}:{self._print(hi)}" for lo, hi in ((r0, r1), (c0, c1)))
        return f"{self._operand(a)}[{rows}, {cols}]"

    def _print_block(self, expr):
        rows = ", ".join("[" + ", ".join(self._print(a) for a in row) + "]" for row in expr.grid)
        return f"{self._module_format('numpy.block')}([{rows}])"

    def _print_submatrix_grad(self, expr):
        self.helpers.add("submatrix_grad")
        s, r0, r1, c0, c1, r, c = (self._print(e) for e in expr.args)
        return f"submatrix_grad({s}, ({r0}, {r1}), ({c0}, {c1}), ({r}, {c}))"

    def _print_constant(self, expr):
        rows, cols, *entries = expr.args
        table = ", ".join("[" + ", ".join(self._print(e) for e in entries[k:k + int(cols)]) + "]"
                          for k in range(0, len(entries), int(cols)))
        return f"{self._module_format('numpy.array')}([{table}])"

    def _print_trace(self, expr):
        return f"{self._module_format('numpy.trace')}({self._print(expr.args[0])})"

    def _print_eye(self, expr):
        return f"{self._module_format('numpy.eye')}({self._print(expr.args[0])})"

    def _print_det(self, expr):
        return f"{self._module_format('numpy.linalg.det')}({self._print(expr.args[0])})"

    def _print_logdet(self, expr):
        """A helper around ``np.linalg.slogdet``: nan, not log|det|, where det < 0."""
        self.helpers.add("logdet")
        return f"logdet({self._print(expr.args[0])})"

    def _print_inverse(self, expr):
        return f"{self._module_format('numpy.linalg.inv')}({self._print(expr.args[0])})"

    def _print_solve(self, expr):
        a, b = (self._print(e) for e in expr.args)
        return f"{self._module_format('numpy.linalg.solve')}({a}, {b})"

    def _print_cholesky(self, expr):
        """A helper: np.linalg.cholesky after a symmetry check (it reads one triangle)."""
        return self._helper_call("cholesky", expr)

    def _print_cho_solve(self, expr):
        """A helper: SciPy's cho_solve when installed, np.linalg.solve on the factor if not."""
        return self._helper_call("cho_solve", expr)

    def _print_cho_logdet(self, expr):
        return self._helper_call("cho_logdet", expr)

    def _print_cho_inverse(self, expr):
        return self._helper_call("cho_inverse", expr)

    def _helper_call(self, name: str, expr) -> str:
        self.helpers.add(name)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_max_mask(self, expr):
        return self._mask(expr, "max_mask")

    def _print_first_max_mask(self, expr):
        return self._mask(expr, "first_max_mask")

    def _mask(self, expr, helper: str) -> str:
        self.helpers.add(helper)
        a, m, axis = expr.args
        return f"{helper}({self._print(a)}, {self._print(m)}, axis={int(axis)})"

    def _print_tensor_gate(self, expr):
        """An N-D gate (tensor_ops) is a call of its runtime_tensor helper of the same name."""
        self.helpers.update(expr.needs)
        self.helpers.add(type(expr).__name__)
        return f"{type(expr).__name__}({', '.join(expr.printed(self._print))})"


for _gate in TENSOR_GATES:  # SymPy finds a Function's printer by the class's own name only
    setattr(ArrayGates, f"_print_{_gate.__name__}", ArrayGates._print_tensor_gate)
