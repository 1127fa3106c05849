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
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .ir import Program
from .numeric import DPS
from .reference import UNIT, Reference

DIRECTIONS = 2  # random directions per point when partials are sampled (many variables)
HP_REL = 1e-20  # program at 50 digits vs reference
FLOAT_SAFETY = 64  # generated code may differ from the reference by this many error bounds
FLOAT_REL = 1e-12  # ... or by this relative error, whichever is larger


@dataclass
class PartialReport:
    """The verdict on one partial derivative."""

    name: str  # the gradient's name, e.g. "dx"
    ok: bool
    proved: bool = False
    max_rel_error: float = 0.0  # worst relative error of the generated code
    worst_ratio: float = 0.0  # worst error of the generated code as a fraction of its tolerance
    worst_point: dict | None = None
    message: str = ""
    along_directions: bool = False  # checked only along random directions (many variables)

    def __str__(self) -> str:
        status = "ok" if self.ok else "WRONG"
        how = "proved symbolically; " if self.proved else ""
        if self.along_directions and self.ok:
            return f"{self.name:>8}  ok     along random directions"
        text = (f"{self.name:>8}  {status:5}  {how}max rel error {self.max_rel_error:.1e} "
                f"({self.worst_ratio:.2g} of tolerance)")
        return text + (f"\n{'':>16}{self.message}" if self.message else "")


@dataclass
class CheckReport:
    """``ok`` is True when every partial matches the reference at every point."""

    ok: bool
    oracle: str
    points: list[dict]
    partials: list[PartialReport]
    backends: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    formula: str = ""
    sampled: str = "points in the domain"  # what the points are ("random arrays" for matrices)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        lines = [f"check: {self.formula}",
                 f"reference: {self.oracle}; {len(self.points)} {self.sampled}; "
                 f"backends: {', '.join(self.backends) or 'none'}"]
        lines += [str(p) for p in self.partials]
        lines += [f"note: {n}" for n in self.notes]
        bad = [p.name for p in self.partials if not p.ok]
        lines.append("verdict: OK" if self.ok else f"verdict: MISMATCH in {', '.join(bad)}")
        return "\n".join(lines)


def check(prog: Program, *, points=None, samples: int | None = None, seed: int = 0,
          backends=("math", "numpy"), prove: bool = True) -> CheckReport:
    """Check the generated backward program of ``prog`` against the reference derivative.

    ``samples`` random points (default 20; 5 for a formula too large for sympy.diff) besides
    the ``points`` given; ``backends`` whose generated code is run.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> symdiff.check(symdiff.lower(x * sp.sin(y), wrt=[x, y])).ok
    True
    """
    if prog.shapes is not None:  # a matrix formula: random arrays (see arraycheck)
        from .arraycheck import check_arrays

        return check_arrays(prog, samples=samples or 2, seed=seed)
    with mpmath.workdps(DPS):
        return _check(prog, points, samples, seed, backends, prove)


def _check(prog, points, samples, seed, backends, prove) -> CheckReport:
    ref = Reference(prog)
    if samples is None:
        samples = 20 if ref.diffs is not None else 5
    chosen = ref.points(points, samples, seed)
    reports = [PartialReport(g, ok=True) for g in prog.grads]
    notes: list[str] = []
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
    truth = [ref.gradient_with_error(p, only) for p in chosen]
    exact = [ref.program_gradient(p) for p in chosen]
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT  # the float error bound, rescaled to 50 digits
    comparisons = [("program", [e[:-1] for e in exact], hp_unit, HP_REL)]
    for backend in backends:
        rows = _run_backend(prog, backend, chosen, reports)
        if rows is not None:
            comparisons.append((backend, rows, mpmath.mpf(1), FLOAT_REL))
    bounds = [e[-1] for e in exact]
    for label, rows, unit, rel in comparisons:
        _compare(prog, reports, chosen, truth, rows, bounds, label, unit, rel)
        if only is not None:
            _compare_directions(ref, reports, chosen, rows, bounds, label, unit, rel, seed)
    if prove and chosen and all(r.ok for r in reports):
        for r, proved in zip(reports, ref.prove()):
            r.proved = proved
    return CheckReport(all(r.ok for r in reports), ref.oracle, [_named(prog, p) for p in chosen],
                       reports, tuple(backends), notes, prog.text or "(formula too long to print)")


