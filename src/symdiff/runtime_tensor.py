"""Helpers that numpy-backend modules carry for N-D gates (``tensor_ops``); imports only numpy.

Each function is copied verbatim into generated modules that use it (``runtime.helper_source``);
none is imported by symdiff itself. Arrays are NCHW, weights (F, C, KH, KW), as in PyTorch.
Forward passes read windows with ``sliding_window_view`` (a view, no copy) and contract them
with one ``einsum``; the gradient by an input is one matrix product, then an accumulation over
the KH*KW kernel offsets, each a strided slice addition: never a Python loop over N, H or W.
"""

import numpy as np


def astensor(a, name, shape):
    """a as a float array with len(shape) axes and the sizes the formula fixes (None: any)."""
    a = np.asarray(a, dtype=float)
    if a.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must be a {want} array ({len(shape)}-D), got shape {a.shape}")
    return a


def einsum(spec, *arrays):
    """np.einsum with the contraction order optimised (a product of several arrays)."""
    return np.einsum(spec, *arrays, optimize=True)


def conv2d_windows(x, kh, kw, stride, padding):
    """The (N, C, OH, OW, KH, KW) windows of x zero-padded by padding (a view when unpadded)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def conv2d(x, w, stride, padding):
    """The cross-correlation of x (N, C, H, W) with w (F, C, KH, KW): (N, F, OH, OW)."""
    win = conv2d_windows(x, w.shape[2], w.shape[3], stride, padding)
    return np.einsum("nchwpq,fcpq->nfhw", win, w, optimize=True)


def conv2d_dx(d, w, x, stride, padding):
    """The gradient of conv2d by x: d (N, F, OH, OW) sent back through each kernel offset."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = d.shape[2:]
    cols = w.reshape(f, -1).T @ d.reshape(n, f, oh * ow)  # (N, C KH KW, OH OW): one product
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    dx = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), dtype=cols.dtype)
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += cols[:, :, p, q]
    return dx[:, :, padding:padding + h, padding:padding + wd]


def conv2d_dw(d, x, w, stride, padding):
    """The gradient of conv2d by w: d (N, F, OH, OW) against the windows of x."""
    n, f, oh, ow = d.shape
    win = conv2d_windows(x, w.shape[2], w.shape[3], stride, padding)
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n, oh * ow, -1)  # (N, OH OW, C KH KW)
    return (d.reshape(n, f, oh * ow) @ cols).sum(axis=0).reshape(w.shape)


def add_channels(y, b):
    """y (N, F, H, W) plus the bias b (F,) of each channel."""
    return y + b.reshape(-1, 1, 1)


def channel_sum(d):
    """The gradient of a channel bias: d summed over every axis but the channels."""
    return d.sum(axis=(0, 2, 3))


def max_pool2d(x, size, stride):
    """The maximum of each size x size window of x, windows stride apart."""
    return conv2d_windows(x, size, size, stride, 0).max(axis=(4, 5))


def max_pool2d_dx(d, x, out, size, stride):
    """The gradient of max_pool2d: each window's d to its maximal entries, split evenly."""
    oh, ow = out.shape[2:]
    hits, count = [], np.zeros(out.shape)
    for p in range(size):
        for q in range(size):
            hit = x[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] == out
            hits.append((p, q, hit))
            count += hit
    share = d / count
    dx = np.zeros(x.shape, dtype=share.dtype)
    for p, q, hit in hits:
        dx[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += hit * share
    return dx


def max_pool2d_first_dx(d, x, out, size, stride):
    """The gradient of max_pool2d whole to the first maximum of each window (row-major)."""
    oh, ow = out.shape[2:]
    taken = np.zeros(out.shape, dtype=bool)
    dx = np.zeros(x.shape, dtype=np.result_type(d, float))
    for p in range(size):
        for q in range(size):
            hit = (x[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] == out) & ~taken
            taken |= hit
            dx[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += hit * d
    return dx


def avg_pool2d(x, size, stride):
    """The mean of each size x size window of x, windows stride apart."""
    return conv2d_windows(x, size, size, stride, 0).mean(axis=(4, 5))


def avg_pool2d_dx(d, x, size, stride):
    """The gradient of avg_pool2d: d / size**2 to every entry of its window."""
    oh, ow = d.shape[2:]
    share = d / size**2
    dx = np.zeros(x.shape, dtype=share.dtype)
    for p in range(size):
        for q in range(size):
            dx[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += share
    return dx


def flatten(x):
    """x (N, ...) as an N x (product of the other sizes) matrix, in C order."""
    return x.reshape(x.shape[0], -1)


def unflatten(d, x):
    """The gradient of flatten: d in the shape of x."""
    return d.reshape(x.shape)


def window(x, axis, k, stride, offset, count):
    """x[..., offset + stride*o + t, ...] at (..., o, ..., t): a sliding window view, no copy."""
    v = np.moveaxis(x, axis, -1)[..., offset:offset + stride * (count - 1) + k]
    win = np.lib.stride_tricks.sliding_window_view(v, k, axis=-1)[..., ::stride, :]
    return np.moveaxis(win, -2, axis)


def window_dx(d, x, axis, k, stride, offset, count):
    """The gradient of window: d added back at each of the k offsets (a strided slice each)."""
    out = np.zeros(x.shape, dtype=d.dtype)
    for t in range(k):
        at = [slice(None)] * x.ndim
        at[axis] = slice(offset + t, offset + t + stride * (count - 1) + 1, stride)
        out[tuple(at)] += d[..., t]
    return out


def reduce_to(x, spec):
    """x summed over the axes spec's output drops ("nfij->f")."""
    return np.einsum(spec, x)


def expand_to(x, like, spec):
    """x broadcast onto like's axes ("f->nfij"), copied."""
    sub, out = spec.split("->")
    kept, x = "".join(c for c in out if c in sub), np.asarray(x, dtype=like.dtype)
    x = np.einsum(sub + "->" + kept, x).reshape(
        [n if c in sub else 1 for c, n in zip(out, like.shape)])
    return np.broadcast_to(x, like.shape).copy()
