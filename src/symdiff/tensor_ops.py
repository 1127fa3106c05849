"""Whole-array gates over N-D arrays (NCHW images): convolution, pooling, flatten.

Like the gates of ``array_ops``, each is an unevaluated SymPy function over the names of arrays,
followed by its integer parameters (stride, padding, window size). Unlike them, each gate here
knows its own shape (``shape_from``) and its own backward terms (``terms``), so the matrix passes
(``matrix.step_shapes``, ``matrix.reverse_arrays``) stay 2-D and only ask. Generated NumPy code
calls the helper of the same name in ``runtime_tensor.py``; ``apply`` is the 50-digit
interpreter's version (object arrays of mpmath numbers), written from the definition and
independent of the helpers.

Conventions are PyTorch's: ``x`` is (N, C, H, W), a weight (F, C, KH, KW), the convolution a
cross-correlation (the kernel is not flipped), an output size ``(H + 2 P - KH) // S + 1``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp


def out_size(n, k, stride: int, padding: int = 0):
    """The output length of a window of ``k`` sliding by ``stride`` over ``n`` padded by
    ``padding`` on both sides (numbers or SymPy expressions)."""
    span = n + 2 * padding - k
    return span + 1 if stride == 1 else sp.floor(span / stride) + 1


class TensorGate(sp.Function):
    """An unevaluated N-D gate; its first ``operands`` arguments are arrays, the rest ints."""

    is_real = True
    operands = 1
    needs: tuple[str, ...] = ()  # other runtime_tensor helpers its helper calls

    @classmethod
    def eval(cls, *args):
        return None

    @property
    def ints(self) -> list[int]:
        return [int(a) for a in self.args[self.operands:]]

    def shape_from(self, shapes: list[tuple]) -> tuple:
        """This gate's shape from its operands' ``shapes``."""
        raise NotImplementedError

    def printed(self, print_) -> list[str]:
        """The helper call's arguments as text (``print_`` prints one expression)."""
        return [print_(a) for a in self.args]

    def terms(self, out: sp.Symbol, d: sp.Symbol) -> list[tuple[sp.Basic, sp.Basic]]:
        """(operand, its gradient term) for the upstream gradient ``d`` of ``out`` (a backward-
        only gate has none: nothing differentiates a backward pass)."""
        return []


