"""verify() of a matrix formula: a hand gradient against symdiff's generated one, on arrays.

symdiff's own gradient is first checked (``check``: the formula written out entry by entry and
differentiated by sympy.diff, and central differences). The hand code then runs on trials: the
user's arrays and sets of random arrays at distinct random sizes, so a factor that follows a
dimension shows. Each partial is judged within a tolerance that follows the dtype it was computed
in (float32 code is judged as float32); a hand forward's value is judged too. A wrong partial is
explained by ``array_diagnose``.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from .array_diagnose import Trial, close, diagnose_arrays
from .array_reference import CACHED, formula_key
from .check import CheckError, check
from .diagnose import kink_variants
from .errors import ArgumentError
from .hand import HandFailure, call_arrays
from .interpret import program_values
from .reports import PartialVerdict, VerifyReport
from .sampling import (
    argument_kinds,
    drawing_rules,
    finite_run,
    given_arrays,
    sizes_text,
    trial_sizes,
)
from .tolerance import HAND_REL

ARRAY_SAMPLES = 6  # sets of random arrays, by default (none when points are given)
HAND_EPS_SAFETY = 256  # hand code may differ by HAND_REL (relative to the largest exact entry)
# or by this many units of the float precision it computed in, if larger


def verify_arrays(prog, grad, forward, points, samples, seed, domain, strict=False,
                  kinds=None) -> VerifyReport:
    """A hand gradient of a matrix formula against the generated (and checked) one."""
    given = [given_arrays(prog, p) for p in points or []]
    checked = _self_check(prog, seed, kinds, given[0] if given else {})
    samples = (0 if given else ARRAY_SAMPLES) if samples is None else samples
    trials = _trials(prog, given + [{}] * samples, forward is not None, seed, domain, kinds)
    n = len(prog.grads)
    masked = [k for k, i in enumerate(prog.inputs) if argument_kinds(prog, kinds).get(i.name)
              == "mask"]
    runs, failure = [], None
    for t in trials:
        try:
            runs.append(call_arrays(grad, forward, t.args, t.dout, n,
                                    [t.args[k] for k in masked]))
        except HandFailure as exc:
            failure = f"{exc} (sizes {sizes_text(t.sizes)})"
            break
    verdicts = [PartialVerdict(g, ok=not failure, diagnosis=failure or "")
                for g in prog.grads]
    notes, value = [], None
    if not failure:
        half = _at_half_dout(grad, forward, trials[0], n, [trials[0].args[k] for k in masked])
        half = None if half is None else [_conventions(prog, h, trials[0], []) for h in half]
        hands = [_conventions(prog, partials, t, notes) for (partials, _), t in zip(runs, trials)]

        def rerun(i, args):  # the hand's partials at other arguments (a diagnosis tries Aᵀ)
            try:
                got = call_arrays(grad, forward, args, trials[i].dout, n,
                                  [args[m] for m in masked])[0]
            except HandFailure:
                return None
            return [np.asarray(p, dtype=float) for p in _conventions(prog, got, trials[i], [])]
        for k, v in enumerate(verdicts):
            unit = max(_eps(h[k]) for h in hands)
            rel = max(HAND_REL, HAND_EPS_SAFETY * unit)
            _judge_array(v, k, prog, trials, [[np.asarray(p, dtype=float) for p in h]
                                              for h in hands], (rel, unit), (half, rerun),
                         strict, notes)
        if forward is not None:
            value = _judge_value(prog, trials, [v for _, v in runs])
    hand_text = ("backward(dout, cache) paired with forward(*args)" if forward is not None
                 else "a callable of the formula's arguments")
    sampled = (f"sets of arrays ({len(given)} given, {samples} random)" if given
               else "sets of random arrays")
    ok = all(v.ok for v in verdicts) and (value is None or value.ok)
    return VerifyReport(ok, prog.text or "(formula too long to print)",
                        "symdiff's generated gradient, itself checked against " + checked.oracle,
                        hand_text, [{d.name: n for d, n in t.sizes.items()} for t in trials],
                        verdicts, notes, sampled=sampled, value=value)


def _self_check(prog, seed, kinds, given: dict):
    """symdiff's own gradient checked once per formula, seed, kinds and sizes (an LRU of
    CACHED): at the sizes of the first arrays given, if any (a formula may be singular at
    others: log det(R'R) needs R tall)."""
    sizes = None
    if given:
        sizes = {d.name: int(n) for d, n in trial_sizes(prog, given, random.Random(seed)).items()}
    key = (formula_key(prog), seed, tuple(sorted((str(k), v) for k, v in (kinds or {}).items())),
           tuple(sorted((sizes or {}).items())))
    if key not in _CHECKED:
        if len(_CHECKED) >= CACHED:
            _CHECKED.pop(next(iter(_CHECKED)))
        checked = check(prog, samples=1, seed=seed, kinds=kinds, sizes=sizes)
        if not checked.ok:
            raise CheckError("symdiff's own gradient failed its check\n" + str(checked))
        _CHECKED[key] = checked
    return _CHECKED[key]


_CHECKED: dict = {}


def _trials(prog, fixed_arrays: list[dict], random_dout: bool, seed: int, domain,
            kinds) -> list[Trial]:
    """One trial per set of fixed arrays ({} for all random): sizes, arguments where the
    formula is finite, ``dout`` (random with a backward pair, else ones), exact partials."""
    module = prog.compile("numpy")
    rng, pyrng = np.random.default_rng(seed), random.Random(seed)
    rules = drawing_rules(prog, domain, kinds)
    trials = []
    for fixed in fixed_arrays:
        sizes = trial_sizes(prog, fixed, pyrng)
        run = finite_run(module, prog, sizes, rng, rules, fixed)
        if run is None:
            raise ArgumentError(f"the formula is not finite at the arrays given (sizes "
                                f"{sizes_text(sizes)})")
        args, out = run
        if random_dout:
            dout = rng.normal(size=np.shape(out)) if np.ndim(out) else float(rng.normal())
        else:
            dout = np.ones_like(out) if np.ndim(out) else 1.0
        exact = [np.asarray(g, dtype=float) for g in module.backward(dout,
                                                                      module.forward(*args)[1])]
        trials.append(Trial(sizes, args, dout, exact, np.asarray(out, dtype=float)))
    return trials


def _conventions(prog, partials: list, trial: Trial, notes: list) -> list:
    """The hand partials, with a 1-D bias gradient of shape (M,) read as the (1, M) row it is
    the gradient of (both conventions are right; the notes say which was seen)."""
    result = []
    by_grad = {i.grad: i for i in prog.inputs if i.grad is not None}
    wrt = [by_grad[g] for g in prog.grads]  # the partials' order
    for i, p, e in zip(wrt, partials, trial.exact):
        if e.ndim == 2 and e.shape[0] == 1 and p.shape == e.shape[1:]:
            note = (f"{i.grad} is returned 1-D, shape ({p.shape[0]},), for the row {i.name} of "
                    f"shape (1, {p.shape[0]}): the 1-D bias convention, accepted")
            if note not in notes:
                notes.append(note)
            p = p.reshape(1, -1)
        result.append(p)
    return result


def _judge_value(prog, trials, values) -> PartialVerdict:
    """The hand forward's value against the formula's (generated forward) on every trial."""
    verdict = PartialVerdict("value", ok=True)  # the forward's, beside the partials
    for t, value in zip(trials, values):
        rel = max(HAND_REL, HAND_EPS_SAFETY * _eps(value))
        got = np.asarray(value, dtype=float)
        if got.shape != t.out.shape and got.size == t.out.size == 1:
            got = got.reshape(t.out.shape)  # a scalar loss as a float or a 1 x 1 array
        if got.shape == t.out.shape:
            err = float(np.max(np.abs(got - t.out), initial=0.0))
            scale = max(float(np.max(np.abs(t.out), initial=0.0)), 1e-300)
            verdict.max_abs_error = max(verdict.max_abs_error, err)
            verdict.max_rel_error = max(verdict.max_rel_error, err / scale)
        if not close(got, t.out, rel):
            verdict.ok = False
            verdict.worst_point = {d.name: n for d, n in t.sizes.items()}
            verdict.diagnosis = (f"forward returns a wrong value (shape {got.shape}, the "
                                 f"formula's {t.out.shape})" if got.shape != t.out.shape else
                                 "forward returns a wrong value: it is not the formula's")
            if got.shape == t.out.shape:
                err = float(np.max(np.abs(got - t.out), initial=0.0))
                verdict.detail = (f"at sizes {sizes_text(t.sizes)}: max error {err:.3g} "
                                  f"(largest entry {float(np.max(np.abs(t.out))):.3g})")
            return verdict
    return verdict


def _eps(partial) -> float:
    """The unit of the precision a hand partial was computed in (float64 for non-floats)."""
    dtype = np.asarray(partial).dtype
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(float).eps)


def _at_half_dout(grad, forward, trial, n, masks) -> tuple | None:
    """The hand backward at ``dout / 2`` (a backward must scale with dout) and again at
    ``dout`` (it must give the same partials twice), or None."""
    if forward is None:
        return None
    try:
        return tuple(call_arrays(grad, forward, trial.args, d, n, masks)[0]
                     for d in (trial.dout / 2, trial.dout))
    except HandFailure:
        return None


def _judge_array(v, k, prog, trials, hands, tolerance, hand_runs, strict, notes) -> None:
    rel, unit = tolerance
    half, rerun = hand_runs
    pairs = [(h[k], t.exact[k]) for h, t in zip(hands, trials)]
    errors = [float(np.max(np.abs(h - e), initial=0.0)) if h.shape == e.shape else np.inf
              for h, e in pairs]
    scales = [max(float(np.max(np.abs(e), initial=0.0)), 1e-300) for _, e in pairs]
    v.max_abs_error = max(errors)
    v.max_rel_error = max(e / s for e, s in zip(errors, scales))
    bad = [i for i, (h, e) in enumerate(pairs) if not close(h, e, rel)]
    noisy = [i for i in bad if _within_noise(prog, k, trials[i], pairs[i][0], rel, unit)]
    if noisy:
        bad = [i for i in bad if i not in noisy]
        notes.append(f"{v.name}: at {len(noisy)} of {len(trials)} sets of arrays the formula is "
                     f"ill-conditioned (symdiff's own float code is off there by more than the "
                     f"usual tolerance): the hand partial is judged against the 50-digit program "
                     f"with that float noise allowed")
    if bad and not strict:
        kinked = _at_kinks(prog, k, [trials[i] for i in bad], [pairs[i][0] for i in bad], rel)
        if kinked:
            notes.append(f"{v.name}: at {len(bad)} of {len(trials)} sets of arrays an entry "
                         f"sits exactly at a kink and the hand code picks another valid "
                         f"subgradient there ({kinked}), not the documented convention; those "
                         f"sets are left out of the verdict (strict=True judges them)")
            return
    if not bad:
        return
    v.ok = False
    sizes = trials[bad[0]].sizes
    v.worst_point = {d.name: n for d, n in sizes.items()}
    h, e = pairs[bad[0]]
    if h.shape != e.shape:
        v.detail = f"at sizes {sizes_text(sizes)}: hand shape {h.shape}, exact {e.shape}"
    else:
        v.detail = (f"at sizes {sizes_text(sizes)}: max error {errors[bad[0]]:.3g} "
                    f"(largest exact entry {scales[bad[0]]:.3g})")
    v.diagnosis = diagnose_arrays(k, prog, trials, hands, rel, half, rerun)


NOISE_SAFETY = 64  # hand code may be this many times as far off as symdiff's own float code


def _within_noise(prog, k, trial: Trial, hand, rel: float, unit: float) -> bool:
    """Where symdiff's own float64 gradient is off (an ill-conditioned point: an inverse near
    singular), the hand partial against the 50-digit program, allowed NOISE_SAFETY times the
    generated code's error (scaled to the hand code's precision)."""
    exact = trial.exact[k]
    if hand.shape != exact.shape:
        return False
    truth = np.asarray(program_values(prog, dict(zip(prog.args, trial.args)), trial.dout)[
        prog.grads[k]], dtype=float)
    scale = max(float(np.max(np.abs(truth), initial=0.0)), 1e-300)
    noise = float(np.max(np.abs(exact - truth), initial=0.0))
    if not noise > rel * scale / NOISE_SAFETY:  # well conditioned: the usual tolerance stands
        return False
    allowed = NOISE_SAFETY * noise * unit / np.finfo(float).eps
    return bool(np.max(np.abs(hand - truth), initial=0.0) <= allowed)


def _at_kinks(prog, k, trials, hands, rel) -> str:
    """How the hand partial is another valid subgradient on every one of ``trials`` (each at a
    kink, where the documented one differs), or "" (``diagnose.kink_variants``)."""
    for backward, text in kink_variants(prog):
        module = dataclasses.replace(prog, backward=tuple(backward), _cache={}).compile("numpy")
        if all(close(h, np.asarray(module.backward(t.dout, module.forward(*t.args)[1])[k],
                                   dtype=float), rel) for h, t in zip(hands, trials)):
            return text
    return ""
