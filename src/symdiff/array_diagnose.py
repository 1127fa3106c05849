"""Explain a wrong hand partial of a matrix formula: the simplest pattern over every trial.

A trial is one set of random sizes and arrays (``Trial``); the explanation must fit all of them.
Tried in order: a wrong shape (transposed, a missing sum over an axis, right values in a wrong
shape), zero everywhere, the transpose of the gradient, a constant factor (sign flipped, 2),
a factor of a dimension (a missing 1/N), another argument's partial (swapped), one term lost at a
fork of the staged program. The scalar explanations live in ``diagnose.py``; the two share the
constant-factor text and the fork variants.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .diagnose import _nice, _text, fork_variants


class Trial(NamedTuple):
    """One random trial: concrete sizes, the arguments, the upstream gradient, exact partials."""

    sizes: dict
    args: list
    dout: object
    exact: list


def close(a, b, rel: float) -> bool:
    """Same shape, and every entry within ``rel`` times the largest exact entry."""
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return bool(np.all(np.abs(a - b) <= rel * scale))


def diagnose_arrays(k: int, prog, trials: list[Trial], hands: list, rel: float) -> str:
    """A short lowercase explanation of why hand partial ``k`` is wrong on the trials."""
    name = prog.grads[k]
    arg = next(i.name for i in prog.inputs if i.grad == name)
    pairs = [(h[k], t.exact[k]) for h, t in zip(hands, trials)]
    if any(h.shape != e.shape for h, e in pairs):
        return _shape(arg, pairs, rel)
    if all(not np.any(h) for h, _ in pairs):
        return "is zero everywhere"
    if all(close(h, e.T, rel) for h, e in pairs):
        return f"is transposed: it is the transpose of the gradient of {arg}"
    factor = _factor(trials, pairs, rel)
    if factor:
        return factor
    for j, other in enumerate(prog.grads):
        if j != k and all(close(h, t.exact[j], rel) for (h, _), t in zip(pairs, trials)):
            return f"swapped: it equals the partial {other}"
    fork = _fork(k, prog, trials, pairs, rel)
    if fork:
        return fork
    bad = sum(1 for h, e in pairs if not close(h, e, rel))
    return f"wrong at {bad} of {len(pairs)} random arrays, with no simple pattern"


def _shape(arg, pairs, rel) -> str:
    for h, e in pairs:
        if h.shape == e.shape:
            continue
        if h.shape == e.T.shape and close(h.T, e, rel):
            return (f"is transposed: shape {h.shape} where {arg} has shape {e.shape} "
                    f"(the values are those of the transpose)")
        for axis in (0, 1):
            if (e.ndim == 2 and e.shape[axis] == 1 and h.ndim == 2
                    and h.shape[1 - axis] == e.shape[1 - axis]
                    and close(h.sum(axis=axis, keepdims=True), e, rel)):
                which = "the batch axis (axis 0)" if axis == 0 else "axis 1"
                return (f"misses the sum over {which}: shape {h.shape} where {arg} has shape "
                        f"{e.shape}; sum it with .sum(axis={axis}, keepdims=True)")
        if h.size == e.size and close(h.reshape(e.shape), e, rel):
            return f"has the right values in the wrong shape: {h.shape}, expected {e.shape}"
        return f"has shape {h.shape} where {arg} has shape {e.shape}"
    return "has the wrong shape"


def _factor(trials, pairs, rel) -> str:
    ratios = []
    for h, e in pairs:
        norm = float(np.sum(e * e))
        if norm == 0:
            return ""
        c = float(np.sum(h * e)) / norm
        if not close(h, c * e, rel):
            return ""
        ratios.append(c)
    if all(abs(c - ratios[0]) <= rel * max(1.0, abs(ratios[0])) for c in ratios):
        c = _nice(ratios[0])
        if c == -1:
            return "sign flipped: hand = -exact on every array"
        sign = " (sign flipped)" if c < 0 else ""
        return f"off by a factor of {_text(c)}{sign}: hand = {_text(c)} * exact on every array"
    for d in trials[0].sizes:
        sizes = [t.sizes[d] for t in trials]
        if all(abs(c - n) <= rel * n for c, n in zip(ratios, sizes)):
            return f"off by a factor of {d}: a missing 1/{d}"
        if all(abs(c * n - 1) <= rel for c, n in zip(ratios, sizes)):
            return f"off by a factor of 1/{d}: divides by {d} once too often"
    return ""


def _fork(k, prog, trials, pairs, rel) -> str:
    """The hand partial equals the generated one with one term of a fork left out."""
    for backward, text in fork_variants(prog, lambda step: f"{step.name} = {step.rhs}"):
        if _explains(prog, backward, k, trials, pairs, rel):
            return text
    return ""


def _explains(prog, backward, k, trials, pairs, rel) -> bool:
    variant = dataclasses.replace(prog, backward=tuple(backward), _cache={})
    try:
        module = variant.compile("numpy")
        return all(close(h, np.asarray(module.backward(t.dout, module.forward(*t.args)[1])[k],
                                       dtype=float), rel)
                   for (h, _), t in zip(pairs, trials))
    except Exception:  # a variant that does not run explains nothing
        return False
