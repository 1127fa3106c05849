"""Verify a hand-derived gradient: prove it right, or say exactly what is wrong.

The hand gradient is compared with the reference gradient (``reference.py``) at points sampled in
the formula's domain and at points the user gives. A derivation written as SymPy expressions or
strings is first tried symbolically ("proved"), then evaluated at 50 digits. A callable runs in
floats and is judged with a tolerance built from the floating-point error bound of the staged
program at that point, so an ill-conditioned point is not a false alarm.

A wrong partial gets the simplest explanation that fits every point, tried in this order: it is
zero; it is the exact partial times a constant (sign flipped, a factor of 2, 1/N); it is another
variable's partial (swapped); it lacks one term of a fork of the staged program (a dropped
contribution, or ``=`` where ``+=`` belongs); it is wrong only where an argument or a step of the
formula is negative or positive. Diagnoses live in ``diagnose.py``.
"""

from __future__ import annotations

import mpmath
import sympy as sp

from .api import lower
from .arraycheck import verify_arrays
from .check import CONSTANT_SAFETY, FLOAT_REL, REFINED_DIGITS, guarded
from .dag import postorder, substitute
from .diagnose import Evidence, diagnose
from .errors import ArgumentError
from .functions import to_elementary
from .numeric import DPS, evaluate_many, within_budget
from .parse import parse
from .reference import Reference
from .reports import PartialVerdict, VerifyReport, fmt_point
from .roundoff import UNIT, exact_floats

HAND_REL = 1e-8  # hand code in floats may differ from the reference by this relative error,
HAND_SAFETY = 1024  # or by this many float error bounds of the staged program, if larger
EXPR_REL = 1e-20  # a derivation (expressions) evaluated at 50 digits


def verify(expr, wrt, grad, args=None, points=None, *, forward=None, samples: int | None = None,
           seed: int = 0, domain: dict | None = None) -> VerifyReport:
    """Compare a hand-derived gradient with the exact one; say what is wrong if it is.

    ``grad`` is a callable taking the formula's arguments (``args`` order: wrt, then the other
    symbols by name) and returning the partials in wrt order; or a list of SymPy expressions or
    strings, one per wrt symbol; or, with ``forward=``, a ``backward(dout, cache)`` paired with
    ``forward(*args) -> (value, cache)``. ``samples`` random points besides the ``points``
    given (default 40; for a matrix formula 6 sets of random arrays, none when ``points`` fix
    some arguments); ``domain`` maps a variable (name or Symbol) to the interval ``(lo, hi)``
    its random values are drawn from.

    Where the hand code raises, the point is counted and reported, and the partials are judged
    on the points where it ran; the verdict is RIGHT only if it ran everywhere.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> verify(x**2 * y, [x, y], lambda x, y: (2 * x * y, -x**2)).partials[1].diagnosis[:12]
    'sign flipped'
    """
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool)
                                or samples < 1):
        raise ArgumentError(f"samples must be a positive integer, got {samples!r}")
    prog = lower(expr, wrt, args)
    # A matrix formula: random arrays (see arraycheck). This dispatch on the program's kind
    # stays until arraycheck is folded into verify (issue 12).
    if prog.shapes is not None:
        if not callable(grad):
            raise ArgumentError("for a matrix formula, grad must be a callable")
        if domain is not None:
            raise ArgumentError("domain= is not supported for a matrix formula (it is checked "
                                "on random normal arrays); give points= to fix arguments")
        return guarded(lambda: verify_arrays(prog, grad, forward, samples=samples,
                                             seed=seed, points=points), "verify")
    with mpmath.workdps(DPS):
        verifier = _Verifier(prog, grad, forward)
        return guarded(lambda: verifier.run(points, samples or 40, seed, domain), "verify")


def assert_gradient(expr, wrt, grad, **options) -> VerifyReport:
    """``verify``, raising AssertionError with the report when the gradient is wrong (pytest).

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> assert_gradient(x**3, [x], lambda x: (3 * x**2,)).ok
    True
    """
    report = verify(expr, wrt, grad, **options)
    if not report.ok:
        raise AssertionError("the hand gradient is wrong\n" + str(report))
    return report


class _HandFailure(Exception):
    """The hand gradient could not be evaluated at a point (it raised, or returned junk)."""


