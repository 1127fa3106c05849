"""Index notation over N-D arrays, lowered to whole-array steps ("named axes").

``index_array((n, f, i, j), body, shape)`` is the array whose entry at (n, f, i, j) is ``body``,
a SymPy formula in entries of arrays (``ArraySymbol[...]`` or ``IndexedBase(..., shape=...)[...]``)
and ``Sum`` over integer index symbols; a scalar formula written the same way (a ``Sum`` binding
every index) is converted by ``from_index`` (``symdiff.lower`` calls it). Every subexpression with
free indices is an array whose axes are those indices, rewritten onto whole-array gates:

- an entry ``X[n, c, s*i + p + k0, ...]`` is a read: a plain index is an axis of X; an affine one
  (an outer index times a stride, plus a window index with coefficient 1, plus a constant) is a
  ``window`` (a sliding window view) with the axes (..., i, ..., p); its adjoint is the strided
  accumulation of ``window_dx``, k slice additions (scatter turned to gather);
- a product under a ``Sum`` is one ``einsum``; a ``Sum`` of anything else a ``reduce_to``;
- a sum of arrays over fewer axes broadcasts them (``expand_to``, its adjoint ``reduce_to``);
- a function of one array entry by entry is ``tensor.apply``.

Index ranges start anywhere (shifted to 0); a read outside its array, a repeated index (X[i, i]),
a non-affine index, an index bound twice, a free index left in a scalar, a constant index: refused
by name (``UnsupportedFunctionError``), never a silent wrong answer. Windowed reads need numeric
sizes; plain reads work at symbolic sizes.
"""

from __future__ import annotations

import itertools

import sympy as sp
from sympy.tensor.array.expressions import ArrayElement, ArraySymbol

from . import tensor_ops as ops
from .dag import postorder, rebuild
from .errors import ArgumentError, UnsupportedFunctionError
from .tensor import Einsum, IndexNode, TensorApply, array_shape, explicit_array

__all__ = ["from_index", "index_array"]


class Window(IndexNode):
    """``window(x, axis, k, stride, offset, count)`` (see ``tensor_ops.window``)."""

    @property
    def shape(self):
        return ops.window(*self.args).shape_from([array_shape(self.args[0])])

    def lowered(self, *args):
        return ops.window(*args)

    def explicit(self, x, axis, k, s, offset, count):
        axis, s, offset = int(axis), int(s), int(offset)

        def entry(*at):
            at = list(at)
            t = at.pop()
            at[axis] = offset + s * at[axis] + t
            return x[tuple(at)]
        return explicit_array(self.shape, entry)


class Reduce(IndexNode):
    """``reduce_to(x, *spec)``: x summed over the axes its spec drops."""

    @property
    def shape(self):
        return ops.reduce_to(*self.args).shape_from([array_shape(self.args[0])])

    def lowered(self, *args):
        return ops.reduce_to(*args)

    def explicit(self, x, *spec):
        (sub,), out = ops.spec_text(spec, 1)
        size = dict(zip(sub, x.shape))

        def entry(*at):
            fixed = dict(zip(out, at))
            free = [c for c in sub if c not in fixed]
            return sp.Add(*(x[tuple({**fixed, **dict(zip(free, k))}[c] for c in sub)]
                            for k in itertools.product(*(range(size[c]) for c in free))))
        return entry() if not out else explicit_array(self.shape, entry)


class Expand(IndexNode):
    """``expand_to(x, like, *spec)``: x broadcast onto the axes of ``like``."""

    @property
    def shape(self):
        return array_shape(self.args[1])

    def lowered(self, *args):
        return ops.expand_to(*args)

    def explicit(self, x, like, *spec):
        (sub,), out = ops.spec_text(spec, 1)
        return explicit_array(like.shape, lambda *at: x[tuple(dict(zip(out, at))[c] for c in sub)])


def _refuse(what, node, instead: str):
    raise UnsupportedFunctionError(f"index notation: {what} in {node} is not supported; "
                                   f"{instead}")


class _Named:
    """A converted subexpression: ``node`` (an N-D array, or a scalar when ``axes`` is empty)
    and the index symbols of its axes, in order."""

    def __init__(self, node, axes: tuple):
        self.node, self.axes = node, tuple(axes)


