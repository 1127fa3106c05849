"""Matrix expression -> expression over array-valued code symbols (the ``Converter``).

The matrix expression is converted node by node: elementwise operations become ordinary SymPy
arithmetic and functions (read with NumPy's broadcasting), the rest become the gates of
``array_ops`` (``matmul``, ``transpose``, ``axis_sum``, ...). ``OneMatrix`` factors are recognised
as what they mean: ``OneMatrix(1, N)*A`` is a column sum, ``OneMatrix(N, 1)*b`` repeats a row
(kept as ``b``; NumPy broadcasts it where it is used). Each converted node carries the shape
NumPy will give it and its shape as a matrix; a pending broadcast is made real only where the
full matrix is needed. The scalar Lowerer then stages the result (see ``api._lower_matrix``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from .array_ops import axis_max, axis_sum, broadcast, item, matmul, total, transpose
from .dag import postorder
from .errors import ArgumentError, UnsupportedFunctionError
from .matrix import AxisMax, Shape, broadcast_shapes, short


@dataclass(frozen=True)
class _Value:
    """A converted node: its expression over array names, the shape NumPy will give it (``phys``),
    and its shape as a matrix (``shape``); they differ for a row or column still to broadcast."""

    expr: sp.Basic | None  # None: a OneMatrix (only meaningful inside a product)
    phys: Shape
    shape: Shape


class Converter:
    """Matrix expression -> expression over array-valued code symbols, node by node."""

    def __init__(self, codes: dict[sp.Basic, sp.Symbol], shapes: dict[str, Shape]):
        self.codes = codes  # user MatrixSymbol or Symbol -> code symbol
        self.shapes = shapes  # code name -> shape, filled for inputs

    def run(self, root: sp.Basic) -> tuple[sp.Basic, Shape]:
        """One walk over the whole formula (operands of ``applyfunc`` included, so a shared
        subexpression is converted once); the walk stops at the applied Lambda."""
        done: dict[sp.Basic, _Value] = {}

        def stop(n):
            return isinstance(n, sp.Lambda) or n in self.codes

        for node in postorder(root, stop=stop):
            if isinstance(node, ElementwiseApplyFunction):
                done[node] = self._apply(node, done[node.expr])
            elif not isinstance(node, sp.Lambda):
                done[node] = self._convert(node, [done.get(a) for a in node.args])
        value = self._materialized(done[root])
        return value.expr, value.phys

    def _apply(self, node: ElementwiseApplyFunction, inner: _Value) -> _Value:
        fn = node.function
        if not isinstance(fn, sp.Lambda) or len(fn.variables) != 1:
            raise UnsupportedFunctionError(f"applyfunc needs a function of one entry: {fn}")
        body = fn.expr
        if isinstance(body, MatrixExpr) or any(isinstance(n, MatrixExpr) for n in
                                                postorder(body)):
            raise UnsupportedFunctionError(f"applyfunc body must be scalar: {body}")
        mapping = {s: self._scalar_symbol(s) for s in _free_symbols(body) if s != fn.variables[0]}
        mapping[fn.variables[0]] = self._materialized(inner).expr
        return _Value(body.xreplace(mapping), inner.phys, node.shape)

    def _scalar_symbol(self, symbol):
        if symbol not in self.codes:
            raise ArgumentError(f"{symbol} is not an argument of the formula")
        return self.codes[symbol]

    def _convert(self, node, args: list) -> _Value:
        if node in self.codes:
            code = self.codes[node]
            shape = tuple(node.shape) if node.is_Matrix else ()
            return _Value(code, shape, shape)
        if isinstance(node, sp.OneMatrix):
            return _Value(None, node.shape, node.shape)
        if node.is_Number or node.is_NumberSymbol:
            return _Value(node, (), ())
        if isinstance(node, sp.ZeroMatrix):
            return _Value(sp.S.Zero, (), node.shape)
        if isinstance(node, sp.MatAdd):
            return self._elementwise(node, sp.Add, args)
        if isinstance(node, sp.HadamardProduct):
            return self._elementwise(node, sp.Mul, args)
        if isinstance(node, sp.HadamardPower):
            base, exp = args
            if exp.shape:
                raise UnsupportedFunctionError(f"elementwise power needs a scalar exponent: {node}")
            return self._elementwise(node, sp.Pow, args)
        if isinstance(node, sp.MatMul):
            return self._product(node, args)
        if isinstance(node, sp.MatPow):
            base, exp = node.args
            if not (exp.is_Integer and exp >= 1):
                raise UnsupportedFunctionError(
                    f"a matrix power needs a positive integer exponent: {node}")
            rows, cols = base.shape
            if rows != cols:
                raise UnsupportedFunctionError(
                    f"{node} is a matrix power of a {rows} x {cols} matrix: only a square matrix "
                    "has powers (for the elementwise power write hadamard(A, A) or "
                    "A.applyfunc(lambda t: t**2))")
            acc = args[0]
            for _ in range(int(exp) - 1):
                acc = self._times(acc, args[0])
            return acc
        if isinstance(node, sp.Transpose):
            a = self._materialized(args[0], keep_broadcast=True)
            return _Value(transpose(a.expr), a.phys[::-1], node.shape)
        if isinstance(node, sp.Trace):
            return self._trace(node, args[0])
        if isinstance(node, AxisMax):
            a = self._materialized(args[0])
            phys = (1, a.phys[1]) if node.axis == 0 else (a.phys[0], 1)
            return _Value(axis_max(a.expr, node.axis), phys, node.shape)
        if isinstance(node, MatrixExpr):
            raise UnsupportedFunctionError(
                f"{type(node).__name__} is not supported in matrix formulas: {node}")
        if isinstance(node, sp.Symbol):
            raise ArgumentError(f"{node} is not an argument of the formula")
        # a scalar node (Add, Mul, function, ...) over scalar or array values
        if any(isinstance(a, MatrixExpr) for a in node.args):
            raise UnsupportedFunctionError(
                f"{type(node).__name__} of a matrix is not supported: {short(node)}")
        if any(a is None for a in args):
            raise UnsupportedFunctionError(f"cannot lower {type(node).__name__}: {node}")
        return self._elementwise(node, node.func, args)

    def _elementwise(self, node, func, args: list[_Value]) -> _Value:
        if any(a.expr is None for a in args):  # a bare OneMatrix in a sum: the number 1
            args = [_Value(sp.S.One, (), a.shape) if a.expr is None else a for a in args]
        phys = broadcast_shapes([a.phys for a in args], node)
        shape = tuple(node.shape) if getattr(node, "is_Matrix", False) else phys
        return _Value(func(*(a.expr for a in args)), phys, shape)

    def _product(self, node, args: list[_Value]) -> _Value:
        scalars = [a for a in args if not a.shape]
        factors = [a for a, arg in zip(args, node.args)
                   if a.shape and not isinstance(arg, sp.Identity)]
        if not factors:  # Identity alone
            raise UnsupportedFunctionError(f"an identity matrix alone is not supported: {node}")
        acc = factors[0]
        for factor in factors[1:]:
            acc = self._times(acc, factor)
        if acc.expr is None:  # a product of ones only
            acc = _Value(sp.S.One, (), acc.shape)
        coeff = sp.Mul(*(s.expr for s in scalars))
        if coeff == 1:
            return acc
        return _Value(coeff * acc.expr, acc.phys, acc.shape)

    def _times(self, left: _Value, right: _Value) -> _Value:
        """``left @ right``, recognising a ones factor as a sum or a broadcast."""
        n, m = left.shape[0], right.shape[1]
        if left.expr is None and right.expr is None:
            return _Value(None, (n, m), (n, m))
        if left.expr is None:  # OneMatrix(n, k) @ right: column sums, repeated n times
            s = right if right.shape[0] == 1 else self._sum(right, 0)
            return _Value(s.expr, s.phys, (n, m))
        if right.expr is None:  # left @ OneMatrix(k, m): row sums, repeated m times
            s = left if left.shape[1] == 1 else self._sum(left, 1)
            return _Value(s.expr, s.phys, (n, m))
        a, b = self._materialized(left), self._materialized(right)
        return _Value(matmul(a.expr, b.expr), (a.phys[0], b.phys[1]), (n, m))

    def _sum(self, value: _Value, axis: int) -> _Value:
        value = self._materialized(value)
        expr = value.expr
        if isinstance(expr, axis_sum) and int(expr.args[1]) == 1 - axis:
            return _Value(axis_sum(expr.args[0], 2), (1, 1), (1, 1))
        phys = (1, value.phys[1]) if axis == 0 else (value.phys[0], 1)
        if value.phys == ():
            raise UnsupportedFunctionError("a sum over an axis of a scalar")
        shape = (1, value.shape[1]) if axis == 0 else (value.shape[0], 1)
        return _Value(axis_sum(expr, axis), phys, shape)

    def _trace(self, node, a: _Value) -> _Value:
        if a.shape != (1, 1) and tuple(a.shape) != (sp.S.One, sp.S.One):
            raise UnsupportedFunctionError(
                f"Trace is supported for 1 x 1 matrices (sums), not {a.shape[0]} x {a.shape[1]}")
        if isinstance(a.expr, axis_sum) and int(a.expr.args[1]) == 2:
            return _Value(total(a.expr.args[0]), (), ())
        if a.phys == ():
            return _Value(a.expr, (), ())
        return _Value(item(a.expr), (), ())

    def _materialized(self, value: _Value, keep_broadcast: bool = False) -> _Value:
        """A value whose NumPy shape is its matrix shape (a pending broadcast made real)."""
        if value.expr is None:
            value = _Value(sp.S.One, (), value.shape)
        if value.phys == value.shape or (keep_broadcast and value.phys):
            return value
        if not value.shape:
            return value
        r, c = (self.codes.get(n, n) for n in value.shape)
        return _Value(broadcast(value.expr, r, c), value.shape, value.shape)


def _free_symbols(expr) -> list:
    return [n for n in postorder(expr) if isinstance(n, (sp.Symbol, sp.MatrixSymbol))]
