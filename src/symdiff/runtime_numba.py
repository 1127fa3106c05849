"""Helpers that generated numba-backend modules carry, as ordinary tested Python.

A numba module is the math backend's program compiled per point (``numba.njit``) and run in one
loop over arrays, so it carries the math helpers, except those here. Each top-level def here is
one helper: ``runtime.helper_source`` copies its text verbatim, and the emitter puts the
backend's jit decorator above the helpers the compiled code calls. Invariants: this module
imports only ``math`` and ``numpy`` (generated modules run without symdiff installed); the
per-point helpers (``sigmoid`` to ``logsumexp``) are plain Python over floats that numba can
compile, and return nan where the math helper would raise or hide one (an array point has no
exception of its own: NumPy's convention); the array helpers (``broadcast`` to ``unbroadcast``)
run in Python around the compiled loops.
"""

import math

import numpy as np


def sigmoid(t):
    """1/(1 + exp(-t)) with no overflow and no branch (the select compiles to a blend):
    e = exp(-|t|) <= 1, and 1/(1 + e) or e/(1 + e) by the sign of t; nan stays nan."""
    e = math.exp(-abs(t))
    s = 1.0 / (1.0 + e)
    return s if t >= 0.0 else e * s


def relu(t):
    """max(t, 0), and nan for nan (as np.maximum; the math helper's t > 0 test gives 0)."""
    return 0.0 if t <= 0.0 else t


def undefined():
    """nan where the formula is undefined: one bad point does not stop the whole array."""
    return math.nan


def maximum(a, b):
    """The larger of a and b, nan if either is (np.maximum; Python's max(1.0, nan) is 1.0)."""
    return a if a >= b or a != a else b


def minimum(a, b):
    """The smaller of a and b, nan if either is (np.minimum; Python's min(1.0, nan) is 1.0)."""
    return a if a <= b or a != a else b


def heaviside(t, at_zero):
    """1 for t > 0, 0 for t < 0, at_zero at 0, and nan for nan (as np.heaviside)."""
    return 1.0 if t > 0.0 else (0.0 if t < 0.0 else (at_zero if t == 0.0 else t))


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...), with no overflow: the largest term is factored out,
    so every exp is at most 1 (and the sum at least 1). A plain sum (numba has no fsum)."""
    top = terms[0]
    for t in terms:
        top = maximum(top, t)
    if math.isinf(top):
        return top
    total = 0.0
    for t in terms:
        total += math.exp(t - top)
    return top + math.log(total)


def broadcast(*args):
    """The arguments as float64 arrays broadcast together: their common shape, and each as
    a flat contiguous array (a view unless it was broadcast, strided or of another dtype).
    A complex argument is a TypeError (float64 would drop its imaginary part)."""
    if any(np.iscomplexobj(a) for a in args):
        raise TypeError("a complex argument: the numba backend's code computes over the reals")
    arrays = [np.asarray(a, dtype=np.float64) for a in args]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return shape, tuple(np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)
                        for a in arrays)


def upstream(grad, shape):
    """An upstream gradient as a flat float64 array over the points of shape (a ValueError
    if it does not broadcast to it: the loop reads exactly one entry per point)."""
    g = np.broadcast_to(np.asarray(grad, dtype=np.float64), shape)
    return np.ascontiguousarray(g).reshape(-1)


def results(shape, count):
    """count fresh flat float64 arrays, one entry per point of shape, for a loop to fill."""
    size = math.prod(shape)
    return tuple(np.empty(size) for _ in range(count))


def shaped(flat, shape):
    """A loop's flat result in the points' shape; a NumPy float when the shape is ()."""
    return flat.reshape(shape)[()]
