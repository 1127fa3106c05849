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
from .array_verify import verify_arrays
from .check import REFINED_DIGITS, guarded
from .derivative_rows import verify_rows
from .diagnose import Evidence, diagnose, kink_variants
from .errors import ArgumentError
from .functions import to_elementary
from .hand import NUDGE, HandFailure, cache_of, derivation, nudged, partials_of
from .numeric import DPS, evaluate_many, within_budget
from .reference import Reference
from .reports import PartialVerdict, VerifyReport, fmt_point
from .roundoff import UNIT, exact_floats
from .sampling import argument_named
from .tolerance import CONSTANT_SAFETY, FLOAT_REL, HAND_REL

HAND_SAFETY = 1024  # hand code may differ by HAND_REL, or by this many float error bounds of the
# staged program, if larger
EXPR_REL = 1e-20  # a derivation (expressions) evaluated at 50 digits


def verify(expr, wrt, grad, args=None, points=None, *, forward=None, samples: int | None = None,
           seed: int = 0, domain: dict | None = None, strict: bool = False,
           kinds: dict | None = None, order: int = 1) -> VerifyReport:
    """Compare a hand-derived gradient with the exact one; say what is wrong if it is.

    ``grad`` is a callable taking the formula's arguments (``args`` order: wrt, then the other
    symbols by name) and returning the partials in wrt order; or a list of SymPy expressions or
    strings, one per wrt symbol; or, with ``forward=``, a ``backward(dout, cache)`` paired with
    ``forward(*args) -> (value, cache)``. ``samples`` random points besides the ``points``
    given (default 40); ``domain`` maps a variable (name or Symbol) to the interval ``(lo, hi)``
    its random values are drawn from.

    For a matrix formula a point is a set of arrays (dict of argument -> array; they fix the
    sizes of their dimensions, the other arguments are drawn once per point), ``samples`` sets
    of random arrays at distinct random sizes are added (default 6, or none when ``points`` are
    given), and the hand partials are compared with symdiff's generated gradient, itself first
    checked against the formula written out entry by entry. The tolerance follows the precision
    the hand code computes in: the dtype of the partials it returns (float32 code is judged as
    float32). ``kinds`` declares what an array holds, so every trial size gets a fitting value
    (argument -> "one_hot", "mask", "spd", "positive" or "probabilities"); a hand forward that
    draws its own dropout mask with NumPy's generator is given the formula's mask (see
    ``symdiff.drawn_masks``).

    A vector of formulas takes a hand Jacobian (``grad`` returns ``J[i][j] = d out_i / d
    wrt_j``), ``order=2`` a hand Hessian; each row is verified as a gradient, and the matrix is
    read for a transposed Jacobian, an asymmetric Hessian or a missing cross term.

    At a point where an argument of relu, |u| or max sits exactly at its kink, a hand partial
    that is another valid subgradient there (relu'(0) = 1 where symdiff documents 0) is noted,
    and the point left out of its verdict; ``strict=True`` judges it by the documented
    convention.

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
    prog, order = lower(expr, wrt, args), _order(order)
    if prog.shapes is not None:  # the one place verify dispatches on the kind of program
        _matrix_hand(prog, order, grad, forward)
        return guarded(lambda: verify_arrays(prog, grad, forward, points, samples, seed,
                                             domain, strict, kinds), "verify")
    if prog.output_names or order == 2:
        return _verify_rows(prog, grad, order, points, samples, seed, domain, strict,
                            (forward, kinds))
    if kinds is not None:
        raise ArgumentError("kinds= is for the arrays of a matrix formula; this formula has none "
                            "(domain= gives a scalar's interval)")
    with mpmath.workdps(DPS):
        verifier = _Verifier(prog, grad, forward, strict)
        return guarded(lambda: verifier.run(points, samples or 40, seed, domain), "verify")


def _matrix_hand(prog, order, grad, forward) -> None:
    if prog.output_names or order == 2:
        raise ArgumentError("a hand Jacobian or Hessian is verified for scalar formulas; "
                            "verify each output of a matrix formula on its own")
    if not callable(grad) or (forward is not None and not callable(forward)):
        raise ArgumentError("for a matrix formula, grad must be a callable (and forward=, "
                            "if given, a callable returning (value, cache))")


def _order(order) -> int:
    if order not in (1, 2) or isinstance(order, bool):
        raise ArgumentError(f"order must be 1 (a gradient or Jacobian) or 2 (a Hessian), "
                            f"got {order!r}")
    return order


def _verify_rows(prog, hand, order, points, samples, seed, domain, strict,
                 unused) -> VerifyReport:
    """A hand Jacobian or Hessian, each row verified as a gradient (derivative_rows).
    ``unused``: verify's (forward, kinds), which have no meaning here."""
    if any(u is not None for u in unused):
        raise ArgumentError("a hand Jacobian or Hessian is verified as a callable (no "
                            "forward=, no kinds=)")

    def judge(row, row_hand):
        return _Verifier(row, row_hand, None, strict).run(points, samples or 40, seed, domain)

    with mpmath.workdps(DPS):
        return guarded(lambda: verify_rows(prog, hand, order, judge), "verify")


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


