"""Every local-derivative rule against sympy.diff of the plain SymPy form of its gate."""

import mpmath
import pytest
import sympy as sp

from symdiff.errors import NonDifferentiableError
from symdiff.functions import (
    expm1,
    hypot,
    log1p,
    logsumexp,
    relu,
    sigmoid,
    softplus,
    to_elementary,
)
from symdiff.numeric import evaluate_many
from symdiff.rules import RULES, derivative, local_partials
from symdiff.sampling import sample_points

x, y = sp.symbols("x y", real=True)
OUT = sp.Symbol("out", real=True)
half = sp.S.Half

GATES = [
    sp.Add(x, -2 * y, 3, evaluate=False), sp.Mul(3, x, y, evaluate=False),
    sp.Mul(x, y, evaluate=False), x**-1, x**2, x**3, sp.sqrt(x), 1 / sp.sqrt(x), x**-2,
    x ** sp.Rational(3, 2), x**0.7, x**y, 2**x,
    sp.exp(x), sp.log(x), sp.sin(x), sp.cos(x), sp.tan(x), sp.cot(x), sp.sec(x), sp.csc(x),
    sp.asin(x), sp.acos(x), sp.atan(x), sp.acot(x), sp.asec(x), sp.acsc(x),
    sp.sinh(x), sp.cosh(x), sp.tanh(x), sp.coth(x), sp.sech(x), sp.csch(x),
    sp.asinh(x), sp.acosh(x), sp.atanh(x), sp.acoth(x), sp.asech(x), sp.acsch(x),
    sp.erf(x), sp.erfc(x), sp.atan2(y, x), sp.Abs(x), sp.sign(x), sp.floor(x), sp.ceiling(x),
    sp.Heaviside(x), sp.Heaviside(x, 0), sp.Max(x, y), sp.Min(x, y), sp.Max(0, x),
    sp.Min(x, 1), sigmoid(x), relu(x), softplus(x), sp.sinc(x),
    # the stable gates (stable.py), with constant arguments too
    log1p(x), expm1(x), hypot(x, y), hypot(x, 3), logsumexp(x, y), logsumexp(0, x, 2 * y),
    # no rule of its own: SymPy's fdiff through the generic path
    sp.LambertW(x), sp.gamma(x), sp.loggamma(x), sp.besselj(1, x), sp.fresnels(x),
    # a compound Piecewise gate with an inline branch
    sp.Piecewise((sp.log(x) * y, x > 0), (y**2, True)),
]


def reference_points(gate, count=6):
    """Points where the gate and its derivatives are finite and real."""
    symbols = sorted(gate.free_symbols, key=lambda s: s.name)
    refs = [derivative(to_elementary(gate), s) for s in symbols]

    def defined(p):
        return all(v is not None for v in evaluate_many([to_elementary(gate), *refs], p))

    return sample_points(symbols, defined, count, seed=1)


@pytest.mark.parametrize("gate", GATES, ids=str)
def test_rule_matches_sympy_diff(gate):
    parts = dict(local_partials(gate, OUT))
    symbols = sorted(gate.free_symbols, key=lambda s: s.name)
    points = reference_points(gate)
    assert points, f"no point in the domain of {gate}"
    for s in symbols:
        ours = parts.get(s, sp.S.Zero).xreplace({OUT: gate})  # the output is the gate's value
        ref = derivative(to_elementary(gate), s)
        for p in points:
            with mpmath.workdps(40):
                got, want = evaluate_many([ours, ref], p, dps=40)
                assert got is not None, f"d/d{s} of {gate} undefined at {p}"
                assert abs(got - want) <= mpmath.mpf(10) ** -30 * max(1, abs(want)), (gate, s, p)


@pytest.mark.parametrize("gate", [sp.exp(x), sp.tanh(x), sigmoid(x), x**-1, sp.tan(x), sp.sqrt(x)])
def test_rules_reuse_the_gate_output(gate):
    (_, local), = local_partials(gate, OUT)
    assert OUT in local.free_symbols and x not in local.free_symbols


@pytest.mark.parametrize("gate", [hypot(x, y), logsumexp(x, y, 1)])
def test_stable_rules_reuse_the_gate_output(gate):
    """hypot' = x/out, logsumexp' = exp(x - out): no second hypot or sum of exps."""
    parts = local_partials(gate, OUT)
    assert [s for s, _ in parts] == [x, y]
    for _, local in parts:
        assert OUT in local.free_symbols and not local.has(hypot, logsumexp)


def test_every_registered_rule_is_tested():
    tested = {type(g) for g in GATES} | {sp.Add, sp.Mul, sp.Pow}
    assert set(RULES) <= tested, sorted(c.__name__ for c in set(RULES) - tested)


def local_at(gate, symbol, point):
    local = dict(local_partials(gate, OUT)).get(symbol, sp.S.Zero)
    value = gate.subs(point)
    return float(local.subs({OUT: value, **point}))


def test_kink_convention_is_the_minimum_norm_subgradient():
    assert local_at(sp.Abs(x), x, {x: 0}) == 0.0
    assert local_at(relu(x), x, {x: 0}) == 0.0
    assert local_at(sp.Max(0, x), x, {x: 0}) == 0.0  # against a constant: 0 at the tie
    assert local_at(sp.Min(x, 1), x, {x: 1}) == 0.0
    assert local_at(sp.Max(x, y), x, {x: 2, y: 2}) == 0.5  # two variables: split the gradient
    assert local_at(sp.Max(x, y), y, {x: 2, y: 2}) == 0.5
    assert local_at(sp.Max(x, y), x, {x: 3, y: 2}) == 1.0
    assert local_at(sp.Min(x, y), x, {x: 3, y: 2}) == 0.0
    for step in (sp.sign(x), sp.floor(x), sp.ceiling(x), sp.Heaviside(x)):
        assert local_partials(step, OUT) == []  # derivative zero almost everywhere


def test_real_symbols_give_real_derivatives():
    (_, local), = local_partials(sp.Abs(x), OUT)
    assert local == sp.sign(x)  # not an expression in re/im


def test_function_without_derivative_is_a_clear_error():
    f = sp.Function("f")
    with pytest.raises(NonDifferentiableError, match="f"):
        local_partials(f(x), OUT)
