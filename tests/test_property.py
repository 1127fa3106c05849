"""Property: for random formulas over the gates, both backends agree with sympy.diff.

The reference here is computed independently of symdiff: ``sympy.diff`` of the formula in plain
SymPy, evaluated with ``evalf`` at 30 digits at random points where it is finite and real.
"""

import math
import random
import zlib

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import symdiff
from symdiff import relu, sigmoid, softplus

X, Y = sp.symbols("x y", real=True)
UNARY = [
    sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.atan, sp.tanh, sp.sinh, sp.cosh, sp.asinh,
    sp.sqrt, sp.Abs, sp.erf, sigmoid, relu, softplus, sp.sign, sp.floor,
    lambda a: a**2, lambda a: a**3, lambda a: 1 / a, lambda a: -a, lambda a: 2 * a + 1,
    lambda a: 1 / (1 + sp.exp(-a)), lambda a: sp.log(1 + sp.exp(a)),
    lambda a: a ** sp.Rational(3, 2),
]
BINARY = [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
    sp.Max, sp.Min, sp.atan2, lambda a, b: a * sp.Heaviside(b),
    lambda a, b: sp.Piecewise((a, b > 0), (b, True)),
    lambda a, b: sp.Piecewise((sp.log(a), a > 0), (b**2, True)),
    lambda a, b: sp.Piecewise((sp.sqrt(a) * b, a > 0), (-b, True)),
]
LEAVES = st.sampled_from([X, Y, X, Y, sp.Integer(2), sp.Rational(1, 2), sp.Integer(-3)])


def _apply(f, *args):
    try:
        return f(*args)
    except (ValueError, TypeError, ZeroDivisionError):
        return args[0]


@st.composite
def chains(draw):
    """Gates applied to a growing pool of earlier results: shared subexpressions and forks."""
    pool = [X, Y]
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            new = _apply(draw(st.sampled_from(UNARY)), draw(st.sampled_from(pool)))
        else:
            pick = st.sampled_from(pool)
            new = _apply(draw(st.sampled_from(BINARY)), draw(pick), draw(pick))
        pool.append(new)
    return pool[-1]


trees = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(_apply, st.sampled_from(UNARY), inner),
        st.builds(_apply, st.sampled_from(BINARY), inner, inner),
    ),
    max_leaves=7,
)
formulas = st.one_of(trees, chains(), chains()).filter(
    lambda e: isinstance(e, sp.Expr) and not e.has(sp.zoo, sp.nan, sp.I))


def plain(expr):
    """The formula without symdiff's own functions, for the reference derivative."""
    return expr.replace(sigmoid, lambda t: 1 / (1 + sp.exp(-t))) \
        .replace(relu, lambda t: sp.Max(0, t)).replace(softplus, lambda t: sp.log(1 + sp.exp(t)))


def finite(value):
    return value.is_number and value.is_extended_real and value.is_finite and abs(value) < 1e100


def real_value(expr, point):
    """``expr`` at ``point`` over the reals (30 digits), or None where it is undefined there.

    Every intermediate must be real and finite (log(-2) inside cosh is undefined); a Piecewise
    evaluates its conditions in order and only the branch it takes, as generated code does.
    """
    if expr.is_Symbol:
        return sp.Float(point[expr], 30)
    if not expr.args or expr.is_number:
        value = expr.evalf(30) if isinstance(expr, sp.Expr) else expr
        return value if not isinstance(expr, sp.Expr) or finite(value) else None
    if isinstance(expr, sp.Piecewise):
        for branch, condition in expr.args:
            taken = real_value(condition, point)
            if taken is None:
                return None
            if taken == sp.true:
                return real_value(branch, point)
        return None
    args = [real_value(a, point) for a in expr.args]
    if any(a is None for a in args):
        return None
    try:
        value = expr.func(*args)
        value = value.evalf(30) if isinstance(value, sp.Expr) else value
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError):
        return None
    if isinstance(value, sp.Expr):
        return value if finite(value) else None
    return value if value in (sp.true, sp.false) else None


def reference(expr, count, seed):
    """Up to ``count`` (point, value, gradient) triples at 30 digits."""
    f = plain(expr)
    grads = [sp.diff(f, s).replace(sp.DiracDelta, lambda *a: sp.S.Zero) for s in (X, Y)]
    # floor' is 0 almost everywhere; SymPy leaves it unevaluated
    grads = [g.replace(lambda e: isinstance(e, (sp.Derivative, sp.Subs)), lambda e: sp.S.Zero)
             for g in grads]
    rng, out = random.Random(seed), []
    for _ in range(30):
        point = {X: rng.uniform(-2.5, 2.5), Y: rng.uniform(-2.5, 2.5)}
        # The domain is the formula's own: plain() may simplify exp(x - log(x)) to exp(x)/x.
        values = [real_value(v, point) for v in [expr, f] + grads]
        if all(v is not None for v in values):
            out.append((point, float(values[0]), [float(v) for v in values[2:]]))
        if len(out) == count:
            break
    return out


def agrees(got, want):
    return abs(got - want) <= 1e-7 * max(1.0, abs(want))


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much,
                                                    HealthCheck.too_slow])
@given(formulas)
def test_both_backends_match_sympy_diff(expr):
    cases = reference(expr, count=3, seed=zlib.crc32(sp.srepr(expr).encode()))
    assume(cases)
    prog = symdiff.lower(expr, wrt=[X, Y])
    prog.validate()
    math_mod, np_mod = prog.compile("math"), prog.compile("numpy")
    for point, value, grads in cases:
        args = (point[X], point[Y])
        got_value, got = math_mod.value_and_grad(*args)
        assert agrees(got_value, value), (expr, point)
        assert all(agrees(g, w) for g, w in zip(got, grads)), (expr, point, got, grads)
    columns = [np.array([p[s] for p, _, _ in cases]) for s in (X, Y)]
    with np.errstate(all="ignore"):
        _, got = np_mod.value_and_grad(*columns)
    for k, (point, _, grads) in enumerate(cases):
        assert all(agrees(float(np.asarray(g)[k]), w) for g, w in zip(got, grads)), (expr, point)


@settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much,
                                                   HealthCheck.too_slow])
@given(formulas)
def test_check_gives_no_false_alarm(expr):
    assume(reference(expr, count=1, seed=0))
    report = symdiff.check(symdiff.lower(expr, wrt=[X, Y]), samples=5, prove=False)
    assert report.ok or not report.points, str(report)


@pytest.mark.parametrize("seed", range(3))
def test_random_points_for_the_staged_example(staged, seed):
    expr, x, y = staged
    _, grads = symdiff.grad(expr, wrt=[x, y])(*(random.Random(seed).uniform(-3, 3)
                                                for _ in range(2)))
    assert all(math.isfinite(g) for g in grads)
