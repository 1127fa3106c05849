"""Whole-array gates of matrix programs, as SymPy functions over the names of arrays.

A matrix formula is lowered to steps over array-valued names. Elementwise gates are ordinary SymPy
expressions (``a*b``, ``exp(a)``, ``a + b``), read with NumPy's elementwise semantics and
broadcasting; the gates below are the ones that are not elementwise. Every array is 2-D (a row,
a column or a matrix) except the result of ``total``, a scalar. An ``axis`` argument is 0 (down
the rows, giving one row), 1 (along each row, giving one column) or 2 (both, giving 1x1).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE


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


ARRAY_GATES = (matmul, transpose, axis_sum, total, axis_max, max_mask, item, as_1x1, broadcast)


def _axes(axis) -> int | tuple[int, int]:
    """A gate's axis argument as NumPy's: 0, 1, or both (2)."""
    return (0, 1) if int(axis) == 2 else int(axis)
