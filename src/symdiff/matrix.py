"""Matrix formulas: the helpers users write, the shapes of steps, the matrix reverse pass.

Users write formulas over ``sympy.MatrixSymbol`` with SymPy's own matrix algebra (``X*W`` is a
matrix product, ``A.T``, ``A + B``, ``2*A``, ``sp.hadamard_product``, ``A.applyfunc(f)``) and the
helpers below for what SymPy spells awkwardly or not at all: broadcasting a bias row
(``rows(b, N)``, which *is* ``OneMatrix(N, 1)*b``), sums and means over an axis, the maximum
along an axis, elementwise division.

``lower_matrix.Converter`` turns such a formula into an expression over array-valued names (the
gates of ``array_ops``); the scalar Lowerer stages it; ``step_shapes`` gives every step its NumPy
shape, and ``reverse_arrays`` writes the backward steps with the matrix-calculus rules: for
``out = a @ b``, ``da = dout @ b.T`` and ``db = a.T @ dout``; a broadcast operand's gradient
is summed over the broadcast axis; every gradient has its variable's shape. The N-D gates of
``tensor_ops`` (convolution, pooling) give their own shapes and backward terms. Symbolic
dimensions (``N``, ``D``) are read from the argument shapes at run time (``N, D = X.shape``).
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr

from .array_ops import (
    CHOLESKY_GATES,
    as_1x1,
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
    entry_grad,
    eye,
    inverse,
    item,
    logdet,
    matmul,
    max_mask,
    solve,
    submatrix,
    total,
    trace,
    transpose,
)
from .dag import postorder
from .errors import ArgumentError, UnsupportedFunctionError
from .ir import GradStep, Step
from .reverse import reverse
from .rules import local_partials
from .tensor_ops import TensorGate

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
    summed = sum(a, axis)  # an axis other than 0, 1 or None is refused here
    count = {None: n * m, 0: n, 1: m}[axis]
    return summed / count if axis is None else summed * (sp.S.One / count)


def amax(a, axis: int) -> MatrixExpr:
    """The maximum along ``axis`` 0 (a row) or 1 (a column), e.g. to stabilize a softmax."""
    return AxisMax(_matrix(a, "amax"), axis)


def apply(f, a) -> MatrixExpr:
    """``f`` applied to every entry of ``a`` (``a.applyfunc(f)``): ``apply(sp.exp, Z)``."""
    return _matrix(a, "apply").applyfunc(f)


def add_scalar(a, c) -> MatrixExpr:
    """``c`` added to every entry of ``a``. SymPy refuses ``A + c`` (``TypeError: Mix of Matrix
    and Scalar symbols``); this is ``A + c*OneMatrix(n, m)``, added with NumPy broadcasting
    (the gradient of ``c`` sums over every entry)."""
    a = _matrix(a, "add_scalar")
    if isinstance(c, MatrixExpr):
        raise ArgumentError(f"add_scalar() adds a scalar: {c} is a matrix (write a + b)")
    return a + sp.sympify(c) * sp.OneMatrix(*a.shape)


def maximum(a, b) -> MatrixExpr:
    """The elementwise maximum of two matrices of one shape (``np.maximum``)."""
    return Maximum(_matrix(a, "maximum"), _matrix(b, "maximum"))


def minimum(a, b) -> MatrixExpr:
    """The elementwise minimum of two matrices of one shape (``np.minimum``)."""
    return Minimum(_matrix(a, "minimum"), _matrix(b, "minimum"))


def hadamard(*arrays) -> MatrixExpr:
    """The elementwise product."""
    return sp.hadamard_product(*(_matrix(a, "hadamard") for a in arrays))


def divide(a, b) -> MatrixExpr:
    """The elementwise quotient ``a / b``."""
    return sp.hadamard_product(_matrix(a, "divide"), sp.HadamardPower(_matrix(b, "divide"), -1))


def spd(a) -> MatrixExpr:
    """``a``, declared symmetric positive definite: its log-determinant, solves and inverse
    go through one Cholesky factor (``np.linalg.cholesky``), computed once in the forward pass
    and reused by the backward pass. The generated code raises ValueError if ``a`` is not
    symmetric and LinAlgError if it is not positive definite.

    >>> n = sp.Symbol("n", integer=True, positive=True)
    >>> K = spd(sp.MatrixSymbol("K", n, n))
    >>> K.shape == (n, n)
    True
    """
    a = _matrix(a, "spd")
    if a.shape[0] != a.shape[1]:
        raise ArgumentError(f"spd() declares a square matrix positive definite: {a} is "
                            f"{a.shape[0]} x {a.shape[1]}")
    return SPD(a)


class SPD(MatrixExpr):
    """A matrix declared symmetric positive definite (``spd``); its value is its argument's."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, sp.sympify(arg))

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape

    def _entry(self, i, j, **kwargs):
        return self.arg[i, j]


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


