"""Check a Program's gradients against an independent reference, and report per partial.

The reference is ``sympy.diff`` of the formula as the user gave it (symdiff's own functions
rewritten into plain SymPy first), evaluated at 50 digits; for a formula too large for
``sympy.diff`` it is a central difference of the formula at 60 digits with a step of 1e-20. At
random points in the formula's domain the check compares (1) the backward program evaluated at 50
digits, which tests the mathematics of the staged program exactly, and (2) the generated code of
each backend in floating point, which tests the emitted text. Where the formula is small, the
program's gradient is also proved equal to the reference symbolically.
"""

from __future__ import annotations

import math
import random

import mpmath
import numpy as np
import sympy as sp

from .arraycheck import check_arrays
from .backends import ALL, BACKENDS, backend_named
from .errors import ArgumentError, SymdiffError
from .ir import Program
from .numeric import DPS
from .reference import Reference
from .reports import CheckReport, PartialReport, fmt_point
from .roundoff import UNIT

DIRECTIONS = 2  # random directions per point when partials are sampled (many variables)
HP_REL = 1e-20  # program at 50 digits vs reference
FLOAT_SAFETY = 64  # generated code may differ from the reference by this many error bounds
FLOAT_REL = 1e-12  # ... or by this relative error, whichever is larger
CONSTANT_SAFETY = 4  # ... plus this many bounds of the float constants the lowering computed


class CheckError(SymdiffError):
    """check or verify could not finish on this input (an internal failure, named)."""


def check(prog: Program, *, points=None, samples: int | None = None, seed: int = 0,
          backends=BACKENDS, prove: bool = True, domain: dict | None = None) -> CheckReport:
    """Check the generated backward program of ``prog`` against the reference derivative.

    ``samples`` random points (default 20; 5 for a formula too large for sympy.diff) besides
    the ``points`` given; ``backends`` whose generated code is run; ``domain`` maps a variable
    (name or Symbol) to the interval ``(lo, hi)`` its random values are drawn from.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> symdiff.check(symdiff.lower(x * sp.sin(y), wrt=[x, y])).ok
    True
    """
    backends = _backends(backends)
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool)
                                or samples < 1):
        raise ArgumentError(f"samples must be a positive integer, got {samples!r}")
    # A matrix formula: random arrays (see arraycheck). This dispatch on the program's kind
    # stays until arraycheck is folded into check (issue 12).
    if prog.shapes is not None:
        matrix_backends = tuple(b.name for b in ALL if b.matrices)  # the default, or these
        _refuse_for_arrays(points=points, domain=domain, prove=prove is not True,
                           backends=backends not in (BACKENDS, matrix_backends))
        return guarded(lambda: check_arrays(prog, samples=samples or 2, seed=seed), "check")
    with mpmath.workdps(DPS):
        return guarded(lambda: _check(prog, points, samples, seed, backends, prove, domain),
                       "check")


def _backends(backends) -> tuple[str, ...]:
    if isinstance(backends, str):
        backends = (backends,)
    if not isinstance(backends, (tuple, list)):  # () checks the 50-digit program alone
        raise ArgumentError(f"backends must be a backend name or a list of them "
                            f"({', '.join(BACKENDS)}), got {backends!r}")
    backends = tuple(backends)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ArgumentError(f"unknown backend {unknown[0]!r}: choose from {', '.join(BACKENDS)}")
    return backends


def _refuse_for_arrays(**given) -> None:
    """Options a matrix check cannot honour: refuse them rather than ignore them."""
    named = [name for name, used in given.items() if used is not None and used is not False]
    if named:
        raise ArgumentError(f"a matrix formula is checked on random arrays with the numpy "
                            f"backend: {', '.join(named)} is not supported for it")