def _run_backend(prog, backend, points, reports):
    """The generated code's gradients at every point (numpy: all points in one array call)."""
    module = prog.compile(backend)
    columns = [[float(p[sp.Symbol(n, real=True)]) for p in points] for n in prog.args]
    try:
        if backend == "numpy":
            import numpy as np

            _, got = module.value_and_grad(*(np.array(c) for c in columns))
            return [[float(np.asarray(g)[i]) for g in got] for i in range(len(points))]
        return [[float(g) for g in module.value_and_grad(*args)[1]] for args in zip(*columns)]
    except Exception as exc:  # the generated code failed where the formula is defined
        for r in reports:
            r.ok, r.message = False, f"{backend} code raised {type(exc).__name__}: {exc}"
        return None


def _compare(prog, reports, points, truth, rows, bounds, label, unit, rel) -> None:
    """Each partial against the reference, within ``max(rel |t|, 64 unit bound, 4 t_err)``."""
    for p, (t, t_err), row, bound in zip(points, truth, rows, bounds):
        for k, r in enumerate(reports):
            if t[k] is None:
                continue
            allowed = max(rel * abs(t[k]), FLOAT_SAFETY * unit * bound[k], 4 * t_err[k],
                          mpmath.mpf(1e-300))
            err = abs(mpmath.mpf(row[k]) - t[k])
            if label != "program":
                r.max_rel_error = max(r.max_rel_error, float(err / max(abs(t[k]), 1e-300)))
                r.worst_ratio = max(r.worst_ratio, float(err / allowed))
            if r.ok and not err <= allowed:
                r.ok, r.worst_point = False, _named(prog, p)
                r.message = _mismatch(label, r.worst_point, row[k], t[k])


def _compare_directions(ref, reports, points, rows, bounds, label, unit, rel, seed) -> None:
    """Every partial at once along random directions; a mismatch is bisected to its partials."""
    prog = ref.prog
    for i, (p, row, bound) in enumerate(zip(points, rows, bounds)):
        rng = random.Random(seed * 7919 + i)
        for _ in range(DIRECTIONS):
            weights = {k: rng.gauss(0, 1) for k in range(len(reports))}
            top = max(abs(w) for w in weights.values())
            weights = {k: w / top for k, w in weights.items()}

            def disagrees(ks, p=p, row=row, bound=bound, weights=weights):
                direction = {ref.wrt[k]: weights[k] for k in ks}
                d, d_err = ref.directional_with_error(p, direction)
                got = mpmath.fsum(mpmath.mpf(row[k]) * weights[k] for k in ks)
                spread = mpmath.fsum(abs(weights[k]) * bound[k] for k in ks)
                allowed = max(rel * abs(d), FLOAT_SAFETY * unit * spread, 4 * d_err,
                              mpmath.mpf(1e-300)) if d is not None else mpmath.inf
                return not abs(got - d) <= allowed

            everything = list(weights)
            if not disagrees(everything):
                continue
            for k in _bisect(everything, disagrees) or everything:
                r = reports[k]
                if r.ok:
                    r.ok, r.worst_point = False, _named(prog, p)
                    r.message = f"{label} disagrees with the reference along a random direction " \
                                f"at {_fmt_point(r.worst_point)} (isolated by bisection)"


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


def _mismatch(label: str, point: dict, got, want) -> str:
    if label == "program":
        return (f"at {_fmt_point(point)}: program {mpmath.nstr(got, 12)}, "
                f"reference {mpmath.nstr(want, 12)}")
    return f"{label} code at {_fmt_point(point)}: got {got!r}, reference {mpmath.nstr(want, 17)}"


def _named(prog: Program, point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in point.items())
