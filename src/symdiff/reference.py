"""The reference a gradient is judged against, and the staged program's own exact values.

``Reference`` holds the formula over the program's code names and its reference gradient:
``sympy.diff`` of the formula as the user gave it (symdiff's own functions rewritten to plain
SymPy), or a central difference at 60 digits for a formula too large for ``sympy.diff``. Both come
with an estimate of their own error. It also evaluates the staged program at 50 digits, with a
first-order bound on the error the same program makes in floats, and can prove a small program
equal to the reference symbolically within a time budget. ``check`` and ``verify`` build on it.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import mpmath
import sympy as sp
from sympy.core.relational import Relational

from .api import real_symbol
from .dag import postorder, substitute
from .errors import SymdiffError, VectorOutputError
from .functions import to_elementary
from .ir import Program
from .numeric import DPS, evaluate_many, within_budget
from .roundoff import FLOAT_MAX, FLOAT_TINY, UNIT, exact_floats, float_constant, magnitude, times
from .rules import derivative
from .sampling import domain_intervals, sample_points

_PLACEHOLDERS = sp.symbols("_p0:256", real=True)
FD_ALL = 8  # a difference oracle with more wrt symbols checks 8 random partials and directions
DIFF_MAX_TREE = 5_000  # formulas larger than this (as trees) use the finite-difference oracle
DIFF_SECONDS = 5.0  # so does a formula sympy.diff takes longer than this on
PROOF_MAX_STEPS = 30


FLOAT_LIMIT = 1e300  # values beyond this overflow float code somewhere along the way
CONFIRM_DPS = 90  # a point is in the domain when the formula is defined at 50 and at 90 digits
TIE_DIGITS = 500  # sides of a choice equal at 50 digits are compared again at this precision
CONFIRM_REL = mpmath.mpf(10) ** -25  # ... with values this close (the 50-digit one is right)


class FloatView(NamedTuple):
    """What floats can do at one point (``Reference.float_view``)."""

    beyond: bool  # a value beyond the float range: code not judged
    value: tuple  # (output value, its float error bound, the constants' share)
    shaky: bool  # a local derivative undetermined in floats: inf, nan or a raise are honest
    undecided: bool  # a branch undecided in floats: code not judged


class Reference:
    """The formula over code-name symbols, its reference gradient, and the program's own."""

    def __init__(self, prog: Program):
        if prog.output_names:  # one reference gradient is of one output
            raise VectorOutputError(
                f"check and verify judge one output; this program has {len(prog.outputs)}: "
                "judge each output's own program, symdiff.tangent.row_program(prog, k) (the "
                "reverse sweep of row k of its Jacobian)")
        self.prog = prog
        self._digits = DPS  # the program's precision (program_gradient(digits=...) raises it)
        self.args = [sp.Symbol(n, real=True) for n in prog.args]
        by_real = {real_symbol(i.symbol): a for i, a in zip(prog.inputs, self.args)}
        symbols = [n for n in postorder(prog.expr) if n.is_Symbol]
        renamed = substitute(prog.expr, {s: by_real[real_symbol(s)] for s in symbols},
                             evaluate=False)
        self.expr = to_elementary(exact_floats(renamed))  # exact first: SymPy folds Floats
        self.wrt = [by_real[real_symbol(s)] for s in prog.wrt]
        self.diffs = None
        if tree_size(self.expr, DIFF_MAX_TREE) <= DIFF_MAX_TREE:
            self.diffs = _derivatives(self.expr, self.wrt)
        self.oracle = ("sympy.diff at 50 digits" if self.diffs is not None else
                       "central difference of the formula at 60 digits (h = 1e-20)")
        self._partials: dict = {}  # step expression -> its shape and partials
        self._shapes: dict = {}  # shape -> (operation count, partial derivatives)
        self._runs: dict = {}  # point -> the program run there (``_program``)

    def points(self, given, samples, seed, domain=None) -> list[dict]:
        """The ``given`` points where the formula is defined, then ``samples`` random ones."""
        box = self.box(domain)
        extra = [self._point(p) for p in (given or [])]
        kept = [p for p in extra if self.defined(p)]
        self.skipped = [p for p in extra if p not in kept]  # the caller says so in its report
        return kept + sample_points(self.args, self.defined, samples, seed, box,
                                    signs=self.signs())

    def signs(self) -> dict:
        """The sign each argument is declared to have (Symbol('x', positive=True): 1)."""
        return {a: 1.0 if i.symbol.is_nonnegative else -1.0
                for i, a in zip(self.prog.inputs, self.args)
                if i.symbol.is_nonnegative or i.symbol.is_nonpositive}

    def skipped_note(self) -> list[str]:
        """A note naming the given points outside the domain, if any."""
        if not getattr(self, "skipped", None):
            return []
        where = ", ".join(f"{s.name}={float(v):.6g}" for s, v in self.skipped[0].items())
        return [f"{len(self.skipped)} given point(s) skipped: the formula, its gradient or a "
                f"step is not defined (or beyond the float range) there, e.g. {where}"]

    def box(self, domain) -> dict:
        """A user's sampling domain, ``{name or Symbol: (lo, hi)}``, by code-name symbol."""
        by_code = dict(zip(self.prog.args, self.args))
        return {by_code[n]: lohi for n, lohi in domain_intervals(self.prog, domain).items()}

    def _point(self, given: dict) -> dict:
        by_code = dict(zip(self.prog.args, self.args))
        return {by_code[n]: v for n, v in self.prog.resolve_point(given).items()}

    @property
    def sampled(self) -> bool:
        """A difference oracle over many variables: some partials, and random directions."""
        return self.diffs is None and len(self.wrt) > FD_ALL

    def sampled_partials(self, seed: int) -> list[int]:
        """The partials checked one by one when ``sampled`` (the others along directions)."""
        return sorted(random.Random(seed).sample(range(len(self.wrt)), FD_ALL))

    def defined(self, point: dict) -> bool:
        """Formula, reference gradient and every forward step are real and fit in a float here.

        A formula too large for sympy.diff is not differentiated just to test a point. A value
        beyond the float range (exp(exp(x)) at x = 10) is no test of float code: the point is
        outside the domain that generated code can represent.
        """
        values = [evaluate_many([self.expr], point)[0]]
        if self.diffs is not None:
            values += self.gradient(point)
        values += self._forward(point).values()
        if not all(v is not None and abs(v) < FLOAT_LIMIT for v in values):
            return False
        # the same value at 90 digits: cos(x**x) at x = 38 (x**x ~ 1e60) has no right digit at
        # 50, and its sign decides whether cos(x**x)**x is real
        confirmed = evaluate_many([self.expr], point, CONFIRM_DPS)[0]
        return confirmed is not None and abs(confirmed - values[0]) <= CONFIRM_REL * (
            abs(confirmed) + mpmath.mpf(10) ** -20)

    def gradient(self, point: dict) -> list:
        if self.diffs is not None:
            return evaluate_many(self.diffs, point)
        return [self._central_difference(point, s) for s in self.wrt]

    def gradient_with_error(self, point: dict, only=None, digits=(50, 70)) -> tuple[list, list]:
        """The reference gradient and an estimate of its own error, per partial.

        sympy.diff's expression is evaluated at 50 and at 70 digits (a derivative that is 0 by
        cancellation comes out as 1e-53 noise at 50 digits); a central difference with h and 10h.
        With ``only`` (partial indices), the other partials are None. ``digits`` are the two
        precisions (check refines a point where the program disagrees: ``log(1 + exp(-473))``
        is 0 at 50 and at 70 digits).
        """
        wanted = range(len(self.wrt)) if only is None else only
        fine, coarse = [None] * len(self.wrt), [None] * len(self.wrt)
        if self.diffs is not None:
            exprs = [self.diffs[k] for k in wanted]
            for k, a, b in zip(wanted, evaluate_many(exprs, point, digits[0]),
                               evaluate_many(exprs, point, digits[1])):
                coarse[k], fine[k] = a, b
        else:
            for k in wanted:
                fine[k] = self._central_difference(point, self.wrt[k])
                coarse[k] = self._central_difference(point, self.wrt[k], scale=10)
        with mpmath.workdps(max(70, digits[1])):
            return fine, [None if a is None or b is None else abs(a - b)
                          for a, b in zip(coarse, fine)]

    def directional_with_error(self, point: dict, direction: dict):
        """The derivative along ``direction`` (symbol -> weight), by central differences."""
        fine = self._along(point, direction, 1)
        coarse = self._along(point, direction, 10)
        if fine is None or coarse is None:
            return None, None
        with mpmath.workdps(70):
            return fine, abs(fine - coarse)

    def _central_difference(self, point, symbol, scale=1):
        return self._along(point, {symbol: 1}, scale)

    def _along(self, point, direction: dict, scale):
        size = max([1] + [abs(point[s]) for s in direction])
        h = mpmath.mpf("1e-20") * scale * size
        with mpmath.workdps(60):
            up = {**point, **{s: point[s] + h * w for s, w in direction.items()}}
            down = {**point, **{s: point[s] - h * w for s, w in direction.items()}}
            f_up, f_down = evaluate_many([self.expr], up, dps=60)[0], \
                evaluate_many([self.expr], down, dps=60)[0]
            return None if f_up is None or f_down is None else (f_up - f_down) / (2 * h)

    def _forward(self, point: dict) -> dict:
        env = {a: mpmath.mpf(point[a]) for a in self.args}
        values = {}
        for step in self.prog.forward:
            value = evaluate_many([step.rhs], env)[0]
            values[step.name] = value
            if value is None:
                break
            env[sp.Symbol(step.name, real=True)] = value
        return values

    def program_gradient(self, point: dict, digits: int | None = None) -> list:
        """The backward program at 50 digits (or ``digits``, computed afresh): gradients, then
        two error bounds per gradient.

        The first bound is a first-order running error analysis of the float program: each
        operation rounds by at most ``UNIT`` times its result, and errors in its inputs propagate
        through its partial derivatives. The generated code must agree with the reference within
        a small multiple of it: ``out*(1 - out)`` near out = 1 is then judged by what floats can
        do. The second is the part of it that the 50-digit program shares: a float constant the
        lowering computed (0.9 in ``0.1/x**0.9``, the derivative of ``x**0.1``) is a 53-bit
        rounding of the exact constant at any precision.
        """
        if digits is not None:
            values, bounds, constant = self._at_digits(digits, lambda: self._backward(
                self.forward_state(point), self.prog.backward))
            return values + [bounds, constant]
        _, (values, bounds, constant), _ = self._program(point)
        return values + [bounds, constant]

    def _program(self, point: dict) -> tuple:
        """(forward state, backward results, what each backward step saw) at ``point``, once
        per point: check reads it for the gradient and again for the float view."""
        key = tuple(point[a] for a in self.args)
        if key not in self._runs:
            state, seen = self.forward_state(point), []
            self._runs[key] = (state, self._backward(state, self.prog.backward, seen), seen)
        return self._runs[key]

    def float_view(self, point: dict) -> FloatView:
        """What floats can do here. Is a forward value (or a value inside a step), a local
        derivative or a gradient term outside the normal float range (gamma(-1245.8) ~ 1e-3300;
        atan' = 1/(1 + u**2) at u = exp(400): float code over- or underflows whatever it does)?
        (value, its float error bound, the constants' share) of the program's output. Is a
        local derivative undetermined in floats (its error bound exceeds its size: erf(6)
        rounds to 1.0, where acos' = -1/sqrt(1 - u**2) is infinite), so that the code may
        compute inf or nan or raise there, even where its upstream gradient is exactly 0? And
        is a branch undecided in floats (``_undecided``)?"""
        state, _, seen = self._program(point)  # seen: (local, its bound, term) per step
        env, err, cerr = state
        values = [v for v in env.values() if isinstance(v, mpmath.mpf)]
        values += [v for local, _, term in seen for v in (local, term)]
        inline = [n for step in self.prog.forward for n in postorder(step.rhs)
                  if n.args and isinstance(n, sp.Expr)]  # exp(x**x) in a branch condition
        values += [v for v in evaluate_many(inline, env) if isinstance(v, mpmath.mpf)]
        beyond = any(mpmath.isfinite(v) and v != 0 and not FLOAT_TINY <= abs(v) <= FLOAT_MAX
                     for v in values)
        shaky = any(local != 0 and not lerr < abs(local) for local, lerr, _ in seen)
        out = sp.Symbol(self.prog.output, real=True)
        deeper = []  # the forward state at TIE_DIGITS, computed once if a tie needs it
        def deep_state():
            if not deeper:
                deeper.append(self._at_digits(TIE_DIGITS, lambda: self.forward_state(point)))
            return deeper[0]
        undecided = any(self._undecided(step.rhs, state, deep_state)
                        for step in self.prog.forward)
        return FloatView(beyond, (env.get(out), err.get(out, 0), cerr.get(out, 0)), shaky,
                         undecided)

    def _undecided(self, rhs, state, deep_state) -> bool:
        """Does a choice in ``rhs`` turn on a difference below the float error bounds of its
        sides (Min(sin(pi), sech(E)) at E = 38: sin(math.pi) is 1.2e-16, sech(38) 6e-17, the
        exact sin(pi) 0; floor(u) within its bound of an integer; |u| or sign(u) within its
        bound of 0)? Then float code may take the other branch, rightly. Sides equal at 50
        digits are compared again at ``TIE_DIGITS`` (``deep_state()``): 2**erfc(17.4) is
        1 + 1e-134, 1 at 50 digits and in floats, so Max(1.0, 2**erfc(zeta)) is undecided there,
        while Max(x, 0) at x = 0 is a tie (the non-smooth convention's, judged)."""
        for node in postorder(rhs):
            sides = self._sides(node, state)
            if sides is None:
                continue
            for k, (v, e) in enumerate(sides):
                for j, (w, f) in enumerate(sides[k + 1:], k + 1):
                    if 0 < abs(v - w) <= e + f:
                        return True
                    if v == w and e + f > 0:
                        deep = self._sides(node, deep_state())
                        if deep[k][0] != deep[j][0]:
                            return True
        return False

    def _sides(self, node, state) -> list | None:
        """(value, float error bound) of the two sides of a choice ``node`` (None if none)."""
        if isinstance(node, (sp.floor, sp.ceiling)):  # sigmoid(49) rounds up to 1.0
            v, e = self._rounded(node.args[0], *state)[:2]
            return [(v, e), (mpmath.floor(v) if v - mpmath.floor(v) < 0.5 else mpmath.ceil(v), 0)]
        if isinstance(node, (sp.Heaviside, sp.sign, sp.Abs)):
            return [self._rounded(node.args[0], *state)[:2], (0, 0)]
        if isinstance(node, (sp.Max, sp.Min)):
            return [self._rounded(a, *state)[:2] for a in node.args]
        if isinstance(node, Relational) and isinstance(node.lhs, sp.Expr):
            return [self._rounded(a, *state)[:2] for a in (node.lhs, node.rhs)]
        return None

    def _at_digits(self, digits: int, task):
        """``task()`` with the program evaluated at ``digits`` instead of 50."""
        self._digits = digits
        try:
            with mpmath.workdps(digits):
                return task()
        finally:
            self._digits = DPS

    def forward_state(self, point: dict) -> tuple[dict, dict, dict]:
        """Forward values at 50 digits, their float error bounds, and the constants' share."""
        env = {a: mpmath.mpf(point[a]) for a in self.args}
        err: dict[sp.Symbol, mpmath.mpf] = {a: mpmath.mpf(0) for a in self.args}
        cerr: dict[sp.Symbol, mpmath.mpf] = {a: mpmath.mpf(0) for a in self.args}
        for step in self.prog.forward:
            symbol = sp.Symbol(step.name, real=True)
            env[symbol], err[symbol], cerr[symbol] = self._rounded(step.rhs, env, err, cerr)
        return env, err, cerr

    def backward_values(self, state: tuple, backward) -> tuple[list, list]:
        """The gradients of ``backward`` (any list of GradSteps) and their float error bounds."""
        return self._backward(state, backward)[:2]

    def program_bounds(self, state: tuple) -> tuple[list, list]:
        """The staged program's float error bounds per gradient, and the constants' share."""
        return self._backward(state, self.prog.backward)[1:]

    def _backward(self, state: tuple, backward, seen=None) -> tuple[list, list, list]:
        env, err, cerr = state
        start = "d" + self.prog.output
        grads, gerr, gcerr = {start: mpmath.mpf(1)}, {start: mpmath.mpf(0)}, {start: 0}
        for g in backward:
            local, lerr, lcerr = self._rounded(g.local, env, err, cerr)
            up = grads.get(g.upstream, mpmath.mpf(0))  # a variant may never write it
            term = up * local
            if seen is not None:
                seen.append((local, lerr, term))
            term_err = (times(abs(up), lerr) + times(abs(local), gerr.get(g.upstream, 0))
                        + UNIT * abs(term))
            term_cerr = times(abs(up), lcerr) + times(abs(local), gcerr.get(g.upstream, 0))
            if g.accumulate and g.name in grads:
                grads[g.name] += term
                gerr[g.name] += term_err + UNIT * abs(grads[g.name])
                gcerr[g.name] += term_cerr
            else:
                grads[g.name], gerr[g.name], gcerr[g.name] = term, term_err, term_cerr
        names = self.prog.grads
        zero = mpmath.mpf(0)
        return ([grads.get(n, zero) for n in names], [gerr.get(n, zero) for n in names],
                [gcerr.get(n, zero) for n in names])

    def _rounded(self, expr, env, err, cerr):
        """Value of a small expression, its float error bound, and the constants' share of it."""
        if expr not in self._partials:
            self._partials[expr] = self._shape_partials(expr)
        ops, shape, inputs, partials = self._partials[expr]
        local = self._local(shape, expr, inputs, env)
        values = evaluate_many([shape] + partials, local, self._digits)
        if values[0] is None:
            return mpmath.nan, mpmath.inf, mpmath.inf
        value, constant = values[0], mpmath.mpf(0)
        bound = ops * UNIT * magnitude(shape, local, value)
        for s, d in zip(inputs, values[1:]):
            weight = abs(d) if d is not None else mpmath.inf
            if s.is_Symbol:
                bound += times(weight, err.get(s, 0))
                constant += times(weight, cerr.get(s, 0))
            else:  # a float constant: possibly a 53-bit rounding of an exact one
                share = times(weight, UNIT * abs(float_constant(s)))
                bound, constant = bound + share, constant + share
        return value, bound, constant

    @staticmethod
    def _local(shape, expr, inputs, env):
        if shape is expr:
            return env
        return {p: (env[s] if s.is_Symbol else s) for p, s in zip(_PLACEHOLDERS, inputs)}

    def _shape_partials(self, expr):
        """``expr`` over placeholders, and its partials: differentiated once per shape.

        The inputs are the symbols of ``expr`` and its float constants: any of them may be a
        constant the lowering computed in 53 bits (0.3 - 1 in the derivative of ``t**0.3``),
        and the value alone cannot tell it from one the formula holds.
        """
        nodes = postorder(expr)
        inputs = [n for n in nodes if n.is_Symbol]
        inputs += [n for n in nodes if n.is_Float]
        if isinstance(expr, sp.Add) and _linear(expr, inputs):  # any size: the coefficients
            coefficient = {t.as_coeff_Mul()[1]: t.as_coeff_Mul()[0] for t in expr.args}
            return len(expr.args), expr, inputs, [coefficient[s] for s in inputs]
        if len(inputs) > len(_PLACEHOLDERS):  # a huge compound gate: no shape sharing
            ops = max(1, sp.count_ops(expr)) + 1
            inputs = [n for n in inputs if n.is_Symbol]  # its constants: the formula's own
            return ops, expr, inputs, [derivative(expr, s) for s in inputs]
        shape = expr.xreplace(dict(zip(inputs, _PLACEHOLDERS)))
        if shape not in self._shapes:
            used = _PLACEHOLDERS[:len(inputs)]
            self._shapes[shape] = (max(1, sp.count_ops(shape)) + 1,
                                   [derivative(shape, p) for p in used])
        ops, partials = self._shapes[shape]
        return ops, shape, inputs, partials

    def prove(self) -> list[bool]:
        """Symbolic proof per partial, within a time budget; False means 'not proved'."""
        if self.diffs is None or len(self.prog.forward) > PROOF_MAX_STEPS:
            return [False] * len(self.wrt)
        # SymPy may fail to rebuild the composition (Max of a Piecewise folded to nan): not proved
        composed = within_budget(lambda: _compose(self.prog), 2.0, None)
        if composed is None:
            return [False] * len(self.wrt)
        results = []
        for name, reference in zip(self.prog.grads, self.diffs):
            difference = to_elementary(exact_floats(composed.get(name, sp.S.Zero))) - reference
            results.append(within_budget(lambda d=difference: sp.simplify(d) == 0, 2.0, False))
        return results


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


def _derivatives(expr, wrt) -> list | None:
    """sympy.diff of ``expr`` by each of ``wrt``, or None where SymPy takes over DIFF_SECONDS:
    its assumption queries can run for minutes (tanh(x - (x**(1/3))**-0.5) asks whether a
    power is real by polynomial gcds); the central-difference oracle is used there instead."""
    def task():
        try:
            return [derivative(expr, s) for s in wrt]
        except SymdiffError as exc:  # not differentiable: raised below, not a timeout
            return exc
    got = within_budget(task, DIFF_SECONDS, default=None, unbounded=True)
    if isinstance(got, SymdiffError):
        raise got
    return got


def _linear(expr: sp.Add, inputs: list) -> bool:
    """Every term of the sum is a number times one symbol (its partials are its coefficients)."""
    if any(not s.is_Symbol for s in inputs):
        return False
    return all(t.is_Number or t.as_coeff_Mul()[1].is_Symbol for t in expr.args)


def tree_size(expr: sp.Basic, cap: int) -> int:
    size: dict[sp.Basic, int] = {}
    for node in postorder(expr):
        size[node] = min(cap + 1, 1 + sum(size[a] for a in node.args))
    return size[expr]