def guarded(task, what: str):
    """``task()``, with any failure that is not a SymdiffError turned into a named CheckError."""
    try:
        return task()
    except SymdiffError:
        raise
    except RecursionError:
        raise CheckError(f"{what}: the formula is too deeply nested to evaluate") from None
    except Exception as exc:  # a failure of symdiff's own evaluation: named, never a traceback
        raise CheckError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def _check(prog, points, samples, seed, backends, prove, domain) -> CheckReport:
    ref = Reference(prog)
    if samples is None:
        samples = 20 if ref.diffs is not None else 5
    chosen = ref.points(points, samples, seed, domain)
    reports = [PartialReport(g, ok=True) for g in prog.grads]
    notes: list[str] = ref.skipped_note()
    if not chosen:
        notes.append("no point found where the formula and its gradient are defined")
        for r in reports:
            r.ok, r.message = False, "not checked: no point in the domain"
    only = ref.sampled_partials(seed) if ref.sampled else None
    if only is not None:
        named = ", ".join(prog.grads[k] for k in only)
        notes.append(f"{len(prog.grads)} partials: {named} checked one by one, every partial "
                     f"along {DIRECTIONS} random directions per point")
        for k, r in enumerate(reports):
            r.along_directions = k not in only
    exact = [ref.program_gradient(p) for p in chosen]
    finite = [all(mpmath.isfinite(v) for v in e[:-2]) for e in exact]
    if not all(finite):  # 1 - tanh(92)**2 is 0 at 50 digits: no test of the program there
        notes.append(f"{finite.count(False)} sampled points skipped: the staged program is not "
                     "finite there at 50 digits")
        chosen = [p for p, f in zip(chosen, finite) if f]
        exact = [e for e, f in zip(exact, finite) if f]
    truth = [ref.gradient_with_error(p, only) for p in chosen]
    if ref.diffs is not None:
        truth = _refined(ref, chosen, truth, exact, only)
    raised: list[tuple[str, dict, str]] = []
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT  # the float error bound, rescaled to 50 digits
    comparisons = [("program", [e[:-2] for e in exact], hp_unit, HP_REL)]
    for backend in backends:
        rows, failed = _run_backend(prog, backend, chosen)
        raised += failed
        comparisons.append((backend, rows, mpmath.mpf(1), FLOAT_REL))
    bounds = [(e[-2], e[-1]) for e in exact]
    views = [ref.float_view(p) for p in chosen]
    fragile = [f or _fragile_value(*v.value) or v.shaky
               for f, v in zip(_fragile(truth, bounds), views)]
    raised, spared = _spare(prog, chosen, fragile, raised, comparisons[1:])
    raised, unjudged = _unjudged(prog, chosen, [v.beyond for v in views], raised,
                                 comparisons[1:], BEYOND)
    raised, undecided = _unjudged(prog, chosen, [v.undecided and not v.beyond for v in views],
                                  raised, comparisons[1:], UNDECIDED)
    notes += [n for n in (spared, unjudged, undecided) if n]
    for label, rows, unit, rel in comparisons:
        _compare(prog, reports, chosen, truth, rows, bounds, label, unit, rel)
        if only is not None:
            _compare_directions(ref, reports, chosen, rows, bounds, label, unit, rel, seed)
    if prove and chosen and all(r.ok for r in reports):
        for r, proved in zip(reports, ref.prove()):
            r.proved = proved
    ok = not raised and all(r.ok for r in reports)
    return CheckReport(ok, ref.oracle, [_named(prog, p) for p in chosen], reports,
                       tuple(backends), notes, prog.text or "(formula too long to print)",
                       raised=raised)


REFINED_DIGITS = (400, 500)  # the reference again where the 50-digit program disagrees with it


def _refined(ref, points, truth, exact, only) -> list:
    """The reference at 400 and 500 digits at each point where the program disagrees with it.

    The reference is the formula as written, so it can cancel where the staged program does
    not: softplus(t) is accurate at t = -473, log(1 + exp(t)) is 0 at 50 and at 70 digits. A
    disagreement is believed only if it survives a reference computed with 400 more digits.
    """
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT
    refined = []
    for p, (t, t_err), e in zip(points, truth, exact):
        values, bound, constant = e[:-2], e[-2], e[-1]
        if any(t[k] is not None and not abs(values[k] - t[k]) <= tolerance(
                t[k], t_err[k], bound[k], constant[k], hp_unit, HP_REL) for k in range(len(t))):
            with mpmath.workdps(REFINED_DIGITS[1]):
                t, t_err = ref.gradient_with_error(p, only, REFINED_DIGITS)
        refined.append((t, t_err))
    return refined


def _run_backend(prog, backend, points):
    """The generated code's gradients per point (None where it raised), and the failures.

    A batched backend (numpy) runs all points in one array call, and point by point only if
    that call raises.
    """
    module = prog.compile(backend)
    columns = [[float(p[sp.Symbol(n, real=True)]) for p in points] for n in prog.args]
    if backend_named(backend).batched:
        try:
            _, got = module.value_and_grad(*(np.array(c) for c in columns))
            return [[float(np.asarray(g)[i]) for g in got] for i in range(len(points))], []
        except Exception:  # find the points where it fails
            def call(*args):
                return [np.asarray(g).item() for g in
                        module.value_and_grad(*(np.array([a]) for a in args))[1]]
    else:
        def call(*args):
            return module.value_and_grad(*args)[1]
    rows, raised = [], []
    for p, args in zip(points, zip(*columns)):
        try:
            rows.append([float(g) for g in call(*args)])
        except Exception as exc:  # the generated code failed where the formula is defined
            rows.append(None)
            raised.append((backend, _named(prog, p), f"{type(exc).__name__}: {exc}"))
    return rows, raised


