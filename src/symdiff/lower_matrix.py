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
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr
from sympy.matrices.expressions.slice import MatrixSlice

from .array_ops import (
    axis_max,
    axis_sum,
    block,
    broadcast,
    cho_inverse,
    cho_logdet,
    cho_solve,
    cholesky,
    constant,
    det,
    entry,
    eye,
    inverse,
    item,
    logdet,
    matmul,
    solve,
    submatrix,
    total,
    trace,
    transpose,
)
from .dag import postorder
from .errors import ArgumentError, UnsupportedFunctionError
from .matrix import SPD, AxisMax, Pairwise, Shape, broadcast_shapes, short
from .matrix_forms import fold_transposes
from .tensor import LOWERED, TensorApply, is_array, refused


@dataclass(frozen=True)
class _Value:
    """A converted node: its expression over array names, the shape NumPy will give it (``phys``),
    and its shape as a matrix (``shape``); they differ for a row or column still to broadcast."""

    expr: sp.Basic | None  # None: a OneMatrix (only meaningful inside a product)
    phys: Shape
    shape: Shape
    inv: _Value | None = None  # for an inverse: the value inverted (a product solves with it)
    chol: sp.Basic | None = None  # for a matrix declared spd: its Cholesky factor


class Converter:
    """Matrix expression -> expression over array-valued code symbols, node by node."""

    def __init__(self, codes: dict[sp.Basic, sp.Symbol], shapes: dict[str, Shape]):
        self.codes = codes  # user MatrixSymbol or Symbol -> code symbol
        self.shapes = shapes  # code name -> shape, filled for inputs

    def run(self, root: sp.Basic) -> tuple[sp.Basic, Shape]:
        """One walk over the whole formula (operands of ``applyfunc`` included, so a shared
        subexpression is converted once); the walk stops at the applied Lambda."""
        self.done: dict[sp.Basic, _Value] = {}
        value = self._walk(fold_transposes(root))
        if tuple(value.shape) == (1, 1):  # a 1 x 1 matrix output (b.T*A*b) is a scalar
            value = self._scalar_of(value)
        value = self._materialized(value)
        return value.expr, value.phys

    def _walk(self, root: sp.Basic) -> _Value:
        done = self.done

        def stop(n):
            return (isinstance(n, (sp.Lambda, sp.Sum, MatrixSlice, sp.MatrixBase, sp.BlockMatrix))
                    or n in self.codes)

        for node in postorder(root, stop=stop):
            if node in done:
                continue
            if isinstance(node, (ElementwiseApplyFunction, TensorApply)):
                done[node] = self._apply(node, self._walk(node.expr))
            elif isinstance(node, MatrixSlice):
                done[node] = self._slice(node, self._walk(node.parent))
            elif isinstance(node, sp.BlockMatrix):
                grid = node.blocks
                blocks = [self._materialized(self._walk(b)).expr for b in grid]
                done[node] = _Value(block(*blocks, grid.rows, grid.cols), node.shape, node.shape)
            elif isinstance(node, sp.Sum):
                refused(node)  # index notation over N-D arrays
                done[node] = self._walk(_index_sum(node))
            elif not isinstance(node, sp.Lambda):
                done[node] = self._convert(node, [done.get(a) for a in node.args])
        return done[root]

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

    def _slice(self, node: MatrixSlice, parent: _Value) -> _Value:
        """``A[r0:r1, c0:c1]``: bounds are numbers or expressions in the dimensions."""
        (r0, r1, rs), (c0, c1, cs) = node.rowslice, node.colslice
        if rs != 1 or cs != 1:
            raise UnsupportedFunctionError(
                f"the slice {short(node)} has a step: only contiguous blocks A[r0:r1, c0:c1] "
                "are supported")
        dims = {d: self.codes.get(d) for b in (r0, r1, c0, c1) for d in sp.sympify(b).free_symbols}
        missing = [d for d, code in dims.items() if code is None or code.name in self.shapes]
        if missing:
            raise ArgumentError(f"the slice bound {missing[0]} of {short(node)} is not a "
                                "dimension of an argument: bounds are numbers or sizes (H, 2*H)")
        bounds = [sp.sympify(b).xreplace(dims) for b in (r0, r1, c0, c1)]
        a = self._materialized(parent)
        return _Value(submatrix(a.expr, *bounds), node.shape, node.shape)

    def _scalar_symbol(self, symbol):
        if symbol not in self.codes:
            raise ArgumentError(f"{symbol} is not an argument of the formula")
        return self.codes[symbol]

    def _convert(self, node, args: list) -> _Value:
        if node in self.codes:
            code = self.codes[node]
            shape = tuple(node.shape) if node.is_Matrix or is_array(node) else ()
            return _Value(code, shape, shape)
        if isinstance(node, LOWERED):  # the N-D nodes of tensor.py
            expr = node.lowered(*(self._materialized(a).expr for a in args))
            return _Value(expr, tuple(node.shape), tuple(node.shape))
        refused(node)
        if isinstance(node, sp.OneMatrix):
            return _Value(None, node.shape, node.shape)
        if isinstance(node, sp.MatrixBase):
            return _constant(node)
        if node.is_Number or node.is_NumberSymbol:
            return _Value(node, (), ())
        if isinstance(node, sp.ZeroMatrix):
            return _Value(sp.S.Zero, (), node.shape)
        if isinstance(node, sp.Identity):  # in a sum (K + noise*I); a product drops it
            n = self.codes.get(node.rows, node.rows)
            return _Value(eye(n), node.shape, node.shape)
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
        if isinstance(node, Pairwise):
            return self._elementwise(node, node.function, args)
        linear = self._linear_algebra(node, args)
        if linear is not None:
            return linear
        if isinstance(node, sp.MatPow):
            return self._power(node, args)
        if isinstance(node, sp.Transpose):
            a = self._materialized(args[0], keep_broadcast=True)
            return _Value(transpose(a.expr), a.phys[::-1], node.shape)
        if isinstance(node, AxisMax):
            a = self._materialized(args[0])
            phys = (1, a.phys[1]) if node.axis == 0 else (a.phys[0], 1)
            return _Value(axis_max(a.expr, node.axis), phys, node.shape)
        if isinstance(node, MatrixExpr):
            raise UnsupportedFunctionError(
                f"{type(node).__name__} is not supported in matrix formulas: {node}")
        if isinstance(node, sp.Symbol):
            raise ArgumentError(f"{node} is not an argument of the formula")
        return self._scalar_node(node, args)

    def _scalar_node(self, node, args: list) -> _Value:
        """A scalar node (Add, Mul, function, ...) over scalar or array values."""
        if node.func is sp.log and isinstance(args[0].expr, det):  # log(det(X)): slogdet
            return _Value(logdet(args[0].expr.args[0]), (), ())
        if node.func is sp.log and _is_exp_of(args[0].expr, cho_logdet):  # log(det(spd(X)))
            return _Value(args[0].expr.args[0], (), ())
        if isinstance(node, sp.Add) and any(isinstance(a, MatrixExpr) for a in node.args):
            raise UnsupportedFunctionError(
                f"a scalar added to a matrix: {short(node)} (SymPy refuses A + c: write "
                "symdiff.add_scalar(A, c))")
        if any(isinstance(a, MatrixExpr) for a in node.args):
            raise UnsupportedFunctionError(
                f"{type(node).__name__} of a matrix is not supported: {short(node)} (for the "
                "function of every entry write symdiff.apply(f, A))")
        if any(a is None for a in args):
            raise UnsupportedFunctionError(f"cannot lower {type(node).__name__}: {node}")
        refused(node, [a.phys for a in args])
        return self._elementwise(node, node.func, args)

    def _power(self, node, args: list[_Value]) -> _Value:
        base, exp = node.args
        if not exp.is_Integer or exp == 0:
            raise UnsupportedFunctionError(
                f"a matrix power needs a nonzero integer exponent: {node} (for an "
                "elementwise power write sp.HadamardPower(A, p) or apply(lambda t: t**p, A))")
        rows, cols = base.shape
        if rows != cols:
            raise UnsupportedFunctionError(
                f"{node} is a matrix power of a {rows} x {cols} matrix: only a square matrix "
                "has powers (for the elementwise power write hadamard(A, A) or "
                "A.applyfunc(lambda t: t**2))")
        one = args[0] if exp > 0 else self._inverse(args[0])
        return self._chain([one] * abs(int(exp)))

    def _elementwise(self, node, func, args: list[_Value]) -> _Value:
        if any(a.expr is None for a in args):  # a bare OneMatrix in a sum: the number 1
            args = [_Value(sp.S.One, (), a.shape) if a.expr is None else a for a in args]
        phys = broadcast_shapes([a.phys for a in args], node)
        shape = tuple(node.shape) if getattr(node, "is_Matrix", False) else phys
        return _Value(func(*(a.expr for a in args)), phys, shape)

    def _product(self, node, args: list[_Value]) -> _Value:
        scalars = [a for a in args if not a.shape]
        factors = [f for a, arg in zip(args, node.args) if a.shape
                   for f in self._factors(arg, a)]
        acc = self._chain(factors) if factors else next(  # noise*I: only identities
            a for a, arg in zip(args, node.args) if isinstance(arg, sp.Identity))
        if acc.expr is None:  # a product of ones only
            acc = _Value(sp.S.One, (), acc.shape)
        coeff = sp.Mul(*(s.expr for s in scalars))
        if coeff == 1:
            return acc
        return _Value(coeff * acc.expr, acc.phys, acc.shape)

    def _factors(self, arg, value: _Value) -> list[_Value]:
        """The factors a product operand contributes: none for an identity, ``k`` inverses for
        ``X**-k`` (so each is a solve with its right neighbour: never a solve with ``X**k``,
        whose condition number is the k-th power), else the operand itself."""
        if isinstance(arg, sp.Identity):
            return []
        if isinstance(arg, sp.MatPow) and arg.exp.is_Integer and arg.exp < 0:
            return [self._inverse(self.done[arg.base])] * int(-arg.exp)
        if isinstance(arg, sp.MatPow) and arg.exp.is_Integer and arg.exp > 0:
            return [self.done[arg.base]] * int(arg.exp)
        return [value]

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
        if left.inv is not None:  # X**-1 @ B: solve, never form the inverse to multiply it
            b = self._materialized(right)
            return _Value(_solve(left.inv, b.expr), (n, b.phys[1]), (n, m))
        if right.inv is not None:  # A @ X**-1 = (X**-T @ A.T).T
            a = self._materialized(left)
            x = right.inv
            x_t = x if x.chol is not None else _Value(_t(x.expr), x.phys, x.shape)
            return _Value(_t(_solve(x_t, _t(a.expr))), (a.phys[0], m), (n, m))
        a, b = self._materialized(left), self._materialized(right)
        return _Value(matmul(a.expr, b.expr), (a.phys[0], b.phys[1]), (n, m))

    def _chain(self, factors: list[_Value]) -> _Value:
        """The product of ``factors``, left to right, except that an inverse first takes the
        factor to its right (``X**-1 @ b`` is one solve; ``A @ X**-1 @ b`` is ``A @ solve``)."""
        factors = list(factors)
        for k in range(len(factors) - 2, -1, -1):
            if factors[k].inv is not None and factors[k + 1].expr is not None:
                factors[k:k + 2] = [self._times(factors[k], factors[k + 1])]
        acc = factors[0]
        for factor in factors[1:]:
            acc = self._times(acc, factor)
        return acc

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
        if tuple(a.shape) != (1, 1):
            return self._trace_of(node.arg)
        if isinstance(a.expr, axis_sum) and int(a.expr.args[1]) == 2:
            return _Value(total(a.expr.args[0]), (), ())
        return self._scalar_of(a)

    def _scalar_of(self, a: _Value) -> _Value:
        """A 1 x 1 value as a scalar."""
        if a.phys == ():
            return _Value(a.expr, (), ())
        return _Value(item(self._materialized(a).expr), (), ())

    def _trace_of(self, m) -> _Value:
        """The trace of the square matrix expression ``m`` (converted already): linear over
        sums and scalar factors, ``tr(P @ Q) = sum(P * Q.T)`` for a product (no N x N product
        is formed: ``Trace(A.T*A)`` is ``np.sum(A*A)``), ``np.trace`` otherwise."""
        if isinstance(m, sp.MatAdd):
            return _Value(sp.Add(*(self._trace_of(t).expr for t in m.args)), (), ())
        if isinstance(m, sp.Transpose):
            return self._trace_of(m.arg)
        if isinstance(m, (sp.MatMul, sp.MatPow)):
            parts = m.args if isinstance(m, sp.MatMul) else [m]
            coeff = sp.Mul(*(self.done[f].expr for f in parts if not f.is_Matrix))
            mats = [f for f in parts if f.is_Matrix and not isinstance(f, sp.Identity)]
            factors = [g for f in mats for g in self._factors(f, self.done[f])]
            if len(mats) == 1 and len(factors) == 1 and mats[0] is not m:
                return _Value(coeff * self._trace_of(mats[0]).expr, (), ())
            for _ in factors:  # tr(A X**-1) = tr(X**-1 A): end on a factor that is no inverse
                if factors[-1].inv is None:
                    break
                factors = factors[-1:] + factors[:-1]
            lone_inverse = len(factors) == 2 and factors[0].inv is not None  # tr(solve)
            if factors[-1].inv is not None or lone_inverse or any(
                    f.expr is None for f in factors):
                return _Value(coeff * trace(self._materialized(self._chain(factors)).expr),
                              (), ())
            if len(factors) > 1:
                p = self._materialized(self._chain(factors[:-1])).expr
                q = self._materialized(factors[-1]).expr
                if isinstance(q, transpose):
                    product = p * q.args[0]
                elif isinstance(p, transpose):
                    product = p.args[0] * q
                else:
                    product = p * transpose(q)
                return _Value(coeff * total(product), (), ())
        return _Value(trace(self._materialized(self.done[m]).expr), (), ())

    def _entry(self, node, args: list[_Value]) -> _Value:
        i, j = node.i, node.j
        if not (i.is_Integer and j.is_Integer):
            raise UnsupportedFunctionError(
                f"the entry {short(node)} needs numeric indices (X[0, 1]); for a sum over an "
                "index write symdiff.sum or a Trace of a product")
        a = args[0]
        if tuple(a.shape) == (1, 1):
            return self._scalar_of(a)
        return _Value(entry(self._materialized(a).expr, i, j), (), ())

    def _inverse(self, a: _Value) -> _Value:
        a = self._materialized(a)
        value = inverse(a.expr) if a.chol is None else cho_inverse(a.chol)
        return _Value(value, a.phys, a.shape, inv=a)

    def _linear_algebra(self, node, args: list[_Value]) -> _Value | None:
        """Trace, entries, Inverse and Determinant (None for any other node)."""
        if isinstance(node, sp.Trace):
            return self._trace(node, args[0])
        if isinstance(node, MatrixElement):
            return self._entry(node, args)
        if isinstance(node, sp.Inverse):
            return self._inverse(args[0])
        if isinstance(node, sp.Determinant):
            a = self._materialized(args[0])
            return _Value(det(a.expr) if a.chol is None else sp.exp(cho_logdet(a.chol)), (), ())
        if isinstance(node, SPD):  # the same matrix, factored once where it is solved with
            a = self._materialized(args[0])
            return _Value(a.expr, a.phys, a.shape, chol=cholesky(a.expr))
        return None

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