class _Converter:
    """Index notation to array nodes, with the range (size) of every bound index."""

    def __init__(self, sizes: dict):
        self.sizes = dict(sizes)  # index symbol -> its number of values (0 .. size-1)
        self.letter: dict = {}

    def letters(self, axes) -> str:
        for a in axes:
            if a not in self.letter:
                if len(self.letter) == len(ops.LETTERS):
                    raise UnsupportedFunctionError("index notation: more than 52 indices")
                self.letter[a] = ops.LETTERS[len(self.letter)]
        return "".join(self.letter[a] for a in axes)

    def indices(self, expr) -> set:
        return {s for s in expr.free_symbols if s in self.sizes}

    def convert(self, expr) -> _Named:
        if isinstance(expr, (ArrayElement, sp.Indexed)):
            return self.read(expr)
        if not self.indices(expr) and not _reads(expr):
            return _Named(expr, ())
        if isinstance(expr, sp.Sum):
            return self.summed(expr)
        if isinstance(expr, sp.Mul):
            return self.product([self.convert(a) for a in expr.args], (), expr)
        if isinstance(expr, sp.Add):
            return self.added([self.convert(a) for a in expr.args], expr)
        if isinstance(expr, (sp.Pow, sp.Function)):
            return self.applied(expr)
        return _refuse(type(expr).__name__, expr, "write sums, products, powers and functions "
                       "of entries")

    def applied(self, expr) -> _Named:
        parts = [self.convert(a) for a in expr.args]
        arrays = [k for k, p in enumerate(parts) if p.axes]
        if len(arrays) != 1:
            return _refuse("a function of several arrays", expr,
                           "write it as a product or a sum")
        k = arrays[0]
        t = sp.Dummy("t", real=True)
        args = [p.node for p in parts]
        args[k] = t
        return _Named(TensorApply(sp.Lambda(t, expr.func(*args)), parts[k].node), parts[k].axes)

    def summed(self, expr) -> _Named:
        body, shift, bound = expr.function, {}, []
        for limit in expr.limits:
            if len(limit) != 3:
                _refuse("a Sum without bounds", expr, "write Sum(body, (i, 0, n - 1))")
            v, lo, hi = limit
            if v in self.sizes or v in bound:
                _refuse(f"the index {v} bound twice", expr, "give each Sum its own index")
            shift[v] = v + lo
            self.sizes[v] = sp.sympify(hi - lo + 1)
            bound.append(v)
        body = body.xreplace({v: e for v, e in shift.items() if e != v})
        factors = body.args if isinstance(body, sp.Mul) else (body,)
        inner = [self.convert(a) for a in factors]
        for v in bound:
            if not any(v in p.axes for p in inner):  # the body does not depend on v
                inner.append(_Named(self.sizes[v], ()))
        out = self.product(inner, bound, expr)
        for v in bound:
            del self.sizes[v]
        return out

    def product(self, parts, summed, expr) -> _Named:
        scalars = sp.Mul(*(p.node for p in parts if not p.axes))
        arrays = [p for p in parts if p.axes]
        keep = tuple(dict.fromkeys(a for p in arrays for a in p.axes if a not in summed))
        if not arrays:
            return _Named(scalars, ())
        if len(arrays) > 1:  # an index in one factor only is summed there first
            arrays = [self.reduced(p, [a for a in p.axes if a in summed and not any(
                a in q.axes for q in arrays if q is not p)]) for p in arrays]
        if len(arrays) == 1:
            one = self.reduced(arrays[0], [a for a in arrays[0].axes if a in summed])
            return _Named(scalars * one.node, one.axes)
        subs = [self.letters(p.axes) for p in arrays]
        spec = ops.spec_ints(subs, self.letters(keep))
        node = Einsum(*(p.node for p in arrays), *map(sp.Integer, spec),
                      sp.Integer(len(arrays)))
        return _Named(scalars * node, keep)

    def reduced(self, part: _Named, drop) -> _Named:
        if not drop:
            return part
        keep = tuple(a for a in part.axes if a not in drop)
        spec = ops.spec_ints([self.letters(part.axes)], self.letters(keep))
        return _Named(Reduce(part.node, *map(sp.Integer, spec)), keep)

    def added(self, parts, expr) -> _Named:
        full = max(parts, key=lambda p: len(p.axes))
        if not full.axes:
            return _Named(sp.Add(*(p.node for p in parts)), ())
        terms = []
        for p in parts:
            if not set(p.axes) <= set(full.axes):
                _refuse(f"a sum of arrays over the indices {p.axes} and {full.axes}", expr,
                        "one term must have every index (write the outer sum as a product "
                        "with ones)")
            if not p.axes:
                _refuse("a scalar added to an array", expr, "add an array of that value")
            spec = ops.spec_ints([self.letters(p.axes)], self.letters(full.axes))
            if p.axes == full.axes:
                terms.append(p.node)
            elif len(p.axes) == len(full.axes):
                terms.append(Einsum(p.node, *map(sp.Integer, spec), sp.Integer(1)))
            else:
                terms.append(Expand(p.node, full.node, *map(sp.Integer, spec)))
        return _Named(sp.Add(*terms), full.axes)

    def read(self, expr) -> _Named:
        array, index = _array_of(expr), expr.indices
        shape = array_shape(array)
        if len(index) != len(shape):
            _refuse(f"{len(index)} indices for a {len(shape)}-D array", expr,
                    f"give {len(shape)}")
        axes, windows = [], []
        for axis, (e, n) in enumerate(zip(index, shape)):
            axes.append(self.axis(expr, axis, sp.sympify(e), n, windows))
        flat = [a for a in axes if not isinstance(a, tuple)] + [a[1] for a in axes
                                                                if isinstance(a, tuple)]
        if len(set(flat)) != len(flat):
            _refuse("a repeated index", expr, "index each axis by its own index (a diagonal "
                    "X[i, i] is not supported)")
        node = array
        for axis, k, s, offset, count in windows:
            node = Window(node, *map(sp.Integer, (axis, k, s, offset, count)))
        names = [a[0] if isinstance(a, tuple) else a for a in axes]
        got = _Named(node, (*names, *[a[1] for a in axes if isinstance(a, tuple)]))
        return self.reduced(got, [a for a in got.axes if isinstance(a, sp.Dummy)])

    def axis(self, expr, axis: int, e, n, windows):
        """The index of one axis of a read: a symbol, or (outer, window) for a windowed one
        (appended to ``windows`` as (axis, k, stride, offset, count))."""
        used = sorted(self.indices(e), key=str)
        if not used and e.free_symbols:
            _refuse(f"the free index {e}", expr, "bind it with a Sum or index_array")
        if not used:
            _refuse(f"the constant index {e}", expr, "index every axis by an index symbol")
        poly = sp.Poly(e, *used) if e.is_polynomial(*used) else None
        if poly is None or poly.total_degree() != 1 or len(used) > 2 or any(
                not c.is_Integer for c in poly.coeffs()):
            _refuse(f"the index {e}", expr, "indices are affine: s*i + p + k with integer "
                    "s, k (no products of indices, no powers)")
        coeff = {v: poly.coeff_monomial(v) for v in used}
        offset = int(e.subs(dict.fromkeys(used, 0)))
        if len(used) == 1 and coeff[used[0]] == 1 and offset == 0 and self.sizes[used[0]] == n:
            return used[0]
        outer = max(used, key=lambda v: (coeff[v], _size(self.sizes[v], expr)))
        inner = [v for v in used if v is not outer]
        if inner and coeff[inner[0]] != 1 or any(c < 1 for c in coeff.values()):
            _refuse(f"the index {e}", expr, "a window index has coefficient 1 and a stride is "
                    "positive (no dilation, no reversed reads)")
        k = _size(self.sizes[inner[0]], expr) if inner else 1
        count, s = _size(self.sizes[outer], expr), int(coeff[outer])
        last = offset + s * (count - 1) + k - 1
        if offset < 0 or not sp.sympify(n).is_number or last > int(n) - 1:
            _refuse(f"a read outside the array: {e} runs {offset} .. {last}", expr,
                    f"axis {axis} has {n} entries (pad the array yourself: no implicit zeros)")
        windows.append((axis, k, s, offset, count))
        if not inner:
            t = sp.Dummy("t")
            self.sizes[t] = 1
            return (outer, t)
        return (outer, inner[0])