def _fragile(truth, bounds) -> list[bool]:
    """Per point: does the float tolerance of some partial exceed its size there?

    Then floating point determines no digit of it: an intermediate is within rounding of a
    singularity of a local derivative (coth(19) rounds to 1, where asec' is infinite), and the
    error bound, a first-order estimate, may be exceeded by an inf or a nan.
    """
    return [any(t[k] is not None and t[k] != 0  # an exact 0 is determined (tolerance 1e-300)
                and tolerance(t[k], t_err[k], bound[k], constant[k], 1, FLOAT_REL) >= abs(t[k])
                for k in range(len(t)))
            for (t, t_err), (bound, constant) in zip(truth, bounds)]


def _fragile_value(value, bound, constant) -> bool:
    """The same for the value: gamma(-1.0000000000000002) is 4.5e15, but the float code's
    -1.4426950408889634*log(2) is exactly -1.0, a pole (its error bound exceeds the value)."""
    if value is None or not mpmath.isfinite(value) or value == 0:
        return False
    return tolerance(value, 0, bound, constant, 1, FLOAT_REL) >= abs(value)


def _spare(prog, points, fragile, raised, comparisons):
    """Failures of generated code at fragile points, taken out of the verdict into a note.

    Where the generated code raised or returned inf/nan at a point where floating point can
    determine no digit of a partial, the verdict stays with the 50-digit program (which is
    compared there as everywhere) and the note says where and what happened.
    """
    where = {tuple(_named(prog, p).items()) for p, f in zip(points, fragile) if f}
    kept = [r for r in raised if tuple(r[1].items()) not in where]
    what = sorted({f"the {b} code raised {why.split(':')[0]}" for b, pt, why in raised
                   if tuple(pt.items()) in where})
    hit = {tuple(pt.items()) for _, pt, _ in raised if tuple(pt.items()) in where}
    for label, rows, _, _ in comparisons:
        for i, row in enumerate(rows):
            if fragile[i] and row is not None and not all(math.isfinite(v) for v in row):
                what.append(f"the {label} code returned a non-finite partial")
                hit.add(tuple(_named(prog, points[i]).items()))
                rows[i] = None
    if not hit:
        return raised, ""
    what = sorted(set(what))
    example = ", ".join(f"{k}={v:.6g}" for k, v in sorted(hit)[0])
    return kept, (f"at {len(hit)} of {len(points)} points (e.g. {example}) floating point "
                  f"determines no digit of the value, of a partial or of a local derivative (its "
                  f"error bound exceeds its size: an intermediate rounds onto a singularity), and "
                  f"{' and '.join(what)} there; "
                  f"the 50-digit program is compared with the reference there as everywhere")


BEYOND = "a step's value, a local derivative or a gradient term is beyond the float range"
UNDECIDED = ("a branch is undecided in floats (a Max, Min, condition, floor, ceiling, sign or "
             "|u| is closer to its switch than its float error bound)")


def _unjudged(prog, points, outside, raised, comparisons, why):
    """Generated code is not judged where a value is beyond the float range (it over- or
    underflows whatever it does) or a branch is undecided in floats (it may rightly take the
    other one); the 50-digit program is. The note says where and ``why``."""
    if not any(outside):
        return raised, ""
    where = {tuple(_named(prog, p).items()) for p, o in zip(points, outside) if o}
    for _, rows, _, _ in comparisons:
        for i, o in enumerate(outside):
            if o:
                rows[i] = None
    example = ", ".join(f"{k}={v:.6g}" for k, v in sorted(where)[0])
    return ([r for r in raised if tuple(r[1].items()) not in where],
            f"at {len(where)} of {len(points)} points (e.g. {example}) {why}, so the generated "
            f"code is not judged there; the 50-digit program is")


