"""Explain a wrong hand partial of a matrix formula: the simplest pattern over every trial.

A trial is one set of random sizes and arrays (``Trial``); the explanation must fit all of them.
Tried in order: a wrong shape (transposed, a missing sum over an axis, right values in a wrong
shape), zero everywhere, a backward that does not scale with ``dout``, the transpose of the
gradient, a constant factor (sign flipped, 2), a factor of a dimension or a product of two (a
missing 1/N, 1/(T*N)), another argument's partial (swapped), one or two terms lost at forks of the
staged program, a commonly confused local derivative (``diagnose.CONFUSIONS``), and last the
entries where it is wrong: exactly where an argument or a step is negative or positive ("wrong
exactly where X < 0"). The scalar explanations live in ``diagnose.py``; the two share the
constant-factor text, the fork variants and the confusions.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np
import sympy as sp

from .array_ops import axis_max, matmul, max_mask, transpose
from .dag import postorder, substitute
from .diagnose import _drop, _nice, _text, confusion_variants, fork_variants
from .interpret import program_values
from .matrix_diagnose import close, explains, matrix_diagnosis, step_factor
from .tensor_diagnose import tensor_diagnosis

__all__ = ["Trial", "close", "diagnose_arrays"]


class Trial(NamedTuple):
    """One random trial: concrete sizes, the arguments, the upstream gradient, exact partials."""

    sizes: dict
    args: list
    dout: object
    exact: list
    out: object = None  # the formula's value


def diagnose_arrays(k: int, prog, trials: list[Trial], hands: list, rel: float,
                    half: list | None = None, rerun=None) -> str:
    """A short lowercase explanation of why hand partial ``k`` is wrong on the trials.

    ``half`` is the hand backward's partials at ``dout / 2`` and again at ``dout`` on the first
    trial, when there is a ``dout`` (None for a gradient callable). ``rerun(i, args)`` is the
    hand's partials on trial i's dout at other arguments (None where it fails)."""
    name = prog.grads[k]
    arg = next(i.name for i in prog.inputs if i.grad == name)
    pairs = [(h[k], t.exact[k]) for h, t in zip(hands, trials)]
    if any(h.shape != e.shape for h, e in pairs):  # a padding not cut off (tensor_diagnose)
        return tensor_diagnosis(prog, k, trials, [h for h, _ in pairs], rel) or _shape(
            arg, pairs, rel)
    if all(not np.any(h) for h, _ in pairs):
        return "is zero everywhere"
    if half is not None and not close(np.asarray(half[1][k], dtype=float), pairs[0][0], rel):
        return ("not reproducible: two runs of the hand code on the same arrays and dout give "
                "different partials (does it draw its own random numbers, or keep state?)")
    if half is not None and not close(2 * np.asarray(half[0][k], dtype=float), pairs[0][0], rel):
        return ("does not scale with dout: backward(dout / 2, cache) is not half of "
                "backward(dout, cache); multiply by the upstream gradient dout")
    matrix = matrix_diagnosis(prog, k, trials, [h for h, _ in pairs], rel, rerun)
    if matrix:  # an inverse transposed, a missing A + Aᵀ (matrix_diagnose)
        return matrix
    if all(close(h, e.T, rel) for h, e in pairs):
        return f"is transposed: it is the transpose of the gradient of {arg}"
    factor = _factor(trials, pairs, rel, _scalars(prog, trials), prog)
    if factor:
        return factor
    for j, other in enumerate(prog.grads):
        if j != k and all(close(h, t.exact[j], rel) for (h, _), t in zip(pairs, trials)):
            return f"swapped: it equals the partial {other}"
    tensor = tensor_diagnosis(prog, k, trials, [h for h, _ in pairs], rel)
    if tensor:  # a kernel flipped, a stride ignored, a pooling window missed (tensor_diagnose)
        return tensor
    relevant = _relevant(prog, k)
    for variants in (_forks, confusion_variants, _argmin, _passed_through, _scaled_terms,
                     _transposes, _wrong_arrays, _fork_pairs):
        for backward, text in variants(prog):
            if _touches(prog, backward, relevant) and _explains(prog, backward, k, trials,
                                                                  pairs, rel):
                return text
    region = _region(prog, trials, pairs, rel) or _imprecise(pairs)
    if region:
        return region
    bad = sum(1 for h, e in pairs if not close(h, e, rel))
    return f"wrong at {bad} of {len(pairs)} sets of arrays, with no simple pattern"


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
                how = (f".sum(axis=0) for a 1-D bias of shape ({e.shape[1]},), or .sum(axis=0, "
                       f"keepdims=True) for a row of shape {e.shape}" if axis == 0
                       else f".sum(axis={axis}, keepdims=True)")
                return (f"misses the sum over {which}: shape {h.shape} where {arg} has shape "
                        f"{e.shape}; sum it with {how}")
        if h.size == e.size and close(h.reshape(e.shape), e, rel):
            return f"has the right values in the wrong shape: {h.shape}, expected {e.shape}"
        return (_missing_sums(arg, h, e, rel)
                or f"has shape {h.shape} where {arg} has shape {e.shape}")
    return "has the wrong shape"


def _missing_sums(arg, h, e, rel) -> str:
    """A 1-D gradient (a channel bias) left unsummed over some axes of an N-D hand array."""
    if e.ndim != 1 or h.ndim < 2:
        return ""
    for keep in (k for k in range(h.ndim) if h.shape[k] == e.shape[0]):
        axes = tuple(k for k in range(h.ndim) if k != keep)
        if close(h.sum(axis=axes), e, rel):
            return (f"misses the sum over axes {axes}: shape {h.shape} where {arg} has shape "
                    f"{e.shape}; sum it with .sum(axis={axes})")
    return ""


def _scalars(prog, trials) -> dict[str, list[float]]:
    """The scalar arguments' values per trial (a factor may follow one: a missing 1/(1 - p))."""
    return {i.name: [float(t.args[k]) for t in trials] for k, i in enumerate(prog.inputs)
            if not np.ndim(trials[0].args[k])}