def windows(x, kh: int, kw: int, stride: int, padding: int):
    """The (N, C, OH, OW, KH, KW) windows of ``x`` (any dtype; zeros of its kind padded)."""
    if padding:
        zero = x.flat[0] * 0
        x = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2), constant_values=zero)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def scatter(d_entries, x_shape, kh: int, kw: int, stride: int, padding: int, zero):
    """The adjoint of ``windows``: ``d_entries(p, q)`` (N, C, OH, OW) added at window offset
    (p, q) of a zero array of the padded ``x_shape``, the padding cut off."""
    n, c, h, w = x_shape
    out = np.full((n, c, h + 2 * padding, w + 2 * padding), zero, dtype=object)
    for p in range(kh):
        for q in range(kw):
            part = d_entries(p, q)
            oh, ow = part.shape[2:]
            out[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += part
    return out[:, :, padding:padding + h, padding:padding + w]


class conv2d(TensorGate):
    """``conv2d(x, w, stride, padding)``: out[n, f, i, j] = sum over c, p, q of
    w[f, c, p, q] * xpad[n, c, S i + p, S j + q]."""

    needs = ("conv2d_windows",)
    nargs = 4
    operands = 2

    def shape_from(self, shapes):
        (n, _, h, w), (f, _, kh, kw) = shapes
        s, p = self.ints
        return (n, f, out_size(h, kh, s, p), out_size(w, kw, s, p))

    def terms(self, out, d):
        x, w = self.args[:2]
        s, p = self.args[2:]
        return [(x, conv2d_dx(d, w, x, s, p)), (w, conv2d_dw(d, x, w, s, p))]

    @staticmethod
    def apply(x, w, stride, padding):
        win = windows(x, w.shape[2], w.shape[3], stride, padding)
        return np.tensordot(win, w, axes=((1, 4, 5), (1, 2, 3))).transpose(0, 3, 1, 2)


class conv2d_dx(TensorGate):
    """The gradient of ``conv2d`` by its input: ``d`` (N, F, OH, OW) sent back through every
    kernel offset (``x`` gives the shape; backward only)."""

    nargs = 5
    operands = 3

    def shape_from(self, shapes):
        return shapes[2]

    @staticmethod
    def apply(d, w, x, stride, padding):
        def part(p, q):
            return np.tensordot(d, w[:, :, p, q], axes=((1,), (0,))).transpose(0, 3, 1, 2)
        return scatter(part, x.shape, w.shape[2], w.shape[3], stride, padding, d.flat[0] * 0)


class conv2d_dw(TensorGate):
    """The gradient of ``conv2d`` by its weight: ``d`` against the windows of ``x`` (``w``
    gives the shape; backward only)."""

    needs = ("conv2d_windows",)
    nargs = 5
    operands = 3

    def shape_from(self, shapes):
        return shapes[2]

    @staticmethod
    def apply(d, x, w, stride, padding):
        win = windows(x, w.shape[2], w.shape[3], stride, padding)
        return np.tensordot(d, win, axes=((0, 2, 3), (0, 2, 3)))


class add_channels(TensorGate):
    """``y + b[:, None, None]``: a bias of one entry per channel (axis 1), added everywhere."""

    nargs = 2
    operands = 2

    def shape_from(self, shapes):
        return shapes[0]

    def terms(self, out, d):
        y, b = self.args
        return [(y, d), (b, channel_sum(d))]

    @staticmethod
    def apply(y, b):
        return y + b.reshape(-1, 1, 1)


class channel_sum(TensorGate):
    """``d.sum(axis=(0, 2, 3))``: the gradient of a channel bias (backward only)."""

    nargs = 1

    def shape_from(self, shapes):
        return (shapes[0][1],)

    @staticmethod
    def apply(d):
        return d.sum(axis=(0, 2, 3))


class _Pool(TensorGate):
    """A pooling gate ``pool(x, size, stride)``: one value per size x size window."""

    needs = ("conv2d_windows",)
    nargs = 3

    def shape_from(self, shapes):
        (n, c, h, w), (k, s) = shapes[0], self.ints
        return (n, c, out_size(h, k, s), out_size(w, k, s))


class max_pool2d(_Pool):
    """``max_pool2d(x, size, stride)``: the maximum of each size x size window."""

    def terms(self, out, d):
        x, k, s = self.args
        return [(x, max_pool2d_dx(d, x, out, k, s))]

    @staticmethod
    def apply(x, size, stride):
        win = windows(x, size, size, stride, 0)
        return win.max(axis=(4, 5))


class _MaxPoolGrad(TensorGate):
    """A gradient of ``max_pool2d``, ``grad(d, x, out, size, stride)`` (x's shape; backward
    only); ``_hits`` marks each window's entries equal to its maximum ``out``."""

    nargs = 5
    operands = 3

    def shape_from(self, shapes):
        return shapes[1]

    @staticmethod
    def _hits(x, out, size, stride, one):
        win = windows(x, size, size, stride, 0)
        return np.where(win == out[..., None, None], one, one - one)


class max_pool2d_dx(_MaxPoolGrad):
    """The gradient of ``max_pool2d``: each window's ``d`` to the entries equal to its maximum
    ``out``, split evenly between ties (as ``max_mask`` splits it)."""

    @staticmethod
    def apply(d, x, out, size, stride):
        one = d.flat[0] ** 0
        hits = _MaxPoolGrad._hits(x, out, size, stride, one)
        share = d / hits.sum(axis=(4, 5))
        return scatter(lambda p, q: hits[..., p, q] * share, x.shape, size, size, stride, 0,
                        one - one)


class max_pool2d_first_dx(_MaxPoolGrad):
    """The other valid subgradient of ``max_pool2d`` at a tie: each window's ``d`` whole to the
    first of its maxima in row-major order, as argmax-based code (PyTorch) does (verify accepts
    it at ties, ``diagnose.kink_variants``)."""

    @staticmethod
    def apply(d, x, out, size, stride):
        one = d.flat[0] ** 0
        win = _MaxPoolGrad._hits(x, out, size, stride, one)
        hits = win.reshape(*out.shape, -1)
        first = np.cumsum(hits != 0, axis=-1) == 1
        hits = np.where(first & (hits != 0), one, one - one).reshape(win.shape)
        return scatter(lambda p, q: hits[..., p, q] * d, x.shape, size, size, stride, 0,
                        one - one)


class avg_pool2d(_Pool):
    """``avg_pool2d(x, size, stride)``: the mean of each size x size window."""

    def terms(self, out, d):
        x, k, s = self.args
        return [(x, avg_pool2d_dx(d, x, k, s))]

    @staticmethod
    def apply(x, size, stride):
        win = windows(x, size, size, stride, 0)
        return win.sum(axis=(4, 5)) / size**2


class avg_pool2d_dx(TensorGate):
    """The gradient of ``avg_pool2d``: ``d / size**2`` to every entry of its window (``x``
    gives the shape; backward only)."""

    nargs = 4
    operands = 2

    def shape_from(self, shapes):
        return shapes[1]

    @staticmethod
    def apply(d, x, size, stride):
        share = d / size**2
        return scatter(lambda p, q: share, x.shape, size, size, stride, 0, d.flat[0] * 0)


class flatten(TensorGate):
    """``x.reshape(N, -1)``: every axis after the first as one, in C order (a matrix)."""

    nargs = 1

    def shape_from(self, shapes):
        n, *rest = shapes[0]
        return (n, sp.Mul(*rest))

    def terms(self, out, d):
        x = self.args[0]
        return [(x, unflatten(d, x))]

    @staticmethod
    def apply(x):
        return x.reshape(x.shape[0], -1)


class unflatten(TensorGate):
    """``d.reshape(x.shape)``: the gradient of ``flatten`` (backward only)."""

    nargs = 2
    operands = 2

    def shape_from(self, shapes):
        return shapes[1]

    @staticmethod
    def apply(d, x):
        return d.reshape(x.shape)


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def spec_ints(inputs: list[str], output: str) -> list[int]:
    """An einsum spec as integers (gate arguments are numbers): each subscript's length, then
    its letters' positions in LETTERS; the inputs', then the output's."""
    return [k for sub in [*inputs, output] for k in [len(sub), *map(LETTERS.index, sub)]]


def spec_text(ints, count: int) -> tuple[list[str], str]:
    """The inverse of ``spec_ints`` for ``count`` inputs: (input subscripts, output)."""
    subs, k = [], 0
    for _ in range(count + 1):
        n = int(ints[k])
        subs.append("".join(LETTERS[int(i)] for i in ints[k + 1:k + 1 + n]))
        k += 1 + n
    return subs[:-1], subs[-1]


class einsum(TensorGate):
    """``np.einsum(spec, *arrays)``: the arrays first, then the spec as ints (``spec_ints``),
    then the number of arrays. Every index of an input is in the output or another input (so
    each backward is an einsum too: for input k, the output's and the other inputs' subscripts
    -> input k's)."""

    @property
    def operands(self) -> int:
        return int(self.args[-1])

    def spec(self) -> tuple[list[str], str]:
        return spec_text(self.args[self.operands:-1], self.operands)

    def printed(self, print_):
        inputs, output = self.spec()
        return [repr(",".join(inputs) + "->" + output)] + [
            print_(a) for a in self.args[:self.operands]]

    def shape_from(self, shapes):
        inputs, output = self.spec()
        size = {c: n for sub, shape in zip(inputs, shapes) for c, n in zip(sub, shape)}
        return tuple(size[c] for c in output)

    def terms(self, out, d):
        inputs, output = self.spec()
        arrays = self.args[:self.operands]
        found = []
        for k, a in enumerate(arrays):
            others = [output] + [s for j, s in enumerate(inputs) if j != k]
            rest = [d] + [b for j, b in enumerate(arrays) if j != k]
            ints = map(sp.Integer, [*spec_ints(others, inputs[k]), len(rest)])
            found.append((a, einsum(*rest, *ints)))
        return found

    @staticmethod
    def apply(*args):
        count = int(args[-1])
        inputs, output = spec_text(args[count:-1], count)
        return np.einsum(",".join(inputs) + "->" + output, *args[:count])


class window(TensorGate):
    """``window(x, axis, k, stride, offset, count)``: out[..., o, ..., t] = x[..., offset +
    stride*o + t, ...], o < count on ``axis``, the window axis t < k last (a sliding window
    view; index notation's strided reads, ``index_notation``)."""

    nargs = 6

    def shape_from(self, shapes):
        axis, k, _, _, count = self.ints
        shape = list(shapes[0])
        shape[axis] = sp.Integer(count)
        return (*shape, sp.Integer(k))

    def terms(self, out, d):
        return [(self.args[0], window_dx(d, *self.args))]

    @staticmethod
    def apply(x, axis, k, stride, offset, count):
        v = np.moveaxis(x, axis, -1)[..., offset:offset + stride * (count - 1) + k]
        win = np.lib.stride_tricks.sliding_window_view(v, k, axis=-1)[..., ::stride, :]
        return np.moveaxis(win, -2, axis)


class window_dx(TensorGate):
    """``window``'s adjoint: d added back at each of the k offsets (a strided slice each)."""

    nargs = 7
    operands = 2

    def shape_from(self, shapes):
        return shapes[1]

    @staticmethod
    def apply(d, x, axis, k, stride, offset, count):
        out = np.full(x.shape, d.flat[0] * 0, dtype=d.dtype)
        for t in range(k):
            at = [slice(None)] * x.ndim
            at[axis] = slice(offset + t, offset + t + stride * (count - 1) + 1, stride)
            out[tuple(at)] += d[..., t]
        return out


class reduce_to(TensorGate):
    """``reduce_to(x, *spec)``: ``np.einsum("nfij->f", x)`` (spec as ``spec_ints``)."""

    def printed(self, print_):
        (sub,), out = spec_text(self.args[1:], 1)
        return [print_(self.args[0]), repr(sub + "->" + out)]

    def shape_from(self, shapes):
        (sub,), out = spec_text(self.args[1:], 1)
        return tuple(dict(zip(sub, shapes[0]))[c] for c in out)

    def terms(self, out, d):
        (sub,), dropped = spec_text(self.args[1:], 1)
        return [(self.args[0], expand_to(d, self.args[0], *map(sp.Integer,
                                                              spec_ints([dropped], sub))))]

    @staticmethod
    def apply(x, *spec):
        (sub,), out = spec_text(spec, 1)
        return np.einsum(sub + "->" + out, x)


class expand_to(TensorGate):
    """``expand_to(x, like, *spec)``: x broadcast onto ``like``'s axes ("f->nfij"), copied."""

    operands = 2

    def printed(self, print_):
        (sub,), out = spec_text(self.args[2:], 1)
        return [print_(self.args[0]), print_(self.args[1]), repr(sub + "->" + out)]

    def shape_from(self, shapes):
        return shapes[1]

    def terms(self, out, d):
        (sub,), full = spec_text(self.args[2:], 1)
        return [(self.args[0], reduce_to(d, *map(sp.Integer, spec_ints([full], sub))))]

    @staticmethod
    def apply(x, like, *spec):
        (sub,), out = spec_text(spec, 1)
        kept = "".join(c for c in out if c in sub)
        x = np.asarray(np.einsum(sub + "->" + kept, x), dtype=like.dtype).reshape(
            [n if c in sub else 1 for c, n in zip(out, like.shape)])
        return np.broadcast_to(x, like.shape).copy()


TENSOR_GATES = (einsum, conv2d, conv2d_dx, conv2d_dw, add_channels, channel_sum, max_pool2d,
                max_pool2d_dx, max_pool2d_first_dx, avg_pool2d, avg_pool2d_dx, flatten, unflatten,
                window, window_dx, reduce_to, expand_to)
