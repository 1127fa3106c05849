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

import random

import mpmath
import numpy as np
import sympy as sp

from .array_check import check_arrays
from .backends import BACKENDS, BUNDLED, backend_named, resolved
from .derivative_rows import chosen_functions, judge_rows
from .errors import ArgumentError, SymdiffError
from .ir import Program
from .numeric import DPS
from .reference import Reference
from .reports import CheckReport, PartialReport, fmt_point
from .roundoff import UNIT
from .sampling import (
    drawing_rules,
)
from .tolerance import (
    BEYOND,
    FLOAT_REL,
    UNDECIDED,
    fragile,
    fragile_value,
    named,
    spare,
    tolerance,
    unjudged,
)

DIRECTIONS = 2  # random directions per point when partials are sampled (many variables)
HP_REL = 1e-20  # program at 50 digits vs reference


class CheckError(SymdiffError):
    """check or verify could not finish on this input (an internal failure, named)."""


def check(prog: Program, *, points=None, samples: int | None = None, seed: int = 0,
          backends=None, prove: bool = True, domain: dict | None = None,
          sizes: dict | None = None, kinds: dict | None = None,
          functions=None) -> CheckReport:
    """Check the generated backward program of ``prog`` against the reference derivative.

    ``samples`` random points (default 20; 5 for a formula too large for sympy.diff) besides
    the ``points`` given; ``backends`` whose generated code is run (default: every backend
    that runs the program); ``domain`` maps a variable
    (name or Symbol) to the interval ``(lo, hi)`` its random values are drawn from.

    A matrix formula is checked on sets of arrays: each point is a dict of argument -> array
    (they fix the sizes of their dimensions), ``samples`` sets of random arrays (default 2) are
    drawn at ``sizes`` (dimension -> int; default 3, 2, 4, ... in name order), ``kinds`` declares
    what an array holds so each draw fits it (argument -> "one_hot", "mask", "spd", "positive"
    or "probabilities"; ``sampling.KINDS``), and the reference
    is sympy.diff of the formula written out entry by entry. Its code runs with numpy only.

    A vector program is checked row by row (the reverse sweep of each output); ``functions``
    names generated functions judged too, row by row: ``"jacobian"`` and ``"jvp"`` (checked by
    default for a vector program), ``"hvp"`` and ``"hessian"`` (row k against sympy.diff of
    d f / d x_k), in the bundled backends asked for.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> symdiff.check(symdiff.lower(x * sp.sin(y), wrt=[x, y])).ok
    True
    """
    backends = _backends(backends)
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool)
                                or samples < 1):
        raise ArgumentError(f"samples must be a positive integer, got {samples!r}")
    functions = chosen_functions(prog, functions)
    if prog.shapes is not None:  # the one place check dispatches on the kind of program
        def arrays(row, whole=None):
            return check_arrays(row, points, samples, seed, backends,
                                 drawing_rules(row, domain, kinds), sizes, whole)

        if prog.output_names:  # each output on its own, and the whole backward seeded by it
            return guarded(lambda: judge_rows(prog, (), (), arrays), "check")
        return guarded(lambda: arrays(prog), "check")
    if sizes is not None or kinds is not None:
        raise ArgumentError(f"{'sizes' if sizes is not None else 'kinds'}= is for the arrays of a "
                            f"matrix formula; this formula has none")
    with mpmath.workdps(DPS):
        backends = BUNDLED if backends is None else backends
        if functions or prog.output_names:
            return guarded(lambda: _check_rows(prog, functions, points, samples, seed, backends,
                                               prove, domain), "check")
        return guarded(lambda: _check(prog, points, samples, seed, backends, prove, domain),
                       "check")


def _check_rows(prog, functions, points, samples, seed, backends, prove, domain):
    """A vector program, or a program with derivative functions to judge: row by row."""
    def judge(row, extra):
        return _check(row, points, samples, seed, backends, prove, domain, extra)

    return judge_rows(prog, functions, [b for b in backends if b in BUNDLED], judge)


def _backends(backends) -> tuple[str, ...] | None:
    if backends is None:  # every backend that can run the program
        return None
    if isinstance(backends, str):
        backends = (backends,)
    if not isinstance(backends, (tuple, list)):  # () checks the 50-digit program alone
        raise ArgumentError(f"backends must be a backend name or a list of them "
                            f"({', '.join(BACKENDS)}), got {backends!r}")
    backends = tuple(backends)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ArgumentError(f"unknown backend {unknown[0]!r}: choose from {', '.join(BACKENDS)}")
    for b in backends:  # torch, jax: named, so their library must be there
        backend_named(b).require()
    return backends


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