def tolerance(t, t_err, bound, constant, unit, rel):
    """What an error may be: ``max(rel |t|, 64 unit bound, 4 t_err) + 4 constant``.

    ``bound`` is the float error bound of the staged program (``unit`` rescales it for the
    50-digit program), ``t_err`` the reference's own error, ``constant`` the share of the bound
    due to float constants the lowering computed, which the 50-digit program makes too.
    """
    return max(rel * abs(t), FLOAT_SAFETY * unit * bound, 4 * t_err, mpmath.mpf(1e-300)) \
        + CONSTANT_SAFETY * constant


def _compare(prog, reports, points, truth, rows, bounds, label, unit, rel) -> None:
    """Each partial against the reference, within ``tolerance``; the worst ratio is kept."""
    for p, (t, t_err), row, (bound, constant) in zip(points, truth, rows, bounds):
        for k, r in enumerate(reports):
            if t[k] is None or row is None:  # not sampled, or the code raised (reported)
                continue
            allowed = tolerance(t[k], t_err[k], bound[k], constant[k], unit, rel)
            err = abs(mpmath.mpf(row[k]) - t[k])
            if label != "program":
                scale = max(abs(t[k]), allowed / rel)  # |t|, or the float noise floor near 0
                if scale > 0:  # (a nan tolerance is a failure below, not a rel error)
                    r.max_rel_error = max(r.max_rel_error, float(err / scale))
            _record(r, err, allowed)
            if r.ok and not err <= allowed:
                r.ok, r.worst_point = False, _named(prog, p)
                r.message = _mismatch(label, r.worst_point, row[k], t[k], err, allowed)


def _record(r: PartialReport, err, allowed) -> None:
    ratio = float(err / allowed) if mpmath.isfinite(err) else float("inf")
    if ratio >= r.worst_ratio or r.worst_tolerance == 0:
        r.worst_ratio = max(r.worst_ratio, ratio)
        r.worst_error, r.worst_tolerance = float(err), float(allowed)


def _compare_directions(ref, reports, points, rows, bounds, label, unit, rel, seed) -> None:
    """Every partial at once along random directions; a mismatch is bisected to its partials."""
    prog = ref.prog
    for i, (p, row, (bound, constant)) in enumerate(zip(points, rows, bounds)):
        if row is None:
            continue
        rng = random.Random(seed * 7919 + i)
        for _ in range(DIRECTIONS):
            weights = {k: rng.gauss(0, 1) for k in range(len(reports))}
            top = max(abs(w) for w in weights.values())
            weights = {k: w / top for k, w in weights.items()}

            def measure(ks, p=p, row=row, bound=bound, constant=constant, weights=weights):
                direction = {ref.wrt[k]: weights[k] for k in ks}
                d, d_err = ref.directional_with_error(p, direction)
                if d is None:  # undefined along this direction: nothing to judge
                    return mpmath.mpf(0), mpmath.mpf(1)
                got = mpmath.fsum(mpmath.mpf(row[k]) * weights[k] for k in ks)
                spread = mpmath.fsum(abs(weights[k]) * bound[k] for k in ks)
                shared = mpmath.fsum(abs(weights[k]) * constant[k] for k in ks)
                return abs(got - d), tolerance(d, d_err, spread, shared, unit, rel)

            def disagrees(ks, measure=measure):
                err, allowed = measure(ks)
                return not err <= allowed

            everything = list(weights)
            if not disagrees(everything):
                continue
            for k in _bisect(everything, disagrees) or everything:
                r = reports[k]
                _record(r, *measure([k]))
                if r.ok:
                    r.ok, r.worst_point = False, _named(prog, p)
                    r.message = f"{label} disagrees with the reference along a random direction " \
                                f"at {fmt_point(r.worst_point)} (isolated by bisection)"


def _bisect(indices: list[int], disagrees) -> list[int]:
    """The partials to blame for a disagreement: halve, keep the halves that still disagree."""
    stack, blamed = [indices], []
    while stack:
        part = stack.pop()
        if len(part) == 1:
            blamed.append(part[0])
            continue
        halves = [part[: len(part) // 2], part[len(part) // 2:]]
        stack.extend(h for h in halves if disagrees(h))
    return sorted(blamed)


def _mismatch(label: str, point: dict, got, want, err, allowed) -> str:
    where = "the program at 50 digits" if label == "program" else f"{label} code"
    shown = mpmath.nstr(got, 20) if label == "program" else repr(got)
    return (f"{where} at {fmt_point(point)}: got {shown}, reference {mpmath.nstr(want, 20)}; "
            f"error {mpmath.nstr(err, 3)} > tolerance {mpmath.nstr(allowed, 3)}")


def _named(prog: Program, point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}
