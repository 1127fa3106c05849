"""Whole-array gates of matrix programs, as SymPy functions over the names of arrays.

A matrix formula is lowered to steps over array-valued names. Elementwise gates are ordinary SymPy
expressions (``a*b``, ``exp(a)``, ``a + b``), read with NumPy's elementwise semantics and
broadcasting; the gates below are the ones that are not elementwise. Every array is 2-D (a row,
a column or a matrix) except the result of ``total``, a scalar. An ``axis`` argument is 0 (down
the rows, giving one row), 1 (along each row, giving one column) or 2 (both, giving 1x1).
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE


class _ArrayGate(sp.Function):
    """An unevaluated gate: SymPy never rewrites it."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class matmul(_ArrayGate):
    """``a @ b``."""

    nargs = 2
    precedence = PRECEDENCE["Mul"]  # printed as an infix operator


class transpose(_ArrayGate):
    """``a.T``."""

    nargs = 1
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript


class axis_sum(_ArrayGate):
    """``a.sum(axis, keepdims=True)``; axis 2 sums everything into a 1x1 array."""

    nargs = 2
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript


class total(_ArrayGate):
    """``np.sum(a)``: every element, as a scalar."""

    nargs = 1


class axis_max(_ArrayGate):
    """``a.max(axis, keepdims=True)``."""

    nargs = 2
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript


class max_mask(_ArrayGate):
    """1/count where ``a`` attains its maximum ``m`` along ``axis``, else 0 (backward only)."""

    nargs = 3


class item(_ArrayGate):
    """``a[0, 0]``: the entry of a 1x1 array, as a scalar."""

    nargs = 1
    precedence = PRECEDENCE["Atom"]  # printed as a method call, attribute or subscript


class as_1x1(_ArrayGate):
    """A scalar as a 1x1 array (the gradient of ``item``)."""

    nargs = 1


class broadcast(_ArrayGate):
    """``np.broadcast_to(a, (rows, cols))``: a row or column repeated to a full matrix."""

    nargs = 3


ARRAY_GATES = (matmul, transpose, axis_sum, total, axis_max, max_mask, item, as_1x1, broadcast)