class Pairwise(MatrixExpr):
    """A function (``Max``, ``Min``: the subclass's ``function``) of the corresponding entries
    of two matrices of one shape."""

    function = None

    def __new__(cls, a, b):
        if a.shape != b.shape:
            raise ArgumentError(f"{cls.__name__.lower()}() of matrices of different shapes: "
                                f"{a.shape} and {b.shape}")
        return super().__new__(cls, a, b)

    @property
    def shape(self):
        return self.args[0].shape

    def _entry(self, i, j, **kwargs):
        return self.function(self.args[0][i, j], self.args[1][i, j])


class Maximum(Pairwise):
    function = sp.Max


class Minimum(Pairwise):
    function = sp.Min


def explicit_node(node, args):
    """SymPy's explicit value of a linear-algebra node whose matrix operands are explicit
    (ImmutableMatrix) at concrete sizes, for the reference gradient; None for other nodes.
    Nothing of the conversion to array gates is used: the determinant is SymPy's own, the
    inverse the adjugate over it."""
    if isinstance(node, sp.Determinant):
        return args[0].det(method="berkowitz")
    if isinstance(node, sp.Inverse):
        return sp.ImmutableMatrix(args[0].adjugate() / args[0].det(method="berkowitz"))
    if isinstance(node, MatrixElement):
        return args[0][int(node.i), int(node.j)]
    if isinstance(node, SPD):
        return args[0]
    if isinstance(node, Pairwise):
        a, b = args
        return sp.ImmutableMatrix(a.rows, a.cols, lambda i, j: node.function(a[i, j], b[i, j]))
    return None


def _matrix(a, where: str) -> MatrixExpr:
    if not isinstance(a, MatrixExpr):
        raise ArgumentError(f"{where}() takes a matrix expression, got {type(a).__name__}")
    return a


def broadcast_shapes(shapes: list[Shape], node) -> Shape:
    """The NumPy shape of an elementwise operation on operands of ``shapes`` (() for scalars)."""
    arrays = [s for s in shapes if s]
    if not arrays:
        return ()
    axes = [{s[k] for s in arrays} - {1} for k in range(len(arrays[0]))]
    if len({len(s) for s in arrays}) > 1 or any(len(sizes) > 1 for sizes in axes) or len(
            arrays[0]) > 2 and len(set(arrays)) > 1:  # N-D: elementwise at one shape only
        raise UnsupportedFunctionError(f"shapes {', '.join(map(str, arrays))} do not broadcast "
                                       f"in {short(node)}")
    return tuple(next(iter(sizes), sp.S.One) for sizes in axes)


