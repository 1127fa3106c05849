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

import signal
import threading
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .api import _real
from .dag import postorder, substitute
from .functions import to_elementary
from .ir import Program
from .numeric import DPS, evaluate_many, sample_points
from .rules import derivative

DIFF_MAX_TREE = 5_000  # formulas larger than this (as trees) use the finite-difference oracle
PROOF_MAX_STEPS = 30
HP_REL = 1e-20  # program at 50 digits vs reference
UNIT = 2.0**-53  # unit roundoff of float64
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
    ref = _Reference(prog)
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


class _Reference:
    """The formula over code-name symbols, its reference gradient, and the program's own."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.args = [sp.Symbol(n, real=True) for n in prog.args]
        by_real = {_real(i.symbol): a for i, a in zip(prog.inputs, self.args)}
        symbols = [n for n in postorder(prog.expr) if n.is_Symbol]
        self.expr = to_elementary(substitute(prog.expr, {s: by_real[_real(s)] for s in symbols}))
        self.wrt = [by_real[_real(s)] for s in prog.wrt]
        if _tree_size(self.expr, DIFF_MAX_TREE) <= DIFF_MAX_TREE:
            self.oracle = "sympy.diff at 50 digits"
            self.diffs = [derivative(self.expr, s) for s in self.wrt]
        else:
            self.oracle = "central difference of the formula at 60 digits (h = 1e-20)"
            self.diffs = None
        self._partials: dict = {}

    def points(self, given, samples, seed) -> list[dict]:
        extra = [self._point(p) for p in (given or [])]
        extra = [p for p in extra if self.defined(p)]
        return extra + sample_points(self.args, self.defined, samples, seed)

    def _point(self, given: dict) -> dict:
        by_code = dict(zip(self.prog.args, self.args))
        return {by_code[n]: v for n, v in self.prog.resolve_point(given).items()}

    def defined(self, point: dict) -> bool:
        """Formula, reference gradient and every forward step are finite and real here."""
        values = self.gradient(point) + [evaluate_many([self.expr], point)[0]]
        steps = self._forward(point)
        return all(v is not None for v in values) and all(v is not None for v in steps.values())

    def gradient(self, point: dict) -> list:
        if self.diffs is not None:
            return evaluate_many(self.diffs, point)
        return [self._central_difference(point, s) for s in self.wrt]

    def gradient_with_error(self, point: dict) -> tuple[list, list]:
        """The reference gradient and an estimate of its own error, per partial.

        sympy.diff's expression is evaluated at 50 and at 70 digits (a derivative that is 0 by
        cancellation comes out as 1e-53 noise at 50 digits); a central difference with h and 10h.
        """
        if self.diffs is not None:
            coarse, fine = evaluate_many(self.diffs, point), evaluate_many(self.diffs, point, 70)
        else:
            fine = self.gradient(point)
            coarse = [self._central_difference(point, s, scale=10) for s in self.wrt]
        with mpmath.workdps(70):
            return fine, [abs(a - b) for a, b in zip(coarse, fine)]

    def _central_difference(self, point, symbol, scale=1):
        h = mpmath.mpf("1e-20") * scale * max(1, abs(point[symbol]))
        with mpmath.workdps(60):
            up = evaluate_many([self.expr], {**point, symbol: point[symbol] + h}, dps=60)[0]
            down = evaluate_many([self.expr], {**point, symbol: point[symbol] - h}, dps=60)[0]
            return None if up is None or down is None else (up - down) / (2 * h)

    def _forward(self, point: dict) -> dict:
        env = {a: sp.Float(point[a], 50) for a in self.args}
        values = {}
        for step in self.prog.forward:
            value = evaluate_many([step.rhs], env)[0]
            values[step.name] = value
            if value is None:
                break
            env[sp.Symbol(step.name, real=True)] = sp.Float(value, 50)
        return values

    def program_gradient(self, point: dict) -> list:
        """The backward program at 50 digits: gradients, then a float error bound per gradient.

        The bound is a first-order running error analysis of the float program: each operation
        rounds by at most ``UNIT`` times its result, and errors in its inputs propagate through
        its partial derivatives. The generated code must agree with the reference within a small
        multiple of it: ``out*(1 - out)`` near out = 1 is then judged by what floats can do.
        """
        env = {a: sp.Float(point[a], 50) for a in self.args}
        err: dict[sp.Symbol, mpmath.mpf] = {a: mpmath.mpf(0) for a in self.args}
        for step in self.prog.forward:
            symbol = sp.Symbol(step.name, real=True)
            value, bound = self._rounded(step.rhs, env, err)
            env[symbol], err[symbol] = sp.Float(value, 50), bound
        grads = {"d" + self.prog.output: mpmath.mpf(1)}
        gerr = {"d" + self.prog.output: mpmath.mpf(0)}
        for g in self.prog.backward:
            local, lerr = self._rounded(g.local, env, err)
            up = grads[g.upstream]
            term = up * local
            term_err = abs(up) * lerr + abs(local) * gerr[g.upstream] + UNIT * abs(term)
            if g.accumulate:
                grads[g.name] += term
                gerr[g.name] += term_err + UNIT * abs(grads[g.name])
            else:
                grads[g.name], gerr[g.name] = term, term_err
        values = [grads.get(n, mpmath.mpf(0)) for n in self.prog.grads]
        return values + [[gerr.get(n, mpmath.mpf(0)) for n in self.prog.grads]]

    def _rounded(self, expr, env, err):
        """Value of a small expression and the float error bound of computing it."""
        if expr not in self._partials:
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            ops = max(1, sp.count_ops(expr)) + 1
            self._partials[expr] = (ops, [(s, derivative(expr, s)) for s in symbols])
        ops, partials = self._partials[expr]
        values = evaluate_many([expr] + [d for _, d in partials], env)
        if any(v is None for v in values[:1]):
            return mpmath.nan, mpmath.inf
        value, bound = values[0], ops * UNIT * abs(values[0])
        for (s, _), d in zip(partials, values[1:]):
            bound += (abs(d) if d is not None else mpmath.inf) * err.get(s, 0)
        return value, bound

    def prove(self) -> list[bool]:
        """Symbolic proof per partial, within a time budget; False means 'not proved'."""
        if self.diffs is None or len(self.prog.forward) > PROOF_MAX_STEPS:
            return [False] * len(self.wrt)
        composed = _compose(self.prog)
        results = []
        for name, reference in zip(self.prog.grads, self.diffs):
            difference = to_elementary(composed.get(name, sp.S.Zero)) - reference
            results.append(_within_budget(lambda d=difference: sp.simplify(d) == 0, seconds=2.0))
        return results


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


def _compose(prog: Program) -> dict[str, sp.Expr]:
    """Each gradient as one expression over the arguments (for small programs only)."""
    values: dict[sp.Symbol, sp.Expr] = {}
    for step in prog.forward:
        values[sp.Symbol(step.name, real=True)] = step.rhs.xreplace(values)
    grads: dict[str, sp.Expr] = {"d" + prog.output: sp.S.One}
    for g in prog.backward:
        term = grads[g.upstream] * g.local.xreplace(values)
        grads[g.name] = grads[g.name] + term if g.accumulate else term
    return grads


def _within_budget(task, seconds: float) -> bool:
    """Run ``task`` for at most ``seconds`` (SIGALRM, main thread only); False on timeout."""
    usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        return False

    def expire(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return bool(task())
    except _Timeout:
        return False
    except Exception:  # SymPy failing to simplify is "not proved", never a crash
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Timeout(Exception):
    pass


def _tree_size(expr: sp.Basic, cap: int) -> int:
    size: dict[sp.Basic, int] = {}
    for node in postorder(expr):
        size[node] = min(cap + 1, 1 + sum(size[a] for a in node.args))
    return size[expr]


def _named(prog: Program, point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in point.items())
