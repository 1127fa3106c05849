"""Matrix formulas: SymPy matrix expressions lowered to whole-array steps and NumPy backward code.

Users write formulas over ``sympy.MatrixSymbol`` with SymPy's own matrix algebra (``X*W`` is a
matrix product, ``A.T``, ``A + B``, ``2*A``, ``sp.hadamard_product``, ``A.applyfunc(f)``) and the
helpers below for what SymPy spells awkwardly or not at all: broadcasting a bias row
(``rows(b, N)``, which *is* ``OneMatrix(N, 1)*b``), sums and means over an axis, the maximum
along an axis, elementwise division.

Pipeline: the matrix expression is converted, node by node, into an expression over array-valued
names: elementwise operations become ordinary SymPy arithmetic and functions (read with NumPy's
broadcasting), the rest become the gates of ``array_ops`` (``matmul``, ``transpose``, ``axis_sum``,
...). ``OneMatrix`` factors are recognised as what they mean: ``OneMatrix(1, N)*A`` is a column
sum, ``OneMatrix(N, 1)*b`` repeats a row (kept as ``b``; NumPy broadcasts it where it is used).
The scalar Lowerer then stages that expression, so names and shared subexpressions work exactly
as for scalar formulas, and ``reverse`` writes the backward steps with the matrix-calculus rules:
for ``out = a @ b``, ``da = dout @ b.T`` and ``db = a.T @ dout``; a broadcast operand's gradient
is summed over the broadcast axis; every gradient has its variable's shape.

Symbolic dimensions (``N``, ``D``) are read from the argument shapes at run time
(``N, D = X.shape``), so one generated module serves every batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from .array_ops import (
    as_1x1,
    axis_max,
    axis_sum,
    broadcast,
    item,
    matmul,
    max_mask,
    total,
    transpose,
)
from .dag import postorder
from .errors import ArgumentError, UnsupportedFunctionError
from .ir import GradStep, Step
from .reverse import reverse
from .rules import local_partials

Shape = tuple  # () for a scalar, (rows, cols) for an array; entries are SymPy integers or symbols


# -- what users write -------------------------------------------------------------------------


def rows(b, n) -> MatrixExpr:
    """The 1 x M row ``b`` repeated ``n`` times: a bias broadcast over a batch of ``n`` rows.

    SymPy refuses ``X*W + b`` for an N x M product and a 1 x M row; ``X*W + rows(b, N)`` is the
    same thing written exactly (``OneMatrix(N, 1)*b``). Generated code adds ``b`` with NumPy
    broadcasting and sums its gradient over the batch axis.
    """
    b = _matrix(b, "rows")
    if b.shape[0] != 1:
        raise ArgumentError(f"rows() repeats a row: {b} is {b.shape[0]} x {b.shape[1]}")
    return sp.OneMatrix(n, 1) * b


def cols(c, m) -> MatrixExpr:
    """The N x 1 column ``c`` repeated ``m`` times (``c*OneMatrix(1, m)``)."""
    c = _matrix(c, "cols")
    if c.shape[1] != 1:
        raise ArgumentError(f"cols() repeats a column: {c} is {c.shape[0]} x {c.shape[1]}")
    return c * sp.OneMatrix(1, m)


def sum(a, axis: int | None = None):  # noqa: A001 - the name users expect, like numpy.sum
    """Sum over ``axis`` 0 (a 1 x M row), 1 (an N x 1 column), or all entries (a scalar)."""
    a = _matrix(a, "sum")
    n, m = a.shape
    if axis is None:
        return sp.Trace(sp.OneMatrix(1, n) * a * sp.OneMatrix(m, 1))
    if axis == 0:
        return sp.OneMatrix(1, n) * a
    if axis == 1:
        return a * sp.OneMatrix(m, 1)
    raise ArgumentError(f"axis must be 0, 1 or None, got {axis!r}")


def mean(a, axis: int | None = None):
    """The mean over ``axis`` (see ``sum``)."""
    a = _matrix(a, "mean")
    n, m = a.shape
    count = {None: n * m, 0: n, 1: m}.get(axis)
    if count is None:
        raise ArgumentError(f"axis must be 0, 1 or None, got {axis!r}")
    return sum(a, axis) / count if axis is None else sum(a, axis) * (sp.S.One / count)


def amax(a, axis: int) -> MatrixExpr:
    """The maximum along ``axis`` 0 (a row) or 1 (a column), e.g. to stabilize a softmax."""
    return AxisMax(_matrix(a, "amax"), axis)


def apply(f, a) -> MatrixExpr:
    """``f`` applied to every entry of ``a`` (``a.applyfunc(f)``): ``apply(sp.exp, Z)``."""
    return _matrix(a, "apply").applyfunc(f)


def hadamard(*arrays) -> MatrixExpr:
    """The elementwise product."""
    return sp.hadamard_product(*(_matrix(a, "hadamard") for a in arrays))


def divide(a, b) -> MatrixExpr:
    """The elementwise quotient ``a / b``."""
    return sp.hadamard_product(_matrix(a, "divide"), sp.HadamardPower(_matrix(b, "divide"), -1))


class AxisMax(MatrixExpr):
    """``max`` of a matrix along an axis, with entries SymPy can expand (``as_explicit``)."""

    def __new__(cls, arg, axis):
        axis = sp.Integer(axis)
        if axis not in (0, 1):
            raise ArgumentError(f"amax axis must be 0 or 1, got {axis}")
        return sp.Basic.__new__(cls, sp.sympify(arg), axis)

    @property
    def arg(self):
        return self.args[0]

    @property
    def axis(self) -> int:
        return int(self.args[1])

    @property
    def shape(self):
        n, m = self.arg.shape
        return (1, m) if self.axis == 0 else (n, 1)

    def _entry(self, i, j, **kwargs):
        n, m = self.arg.shape
        if self.axis == 0:
            return sp.Max(*(self.arg[k, j] for k in range(n)))
        return sp.Max(*(self.arg[i, k] for k in range(m)))


def _matrix(a, where: str) -> MatrixExpr:
    if not isinstance(a, MatrixExpr):
        raise ArgumentError(f"{where}() takes a matrix expression, got {type(a).__name__}")
    return a


# -- conversion to an expression over array names ----------------------------------------------


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
                f"{type(node).__name__} of a matrix is not supported: {_short(node)}")
        if any(a is None for a in args):
            raise UnsupportedFunctionError(f"cannot lower {type(node).__name__}: {node}")
        return self._elementwise(node, node.func, args)

    def _elementwise(self, node, func, args: list[_Value]) -> _Value:
        if any(a.expr is None for a in args):  # a bare OneMatrix in a sum: the number 1
            args = [_Value(sp.S.One, (), a.shape) if a.expr is None else a for a in args]
        phys = _broadcast_shapes([a.phys for a in args], node)
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


def _broadcast_shapes(shapes: list[Shape], node) -> Shape:
    arrays = [s for s in shapes if s]
    if not arrays:
        return ()
    rows_, cols_ = {s[0] for s in arrays} - {1}, {s[1] for s in arrays} - {1}
    if len(rows_) > 1 or len(cols_) > 1:
        raise UnsupportedFunctionError(f"shapes {', '.join(map(str, arrays))} do not broadcast "
                                       f"in {_short(node)}")
    return (next(iter(rows_), sp.S.One), next(iter(cols_), sp.S.One))


def _free_symbols(expr) -> list:
    return [n for n in postorder(expr) if isinstance(n, (sp.Symbol, sp.MatrixSymbol))]


def _short(node, limit: int = 60) -> str:
    text = sp.sstr(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- shapes of steps and the reverse pass --------------------------------------------------------


def step_shapes(forward: list[Step], shapes: dict[str, Shape]) -> dict[str, Shape]:
    """The NumPy shape of every step, from its gate and its operands' shapes."""
    shapes = dict(shapes)
    for step in forward:
        shapes[step.name] = _gate_shape(step.rhs, shapes)
    return shapes


