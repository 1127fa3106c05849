"""N-D array formulas: the layer helpers users write over ``ArraySymbol`` images (NCHW).

``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``dropout``, ``flatten`` and ``apply`` build SymPy
nodes over ``sympy.tensor.array.expressions.ArraySymbol`` (numeric or symbolic shapes), with
PyTorch's conventions (``torch.nn.functional.conv2d``: x (N, C, H, W), weights (F, C, KH, KW),
a cross-correlation, output sizes ``(H + 2 P - KH) // S + 1``). Each node is plain SymPy
mathematics underneath: ``explicit`` writes its entries at concrete sizes as sums of products of
its operands' entries (a ``Max`` of a window for max pooling), which is what the reference
differentiates; ``lowered`` is its expression over the gates of ``tensor_ops`` (for
``lower_matrix.Converter``). ``flatten`` is a ``MatrixExpr``, so an N-D pipeline continues with
the matrix helpers (``flatten(P) * W + rows(b, N)``).

Only what is written here is supported: a stride and a padding are one int each (the same along
H and W), there is no dilation, no groups, no padded pooling; index-notation sums over array
entries are refused.
"""

from __future__ import annotations

import functools
import itertools
import operator

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.tensor.array import ImmutableDenseNDimArray as NDArray
from sympy.tensor.array.expressions import ArraySymbol

from . import matrix as _mx
from . import tensor_ops as ops
from .dag import postorder
from .errors import ArgumentError, UnsupportedFunctionError
from .tensor_ops import out_size

__all__ = ["ArraySymbol", "apply", "avg_pool2d", "conv2d", "dropout", "einsum", "flatten",
           "is_array", "max_pool2d"]


def is_array(node) -> bool:
    """Whether ``node`` is an N-D array: an ArraySymbol, one of the nodes below, or a sum or
    scalar multiple of them (``X - 2*Y``)."""
    return array_shape(node) is not None