class _Verifier:
    def __init__(self, prog, grad, forward):
        self.prog, self.ref = prog, Reference(prog)
        self.n = len(prog.wrt)
        self.exprs = None
        self.backward_pair = None
        self._symbolic: dict = {}
        if forward is not None:
            if not callable(forward) or not callable(grad):
                raise ArgumentError("with forward=, grad must be backward(dout, cache) and "
                                    "forward a callable returning (value, cache)")
            self.hand = "backward(dout, cache) paired with forward(*args)"
            self.backward_pair = (grad, forward)
            self.call = lambda *a: grad(1.0, _cache_of(forward(*a)))
        elif callable(grad):
            self.hand, self.call = "a callable of the formula's arguments", grad
        else:
            self.exprs = _derivation(grad, prog, self.ref)
            self.constant_owners, self.nudged = _nudged(self.exprs)
            self.hand = "a derivation: " + ", ".join(sp.sstr(e) for e in self.exprs)

    def run(self, given, samples, seed, domain=None) -> VerifyReport:
        sampled = self.ref.points(given, samples, seed, domain)
        notes = self.ref.skipped_note()
        if not sampled:
            notes.append("no point found where the formula and its gradient are defined")
        sampled, states, bounds = self._measurable(sampled, notes)
        hand, raised = self._hand_values(sampled)
        ran = [h is not None for h in hand]
        points = [p for p, r in zip(sampled, ran) if r]
        states = [s for s, r in zip(states, ran) if r]
        bounds = [b for b, r in zip(bounds, ran) if r]
        hand = [h for h in hand if h is not None]
        truth = [self.ref.gradient_with_error(p) for p in points]
        failure = self._scaling_failure(points, hand)
        if sampled and not points:  # it raised everywhere: nothing to judge the partials on
            failure = f"{raised[0][1]} at every point (e.g. {fmt_point(_named(raised[0][0]))})"
        elif not sampled:
            failure = "not checked: no point where the formula and its gradient are defined"
        if self.ref.diffs is not None:
            truth, hand = self._refined(points, truth, hand, bounds)
        allowed = [[self._allowed(row[0][k], row[1][k], b[0][k], b[1][k], h[1][k])
                    for row, b, h in zip(truth, bounds, hand)] for k in range(self.n)]
        evidence = Evidence(self, points, truth, states, allowed)
        verdicts = [self._judge(k, name, points, [h[0][k] for h in hand],
                                [row[0][k] for row in truth], allowed[k], failure, evidence)
                    for k, name in enumerate(self.prog.grads)]
        if self.exprs is not None and points:
            for k, v in enumerate(verdicts):
                v.proved = v.ok and self.symbolic(k, "difference") == 0
        ok = bool(points) and not raised and all(v.ok for v in verdicts)
        return VerifyReport(ok, self.prog.text or "(formula too long to print)",
                            self.ref.oracle, self.hand, [_named(p) for p in sampled], verdicts,
                            notes, raised=[(_named(p), why) for p, why in raised])

    def _scaling_failure(self, points, hand) -> str | None:
        """A backward must scale with dout: run it once more with dout = 0.5 and compare."""
        if self.backward_pair is None or not points:
            return None
        grad, forward = self.backward_pair
        args = [float(points[0][a]) for a in self.ref.args]
        try:
            half = _partials_of(grad(0.5, _cache_of(forward(*args))), self.n)
        except (_HandFailure, Exception):
            return None  # the dout = 1 run already reports a failing backward
        full = hand[0][0]
        if all(abs(2 * mpmath.mpf(h) - f) <= 1e-9 * max(1, abs(f)) for h, f in zip(half, full)):
            return None
        return ("does not scale with dout: backward(0.5, cache) is not half of backward(1.0, "
                "cache); multiply by the upstream gradient")

    def _measurable(self, points, notes):
        """The points where the staged program's error bounds are finite at 50 digits (the
        tolerance is built from them), with their forward states and bounds."""
        states = [self.ref.forward_state(p) for p in points]
        bounds = [self.ref.program_bounds(s) for s in states]
        keep = [all(mpmath.isfinite(v) for v in b[0] + b[1]) for b in bounds]
        if not all(keep):  # 1 - tanh(62)**2 is 0 at 50 digits
            notes.append(f"{keep.count(False)} sampled points skipped: the staged program is "
                         "not finite there at 50 digits")
        return ([x for x, k in zip(points, keep) if k], [x for x, k in zip(states, keep) if k],
                [x for x, k in zip(bounds, keep) if k])

    def _refined(self, points, truth, hand, bounds):
        """Reference (and derivation) again at 400 and 500 digits where they disagree: a
        formula can cancel at 70 digits (``log(1 + exp(-473))``)."""
        truth, hand = list(truth), list(hand)
        for i, (p, (t, t_err), (h, h_err), (b, c)) in enumerate(
                zip(points, truth, hand, bounds)):
            if all(abs(h[k] - t[k]) <= self._allowed(t[k], t_err[k], b[k], c[k], h_err[k])
                   for k in range(self.n)):
                continue
            with mpmath.workdps(REFINED_DIGITS[1]):
                truth[i] = self.ref.gradient_with_error(p, None, REFINED_DIGITS)
                if self.exprs is not None:
                    hand[i] = self._hand_at(p, REFINED_DIGITS)
        return truth, hand

    def _allowed(self, t, t_err, bound, constant, h_err):
        """The tolerance at a point. A derivation is exact but for its float constants (the
        derivation's, in ``h_err``, and the formula's, ``constant``): 0.3 on paper for 3 times
        the double 0.1 is right."""
        if self.exprs is not None:
            return max(EXPR_REL * abs(t), 4 * t_err, 4 * h_err, mpmath.mpf(1e-300)) \
                + CONSTANT_SAFETY * constant
        return max(HAND_REL * abs(t), HAND_SAFETY * bound, 4 * t_err, mpmath.mpf(1e-300))

    def _hand_values(self, points):
        """Per point: (hand partials, their own error estimates), or None where it failed; and
        the failures, (point, what happened), in point order."""
        rows, raised = [], []
        for p in points:
            try:
                rows.append(self._hand_at(p))
            except _HandFailure as exc:
                rows.append(None)
                raised.append((p, str(exc)))
        return rows, raised

    def _hand_at(self, point, digits=(DPS, DPS + 20)):
        if self.exprs is not None:
            coarse = evaluate_many(self.exprs + self.nudged, point, digits[0])
            fine = evaluate_many(self.exprs, point, digits[1])
            coarse, nudged = coarse[:self.n], coarse[self.n:]
            values = [mpmath.nan if v is None else v for v in fine]
            errors = [0 if a is None or b is None else abs(a - b) for a, b in zip(coarse, fine)]
            for j, (k, _c) in enumerate(self.constant_owners):  # a float may be a rounding
                up, down = nudged[2 * j], nudged[2 * j + 1]
                share = mpmath.inf if up is None or down is None else abs(up - down) / (
                    2 * NUDGE) * UNIT
                errors[k] += share
            return values, errors
        args = [float(point[a]) for a in self.ref.args]
        try:
            result = self.call(*args)
        except Exception as exc:  # the user's code: any failure is a finding, not a crash
            raise _HandFailure(f"raised {type(exc).__name__}: {exc}") from None
        return [mpmath.mpf(v) for v in _partials_of(result, self.n)], [0] * self.n

    def _judge(self, k, name, points, h, t, allowed, failure, evidence) -> PartialVerdict:
        verdict = PartialVerdict(name, ok=True)
        if failure:
            verdict.ok, verdict.diagnosis = False, failure
            return verdict
        errors = [abs(a - b) for a, b in zip(h, t)]
        finite = [e for e in errors if mpmath.isfinite(e)]
        verdict.max_abs_error = float(max(finite, default=0))
        # relative to |exact|, or to the float noise floor where the exact partial is near 0
        floor = HAND_REL if self.exprs is None else FLOAT_REL
        verdict.max_rel_error = float(max((e / max(abs(b), a / floor) for e, b, a
                                           in zip(errors, t, allowed) if mpmath.isfinite(e)),
                                          default=0))
        bad = [i for i, (e, a) in enumerate(zip(errors, allowed)) if not e <= a]
        if not bad:
            return verdict
        worst = max(bad, key=lambda i: errors[i] / allowed[i] if mpmath.isfinite(errors[i])
                    else mpmath.inf)
        verdict.ok, verdict.worst_point = False, _named(points[worst])
        verdict.detail = (f"worst at {fmt_point(verdict.worst_point)}: hand {_num(h[worst])}, "
                          f"exact {_num(t[worst])}")
        verdict.diagnosis = diagnose(k, h, t, allowed, evidence)
        return verdict

    def symbolic(self, k: int, what: str):
        """simplify(hand - exact) or simplify(hand / exact) for a derivation, within 2 s."""
        if self.exprs is None or self.ref.diffs is None:
            return None
        key = (k, what)
        if key not in self._symbolic:
            # exact: a derivation whose floats are only near the formula's is not "proved"
            hand, exact = to_elementary(exact_floats(self.exprs[k])), self.ref.diffs[k]
            task = (lambda: sp.simplify(hand - exact)) if what == "difference" else (
                lambda: sp.simplify(hand / exact))
            self._symbolic[key] = within_budget(task, seconds=2.0, default=None)
        return self._symbolic[key]


