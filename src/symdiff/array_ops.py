"""Whole-array gates of matrix programs, as SymPy functions over the names of arrays.

A matrix formula is lowered to steps over array-valued names. Elementwise gates are ordinary SymPy
expressions (``a*b``, ``exp(a)``, ``a + b``), read with NumPy's elementwise semantics and
broadcasting; the gates below are the ones that are not elementwise. Every array is 2-D (a row,
a column or a matrix) except the results of ``total``, ``item``, ``entry``, ``trace``, ``det``
and ``logdet``, scalars. An ``axis`` argument is 0 (down
the rows, giving one row), 1 (along each row, giving one column) or 2 (both, giving 1x1).
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from .tensor_ops import TENSOR_GATES


class _ArrayGate(sp.Function):
    """An unevaluated gate: SymPy never rewrites it. ``apply`` computes it on NumPy arrays (of
    any dtype: the 50-digit interpreter passes arrays of mpmath numbers); its arguments after
    the first ``operands`` are an axis or sizes, passed as ints."""

    is_real = True
    operands = 1

    @classmethod
    def eval(cls, *args):
        return None


class matmul(_ArrayGate):
    """``a @ b``."""

    nargs = 2
    operands = 2
    precedence = PRECEDENCE["Mul"]  # printed as an infix operator
    apply = staticmethod(lambda a, b: a @ b)


class transpose(_ArrayGate):
    """``a.T``."""

    nargs = 1
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript
    apply = staticmethod(lambda a: a.T)


class axis_sum(_ArrayGate):
    """``a.sum(axis, keepdims=True)``; axis 2 sums everything into a 1x1 array."""

    nargs = 2
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript
    apply = staticmethod(lambda a, axis: a.sum(axis=_axes(axis), keepdims=True))


class total(_ArrayGate):
    """``np.sum(a)``: every element, as a scalar."""

    nargs = 1
    apply = staticmethod(lambda a: a.sum())


class axis_max(_ArrayGate):
    """``a.max(axis, keepdims=True)``."""

    nargs = 2
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript
    apply = staticmethod(lambda a, axis: a.max(axis=_axes(axis), keepdims=True))


class max_mask(_ArrayGate):
    """1/count where ``a`` attains its maximum ``m`` along ``axis``, else 0 (backward only)."""

    nargs = 3
    operands = 2

    @staticmethod
    def apply(a, m, axis):
        one = a**0  # ones of a's own kind: floats, or mpmath numbers (exact 1/3 at 50 digits)
        hit = np.where(a == m, one, one - one)
        return hit / hit.sum(axis=_axes(axis), keepdims=True)


class first_max_mask(_ArrayGate):
    """1 at the first entry where ``a`` attains its maximum ``m`` along ``axis``, else 0: the
    other valid subgradient at a tie (all to the first maximum, as argmax-based code does)."""

    nargs = 3
    operands = 2

    @staticmethod
    def apply(a, m, axis):
        one = a**0
        hit = np.where(a == m, one, one - one)
        first = np.cumsum(hit != 0, axis=axis) == 1
        return np.where(first & (hit != 0), one, one - one)


class item(_ArrayGate):
    """``a[0, 0]``: the entry of a 1x1 array, as a scalar."""

    nargs = 1
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript
    apply = staticmethod(lambda a: a[0, 0])


class as_1x1(_ArrayGate):
    """A scalar as a 1x1 array (the gradient of ``item``)."""

    nargs = 1
    apply = staticmethod(lambda s: np.full((1, 1), s, dtype=object))


class broadcast(_ArrayGate):
    """``np.broadcast_to(a, (rows, cols))``: a row or column repeated to a full matrix."""

    nargs = 3
    apply = staticmethod(lambda a, rows, cols: np.broadcast_to(a, (rows, cols)))


class entry(_ArrayGate):
    """``a[i, j]``: one entry, as a scalar (``i``, ``j`` are numbers)."""

    nargs = 3
    precedence = PRECEDENCE["Atom"]  # printed as a subscript
    apply = staticmethod(lambda a, i, j: a[i, j])


class entry_grad(_ArrayGate):
    """A rows x cols array of zeros with the scalar ``s`` at ``(i, j)`` (the gradient of
    ``entry``; backward only)."""

    nargs = 5

    @staticmethod
    def apply(s, i, j, rows, cols):
        out = np.full((rows, cols), s - s, dtype=object)
        out[i, j] = s
        return out


class submatrix(_ArrayGate):
    """``a[r0:r1, c0:c1]``: a block of rows and columns (bounds are numbers or dimensions)."""

    nargs = 5
    precedence = PRECEDENCE["Atom"]  # printed as a subscript
    apply = staticmethod(lambda a, r0, r1, c0, c1: a[r0:r1, c0:c1])

    def shape_from(self, shapes: list) -> tuple:
        _, r0, r1, c0, c1 = self.args
        return (r1 - r0, c1 - c0)

    def grads(self, d, of) -> list[tuple]:
        a = self.args[0]
        return [(a, submatrix_grad(d, *self.args[1:], *of(a)))]


class block(_ArrayGate):
    """``np.block([[a, b], [c, d]])``: arrays side by side and stacked (``sp.BlockMatrix``).
    The arguments are the blocks row by row, then the numbers of block rows and columns."""

    precedence = PRECEDENCE["Atom"]  # printed as a call

    @property
    def operands(self) -> int:
        return len(self.args) - 2

    @property
    def grid(self) -> list[list[sp.Basic]]:
        rows, cols = (int(n) for n in self.args[-2:])
        return [list(self.args[i * cols:(i + 1) * cols]) for i in range(rows)]

    @staticmethod
    def apply(*args):
        *blocks, rows, cols = args
        return np.block([[blocks[i * cols + j] for j in range(cols)] for i in range(rows)])

    def shape_from(self, shapes: list) -> tuple:
        """(rows, cols) from the blocks' shapes (row by row): the heights of the first block
        column's, the widths of the first block row's."""
        rows, cols = (int(n) for n in self.args[-2:])
        return (sp.Add(*(shapes[i * cols][0] for i in range(rows))),
                sp.Add(*(s[1] for s in shapes[:cols])))

    def grads(self, d, of) -> list[tuple]:
        """Each block's gradient: the block of ``d`` where it sits."""
        terms, r0 = [], sp.S.Zero
        for row in self.grid:
            c0 = sp.S.Zero
            for a in row:
                r, c = of(a)
                if a.is_Symbol:
                    terms.append((a, submatrix(d, r0, r0 + r, c0, c0 + c)))
                c0 += c
            r0 += of(row[0])[0]
        return terms


