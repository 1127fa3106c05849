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

from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .ir import Program
from .numeric import DPS
from .reference import UNIT, Reference

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

    def __str__(self) -> str:
        status = "ok" if self.ok else "WRONG"
        how = "proved symbolically; " if self.proved else ""
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

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        lines = [f"check: {self.formula}",
                 f"reference: {self.oracle}; {len(self.points)} points in the domain; "
                 f"backends: {', '.join(self.backends) or 'none'}"]
        lines += [str(p) for p in self.partials]
        lines += [f"note: {n}" for n in self.notes]
        bad = [p.name for p in self.partials if not p.ok]
        lines.append("verdict: OK" if self.ok else f"verdict: MISMATCH in {', '.join(bad)}")
        return "\n".join(lines)


def check(prog: Program, *, points=None, samples: int = 20, seed: int = 0,
          backends=("math", "numpy"), prove: bool = True) -> CheckReport:
    """Check the generated backward program of ``prog`` against the reference derivative.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> symdiff.check(symdiff.lower(x * sp.sin(y), wrt=[x, y])).ok
    True
    """
    with mpmath.workdps(DPS):
        return _check(prog, points, samples, seed, backends, prove)


def _check(prog, points, samples, seed, backends, prove) -> CheckReport:
    ref = Reference(prog)
    chosen = ref.points(points, samples, seed)
    reports = [PartialReport(g, ok=True) for g in prog.grads]
    notes: list[str] = []
    if not chosen:
        notes.append("no point found where the formula and its gradient are defined")
        for r in reports:
            r.ok, r.message = False, "not checked: no point in the domain"
    truth = [ref.gradient_with_error(p) for p in chosen]
    exact = [ref.program_gradient(p) for p in chosen]
    hp_unit = mpmath.mpf(10) ** -DPS / UNIT  # the float error bound, rescaled to 50 digits
    for k, r in enumerate(reports):
        for p, (t, t_err), e in zip(chosen, truth, exact):
            allowed = max(HP_REL * abs(t[k]), FLOAT_SAFETY * hp_unit * e[-1][k], 4 * t_err[k])
            if r.ok and not abs(e[k] - t[k]) <= allowed:
                r.ok, r.worst_point = False, _named(prog, p)
                r.message = (f"at {_fmt_point(r.worst_point)}: program {mpmath.nstr(e[k], 12)}, "
                             f"reference {mpmath.nstr(t[k], 12)}")
    for backend in backends:
        _check_backend(prog, backend, chosen, truth, exact, reports)
    if prove and chosen and all(r.ok for r in reports):
        for r, proved in zip(reports, ref.prove()):
            r.proved = proved
    return CheckReport(all(r.ok for r in reports), ref.oracle, [_named(prog, p) for p in chosen],
                       reports, tuple(backends), notes, prog.text or "(formula too long to print)")


def _check_backend(prog, backend, points, truth, exact, reports) -> None:
    """Run the generated code at every point (numpy: all points in one array call)."""
    module = prog.compile(backend)
    columns = [[float(p[sp.Symbol(n, real=True)]) for p in points] for n in prog.args]
    try:
        if backend == "numpy":
            import numpy as np

            _, got = module.value_and_grad(*(np.array(c) for c in columns))
            rows = [[float(np.asarray(g)[i]) for g in got] for i in range(len(points))]
        else:
            rows = [[float(g) for g in module.value_and_grad(*args)[1]] for args in zip(*columns)]
    except Exception as exc:  # the generated code failed where the formula is defined
        for r in reports:
            r.ok, r.message = False, f"{backend} code raised {type(exc).__name__}: {exc}"
        return
    for p, (t, t_err), e, row in zip(points, truth, exact, rows):
        for k, r in enumerate(reports):
            allowed = max(FLOAT_SAFETY * e[-1][k], FLOAT_REL * abs(t[k]), 4 * t_err[k],
                          mpmath.mpf(1e-300))
            err = abs(mpmath.mpf(row[k]) - t[k])
            r.max_rel_error = max(r.max_rel_error, float(err / max(abs(t[k]), 1e-300)))
            r.worst_ratio = max(r.worst_ratio, float(err / allowed))
            if r.ok and not err <= allowed:
                r.ok, r.worst_point = False, _named(prog, p)
                r.message = (f"{backend} code at {_fmt_point(r.worst_point)}: got {row[k]!r}, "
                             f"reference {mpmath.nstr(t[k], 17)}")


def _named(prog: Program, point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in point.items())