def array_shape(node) -> tuple | None:
    """The shape of an N-D array value (see ``is_array``), None for anything else; the walk
    goes down sums and products only, each once (an explicit stack: no recursion)."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if isinstance(n, ARRAY_NODES):
            return tuple(n.shape)
        if isinstance(n, (sp.Add, sp.Mul)) and id(n) not in seen:
            seen.add(id(n))
            stack.extend(n.args)
    return None


class TensorExpr(sp.Expr):
    """An N-D array node: its array operands first, then ints (stride, size) or a scalar (p)."""

    is_commutative = True

    @property
    def shape(self) -> tuple:
        raise NotImplementedError


ARRAY_NODES = (ArraySymbol, TensorExpr)  # the nodes whose value is an N-D array


class Conv2d(TensorExpr):
    """``conv2d(X, Wt, stride=S, padding=P)`` (no bias: see ``ChannelBias``)."""

    @property
    def shape(self):
        return ops.conv2d(*self.args).shape_from([array_shape(a) for a in self.args[:2]])

    def lowered(self, x, w, s, p):
        return ops.conv2d(x, w, s, p)

    def explicit(self, x, w, s, p):
        (n, c, h, wd), (f, _, kh, kw), s, p = x.shape, w.shape, int(s), int(p)
        oh, ow = (int(out_size(k, m, s, p)) for k, m in ((h, kh), (wd, kw)))

        def at(a, i, j):  # the zero padding: entries outside the image are 0
            return x[a[0], a[1], i - p, j - p] if p <= i < h + p and p <= j < wd + p else 0

        def entry(b, g, i, j):
            return sp.Add(*(w[g, k, u, v] * at((b, k), s * i + u, s * j + v)
                            for k in range(c) for u in range(kh) for v in range(kw)))
        return explicit_array((n, f, oh, ow), entry)


class ChannelBias(TensorExpr):
    """``Y + b`` with ``b[f]`` added to every entry of channel f (axis 1)."""

    @property
    def shape(self):
        return array_shape(self.args[0])

    def lowered(self, y, b):
        return ops.add_channels(y, b)

    def explicit(self, y, b):
        return explicit_array(y.shape, lambda n, f, i, j: y[n, f, i, j] + b[f])


class Pool2d(TensorExpr):
    """The maximum (``MaxPool2d``) or mean (``AvgPool2d``) of each size x size window."""

    gate = None

    @property
    def shape(self):
        return self.gate(*self.args).shape_from([array_shape(self.args[0])])

    def lowered(self, x, k, s):
        return self.gate(x, k, s)

    def explicit(self, x, k, s):
        n, c, h, w = x.shape
        k, s = int(k), int(s)
        oh, ow = int(out_size(h, k, s)), int(out_size(w, k, s))

        def entry(b, f, i, j):
            window = [x[b, f, s * i + u, s * j + v] for u in range(k) for v in range(k)]
            return self.reduce(window)
        return explicit_array((n, c, oh, ow), entry)


class MaxPool2d(Pool2d):
    gate = ops.max_pool2d
    reduce = staticmethod(lambda window: sp.Max(*window))


class AvgPool2d(Pool2d):
    gate = ops.avg_pool2d
    reduce = staticmethod(lambda window: sp.Add(*window) / len(window))


class Dropout(TensorExpr):
    """``X * M / (1 - p)`` entry by entry: inverted dropout with the mask ``M`` an input."""

    @property
    def shape(self):
        return array_shape(self.args[0])

    def lowered(self, x, m, p):
        return x * m * (1 / (1 - p))

    def explicit(self, x, m, p):
        return explicit_array(x.shape, lambda *k: x[k] * m[k] / (1 - p))


class TensorApply(TensorExpr):
    """``f`` of every entry of an N-D array (``apply(f, X)``); read like SymPy's
    ``ElementwiseApplyFunction`` (``function``, ``expr``)."""

    @property
    def function(self) -> sp.Lambda:
        return self.args[0]

    @property
    def expr(self):
        return self.args[1]

    @property
    def shape(self):
        return array_shape(self.expr)


class Einsum(TensorExpr):
    """``einsum(spec, *arrays)``: the arrays, the spec as ints, the number of arrays (the
    layout of the ``tensor_ops.einsum`` gate)."""

    @property
    def count(self) -> int:
        return int(self.args[-1])

    @property
    def shape(self):
        arrays = self.args[:self.count]
        return ops.einsum(*self.args).shape_from([_shape_any(a) for a in arrays])

    def lowered(self, *args):
        return ops.einsum(*args)

    def explicit(self, *args):
        inputs, output = ops.spec_text(args[self.count:-1], self.count)
        arrays = args[:self.count]
        size = {c: int(n) for sub, a in zip(inputs, arrays) for c, n in zip(sub, a.shape)}
        summed = sorted({c for sub in inputs for c in sub} - set(output))

        def entry(*index):
            at = dict(zip(output, index))
            terms = []
            for inner in itertools.product(*(range(size[c]) for c in summed)):
                at.update(zip(summed, inner))
                terms.append(sp.Mul(*(a[tuple(at[c] for c in sub)]
                                      for sub, a in zip(inputs, arrays))))
            return sp.Add(*terms)
        if not output:
            return entry()
        return explicit_array(tuple(size[c] for c in output), entry)


class Flatten(MatrixExpr):
    """``X.reshape(N, -1)``: an N-D array as the N x (C H W) matrix of its rows, in C order."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, arg)

    @property
    def shape(self):
        n, *rest = array_shape(self.args[0])
        return (n, sp.Mul(*rest))

    def lowered(self, x):
        return ops.flatten(x)

    def explicit(self, x):
        return sp.ImmutableMatrix(x.shape[0], len(x) // x.shape[0], sp.flatten(x))

    def _entry(self, i, j, **kwargs):
        raise UnsupportedFunctionError("an entry of flatten() is not supported: use the "
                                       "matrix whole (flatten(X) * W)")


class IndexNode(TensorExpr):
    """A node of index notation (``index_notation``: windows, reductions, broadcasts)."""


LOWERED = (Conv2d, ChannelBias, Pool2d, Dropout, Einsum, Flatten, IndexNode)  # by ``lowered``


def refused(node, shapes=()) -> None:
    """Refuse what N-D formulas do not support: index notation (an entry ``X[n, c, i, j]`` of
    an array, ``Indexed``, a ``Sum`` over them), SymPy's array-expression nodes, and any
    operation on N-D values but a sum of arrays of one shape or a scalar multiple of one."""
    inner = [n for n in (postorder(node) if isinstance(node, sp.Sum) else [node])
             if type(n).__module__.startswith("sympy.tensor")]
    if inner:
        raise UnsupportedFunctionError(
            f"{type(inner[0]).__name__} ({_mx.short(inner[0])}) is not supported: index "
            "notation over arrays is not lowered yet; write symdiff.conv2d, max_pool2d, "
            "avg_pool2d, dropout, flatten or apply(f, X)")
    nd = [s for s in shapes if len(s) > 2]
    if nd and not (isinstance(node, sp.Add) or isinstance(node, sp.Mul) and len(
            [s for s in shapes if s]) == 1):
        raise UnsupportedFunctionError(
            f"{type(node).__name__} of an N-D array is not supported: {_mx.short(node)} (for "
            "the function of every entry write symdiff.apply(f, X); N-D arrays are added, or "
            "multiplied by scalars)")


def explicit_arithmetic(node, args):
    """A sum or scalar multiple of explicit N-D arrays (None when no operand is one)."""
    if not any(isinstance(a, NDArray) for a in args):
        return None
    if isinstance(node, sp.Add):
        return functools.reduce(operator.add, args)
    return functools.reduce(operator.mul, args)  # refused() let only a scalar multiple in


def explicit_terms(expr) -> int:
    """How many products and window entries writing out the N-D nodes of ``expr`` (at concrete
    sizes) makes: each output entry of a convolution costs C*KH*KW, of a pooling size**2."""
    total = 0
    for node in postorder(expr):
        if isinstance(node, (TensorExpr, Flatten)):
            count = sp.Mul(*node.shape)
            if isinstance(node, Conv2d):
                count *= sp.Mul(*array_shape(node.args[1])[1:])
            elif isinstance(node, Pool2d):
                count *= node.args[1] ** 2
            total += int(count) if count.is_Integer else 0
    return total


def explicit_array(shape, entry) -> NDArray:
    """The explicit array of ``shape`` whose entry at index k is ``entry(*k)``."""
    shape = tuple(int(n) for n in shape)
    return NDArray([entry(*k) for k in itertools.product(*map(range, shape))], shape)


# -- what users write ---------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, dilation: int = 1,
           groups: int = 1):
    """The 2-D convolution of ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW), plus ``bias``
    (F,) per output channel: PyTorch's ``conv2d`` (a cross-correlation), (N, F, OH, OW).

    >>> from sympy.tensor.array.expressions import ArraySymbol
    >>> n, h = sp.symbols("N H", integer=True, positive=True)
    >>> y = conv2d(ArraySymbol("X", (n, 3, h, h)), ArraySymbol("Wt", (8, 3, 3, 3)), padding=1)
    >>> y.shape
    (N, 8, H, H)
    """
    _unsupported("conv2d", dilation=dilation, groups=groups)
    x, weight = _image(x, "conv2d"), _image(weight, "conv2d", "weight")
    xs, ws = array_shape(x), array_shape(weight)
    stride, padding = _int(stride, "conv2d", "stride", 1), _int(padding, "conv2d", "padding", 0)
    if xs[1] != ws[1]:
        raise ArgumentError(f"conv2d: x has {xs[1]} channels but the weight takes "
                            f"{ws[1]} (weight is (F, C, KH, KW))")
    for size, k in ((xs[2], ws[2]), (xs[3], ws[3])):
        if (size + 2 * padding - k).is_negative:
            raise ArgumentError(f"conv2d: a {k}-wide kernel does not fit in {size} + 2*{padding}")
    out = Conv2d(x, weight, sp.Integer(stride), sp.Integer(padding))
    if bias is None:
        return out
    if not isinstance(bias, ArraySymbol) or tuple(bias.shape) != (ws[0],):
        raise ArgumentError(f"conv2d: bias must be an ArraySymbol of shape ({ws[0]},) "
                            f"(one entry per output channel), got {bias!r}")
    return ChannelBias(out, bias)