def _size(n, expr) -> int:
    if not sp.sympify(n).is_Integer:
        _refuse(f"the symbolic range {n} of a windowed read", expr, "windowed (strided, "
                "offset) reads need numeric sizes")
    return int(n)


def _array_of(read):
    if isinstance(read, ArrayElement):
        return read.name
    base = read.base
    if base.shape is None:
        raise ArgumentError(f"index notation: {base} has no shape: write IndexedBase("
                            f"'{base}', shape=(...)) or use an ArraySymbol")
    return ArraySymbol(str(base.label), tuple(base.shape))


_ENTRY = (ArrayElement, sp.Indexed)


def _reads(expr) -> bool:
    return any(isinstance(n, _ENTRY) for n in postorder(expr))  # a DAG walk: each node once


def index_array(indices, body, shape=None):
    """The array whose entry at ``indices`` (integer symbols, from 0) is ``body``: its shape
    is ``shape``, or each size read off an axis of an array the index reads whole."""
    indices = tuple(indices)
    if len(set(indices)) != len(indices):
        raise UnsupportedFunctionError(f"index notation: an index repeated in {indices}")
    if shape is None:
        shape = [_inferred(v, body) for v in indices]
    conv = _Converter(dict(zip(indices, map(sp.sympify, shape))))
    got = conv.convert(sp.sympify(body))
    if set(got.axes) != set(indices):
        raise UnsupportedFunctionError(f"index notation: the body of index_array uses the "
                                       f"indices {got.axes}, not {indices}")
    if got.axes == indices:
        return got.node
    spec = ops.spec_ints([conv.letters(got.axes)], conv.letters(indices))
    return Einsum(got.node, *map(sp.Integer, spec), sp.Integer(1))


def _inferred(v, body):
    for read in postorder(body):
        if isinstance(read, _ENTRY) and v in read.indices:
            return array_shape(_array_of(read))[list(read.indices).index(v)]
    raise ArgumentError(f"index_array: the size of {v} is not read off an array: give shape=")


def from_index(expr):
    """``expr`` with every outermost ``Sum`` over array entries (index notation) converted to
    array nodes; a free index left over is refused."""
    if not _reads(expr):
        return expr

    def convert(node, args):
        if not isinstance(node, (sp.Sum, *_ENTRY)):
            return None
        got = _Converter({}).convert(node)
        if got.axes or _reads(got.node):
            raise UnsupportedFunctionError(
                f"index notation: the free index {got.axes[0] if got.axes else ''} in "
                f"{node} is left in a scalar formula: bind it with a Sum")
        return got.node
    return rebuild(sp.sympify(expr), convert, stop=lambda n: isinstance(n, (sp.Sum, *_ENTRY)))