def _check(prog, points, samples, seed, backends, prove, domain, extra=()) -> CheckReport:
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
        truth = _refined(ref, chosen, truth, exact, only, notes)
    raised: list[tuple[str, dict, str]] = []
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT  # the float error bound, rescaled to 50 digits
    comparisons = [("program", [e[:-2] for e in exact], hp_unit, HP_REL)]
    for backend in backends:
        rows, failed = _run_backend(prog, backend, chosen)
        raised += failed
        comparisons.append((backend, rows, mpmath.mpf(1), FLOAT_REL))
    for label, backend, module in extra:  # derivative_rows: a row of a Jacobian or Hessian
        rows, failed = _run_row(prog, backend, module, chosen)
        raised += [(label, point, why) for _, point, why in failed]
        comparisons.append((label, rows, mpmath.mpf(1), FLOAT_REL))
    bounds = [(e[-2], e[-1]) for e in exact]
    views = [ref.float_view(p) for p in chosen]
    weak = [f or fragile_value(*v.value) or v.shaky
            for f, v in zip(fragile(truth, bounds), views)]
    raised, spared = spare(chosen, weak, raised, comparisons[1:])
    raised, beyond = unjudged(chosen, [v.beyond for v in views], raised, comparisons[1:],
                              BEYOND)
    raised, undecided = unjudged(chosen, [v.undecided and not v.beyond for v in views],
                                  raised, comparisons[1:], UNDECIDED)
    notes += [n for n in (spared, beyond, undecided) if n]
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


def _refined(ref, points, truth, exact, only, notes: list) -> list:
    """The reference at 400 and 500 digits at each point where the program disagrees with it,
    and the program at 500 digits there too; a note in ``notes`` when that decided it.

    The reference is the formula as written, so it can cancel where the staged program does
    not: softplus(t) is accurate at t = -473, log(1 + exp(t)) is 0 at 50 and at 70 digits. A
    disagreement is believed only if it survives a reference computed with 400 more digits.
    The program, in turn, can round onto a tie at 50 digits: 2**erfc(17.4) is 1 + 1e-134, so
    Max(1.0, 2**erfc(zeta)) is tied there, its gradient share 0 where the reference's is
    -1.6e-132. Its values at 500 digits then take the place of the 50-digit ones (exact is
    updated): a wrong program is wrong at any precision.
    """
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT
    refined, deeper = [], []
    for p, (t, t_err), e in zip(points, truth, exact):
        def disagrees(values, t, t_err, bound=e[-2], constant=e[-1]):
            return any(t[k] is not None and not abs(values[k] - t[k]) <= tolerance(
                t[k], t_err[k], bound[k], constant[k], hp_unit, HP_REL) for k in range(len(t)))
        if disagrees(e[:-2], t, t_err):
            with mpmath.workdps(REFINED_DIGITS[1]):
                t, t_err = ref.gradient_with_error(p, only, REFINED_DIGITS)
            if disagrees(e[:-2], t, t_err):
                values = ref.program_gradient(p, REFINED_DIGITS[1])[:-2]
                if not disagrees(values, t, t_err):
                    e[:-2] = values
                    deeper.append(p)
        refined.append((t, t_err))
    if deeper:
        example = ", ".join(f"{k}={v:.6g}" for k, v in named(deeper[0]).items())
        notes.append(f"at {len(deeper)} of {len(points)} points (e.g. {example}) the program at 50 "
                     f"digits is within rounding of a branch switch or a cancellation; it is "
                     f"compared at {REFINED_DIGITS[1]} digits there")
    return refined


def _run_backend(prog, backend, points):
    """The generated code's gradients per point (None where it raised), and the failures.

    A batched backend (numpy) runs all points in one array call, and point by point only if
    that call raises.
    """
    module, record = prog.compile(backend), backend_named(backend)
    with record.run_context():  # jax: float64
        return _run_module(prog, module, record, points)


def _run_row(prog, backend, row, points):
    """A row of a generated Jacobian or Hessian (derivative_rows) per point, as a gradient;
    where it fails at a point outside another output's domain, that point is not judged."""
    record = backend_named(backend)
    with record.run_context():
        rows, failed = _run_module(prog, row, record, points)
    for i, (p, got) in enumerate(zip(points, rows)):  # nan from an output floats cannot compute
        if got is not None and not all(np.isfinite(got)) and not row.judged(p):
            rows[i] = None
    raw = {tuple(_named(prog, p).items()): p for p in points}
    return rows, [f for f in failed if row.judged(raw[tuple(f[1].items())])]


def _run_module(prog, module, record, points):
    columns = [[float(p[sp.Symbol(n, real=True)]) for p in points] for n in prog.args]
    if record.batched:  # float64 arrays, as the library's own (torch tensors, jax arrays)
        array = resolved(record.arrays) if record.arrays else np.asarray

        def batch(values):
            return array(np.array(values, dtype=float))

        try:
            _, got = module.value_and_grad(*(batch(c) for c in columns))
            return [[float(np.asarray(g)[i]) for g in got] for i in range(len(points))], []
        except Exception:  # find the points where it fails
            def call(*args):
                return [np.asarray(g).item() for g in
                        module.value_and_grad(*(batch([a]) for a in args))[1]]
    else:
        def call(*args):
            return module.value_and_grad(*args)[1]
    rows, raised = [], []
    for p, args in zip(points, zip(*columns)):
        try:
            rows.append([float(g) for g in call(*args)])
        except Exception as exc:  # the generated code failed where the formula is defined
            rows.append(None)
            raised.append((record.name, _named(prog, p), f"{type(exc).__name__}: {exc}"))
    return rows, raised


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