def max_pool2d(x, size: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
               ceil_mode: bool = False):
    """The maximum of each ``size`` x ``size`` window of ``x`` (N, C, H, W), windows
    ``stride`` apart (default ``size``); the gradient goes to the maximum of each window, split
    evenly between ties."""
    return _pool(MaxPool2d, "max_pool2d", x, size, stride, padding, dilation, ceil_mode)


def avg_pool2d(x, size: int, stride: int | None = None, padding: int = 0,
               ceil_mode: bool = False):
    """The mean of each ``size`` x ``size`` window of ``x``, windows ``stride`` apart."""
    return _pool(AvgPool2d, "avg_pool2d", x, size, stride, padding, 1, ceil_mode)


def _pool(cls, where, x, size, stride, padding, dilation, ceil_mode):
    _unsupported(where, padding=(padding, 0), dilation=dilation, ceil_mode=(ceil_mode, False))
    x = _image(x, where)
    xs = array_shape(x)
    size = _int(size, where, "size", 1)
    stride = size if stride is None else _int(stride, where, "stride", 1)
    if any((n - size).is_negative for n in xs[2:]):
        raise ArgumentError(f"{where}: a {size} x {size} window does not fit in "
                            f"{xs[2]} x {xs[3]}")
    return cls(x, sp.Integer(size), sp.Integer(stride))


