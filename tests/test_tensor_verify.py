"""verify of hand-written N-D layers: an im2col convolution and an argmax-mask max pooling,
right, and with the bugs people make in them, each caught in exactly the partials it breaks.
"""

from __future__ import annotations

import numpy as np
import pytest

import symdiff
from symdiff import layers


def _indices(shape, kh, kw, padding, stride):
    """(k, i, j) gathering the (C KH KW, OH OW) columns of one padded image (im2col)."""
    _, c, h, w = shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    i = (np.tile(np.repeat(np.arange(kh), kw), c).reshape(-1, 1)
         + stride * np.repeat(np.arange(oh), ow).reshape(1, -1))
    j = (np.tile(np.arange(kw), kh * c).reshape(-1, 1)
         + stride * np.tile(np.arange(ow), oh).reshape(1, -1))
    return np.repeat(np.arange(c), kh * kw).reshape(-1, 1), i, j, oh, ow


def conv_forward(x, w, b, stride, padding):
    f, _, kh, kw = w.shape
    k, i, j, oh, ow = _indices(x.shape, kh, kw, padding, stride)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = xp[:, k, i, j].transpose(1, 2, 0).reshape(-1, x.shape[0] * oh * ow)
    out = (w.reshape(f, -1) @ cols + b.reshape(-1, 1)).reshape(f, oh, ow, x.shape[0])
    return out.transpose(3, 0, 1, 2), (x, w, cols, stride, padding)


def conv_backward(dout, cache, bug=None):
    x, w, cols, stride, padding = cache
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    d = dout.transpose(1, 2, 3, 0).reshape(f, -1)
    db = dout.sum(axis=0) if bug == "bias over N only" else d.sum(axis=1)
    dw = (d @ cols.T).reshape(w.shape)
    wk = w[:, :, ::-1, ::-1] if bug == "kernel flipped" else w
    dcols = (wk.reshape(f, -1).T @ d).reshape(c * kh * kw, -1, n)
    back_stride = 1 if bug == "stride ignored" else stride
    k, i, j, _, _ = _indices(x.shape, kh, kw, padding, back_stride)
    i, j = i[:, :dcols.shape[1]], j[:, :dcols.shape[1]]  # (the same count when right)
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    np.add.at(dxp, (slice(None), k, i, j), dcols.transpose(2, 0, 1))
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, db


CONV = layers.conv2d(stride=2, padding=1)


def _conv_verify(bug=None):
    return symdiff.verify(CONV.expr, CONV.wrt, lambda d, cache: conv_backward(d, cache, bug),
                          args=CONV.args, forward=lambda x, w, b: conv_forward(x, w, b, 2, 1))


def test_a_right_im2col_convolution_is_right():
    report = _conv_verify()
    assert report.ok, report


@pytest.mark.parametrize("bug, wrong", [
    ("kernel flipped", ["dX"]), ("stride ignored", ["dX"]), ("bias over N only", ["db"])])
def test_convolution_bugs_are_caught_in_their_partials(bug, wrong):
    report = _conv_verify(bug)
    assert not report.ok
    assert [p.name for p in report.partials if not p.ok] == wrong, report
    if bug == "bias over N only":
        assert "misses the sum over axes (1, 2)" in str(report)


def pool_forward(x, size=2):
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // size, size, w // size, size)
    return windows.max(axis=(3, 5)), x


def pool_backward(dout, x, size=2, bug=None):
    """The mask of each window's maxima, each sharing the gradient (or not, with a bug)."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // size, size, w // size, size)
    hit = (windows == windows.max(axis=(3, 5), keepdims=True)).astype(float)
    if bug != "every maximum":
        hit = hit / hit.sum(axis=(3, 5), keepdims=True)
    dx = (hit * dout[:, :, :, None, :, None]).reshape(x.shape)
    if bug == "wrong window":
        dx = np.roll(dx, 1, axis=3)
    return (dx,)


POOL = layers.max_pool2d(2)
TIED = np.repeat(np.repeat(np.arange(8.0).reshape(1, 1, 2, 4), 2, axis=2), 2, axis=3)


def _pool_verify(bug=None, points=None):
    return symdiff.verify(POOL.expr, POOL.wrt, lambda d, x: pool_backward(d, x, bug=bug),
                          args=POOL.args, forward=pool_forward,
                          points=points or [{"X": _even(k)} for k in range(3)])


def _even(seed):
    """A random image of even height and width (the hand code reshapes into 2 x 2 windows)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2 + seed, 3, 4, 6 - 2 * (seed % 2)))


def test_a_right_pooling_backward_is_right_also_at_ties():
    assert _pool_verify().ok
    assert _pool_verify(points=[{"X": TIED}]).ok  # every window a 4-way tie: split evenly


def test_pooling_bugs_are_caught():
    assert not _pool_verify("wrong window").ok
    assert _pool_verify("every maximum").ok  # no ties in random data: the same gradient
    tied = _pool_verify("every maximum", points=[{"X": TIED}])
    assert not tied.ok and "4" in str(tied), tied  # four times the gradient at 4-way ties


def first_max_backward(dout, x, size=2):
    """PyTorch's rule: each window's gradient whole to its first maximum (row-major)."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // size, size, w // size, size).transpose(0, 1, 2, 4, 3, 5)
    flat = windows.reshape(n, c, h // size, w // size, size * size)
    first = np.eye(size * size)[flat.argmax(axis=-1)]
    dx = (first * dout[..., None]).reshape(windows.shape).transpose(0, 1, 2, 4, 3, 5)
    return (dx.reshape(x.shape),)


def test_the_first_maximum_rule_is_another_valid_subgradient_at_ties():
    """Argmax code gives a tied window's gradient to its first maximum: right (another valid
    subgradient, noted), where symdiff splits it; and the same as symdiff without ties."""
    for points in (None, [{"X": TIED}]):
        report = symdiff.verify(POOL.expr, POOL.wrt, first_max_backward, args=POOL.args,
                                forward=pool_forward,
                                points=points or [{"X": _even(k)} for k in range(3)])
        assert report.ok, report
    assert "first" in str(report)
