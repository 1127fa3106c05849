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
    if bug == "kernel flipped":
        assert "the kernel is flipped (rotated 180 degrees)" in str(report)


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


def conv_backward_naive(dout, cache, bug=None):
    """The textbook loop (cs231n's conv_backward_naive): each output entry sends dout back to
    its window of the padded input and pairs with it for dw; ``bug`` is one typical mistake."""
    x, w, _, stride, pad = cache
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    step = 1 if bug == "stride ignored" else stride
    for n, f, i, j in np.ndindex(*dout.shape):
        rows, cols = slice(i * step, i * step + kh), slice(j * step, j * step + kw)
        kernel = w[f, :, ::-1, ::-1] if bug == "kernel flipped" else w[f]
        if bug == "kernel flipped in H only":
            kernel = w[f, :, ::-1, :]
        dxp[n, :, rows, cols] += kernel * dout[n, f, i, j]
        window = xp[n, :, rows, cols]
        dw[f] += (window[:, ::-1, ::-1] if bug == "dw flipped" else window) * dout[n, f, i, j]
    h, wd = x.shape[2:]
    crop = {"not cropped": (0, h + 2 * pad), "cropped at 0": (0, h)}.get(bug, (pad, pad + h))
    dx = dxp[:, :, crop[0]:crop[1], crop[0]:crop[1] - h + wd]
    return dx, dw, dout.sum(axis=(0, 2, 3))


NAIVE = {"kernel flipped": {"dX": "the kernel is flipped (rotated 180 degrees)"},
         "dw flipped": {"dWt": "the kernel gradient is flipped (rotated 180 degrees)"},
         "stride ignored": {"dX": "the stride 2 is ignored", "dWt": "the stride 2 is ignored"},
         "not cropped": {"dX": "the padding 1 is not cut off"},
         "cropped at 0": {"dX": "the padding 1 is cut at the wrong offset: the padded gradient "
                                "is cropped at [0:0 + H]"}}


def _naive_verify(bug=None):
    return symdiff.verify(CONV.expr, CONV.wrt,
                          lambda d, cache: conv_backward_naive(d, cache, bug), args=CONV.args,
                          forward=lambda x, w, b: conv_forward(x, w, b, 2, 1))


def test_a_right_naive_loop_convolution_is_right():
    report = _naive_verify()
    assert report.ok, report


@pytest.mark.parametrize("bug", sorted(NAIVE))
def test_the_typical_convolution_backward_bugs_are_named(bug):
    report = _naive_verify(bug)
    wrong = {p.name: p.diagnosis for p in report.partials if not p.ok}
    assert sorted(wrong) == sorted(NAIVE[bug]), report
    for name, cause in NAIVE[bug].items():
        assert cause in wrong[name], report


def test_a_kernel_flipped_along_one_axis_is_not_called_rotated():
    report = _naive_verify("kernel flipped in H only")
    wrong = {p.name: p.diagnosis for p in report.partials if not p.ok}
    assert list(wrong) == ["dX"] and "rotated" not in wrong["dX"], report


def pool_backward_loop(dout, x, size=2, bug=None):
    """The textbook loop: each window's dout to the argmax of the window (or, with a bug, to
    its argmin or its first entry)."""
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*dout.shape):
        window = x[n, c, i * size:(i + 1) * size, j * size:(j + 1) * size]
        pick = {"argmin": window.argmin(), "first entry": 0}.get(bug, window.argmax())
        p, q = np.unravel_index(pick, window.shape)
        dx[n, c, i * size + p, j * size + q] += dout[n, c, i, j]
    return (dx,)


POOL_BUGS = {"argmin": "the gradient goes to the minimum of each window of X",
             "first entry": "the gradient goes to the first (top-left) entry of each window"}


@pytest.mark.parametrize("bug", [None, *sorted(POOL_BUGS)])
def test_the_typical_pooling_backward_bugs_are_named(bug):
    report = symdiff.verify(POOL.expr, POOL.wrt, lambda d, x: pool_backward_loop(d, x, bug=bug),
                            args=POOL.args, forward=pool_forward,
                            points=[{"X": _even(k)} for k in range(3)])
    assert report.ok == (bug is None), report
    if bug:
        assert POOL_BUGS[bug] in report.partials[0].diagnosis, report


def test_a_pooling_gradient_one_column_over_is_named():
    report = _pool_verify("wrong window")  # np.roll(dx, 1, axis=3)
    assert "wrong window: shifted one column right" in report.partials[0].diagnosis, report