class submatrix_grad(_ArrayGate):
    """Zeros of rows x cols with ``s`` at ``[r0:r1, c0:c1]`` (the gradient of ``submatrix``;
    backward only)."""

    nargs = 7

    @staticmethod
    def apply(s, r0, r1, c0, c1, rows, cols):
        out = np.full((rows, cols), s.flat[0] - s.flat[0], dtype=object)
        out[r0:r1, c0:c1] = s
        return out


class constant(_ArrayGate):
    """``np.array([[...], ...])``: a matrix of numbers written in the formula (rows, cols, then
    the entries row by row)."""

    precedence = PRECEDENCE["Atom"]  # printed as a call

    @property
    def operands(self) -> int:  # every argument is a number, passed to apply as its value
        return len(self.args)

    @staticmethod
    def apply(rows, cols, *entries):
        return np.array(entries, dtype=object).reshape(int(rows), int(cols))


class trace(_ArrayGate):
    """``np.trace(a)``: the sum of the diagonal of a square array, as a scalar."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda a: np.trace(a))


class eye(_ArrayGate):
    """``np.eye(n)``: the n x n identity (the gradient of ``trace``; backward only)."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    operands = 0
    apply = staticmethod(lambda n: np.eye(n, dtype=int).astype(object))


class det(_ArrayGate):
    """``np.linalg.det(a)``."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda a: mpmath.det(_mp(a)))


class logdet(_ArrayGate):
    """``log(det(a))`` by ``np.linalg.slogdet`` (no overflow); nan where det(a) < 0."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1

    @staticmethod
    def apply(a):
        d = mpmath.det(_mp(a))
        return mpmath.log(d) if d > 0 else mpmath.mpf("nan") if d < 0 else mpmath.mpf("-inf")


class inverse(_ArrayGate):
    """``np.linalg.inv(a)``: only where the inverse itself is the value (see ``solve``)."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda a: _np(mpmath.inverse(_mp(a))))


class solve(_ArrayGate):
    """``np.linalg.solve(a, b)``: ``a**-1 @ b`` without forming the inverse."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 2
    operands = 2
    apply = staticmethod(lambda a, b: _np(mpmath.lu_solve(_mp(a), _mp(b)))
                         if b.shape[1] == 1 else _np(mpmath.inverse(_mp(a)) * _mp(b)))


class cholesky(_ArrayGate):
    """The lower Cholesky factor ``L`` of a matrix declared symmetric positive definite
    (``symdiff.spd``): ``a = L @ L.T``. The gates below solve and take log-determinants with
    it; their gradients go to ``a`` itself, never through ``L``."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda a: _np(mpmath.cholesky(_mp(a))))


class cho_solve(_ArrayGate):
    """``a**-1 @ b`` from the Cholesky factor ``L`` of ``a`` (two triangular solves)."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 2
    operands = 2
    apply = staticmethod(lambda c, b: _np(mpmath.cholesky_solve(_mp(c) * _mp(c).T, _mp(b)))
                         if b.shape[1] == 1 else _np(mpmath.inverse(_mp(c) * _mp(c).T) * _mp(b)))


class cho_logdet(_ArrayGate):
    """``log(det(a))`` from the Cholesky factor ``L`` of ``a``: ``2*sum(log(diag(L)))``."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda c: 2 * mpmath.fsum(mpmath.log(c[k, k])
                                                   for k in range(c.shape[0])))


class cho_inverse(_ArrayGate):
    """``a**-1`` from the Cholesky factor ``L`` of ``a``: only where the inverse is a value
    (or the gradient of a log-determinant)."""

    precedence = PRECEDENCE["Atom"]  # printed as a call
    nargs = 1
    apply = staticmethod(lambda c: _np(mpmath.inverse(_mp(c) * _mp(c).T)))


CHOLESKY_GATES = (cho_solve, cho_logdet, cho_inverse)  # gates over a factor, first argument
ARRAY_GATES = (matmul, transpose, axis_sum, total, axis_max, max_mask, first_max_mask, item,
               as_1x1, broadcast, entry, entry_grad, submatrix, submatrix_grad, block, constant,
               trace, eye, det, logdet, inverse, solve, cholesky, *CHOLESKY_GATES, *TENSOR_GATES)


def _axes(axis) -> int | tuple[int, int]:
    """A gate's axis argument as NumPy's: 0, 1, or both (2)."""
    return (0, 1) if int(axis) == 2 else int(axis)


def _mp(a) -> mpmath.matrix:
    """An array of numbers as an mpmath matrix (the 50-digit interpreter's linear algebra)."""
    return mpmath.matrix(np.asarray(a, dtype=object).tolist())


def _np(m: mpmath.matrix) -> np.ndarray:
    return np.array(m.tolist(), dtype=object).reshape(m.rows, m.cols)