NUDGE = sp.Rational(1, 10**20)  # relative nudge of a float constant, for its first-order share


def _nudged(exprs) -> tuple[list, list]:
    """Per float constant c of each derivation: (k, c), and derivation k with c nudged up and
    down by NUDGE; evaluated, their difference gives the first-order effect of rounding c."""
    owners, pairs = [], []
    for k, expr in enumerate(exprs):
        for c in {n for n in postorder(expr) if n.is_Float}:
            exact = sp.Rational(c)
            owners.append((k, c))
            pairs += [substitute(expr, {c: exact * (1 + s * NUDGE)}, evaluate=False)
                      for s in (1, -1)]
    return owners, pairs


def _cache_of(result):
    if not (isinstance(result, tuple) and len(result) == 2):
        raise _HandFailure("forward must return (value, cache)")
    return result[1]


def _partials_of(result, n: int) -> list[float]:
    """The partials a hand gradient returned: a tuple of n numbers (or (value, partials))."""
    if n == 1 and _is_number(result):
        result = (result,)
    try:
        items = list(result)
    except TypeError:
        raise _HandFailure(f"returned {type(result).__name__}, not {n} partials") from None
    if (len(items) == 2 and n != 2 and _is_number(items[0]) and not _is_number(items[1])
            and len(list(items[1])) == n):
        items = list(items[1])  # a value_and_grad: (value, partials)
    if len(items) != n:
        noun = "partial" if len(items) == 1 else "partials"
        raise _HandFailure(f"returned {len(items)} {noun} for {n} wrt symbols")
    values = []
    for item in items:
        try:
            values.append(float(item))
        except (TypeError, ValueError):
            raise _HandFailure(f"returned {type(item).__name__} where a number belongs") from None
    return values


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (tuple, list, str))