def _constant(m: sp.MatrixBase) -> _Value:
    """A matrix of numbers in the formula (``sp.ImmutableMatrix([[1, 0], [0, 1]])``)."""
    bad = [e for e in m if not e.is_number or e.is_extended_real is False]
    if bad:
        raise UnsupportedFunctionError(
            f"the matrix {short(m)} has an entry {bad[0]} that is not a real number: a "
            "constant matrix holds numbers; a matrix of variables is a MatrixSymbol")
    return _Value(constant(m.rows, m.cols, *m), m.shape, m.shape)


def _solve(a: _Value, b):
    """``a**-1 @ b``: by the Cholesky factor when ``a`` is declared spd, else by LU."""
    return solve(a.expr, b) if a.chol is None else cho_solve(a.chol, b)


def _is_exp_of(expr, gate) -> bool:
    return isinstance(expr, sp.exp) and isinstance(expr.args[0], gate)


def _t(expr):
    """``expr.T``, with ``x.T.T`` read as ``x``."""
    return expr.args[0] if isinstance(expr, transpose) else transpose(expr)


def _index_sum(node: sp.Sum) -> sp.Basic:
    """An index summation (SymPy's entry of a product, ``(u.T*A*v)[0, 0]``, leaks its dummy
    indices) as the matrix expression it sums."""
    squares = {p: sp.Mul(p.base, p.base, evaluate=False) for p in postorder(node.function)
               if p.is_Pow and p.exp == 2}  # (x.T*x)[0, 0] is Sum(x[i, 0]**2): a product
    try:
        back = MatrixExpr.from_index_summation(sp.Sum(node.function.xreplace(squares),
                                                      *node.limits))
    except Exception:  # noqa: BLE001 - SymPy raises assorted errors on sums it cannot read
        back = None
    if back is None or isinstance(back, sp.Sum) or any(
            isinstance(n, sp.Dummy) for n in postorder(back)):
        raise UnsupportedFunctionError(
            f"the index sum {short(node)} is not supported: write the matrix product itself "
            "(u.T*A*v is a 1 x 1 matrix, read as a scalar) or a Trace")
    return back


def _free_symbols(expr) -> list:
    return [n for n in postorder(expr) if isinstance(n, (sp.Symbol, sp.MatrixSymbol))]
