"""The typical convolution and pooling backward bugs of a hand partial, named by their numbers.

When a wrong hand partial is written by one backward gate of ``tensor_ops`` (``conv2d_dx``,
``conv2d_dw``, ``max_pool2d_dx``) read straight from named values, the gradient is recomputed
under each hypothesised bug from those values at every trial: the kernel flipped (rotated 180
degrees), the stride ignored (dout scattered as if stride 1), the padding cropped at the wrong
offset or not at all, the pooling gradient sent to the first or last entry of each window, to its
minimum, or shifted by one entry or one window. A cause is named only when it reproduces the hand
partial on every trial (``array_diagnose`` calls this before its generic patterns; "" otherwise).
"""

from __future__ import annotations

import numpy as np

from .interpret import program_values
from .matrix_diagnose import close
from .tensor_ops import conv2d_dw, conv2d_dx, max_pool2d_dx, scatter, windows

__all__ = ["tensor_diagnosis"]


def tensor_diagnosis(prog, k: int, trials, hands_k: list, rel: float) -> str:
    """A named conv/pool backward bug that reproduces hand partial ``k`` on every trial."""
    gate = _gate(prog, prog.grads[k])
    if gate is None:
        return ""
    values = [program_values(prog, dict(zip(prog.args, t.args)), t.dout, 20) for t in trials]
    try:
        operands = [[np.asarray(v[a.name], dtype=float) for a in gate.args[:gate.operands]]
                    for v in values]
    except KeyError:
        return ""
    for text, wrong in _hypotheses(gate):
        try:
            if all(close(h, np.asarray(wrong(*ops), dtype=float), rel)
                   for h, ops in zip(hands_k, operands)):
                return text
        except (ValueError, IndexError):  # the bug does not fit these sizes
            continue
    return ""


GATES = (conv2d_dx, conv2d_dw, max_pool2d_dx)


def _gate(prog, name: str):
    """The one whole backward gate writing ``name`` from named values, or None."""
    steps = [g for g in prog.backward if g.name == name]
    if len(steps) != 1 or not steps[0].whole or not isinstance(steps[0].local, GATES):
        return None
    gate = steps[0].local
    return gate if all(a.is_Symbol for a in gate.args[:gate.operands]) else None


def _hypotheses(gate):
    """(text, the gradient under the bug from the gate's operand values) for its gate."""
    if isinstance(gate, conv2d_dx):
        return _dx_bugs(gate.args[1].name, *gate.ints)
    if isinstance(gate, conv2d_dw):
        return _dw_bugs(*gate.ints)
    return _pool_bugs(str(gate.args[1]), *gate.ints)


def _flip(w):
    """A kernel rotated 180 degrees."""
    return w[:, :, ::-1, ::-1]


def _dx_bugs(w_name: str, stride: int, padding: int):
    yield (f"the kernel is flipped (rotated 180 degrees) in the backward: it equals the gradient "
           f"computed with {w_name}[:, :, ::-1, ::-1]; the forward is a cross-correlation, so "
           f"the gradient by the input uses {w_name} as it is (or flips it twice in a full "
           f"convolution)"), lambda d, w, x: conv2d_dx.apply(d, _flip(w), x, stride, padding)
    if stride != 1:
        yield (f"the stride {stride} is ignored in the backward: dout is scattered as if stride "
               f"1 (output (i, j) must go to {stride}*i + p, {stride}*j + q)"
               ), lambda d, w, x: conv2d_dx.apply(d, w, x, 1, padding)
    if padding:
        yield (f"the padding {padding} is not cut off: the gradient has the padded input's "
               f"shape; crop it with [:, :, {padding}:-{padding}, {padding}:-{padding}]"
               ), lambda d, w, x: _padded_dx(d, w, x, stride, padding)
        for at in (0, 2 * padding):
            yield (f"the padding {padding} is cut at the wrong offset: the padded gradient is "
                   f"cropped at [{at}:{at} + H] where [{padding}:{padding} + H] belongs"
                   ), _cropped_at(stride, padding, at)


def _padded_dx(d, w, x, stride: int, padding: int):
    """The gradient by the zero-padded input (before the padding is cut off)."""
    n, c, h, wd = x.shape
    padded = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    return conv2d_dx.apply(d, w, padded, stride, 0)


def _cropped_at(stride: int, padding: int, at: int):
    def wrong(d, w, x):
        h, wd = x.shape[2:]
        return _padded_dx(d, w, x, stride, padding)[:, :, at:at + h, at:at + wd]
    return wrong


def _dw_bugs(stride: int, padding: int):
    yield ("the kernel gradient is flipped (rotated 180 degrees): it equals the exact one "
           "[:, :, ::-1, ::-1]; the forward is a cross-correlation, dW[f, c, p, q] pairs dout "
           "with the input at offset (p, q), not (KH-1-p, KW-1-q)"
           ), lambda d, x, w: _flip(conv2d_dw.apply(d, x, w, stride, padding))
    if stride != 1:
        def unstrided(d, x, w):
            oh, ow = d.shape[2:]
            win = windows(x, w.shape[2], w.shape[3], 1, padding)[:, :, :oh, :ow]
            return np.tensordot(d, win, axes=((0, 2, 3), (0, 2, 3)))
        yield (f"the stride {stride} is ignored in the backward: dout (i, j) is paired with the "
               f"input window at (i, j) where ({stride}*i, {stride}*j) belongs"), unstrided


def _pool_bugs(x_name: str, size: int, stride: int):
    def corner(p, q):
        def wrong(d, x, out):
            return scatter(lambda a, b: d * ((a, b) == (p, q)), x.shape, size, size, stride, 0,
                            0.0)
        return wrong

    def minimum(d, x, out):
        lowest = -windows(x, size, size, stride, 0).min(axis=(4, 5))
        return max_pool2d_dx.apply(d, -x, lowest, size, stride)

    yield ("the gradient goes to the first (top-left) entry of each window, not to its "
           "maximum"), corner(0, 0)
    yield ("the gradient goes to the last (bottom-right) entry of each window, not to its "
           "maximum"), corner(size - 1, size - 1)
    yield (f"the gradient goes to the minimum of each window of {x_name} (argmin where argmax "
           f"belongs)"), minimum
    for axis, what in ((2, "row"), (3, "column")):
        for by, unit in ((1, f"one {what}"), (stride, "one window")):
            for sign, way in ((1, "down" if axis == 2 else "right"),
                              (-1, "up" if axis == 2 else "left")):
                for wrap in (True, False):
                    yield (f"the gradient goes to the wrong window: shifted {unit} {way} of the "
                           f"maximum (off by {by} along axis {axis})"
                           ), _shifted(sign * by, axis, size, stride, wrap)


def _shifted(by: int, axis: int, size: int, stride: int, wrap: bool):
    """The exact pooling gradient moved ``by`` entries along ``axis``, wrapping round (as
    np.roll) or losing what falls off the edge."""
    def wrong(d, x, out):
        exact = np.asarray(max_pool2d_dx.apply(d, x, out, size, stride), dtype=float)
        moved = np.roll(exact, by, axis=axis)
        if not wrap:
            edge = [slice(None)] * 4
            edge[axis] = slice(0, by) if by > 0 else slice(by, None)
            moved[tuple(edge)] = 0
        return moved
    return wrong