def _derivation(grad, prog, ref) -> list[sp.Expr]:
    """A derivation on paper: one SymPy expression or string per wrt symbol, over the args."""
    if isinstance(grad, (str, sp.Basic)) or not hasattr(grad, "__iter__"):
        raise ArgumentError("grad must be a callable, or a list of SymPy expressions or strings "
                            "(one per wrt symbol)")
    items = list(grad)
    if len(items) != len(prog.wrt):
        raise ArgumentError(f"grad lists {len(items)} expressions for {len(prog.wrt)} wrt "
                            "symbols")
    by_name = {i.symbol.name: a for i, a in zip(prog.inputs, ref.args)}
    by_name.update((i.name, a) for i, a in zip(prog.inputs, ref.args))
    exprs = []
    for item, name in zip(items, prog.grads):
        declared = [i.symbol.name for i in prog.inputs]  # E in E*A/L stays the variable
        expr = parse(item, variables=declared) if isinstance(item, str) else item
        if isinstance(expr, (int, float)):
            expr = sp.Float(expr) if isinstance(expr, float) else sp.Integer(expr)
        if not isinstance(expr, sp.Expr):
            raise ArgumentError(f"the derivation of {name} is not an expression: {item!r}")
        unknown = sorted(s.name for s in expr.free_symbols if s.name not in by_name)
        if unknown:
            raise ArgumentError(f"the derivation of {name} uses {', '.join(unknown)}, which "
                                "the formula does not have")
        exprs.append(expr.xreplace({s: by_name[s.name] for s in expr.free_symbols}))
    return exprs


def _named(point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}


def _num(value) -> str:
    return "nan" if not mpmath.isfinite(value) else repr(float(value))