SCALAR_FACTORS = (("{s}", lambda v: v), ("1/{s}", lambda v: 1 / v),
                  ("(1 - {s})", lambda v: 1 - v), ("1/(1 - {s})", lambda v: 1 / (1 - v)))


def _factor(trials, pairs, rel, scalars, prog) -> str:
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
    dims = list(trials[0].sizes)
    for group in [(d,) for d in dims] + list(itertools.combinations(dims, 2)):
        sizes = [int(np.prod([t.sizes[d] for d in group])) for t in trials]
        if len(set(sizes)) == 1:  # the same size in every trial: no way to tell
            continue
        what = "*".join(str(d) for d in group)
        shown = what if len(group) == 1 else f"({what})"
        if all(abs(c - n) <= rel * n for c, n in zip(ratios, sizes)):
            return f"off by a factor of {what}: a missing 1/{shown}"
        if all(abs(c * n - 1) <= rel for c, n in zip(ratios, sizes)):
            return f"off by a factor of 1/{shown}: divides by {what} once too often"
    for name, values in scalars.items():
        if len(set(values)) == 1:
            continue
        for form, f in SCALAR_FACTORS:
            with np.errstate(all="ignore"):
                want = [f(v) for v in values]
            if all(np.isfinite(w) and abs(c - w) <= rel * max(1.0, abs(w))
                   for c, w in zip(ratios, want)):
                text = form.format(s=name)
                return f"off by a factor of {text} (it follows {name}): hand = {text} * exact"
    return step_factor(prog, trials, ratios, rel)  # a missing det(X), say


def _line(step) -> str:
    return f"{step.name} = {step.rhs}"


def _forks(prog):
    """One term lost at a fork (``diagnose.fork_variants``)."""
    return fork_variants(prog, _line)