def short(node, limit: int = 60) -> str:
    """``node`` as text, cut to ``limit`` characters (for error messages)."""
    text = sp.sstr(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- shapes of steps and the reverse pass --------------------------------------------------------


def step_shapes(forward: list[Step], shapes: dict[str, Shape],
                dims: frozenset[str] = frozenset()) -> dict[str, Shape]:
    """The NumPy shape of every step, from its gate and its operands' shapes. A step over the
    dimensions alone (``twoH = 2*H``, a slice bound) is a size: shapes use its value."""
    shapes = dict(shapes)
    sizes = {sp.Symbol(d, real=True): sp.Symbol(d, real=True) for d in dims}
    for step in forward:
        shape = _gate_shape(step.rhs, shapes)
        shapes[step.name] = tuple(sp.expand(n.xreplace(sizes)) for n in shape)
        if not shape and step.rhs.free_symbols and step.rhs.free_symbols <= set(sizes):
            sizes[sp.Symbol(step.name, real=True)] = step.rhs.xreplace(sizes)
    return shapes


def _operand_shape(a, shapes) -> Shape:
    """The shape of a gate's operand: a name's, a constant's or an identity's, else scalar."""
    if isinstance(a, eye):
        return (a.args[0], a.args[0])
    return tuple(a.args[:2]) if isinstance(a, constant) else shapes[a.name] if a.is_Symbol else ()


def _gate_shape(rhs, shapes) -> Shape:
    def of(a):
        return _operand_shape(a, shapes)

    if isinstance(rhs, (TensorGate, submatrix, block)):  # these gates know their shapes
        return rhs.shape_from([of(a) for a in rhs.args[:rhs.operands]])
    if isinstance(rhs, matmul):
        return (of(rhs.args[0])[0], of(rhs.args[1])[1])
    if isinstance(rhs, transpose):
        return of(rhs.args[0])[::-1]
    if isinstance(rhs, (axis_sum, axis_max)):
        a, axis = of(rhs.args[0]), int(rhs.args[1])
        return {0: (sp.S.One, a[1]), 1: (a[0], sp.S.One), 2: (sp.S.One, sp.S.One)}[axis]
    if isinstance(rhs, (total, item, entry, trace, det, logdet, cho_logdet)):
        return ()
    if isinstance(rhs, (inverse, cholesky, cho_inverse)):
        return of(rhs.args[0])
    if isinstance(rhs, (cho_solve, solve)):
        return (of(rhs.args[0])[1], of(rhs.args[1])[1])
    if isinstance(rhs, broadcast):
        return (rhs.args[1], rhs.args[2])
    if isinstance(rhs, (constant, eye)):
        return of(rhs)
    symbols = [n for n in postorder(rhs, stop=lambda n: isinstance(n, constant))
               if n.is_Symbol or isinstance(n, constant)]
    return broadcast_shapes([of(s) for s in symbols], rhs)


def reverse_arrays(forward: list[Step], shapes: dict[str, Shape],
                   grad_names: dict[str, str], outputs: tuple[str, ...] = ()) -> list[GradStep]:
    """Backward steps of a matrix program; each writes a whole term (``GradStep.whole``).
    A Cholesky factor passes no gradient: the gates that use it send theirs to the matrix it
    factors (``factored``), so the backward reuses the forward's factor."""
    factored = {s.name: s.rhs.args[0] for s in forward if isinstance(s.rhs, cholesky)}
    return reverse(forward, grad_names, terms=lambda step, d: _terms(step, d, shapes, factored),
                   outputs=outputs)


def _terms(step: Step, d: sp.Symbol, shapes, factored) -> list[tuple[sp.Symbol, sp.Expr]]:
    rhs, out = step.rhs, sp.Symbol(step.name, real=True)
    if isinstance(rhs, sp.Symbol):  # a copy: an output that is an earlier value (out1 = dot)
        return [(rhs, d)]
    if isinstance(rhs, TensorGate):  # the N-D gates know their backward
        return rhs.terms(out, d)
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
    linear = _linear_algebra_terms(rhs, out, d, shapes)
    if linear is None:
        linear = _cholesky_terms(rhs, out, d, factored)
    if linear is not None:
        return linear
    if isinstance(rhs, broadcast):
        a = rhs.args[0]
        return [(a, _reduced(d, shapes[step.name], shapes[a.name]))]
    if isinstance(rhs, constant):
        return []
    pairs = []
    for operand, local in local_partials(rhs, out):
        term = d if local == 1 else -d if local == -1 else d * local
        pairs.append((operand, _reduced(term, shapes[step.name], shapes[operand.name])))
    return pairs


def _linear_algebra_terms(rhs, out, d, shapes):
    """Backward terms of the linear-algebra gates (None for any other gate). An inverse is
    transposed by solving with the transpose: for ``out = solve(a, b)`` (``a**-1 @ b``),
    ``db = solve(a.T, d)`` and ``da = -db @ out.T``."""
    a = rhs.args[0]
    if isinstance(rhs, entry):
        r, c = shapes[a.name]
        return [(a, entry_grad(d, rhs.args[1], rhs.args[2], r, c))]
    if isinstance(rhs, (submatrix, block)):
        return rhs.grads(d, lambda v: _operand_shape(v, shapes))
    if isinstance(rhs, trace):
        return [(a, d * eye(shapes[a.name][0]))]
    if isinstance(rhs, eye):  # a constant
        return []
    if isinstance(rhs, logdet):  # d log det(a) = tr(a**-1 da)
        return [(a, d * transpose(inverse(a)))]
    if isinstance(rhs, det):
        return [(a, d * out * transpose(inverse(a)))]
    if isinstance(rhs, inverse):  # d(a**-1) = -a**-1 da a**-1
        return [(a, -matmul(matmul(transpose(out), d), transpose(out)))]
    if isinstance(rhs, solve):
        db = solve(transpose(a), d)
        return [(rhs.args[1], db), (a, -matmul(db, transpose(out)))]
    return None


def _cholesky_terms(rhs, out, d, factored):
    """Backward terms of the gates over a Cholesky factor ``c`` of the symmetric ``a``
    (``a.T = a``, so ``a**-T`` is ``a**-1``); None for any other gate."""
    if isinstance(rhs, cholesky):
        return []
    if not isinstance(rhs, CHOLESKY_GATES):
        return None
    c = rhs.args[0]
    a = factored[c.name]
    if isinstance(rhs, cho_logdet):  # d log det(a) = tr(a**-1 da)
        return [(a, d * cho_inverse(c))]
    if isinstance(rhs, cho_inverse):
        return [(a, -matmul(matmul(out, d), out))]
    db = cho_solve(c, d)  # out = a**-1 @ b
    return [(rhs.args[1], db), (a, -matmul(db, transpose(out)))]


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
        raise ArgumentError(f"dimension {missing[0]} is not the size of any argument's axis "
                            f"(a size {missing[0]} of one argument fixes it: only then can "
                            f"sizes such as 4*{missing[0]} be read)")
    return found
