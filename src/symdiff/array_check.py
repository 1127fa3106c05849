"""Check a matrix program: its 50-digit program and each backend's NumPy code against sympy.diff
of its entries (and central differences), at the user's arrays and random sets of arrays."""

from __future__ import annotations

import random

import numpy as np

from .array_reference import finite_differences, reference_at
from .backends import ALL, backend_named
from .errors import ArgumentError
from .interpret import program_values
from .reports import CheckReport, PartialReport
from .sampling import check_sizes, finite_run, given_arrays, sizes_text, trial_sizes
from .tolerance import FLOAT_REL

ANALYTIC_REL = 1e-9  # generated float code vs the 50-digit derivative (relative to the largest)
FD_REL = 1e-5  # ... vs central differences in floats
ARRAY_SAMPLES = 2  # sets of random arrays, by default


def check_arrays(prog, points, samples, seed, backends, rules, sizes,
                  whole=None) -> CheckReport:
    """The 50-digit program and the NumPy code of a matrix program against sympy.diff of its
    entries, and central differences, at the user's arrays and ``samples`` random sets.
    ``whole`` = (vector program, k): ``prog`` is its output k, and the vector program's own
    backward, given dout for output k and zeros for the others, is judged too."""
    code = _able(backends)
    modules = {b: prog.compile(b) for b in code}  # each backend's own code is judged
    wholes = {b: whole[0].compile(b) for b in code} if whole else {}
    module = modules.get("numpy") or prog.compile("numpy")  # numpy's draws the arrays
    fixed_sizes = check_sizes(prog, sizes)
    by_grad = {i.grad: i.name for i in prog.inputs if i.grad is not None}
    wrt = [by_grad[g] for g in prog.grads]  # the partials' order
    rng, pyrng = np.random.default_rng(seed), random.Random(seed)
    given = [given_arrays(prog, p) for p in points or []]
    trials = [(g, trial_sizes(prog, g, pyrng)) for g in given]
    trials += [({}, fixed_sizes)] * (ARRAY_SAMPLES if samples is None else samples)
    reports = [PartialReport(g, ok=True) for g in prog.grads]
    used, notes, oracles = [], [], []
    for fixed, at in trials:
        run = finite_run(module, prog, at, rng, rules, fixed)
        ref = reference_at(prog, at)
        oracles.append(ref.oracle)
        if run is None:
            notes.append(f"a given set of arrays (sizes {sizes_text(at)}) skipped: the formula "
                         "is not finite there")
            continue
        args, out = run
        dout = rng.normal(size=np.shape(out)) if np.ndim(out) else float(rng.normal())
        try:
            exact = ref.gradient(dict(zip(prog.args, args)), dout)
            staged = exact and program_values(prog, dict(zip(prog.args, args)), dout)
        except ZeroDivisionError:  # a matrix singular at 50 digits (float code gave numbers)
            notes.append(f"a set of arrays (sizes {sizes_text(at)}) skipped: a matrix the "
                         "formula inverts or factors is singular there")
            continue
        if exact is None:
            continue
        used.append({n: np.asarray(a).tolist() for n, a in zip(prog.args, args)})
        exact = [np.asarray(e) for e in exact]
        rows = [("program at 50 digits", [staged[g] for g in prog.grads], FLOAT_REL)]
        rows += [(f"{b} code", modules[b].backward(dout, modules[b].forward(*args)[1]),
                  ANALYTIC_REL) for b in code]
        rows += [(f"{b} code of all outputs", _seeded(wholes[b], whole[1], args, dout),
                  ANALYTIC_REL) for b in wholes]
        symmetric = {n for n, rule in rules.items() if rule == "spd"}
        fd = finite_differences(module, prog, args, dout, symmetric=symmetric)
        sym_exact = [(e + e.T) / 2 if n in symmetric else e for n, e in zip(wrt, exact)]
        for label, got, rel in rows + [("finite differences", fd, FD_REL)]:
            for r, g, e, s in zip(reports, got, exact, sym_exact):
                _compare_array(r, np.asarray(g), s if label == "finite differences" else e, rel,
                               label, track=label.endswith("code"))
    oracle = _oracle(oracles, "the sizes of the arrays given" if given else
                     sizes_text(fixed_sizes))
    if not used:
        notes.append("no random arrays where the formula and its gradient are finite")
    ok = bool(used) and all(r.ok for r in reports)
    return CheckReport(ok, oracle, used, reports, tuple(code), notes,
                       prog.text or "(formula too long to print)", "sets of arrays")


def _able(backends) -> tuple[str, ...]:
    """The backends whose code check runs on a matrix formula (numpy's), or an error."""
    able = tuple(b.name for b in ALL if b.matrices and b.library is None)
    code = able if backends is None else backends
    bad = [b for b in code if b not in able]
    if bad:
        why = ("check does not run its code on matrix formulas yet" if
               backend_named(bad[0]).matrices else "has no arrays")
        raise ArgumentError(f"the {bad[0]} backend {why}: a matrix formula is checked with "
                            f"{', '.join(able)}")
    return tuple(code)


def _oracle(oracles, size_text) -> str:
    kinds = sorted(set(oracles)) or ["sympy.diff of the explicit formula"]
    return (f"{' and '.join(kinds)} at {size_text or 'its sizes'}"
            f"{' (50 digits)' if kinds[-1].startswith('sympy') else ''}, "
            "and central differences of the generated forward")


def _seeded(module, k, args, dout):
    """A vector program's backward with upstream dout for output k and zeros for the rest."""
    outs, cache = module.forward(*args)
    seeds = [dout if j == k else np.zeros_like(np.asarray(o, dtype=float))
             for j, o in enumerate(outs)]
    return module.backward(*seeds, cache)


def _compare_array(report, got, exact, rel, label, track=True):
    if got.shape != exact.shape:
        report.ok = False
        report.message = f"{label}: shape {got.shape}, expected {exact.shape}"
        return
    scale = max(float(np.max(np.abs(exact), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(got - exact), initial=0.0)) if exact.size else 0.0
    if track:
        report.max_rel_error = max(report.max_rel_error, err / scale)
        report.worst_ratio = max(report.worst_ratio, err / (rel * scale))
    if report.ok and not err <= rel * scale:
        report.ok = False
        report.message = f"{label}: max error {err:.3g} (largest entry {scale:.3g})"