def _argmin(prog):
    """The gradient of a max sent to the minimum (argmin for argmax)."""
    for m, g in enumerate(prog.backward):
        masks = [n for n in postorder(g.local) if isinstance(n, max_mask)]
        for mask in masks:
            a, _, axis = mask.args
            backward = list(prog.backward)
            backward[m] = dataclasses.replace(g, local=substitute(
                g.local, {mask: max_mask(-a, axis_max(-a, axis), axis)}))
            yield backward, (f"the gradient of the maximum goes to the minimum of {a} along axis "
                             f"{axis} (argmin where argmax belongs)")


def _relevant(prog, k: int) -> set[int]:
    """The backward steps partial ``k`` depends on: those writing its gradient, and those
    writing an upstream gradient of one of them."""
    needed, steps = {prog.grads[k]}, set()
    for m in range(len(prog.backward) - 1, -1, -1):
        g = prog.backward[m]
        if g.name in needed:
            steps.add(m)
            needed.add(g.upstream)
    return steps


def _touches(prog, backward, relevant: set[int]) -> bool:
    """A variant of the same length changes partial k only where it changes a relevant step
    (a variant that drops a step is always tried)."""
    if len(backward) != len(prog.backward):
        return True
    return any(a is not b for m, (a, b) in enumerate(zip(backward, prog.backward))
               if m in relevant)


def _replaced(prog, m: int, local) -> list:
    backward = list(prog.backward)
    backward[m] = dataclasses.replace(backward[m], local=local)
    return backward


def _shape_of(prog, name: str):
    """The shape of a value, or of the value whose gradient ``name`` is (d<value>)."""
    shapes = prog.shapes or {}
    return shapes.get(name, shapes.get(name[1:]) if name.startswith("d") else None)


def _passed_through(prog):
    """A backward term that passes its upstream gradient on unchanged (the local derivative
    of the step, tanh' or a gate's factor, left out)."""
    for m, g in enumerate(prog.backward):
        up = sp.Symbol(g.upstream, real=True)
        if g.whole and g.local != up and _shape_of(prog, g.upstream) == _shape_of(prog, g.name):
            yield _replaced(prog, m, up), (
                f"the gradient passes through `{_line(prog.step(g.source))}` unchanged into "
                f"{g.name}: the step's local derivative is missing")


def _scaled_terms(prog):
    """One backward term with its sign flipped, or a factor 2 or 1/2 too many."""
    for factor, what in ((-1, "its sign flipped"), (2, "a factor 2 too many"),
                         (sp.Rational(1, 2), "a factor 1/2 too many")):
        for m, g in enumerate(prog.backward):
            yield _replaced(prog, m, factor * g.local), (
                f"one term has {what}: the term of {g.name} from "
                f"`{_line(prog.step(g.source))}`")


def _transposes(prog):
    """A matrix product in a backward term with a transpose missing or one too many."""
    for m, g in enumerate(prog.backward):
        for product in [n for n in postorder(g.local) if isinstance(n, matmul)]:
            for k, a in enumerate(product.args):
                flipped = a.args[0] if isinstance(a, transpose) else transpose(a)
                what = (f"an extra transpose of {flipped}" if isinstance(a, transpose) else
                        f"a missing transpose of {a}")
                args = list(product.args)
                args[k] = flipped
                yield _replaced(prog, m, substitute(g.local, {product: matmul(*args)})), (
                    f"{what} in the term of {g.name} from `{_line(prog.step(g.source))}`")


def _wrong_arrays(prog, limit: int = 200):
    """A backward term that reads another value of the same shape (next_h where prev_h
    belongs). At most ``limit`` variants."""
    values = list(prog.args) + [s.name for s in prog.forward]
    count = 0
    for m, g in enumerate(prog.backward):
        for used in sorted({n for n in postorder(g.local) if n.is_Symbol and n.name in values},
                           key=str):
            for other in values + [g.upstream]:  # dout for x: a mask taken from the gradient
                if other == used.name or _shape_of(prog, other) != _shape_of(prog, used.name):
                    continue
                if count == limit:
                    return
                count += 1
                local = substitute(g.local, {used: sp.Symbol(other, real=True)})
                yield _replaced(prog, m, local), (
                    f"the term of {g.name} from `{_line(prog.step(g.source))}` uses {other} "
                    f"where {used} belongs")