class _Verifier:
    def __init__(self, prog, grad, forward, strict=False):
        self.prog, self.ref, self.strict = prog, Reference(prog), strict
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
            self.call = self._paired
        elif callable(grad):
            self.hand, self.call = "a callable of the formula's arguments", grad
        else:
            self.exprs = derivation(grad, prog, self.ref)
            self.constant_owners, self.nudged = nudged(self.exprs)
            self.hand = "a derivation: " + ", ".join(sp.sstr(e) for e in self.exprs)

    def _paired(self, *args):
        """backward(1.0, cache) of forward(*args); forward's value is kept for its verdict."""
        grad, forward = self.backward_pair
        result = forward(*args)
        partials = grad(1.0, cache_of(result))
        self.values.append(result[0])  # only where both ran: one value per point that ran
        return partials

    def run(self, given, samples, seed, domain=None) -> VerifyReport:
        sampled = self.ref.points(given, samples, seed, domain)
        notes = self.ref.skipped_note()
        if not sampled:
            notes.append("no point found where the formula and its gradient are defined")
        sampled, states, bounds = self._measurable(sampled, notes)
        self.values: list = []
        hand, raised = self._hand_values(sampled)
        ran = [h is not None for h in hand]
        value = self._judge_value(sampled, states, ran) if self.backward_pair else None
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
        evidence = Evidence(self.prog, self.ref, self.symbolic, points, truth, states, allowed)
        self.notes = notes
        verdicts = [self._judge(k, name, points, [h[0][k] for h in hand],
                                [row[0][k] for row in truth], allowed[k], failure, evidence)
                    for k, name in enumerate(self.prog.grads)]
        if self.exprs is not None and points:
            for k, v in enumerate(verdicts):
                v.proved = v.ok and self.symbolic(k, "difference") == 0
        ok = bool(points) and not raised and all(v.ok for v in verdicts + [value] if v)
        return VerifyReport(ok, self.prog.text or "(formula too long to print)",
                            self.ref.oracle, self.hand, [_named(p) for p in sampled], verdicts,
                            notes, raised=[(_named(p), why) for p, why in raised], value=value)

    def _judge_value(self, points, states, ran) -> PartialVerdict | None:
        """forward's value against the formula's at the points where the hand code ran, within
        HAND_REL or the staged program's float error bound of the output."""
        out = sp.Symbol(self.prog.output, real=True)
        verdict = PartialVerdict("value", ok=True)  # the forward's, beside the partials
        ran_at = [(p, s) for p, s, r in zip(points, states, ran) if r]
        if len(ran_at) != len(self.values):  # partials_of refused a result: values unpaired
            return None
        for (p, (env, err, _)), value in zip(ran_at, self.values):
            try:
                got = mpmath.mpf(float(value))
            except (TypeError, ValueError):
                verdict.ok = False
                verdict.diagnosis = "forward returns a value that is not a number"
                return verdict
            t = env[out]
            err_bound = max(HAND_REL * abs(t), HAND_SAFETY * err[out], mpmath.mpf(1e-300))
            verdict.max_abs_error = max(verdict.max_abs_error, float(abs(got - t)))
            verdict.max_rel_error = max(verdict.max_rel_error,
                                        float(abs(got - t) / max(abs(t), err_bound / HAND_REL)))
            if not abs(got - t) <= err_bound:
                verdict.ok, verdict.worst_point = False, _named(p)
                verdict.diagnosis = "forward returns a wrong value: it is not the formula's"
                verdict.detail = (f"at {fmt_point(verdict.worst_point)}: hand {_num(got)}, "
                                  f"exact {_num(t)}")
                return verdict
        return verdict

    def _scaling_failure(self, points, hand) -> str | None:
        """A backward must scale with dout: run it once more with dout = 0.5 and compare."""
        if self.backward_pair is None or not points:
            return None
        grad, forward = self.backward_pair
        args = [float(points[0][a]) for a in self.ref.args]
        try:
            half = partials_of(grad(0.5, cache_of(forward(*args))), self.n)
        except (HandFailure, Exception):
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
            except HandFailure as exc:
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
            raise HandFailure(f"raised {type(exc).__name__}: {exc}") from None
        return [mpmath.mpf(v) for v in partials_of(result, self.n)], [0] * self.n

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
        if bad and not self.strict:
            kinked = self._at_kinks(k, bad, h, allowed, evidence)
            if kinked:
                self.notes.append(
                    f"{name}: at {len(bad)} of {len(points)} points an argument of relu, |u| or "
                    f"max sits exactly at its kink and the hand code picks another valid "
                    f"subgradient there ({kinked}), not the documented convention; those "
                    f"points are left out of the verdict (strict=True judges them)")
                return verdict
        if not bad:
            return verdict
        worst = max(bad, key=lambda i: errors[i] / allowed[i] if mpmath.isfinite(errors[i])
                    else mpmath.inf)
        verdict.ok, verdict.worst_point = False, _named(points[worst])
        verdict.detail = (f"worst at {fmt_point(verdict.worst_point)}: hand {_num(h[worst])}, "
                          f"exact {_num(t[worst])}")
        verdict.diagnosis = diagnose(k, h, t, allowed, evidence)
        return verdict

    def _at_kinks(self, k, bad, h, allowed, evidence) -> str:
        """How hand partial ``k`` is another valid subgradient at each of the ``bad`` points
        (``kink_variants``: the step of relu, |u| and max at 0 taken as 1/2 or 1), or ""."""
        for backward, text in kink_variants(self.prog):
            if all(abs(h[i] - self.ref.backward_values(evidence.states[i], backward)[0][k])
                   <= allowed[i] for i in bad):
                return text
        return ""

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