def dropout(x, mask, p):
    """Inverted dropout: ``x * mask / (1 - p)`` entry by entry, ``mask`` an input array of 0s
    and 1s of x's shape (drawn by the caller), ``p`` the drop probability (a number in [0, 1)
    or a scalar Symbol)."""
    if not is_array(x) or not isinstance(mask, ArraySymbol):
        raise ArgumentError("dropout(x, mask, p) takes an N-D array x and an ArraySymbol mask")
    if tuple(mask.shape) != array_shape(x):
        raise ArgumentError(f"dropout: the mask is {mask.shape}, x is {array_shape(x)}")
    p = sp.sympify(p)
    if p.is_number and not (0 <= p < 1):
        raise ArgumentError(f"dropout: p must be in [0, 1), got {p}")
    return Dropout(x, mask, p)


def flatten(x) -> MatrixExpr:
    """``x`` (N, ...) as the N x (product of the other sizes) matrix of its rows (C order)."""
    if not is_array(x) or len(array_shape(x)) < 2:
        raise ArgumentError(f"flatten() takes an N-D array, got {type(x).__name__}")
    return Flatten(x)


def einsum(spec: str, *arrays):
    """``np.einsum(spec, *arrays)`` over N-D arrays and matrices, e.g. ``einsum("nchw,fc->nfhw",
    X, V)``; the output subscripts are explicit (``->``), each index is in the output or in two
    or more inputs, and no input repeats an index (no diagonals, no ``...``)."""
    if not isinstance(spec, str) or spec.count("->") != 1:
        raise UnsupportedFunctionError(f"einsum: the spec {spec!r} must name its output "
                                       "explicitly, as in 'ij,jk->ik'")
    left, output = spec.replace(" ", "").split("->")
    inputs = left.split(",")
    if len(inputs) != len(arrays) or not arrays:
        raise ArgumentError(f"einsum: the spec {spec!r} has {len(inputs)} inputs, "
                            f"{len(arrays)} arrays given")
    size: dict = {}
    for sub, a in zip(inputs, arrays):
        shape = _shape_any(a)
        if shape is None or len(sub) != len(shape):
            raise ArgumentError(f"einsum: {sub!r} does not index {a} (shape {shape})")
        bad = [c for c in sub if c not in ops.LETTERS or sub.count(c) > 1]
        if bad:
            raise UnsupportedFunctionError(f"einsum: the index {bad[0]!r} of {sub!r} is not "
                                           "supported (a letter, once per input: no diagonals)")
        for c, n in zip(sub, shape):
            if size.setdefault(c, n) != n:
                raise ArgumentError(f"einsum: the index {c!r} has sizes {size[c]} and {n}")
    lonely = [c for c in size if c not in output and "".join(inputs).count(c) == 1]
    if lonely or len(set(output)) != len(output) or not set(output) <= set(size):
        raise UnsupportedFunctionError(
            f"einsum: in {spec!r} every output index must be an input's, once, and every input "
            "index must appear in the output or another input (sum an operand first with "
            "symdiff.sum)")
    return Einsum(*arrays, *map(sp.Integer, ops.spec_ints(inputs, output)),
                  sp.Integer(len(arrays)))


def _shape_any(a) -> tuple | None:
    """The shape of an N-D array or a matrix expression (None for anything else)."""
    return tuple(a.shape) if isinstance(a, MatrixExpr) else array_shape(a)


def apply(f, a):
    """``f`` applied to every entry of ``a``, an N-D array or a matrix (``matrix.apply``)."""
    if not is_array(a):
        return _mx.apply(f, a)
    t = sp.Dummy("t", real=True)
    return TensorApply(sp.Lambda(t, f(t)), a)


def _image(x, where: str, what: str = "x"):
    if not is_array(x) or len(array_shape(x)) != 4:
        raise ArgumentError(f"{where}: {what} must be a 4-D array (an ArraySymbol of shape "
                            f"(N, C, H, W)), got {x!r}")
    return x


def _int(value, where: str, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, sp.Integer)) or value < least:
        raise UnsupportedFunctionError(
            f"{where}: {what} must be one int >= {least} (the same along H and W), got "
            f"{value!r}")
    return int(value)


def _unsupported(where: str, **given) -> None:
    """Refuse an option other than its default: (value, default) pairs, or value vs 1."""
    for name, value in given.items():
        value, default = value if isinstance(value, tuple) else (value, 1)
        if value != default:
            raise UnsupportedFunctionError(f"{where}: {name}={value!r} is not supported "
                                           f"(only {name}={default!r})")