def _fork_pairs(prog, limit: int = 60):
    """Two terms lost at forks, each dropped: the path through the mean and the variance of a
    batch norm, say. At most ``limit`` pairs."""
    writes: dict[str, int] = {}
    for g in prog.backward:
        writes[g.name] = writes.get(g.name, 0) + 1
    forked = [m for m, g in enumerate(prog.backward) if writes[g.name] > 1]
    for a, b in itertools.islice(itertools.combinations(forked, 2), limit):
        first, second = prog.backward[a], prog.backward[b]
        backward = _drop(_drop(prog.backward, b), a)
        yield backward, (f"missing two terms at forks: the paths from {first.name[1:]} through "
                         f"`{_line(prog.step(first.source))}` and from {second.name[1:]} through "
                         f"`{_line(prog.step(second.source))}`")


def _explains(prog, backward, k, trials, pairs, rel) -> bool:
    return explains(prog, prog.forward, backward, k, trials, [h for h, _ in pairs], rel)


def _region(prog, trials, pairs, rel) -> str:
    """The entries where the hand partial is wrong are exactly where an argument or a forward
    step of the partial's shape is negative (or positive): a mask on the wrong side or array."""
    wrong = [~np.isclose(h, e, rtol=0, atol=rel * max(float(np.max(np.abs(e))), 1e-12))
             for h, e in pairs]
    quiet = [np.isclose(e, 0, rtol=0, atol=rel * max(float(np.max(np.abs(e))), 1e-12))
             for _, e in pairs]
    candidates, varies = None, set()
    for t, (_, e), bad, zero in zip(trials, pairs, wrong, quiet):
        values = program_values(prog, dict(zip(prog.args, t.args)), t.dout, 20)
        forward = list(prog.args) + [s.name for s in prog.forward]
        named = [(n, np.asarray(values[n], dtype=float)) for n in forward
                 if n in values and np.shape(values[n]) == e.shape]
        found = set()
        for n, v in named:
            for side, inside in (("< 0", v < 0), ("> 0", v > 0)):
                if np.any(bad) and not np.any(bad & ~inside) and not np.any(~bad & inside & ~zero):
                    found.add((n, side))
                    if not inside.all():
                        varies.add((n, side))
        candidates = found if candidates is None else candidates & found
        if not candidates:
            return ""
    candidates &= varies  # a quantity of one sign everywhere says nothing about where
    if not candidates:
        return ""
    n, side = sorted(candidates)[0]
    there = _what_there(pairs, wrong)
    return f"wrong exactly where {n} {side}" + (f" (there it is {there})" if there else "")


IMPRECISE = 1e-2  # a hand partial this close (relative to the largest entry) is imprecise
PRECISIONS = (("float16", 2.0**-10), ("float32", 2.0**-23))


def _imprecise(pairs) -> str:
    """Close everywhere, beyond float noise: a lower precision somewhere, or a small term."""
    worst = max(float(np.max(np.abs(h - e))) / max(float(np.max(np.abs(e))), 1e-300)
                for h, e in pairs)
    if not worst <= IMPRECISE:
        return ""
    like = next((f"; about the rounding of {name} (eps {eps:.2g}): a value computed or cached "
                 f"in {name}?" for name, eps in PRECISIONS if eps / 16 <= worst <= 64 * eps), "")
    return (f"close but not right: errors up to {worst:.2g} of the largest entry, beyond the "
            f"float noise of the hand code's precision{like or ' (a small term missing, an eps?)'}")


def _what_there(pairs, wrong) -> str:
    if all(not np.any(h[bad]) for (h, _), bad in zip(pairs, wrong)):
        return "0"
    if all(np.allclose(h[bad], -e[bad]) for (h, e), bad in zip(pairs, wrong)):
        return "the negative of the exact partial"
    return ""