def _named(point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}


def _num(value) -> str:
    return "nan" if not mpmath.isfinite(value) else repr(float(value))


def verify_layer(expr, wrt, make_layer, grads=None, *, inputs=None, args=None,
                 **options) -> VerifyReport:
    """``verify`` for a layer object, the way textbook layers are written.

    ``make_layer(*parameters)`` builds the layer from the formula's other arguments (in
    ``args`` order, leaving out ``inputs`` and the arrays declared ``kinds={...: "mask"}``,
    which the layer draws itself); ``layer.forward(*inputs)`` returns the output;
    ``layer.backward(dout)`` returns the gradients of the inputs that are in wrt (one array, or
    a tuple in ``inputs`` order: a loss layer's labels get none), and ``grads(layer)`` the
    gradients of the parameters in wrt, in ``wrt`` order (``lambda layer: (layer.dW,
    layer.db)``). ``inputs`` defaults to the first argument.
    The other options are verify's.

    >>> import numpy as np, sympy as sp, symdiff
    >>> N, D, M = sp.symbols("N D M", integer=True, positive=True)
    >>> X, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M)
    >>> class Linear:
    ...     def __init__(self, W): self.W = W
    ...     def forward(self, x): self.x = x; return x @ self.W
    ...     def backward(self, dout): self.dW = self.x.T @ dout; return dout @ self.W.T
    >>> verify_layer(X * W, [X, W], Linear, lambda layer: (layer.dW,)).ok
    True
    """
    adapter = _LayerAdapter(lower(expr, wrt, args), make_layer, grads, inputs,
                            options.get("kinds"))
    return verify(expr, wrt, adapter.backward, args=args, forward=adapter.forward, **options)


class _LayerAdapter:
    """A layer object as verify's ``forward`` / ``backward(dout, cache)`` pair."""

    def __init__(self, prog, make_layer, grads, inputs, kinds):
        self.make_layer, self.grads = make_layer, grads
        self.names = [i.name for i in prog.inputs]
        self.prog = prog
        self.ins = [self._code(s) for s in (inputs if inputs is not None else self.names[:1])]
        masks = {self._code(k) for k, v in (kinds or {}).items() if v == "mask"}
        self.params = [n for n in self.names if n not in self.ins and n not in masks]
        by_grad = {i.grad: i.name for i in prog.inputs if i.grad is not None}
        self.wrt = [by_grad[g] for g in prog.grads]  # the partials' order
        self.wrt_params = [n for n in self.wrt if n not in self.ins]
        self.wrt_ins = [n for n in self.ins if n in self.wrt]
        if grads is None and self.wrt_params:
            raise ArgumentError("a parameter is in wrt: give grads=lambda layer: (...) to read "
                                "its gradient off the layer")

    def _code(self, s) -> str:
        return argument_named(self.prog, s, "inputs").name

    def forward(self, *values):
        given = dict(zip(self.names, values))
        layer = self.make_layer(*(given[n] for n in self.params))
        return layer.forward(*(given[n] for n in self.ins)), layer

    def backward(self, dout, layer):
        d_in = layer.backward(dout)
        d_in = tuple(d_in) if isinstance(d_in, (tuple, list)) else (d_in,)
        d_param = tuple(self.grads(layer)) if self.grads is not None else ()
        if len(d_in) != len(self.wrt_ins) or len(d_param) != len(self.wrt_params):
            raise HandFailure(f"layer.backward returned {len(d_in)} gradients for "
                              f"{len(self.wrt_ins)} inputs in wrt, grads(layer) {len(d_param)} "
                              f"for {len(self.wrt_params)} parameters in wrt")
        found = dict(zip(self.wrt_ins, d_in)) | dict(zip(self.wrt_params, d_param))
        return tuple(found[n] for n in self.wrt)