def _gate_shape(rhs, shapes) -> Shape:
    def of(a):
        return shapes[a.name] if a.is_Symbol else ()

    if isinstance(rhs, matmul):
        return (of(rhs.args[0])[0], of(rhs.args[1])[1])
    if isinstance(rhs, transpose):
        return of(rhs.args[0])[::-1]
    if isinstance(rhs, (axis_sum, axis_max)):
        a, axis = of(rhs.args[0]), int(rhs.args[1])
        return {0: (sp.S.One, a[1]), 1: (a[0], sp.S.One), 2: (sp.S.One, sp.S.One)}[axis]
    if isinstance(rhs, (total, item)):
        return ()
    if isinstance(rhs, broadcast):
        return (rhs.args[1], rhs.args[2])
    symbols = [n for n in postorder(rhs) if n.is_Symbol]
    return _broadcast_shapes([of(s) for s in symbols], rhs)


def reverse_arrays(forward: list[Step], shapes: dict[str, Shape],
                   grad_names: dict[str, str]) -> list[GradStep]:
    """Backward steps of a matrix program; each writes a whole term (``GradStep.whole``)."""
    return reverse(forward, grad_names, terms=lambda step, d: _terms(step, d, shapes))


def _terms(step: Step, d: sp.Symbol, shapes) -> list[tuple[sp.Symbol, sp.Expr]]:
    rhs, out = step.rhs, sp.Symbol(step.name, real=True)
    if isinstance(rhs, matmul):
        a, b = rhs.args
        return [(a, matmul(d, transpose(b))), (b, matmul(transpose(a), d))]
    if isinstance(rhs, transpose):
        return [(rhs.args[0], transpose(d))]
    if isinstance(rhs, (axis_sum, total)):
        a = rhs.args[0]
        r, c = shapes[a.name]
        return [(a, broadcast(d, r, c))]
    if isinstance(rhs, axis_max):
        a, axis = rhs.args
        return [(a, max_mask(a, out, axis) * d)]
    if isinstance(rhs, item):
        return [(rhs.args[0], as_1x1(d))]
    if isinstance(rhs, broadcast):
        a = rhs.args[0]
        return [(a, _reduced(d, shapes[step.name], shapes[a.name]))]
    pairs = []
    for operand, local in local_partials(rhs, out):
        term = d if local == 1 else -d if local == -1 else d * local
        pairs.append((operand, _reduced(term, shapes[step.name], shapes[operand.name])))
    return pairs


def _reduced(term, shape: Shape, target: Shape):
    """``term`` (of ``shape``) summed over the axes that were broadcast to reach it."""
    if shape == target or not shape:
        return term
    if not target:
        return total(term)
    summed = [k for k in (0, 1) if target[k] == 1 and shape[k] != 1]
    if not summed:
        return term
    return axis_sum(term, 2 if len(summed) == 2 else summed[0])


def runtime_dims(dim_symbols, inputs: list[tuple[str, Shape]]) -> dict[sp.Symbol, tuple]:
    """For each symbolic dimension, the first argument and axis it can be read from."""
    found = {}
    for name, shape in inputs:
        for axis, dim in enumerate(shape):
            if dim.is_Symbol and dim not in found:
                found[dim] = (name, axis)
    missing = [d for d in dim_symbols if d not in found]
    if missing:
        raise ArgumentError(f"dimension {missing[0]} is not the size of any argument's axis")
    return found
