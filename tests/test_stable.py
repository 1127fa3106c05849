"""Stable rewrites (symdiff.stable): each fires where it should and nowhere else, the listing and
the generated code show it, and the code is finite and right at extreme points.

The oracle is mpmath on the user's ORIGINAL formula (symdiff's own functions rewritten to plain
SymPy first, then sympy.diff), run through ``sympy.lambdify(..., "mpmath")`` at 1,000 digits:
``1 - sigmoid(1000)`` is 1e-435 and needs about 440 digits before its first one is right, so
every value compared here has at least 50 right digits. Nothing of symdiff's evaluation is used.
"""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import rules, sigmoid, softplus
from symdiff.backends import BACKENDS, BUNDLED
from symdiff.functions import expm1, hypot, log1p, logsumexp, to_elementary
from symdiff.numeric import evaluate
from symdiff.stable import REWRITES

R = {"real": True}
x, y, z, t, a, b, c, w = sp.symbols("x y z t a b c w", **R)
ORACLE_DPS = 1000

BCE = -y * sp.log(sigmoid(z)) - (1 - y) * sp.log(1 - sigmoid(z))


def oracle(expr, wrt, point):
    """Value and gradient of the original ``expr`` at ``point`` (symbol -> float), by mpmath."""
    plain = to_elementary(expr)
    symbols = sorted(point, key=lambda s: s.name)
    fns = [sp.lambdify(symbols, e, "mpmath") for e in [plain] + [sp.diff(plain, v) for v in wrt]]
    with mpmath.workdps(ORACLE_DPS):
        args = [mpmath.mpf(point[s]) for s in symbols]
        return [f(*args) for f in fns]


def run(prog, backend, point):
    """``value_and_grad`` of the generated module at ``point``, every NumPy warning an error."""
    args = [point[i.symbol] for i in prog.inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            value, grads = prog.compile(backend).value_and_grad(*args)
    return [float(value), *map(float, grads)]


def agrees(got: float, want) -> bool:
    """Within 1e-13 relative of the exact value; a value below the float range may be 0."""
    if abs(want) < 1e-300:
        return abs(got) <= 1e-300
    return math.isfinite(got) and abs(got - want) <= 1e-13 * abs(want)


def assert_right(expr, wrt, points):
    """Both backends agree with the oracle at every point, value and gradient."""
    prog = symdiff.lower(expr, wrt=wrt)
    prog.validate()
    for point in points:
        want = oracle(expr, wrt, point)
        for backend in BUNDLED:
            got = run(prog, backend, point)
            bad = [k for k, (g, e) in enumerate(zip(got, want)) if not agrees(g, e)]
            assert not bad, (backend, point, got, [float(e) for e in want])
    return prog


# -- each rewrite fires, is noted, and is right at the extremes ------------------------------

STABLE = [  # (formula, wrt, the note, extreme points)
    (BCE, [z, y], "stable: log(1 - sigmoid(z)) = -softplus(z)",
     [{z: v, y: p} for v in (-1000.0, -40.0, -0.5, 2.0, 40.0, 1000.0) for p in (0.0, 0.3, 1.0)]),
    (sp.log(sigmoid(t)), [t], "stable: log(sigmoid(t)) = -softplus(-t)",
     [{t: v} for v in (-1000.0, -40.0, 0.0, 40.0, 1000.0)]),
    (sp.log(1 / (1 + sp.exp(-t))), [t], "stable: log(sigmoid(t)) = -softplus(-t)",
     [{t: v} for v in (-1000.0, -40.0, 3.0, 1000.0)]),
    (sp.log(sigmoid(-t)), [t], "stable: log(sigmoid(-t)) = -softplus(t)",
     [{t: v} for v in (-1000.0, 1.5, 1000.0)]),
    (sp.log(sp.exp(-t) / (1 + sp.exp(-t))), [t], "stable: log(exp(-t)*sigmoid(t)) = -softplus(t)",
     [{t: v} for v in (-1000.0, -2.0, 1000.0)]),
    (sp.exp(-t) / (1 + sp.exp(-t)), [t], "stable: exp(-t)*sigmoid(t) = sigmoid(-t)",
     [{t: v} for v in (-1000.0, -2.0, 1000.0)]),
    (sp.log(1 + sp.exp(x)), [x], "stable: log(1 + exp(x)) = softplus(x)",
     [{x: v} for v in (-1000.0, -40.0, 0.0, 40.0, 1000.0)]),
    (sp.log(1 + sp.exp(-x)) * w, [x, w], "stable: log(1 + exp(-x)) = softplus(-x)",
     [{x: v, w: 2.0} for v in (-1000.0, 0.5, 1000.0)]),
    (sp.log(sp.exp(a) + sp.exp(b) + sp.exp(c)), [a, b, c],
     "stable: log(exp(a) + exp(b) + exp(c)) = logsumexp(a, b, c)",
     [{a: 1000.0, b: 1.0, c: -3.0}, {a: -1000.0, b: -1000.0, c: -1000.0},
      {a: 1000.0, b: 1000.0, c: 999.0}, {a: 0.0, b: 0.0, c: 0.0}, {a: 0.5, b: -1.0, c: 2.0}]),
    (sp.log(2 * sp.exp(a) + sp.exp(b) + 3), [a, b],
     "stable: log(3 + 2*exp(a) + exp(b)) = logsumexp(log(3), a + log(2), b)",
     [{a: 1000.0, b: 999.0}, {a: -1000.0, b: -1000.0}, {a: 0.3, b: -0.7}]),
    ((1 - sigmoid(t))**w, [t, w], "stable: 1 - sigmoid(t) = sigmoid(-t)",  # the focal loss
     [{t: v, w: 2.5} for v in (-1000.0, -3.0, 40.0, 700.0)]),
    (sp.log(1 + x), [x], "stable: log(1 + x) = log1p(x)",
     [{x: v} for v in (1e-12, -1e-12, 1e-300, 3.0, -0.5, 1e300)]),
    (sp.log(1 + x * y), [x, y], "stable: log(1 + x*y) = log1p(x*y)",
     [{x: 1e-7, y: 1e-8}, {x: 2.0, y: 3.0}]),
    (sp.exp(x) - 1, [x], "stable: exp(x) - 1 = expm1(x)",
     [{x: v} for v in (1e-12, -1e-12, 1e-300, -40.0, -1000.0, 2.0, 700.0)]),
    (1 - sp.exp(x) + y, [x, y], "stable: 1 - exp(x) = -expm1(x)",
     [{x: 1e-12, y: 1.0}, {x: -40.0, y: 0.0}]),
    (sp.sqrt(x**2 + y**2), [x, y], "stable: sqrt(x**2 + y**2) = hypot(x, y)",
     [{x: 1e200, y: 1e200}, {x: 1e-200, y: 1e-200}, {x: -3.0, y: 4.0}, {x: 1e200, y: -1e-200}]),
    ((x**2 + y**2) ** sp.Rational(1, 2), [x, y], "stable: sqrt(x**2 + y**2) = hypot(x, y)",
     [{x: 1e200, y: 1e200}]),
    (sp.sqrt(x**2 + y**2 + z**2), [x, y, z],
     "stable: sqrt(x**2 + y**2 + z**2) = hypot(hypot(x, y), z)",
     [{x: 1e200, y: 1e200, z: 3.0}, {x: 1.0, y: -2.0, z: 2.0}, {x: 1e-200, y: 0.0, z: 1e-200}]),
    (sp.sqrt((x - y) ** 2 + 4 * z**2), [x, y, z],
     "stable: sqrt((x - y)**2 + 4*z**2) = hypot(x - y, 2*z)",
     [{x: 1e200, y: -1e200, z: 1e200}, {x: 1.0, y: 0.5, z: -2.0}]),
    (1 / sp.sqrt(x**2 + y**2), [x, y], "stable: 1/sqrt(x**2 + y**2) = 1/hypot(x, y)",
     [{x: 1e200, y: 1e200}, {x: 3.0, y: 4.0}]),
    (sp.sqrt(1 + x**2), [x], "stable: sqrt(1 + x**2) = hypot(1, x)",
     [{x: 1e200}, {x: -1e-9}, {x: 0.0}]),
]
IDS = [str(case[0]) for case in STABLE]


@pytest.mark.parametrize("expr, wrt, note, points", STABLE, ids=IDS)
def test_rewrite_is_right_at_extreme_points(expr, wrt, note, points):
    assert_right(expr, wrt, points)


@pytest.mark.parametrize("expr, wrt, note, points", STABLE, ids=IDS)
def test_rewrite_is_noted_in_listing_and_code(expr, wrt, note, points):
    prog = symdiff.lower(expr, wrt=wrt)
    noted = [s for s in prog.forward if s.note]
    assert note in [s.note for s in noted], [s.note for s in noted]
    listing = str(prog).splitlines()
    for step in noted:  # the note is the line above its step
        assert listing[listing.index(f"    {step}") - 1] == f"    # {step.note}"
    for backend in BACKENDS:
        source = prog.source(backend)
        assert source.count(f"# {note}\n") == 2, backend  # forward and fused value_and_grad


@pytest.mark.parametrize("expr, wrt, note, points", STABLE, ids=IDS)
def test_check_on_the_original_formula_is_ok(expr, wrt, note, points):
    prog = symdiff.lower(expr, wrt=wrt)
    assert prog.expr == expr  # the user's formula: the reference is built from it
    assert symdiff.check(prog).ok


def test_the_original_formula_fails_where_the_rewrite_does_not():
    """What the rewrites fix: the textbook forms, evaluated as written, in floats."""
    sig = 1 / (1 + math.exp(-40.0))
    with pytest.raises(ValueError):
        math.log(1 - sig)  # 1 - sigmoid(40) is 0 in floats: math domain error
    with pytest.raises(OverflowError):
        math.log(math.exp(1000.0) + math.exp(1.0))
    assert abs(math.log(1 + 1e-12) - 1e-12) > 1e-5 * 1e-12  # log1p: the last bit
    with pytest.raises(OverflowError):
        math.sqrt(1e200**2 + 1e200**2)
    values = run(symdiff.lower(BCE, wrt=[z, y]), "math", {z: 40.0, y: 0.3})
    assert values[0] == pytest.approx(0.7 * 40.0, rel=1e-15)


def test_check_is_meaningful_where_floats_of_the_original_fail():
    """At |z| = 40 and 60 the textbook BCE fails in floats (log(0)); 50 digits do not."""
    prog = symdiff.lower(BCE, wrt=[z, y])
    points = [{"z": v, "y": 0.3} for v in (-60.0, -40.0, 40.0, 60.0)]
    report = symdiff.check(prog, points=points, samples=4)
    assert report.ok and len(report.points) == 8


LSE = sp.log(sp.exp(a) + sp.exp(b) + sp.exp(c))
STABLE_RULES = [(softplus, BCE, [z, y]), (logsumexp, LSE, [a, b, c]),
                (log1p, sp.log(1 + x) * y, [x, y]), (expm1, (sp.exp(x) - 1) * y, [x, y]),
                (hypot, sp.sqrt(x**2 + y**2), [x, y])]


@pytest.mark.parametrize("gate, expr, wrt", STABLE_RULES, ids=[g[0].__name__ for g in STABLE_RULES])
def test_check_catches_a_wrong_stable_rule(monkeypatch, gate, expr, wrt):
    """check compares with sympy.diff of the original formula: a wrong rule of a gate that only
    the rewrite put there is caught."""
    right = rules.RULES[gate]

    def wrong(out, *args):
        return tuple(None if p is None else p * sp.Rational(101, 100) for p in right(out, *args))

    monkeypatch.setitem(rules.RULES, gate, wrong)
    assert not symdiff.check(symdiff.lower(expr, wrt=wrt)).ok


# -- where the rewrites must not fire -------------------------------------------------------

UNCHANGED = [
    sp.log(2 + x), sp.exp(x) - 2, sp.log(x), sp.exp(x) + 1, sp.log(sp.exp(a) - sp.exp(b)),
    sp.sqrt(x**2 - y**2), sp.sqrt(x**2 + y), (x**2 + y**2) ** sp.Rational(3, 2),
    sp.log(sigmoid(z) * 2), 2 * sp.exp(x) - 1, sp.log(x + 1.5), sp.exp(x + 1) - sp.E,
    sp.sqrt(x**2 + y**2 - 1), sp.log(sp.exp(x) + y),
]


@pytest.mark.parametrize("expr", UNCHANGED, ids=str)
def test_rewrite_does_not_fire(expr):
    prog = symdiff.lower(expr, wrt=sorted(expr.free_symbols, key=lambda s: s.name))
    stable_gates = (softplus, logsumexp, log1p, expm1, hypot)
    assert not any(s.rhs.has(*stable_gates) or s.note for s in prog.forward), str(prog)
    assert symdiff.check(prog).ok


def test_the_staged_example_has_no_rewrite(staged):
    expr, sx, sy = staged
    prog = symdiff.lower(expr, wrt=[sx, sy])
    assert not any(s.note for s in prog.forward)
    assert "stable" not in str(prog) and "stable" not in prog.source("numpy")


def test_every_rewrite_is_tested(monkeypatch):
    """Each registered rewrite fires while lowering some formula of STABLE."""
    fired = set()

    def spy(fn):
        def counted(*args):
            done = fn(*args)
            if done is not None:
                fired.add(fn.__name__)
            return done
        return counted

    registered = {fn.__name__ for fns in REWRITES.values() for fn in fns}
    for kind, fns in list(REWRITES.items()):
        monkeypatch.setitem(REWRITES, kind, [spy(fn) for fn in fns])
    for expr, wrt, _, _ in STABLE:
        symdiff.lower(expr, wrt=wrt)
    assert fired == registered, sorted(registered - fired)
    assert len(registered) == 7


# -- strings: the parser's spellings end in the same gates ------------------------------------


def test_bce_string_is_stable():
    prog = symdiff.lower("-y*log(sigmoid(z)) - (1 - y)*log(1 - sigmoid(z))", wrt=["z"],
                         args=["z", "y"])
    notes = [s.note for s in prog.forward if s.note]
    assert notes == ["stable: log(sigmoid(z)) = -softplus(-z)",
                     "stable: log(1 - sigmoid(z)) = -softplus(z)"]
    for backend in BUNDLED:
        mod = prog.compile(backend)
        for v in (-1000.0, 1000.0):
            value, (dz,) = mod.value_and_grad(v, 0.3)
            want = oracle(BCE, [z], {z: v, y: 0.3})
            assert agrees(float(value), want[0]) and agrees(float(dz), want[1]), (backend, v)
    assert symdiff.check(prog).ok


@pytest.mark.parametrize("text, gate, point", [
    ("log1p(x)", log1p, {"x": 1e-12}), ("expm1(x)", expm1, {"x": 1e-12}),
    ("hypot(x, y)", hypot, {"x": 1e200, "y": 1e200}),
    ("log(exp(a) + exp(b) + exp(c))", logsumexp, {"a": 1000.0, "b": 1.0, "c": -3.0}),
    ("log(1 + exp(x))", softplus, {"x": 1000.0}), ("log(1/(1 + exp(-x)))", softplus, {"x": -1e3}),
    ("sqrt(x**2 + y**2)", hypot, {"x": 1e200, "y": 1e200}),
    ("(x**2 + y**2)**(1/2)", hypot, {"x": 1e200, "y": 1e200}),
    ("(x**2 + y**2)**0.5", hypot, {"x": 1e200, "y": 1e200}),
    ("log(exp(x) + exp(2))", logsumexp, {"x": 1000.0}),
    ("hypot(3*x, y)", hypot, {"x": 1e200, "y": 1e200}),
])
def test_strings_reach_the_stable_gates(text, gate, point):
    prog = symdiff.lower(text, wrt=sorted(point))
    assert any(s.rhs.func is gate for s in prog.forward), str(prog)
    user = {i.symbol: point[i.symbol.name] for i in prog.inputs}
    for backend in BUNDLED:
        got = run(prog, backend, user)
        want = oracle(prog.expr, list(prog.wrt), user)
        assert all(agrees(g, e) for g, e in zip(got, want)), (backend, got)


# -- notes and the evaluation of the new gates ------------------------------------------------


def test_notes_are_written_over_code_names():
    u = sp.Symbol("lambda", **R)  # a keyword: its code name is lambda_
    prog = symdiff.lower(sp.log(1 - sigmoid(w * x + u)), wrt=[w, x, u])
    (step,) = [s for s in prog.forward if s.note]
    assert step.note == "stable: log(1 - sigmoid(lambda_ + w*x)) = -softplus(lambda_ + w*x)"
    prog = symdiff.lower(sp.log(1 + u), wrt=[u])
    assert prog.forward[-1].note == "stable: log(1 + lambda_) = log1p(lambda_)"


def test_a_long_operand_is_named_by_its_step():
    ws, xs = sp.symbols("w0:12", **R), sp.symbols("x0:12", **R)
    dot = sum(wi * xi for wi, xi in zip(ws, xs))
    prog = symdiff.lower(sp.log(sigmoid(dot)), wrt=list(ws))
    (step,) = [s for s in prog.forward if s.note]
    assert step.note == "stable: log(sigmoid(dot)) = -softplus(-dot)"
    assert [s.name for s in prog.forward if s.op == "add"] == ["dot"]


def test_a_shared_gate_is_computed_once():
    """log(sigmoid(-z)) and log(1 - sigmoid(z)) are the same softplus(z): one step."""
    prog = symdiff.lower(sp.log(sigmoid(-z)) + sp.log(1 - sigmoid(z)), wrt=[z])
    assert sum(s.rhs.func is softplus for s in prog.forward) == 1
    assert_right(sp.log(sigmoid(-z)) + sp.log(1 - sigmoid(z)), [z], [{z: 1000.0}, {z: -1e3}])


def test_rewrites_inside_other_formulas():
    """A softmax cross-entropy and a distance inside a physics formula, right at extremes."""
    xent = sp.log(sp.exp(a) + sp.exp(b) + sp.exp(c)) - b
    assert_right(xent, [a, b, c], [{a: 1000.0, b: -1000.0, c: 0.0}, {a: 1.0, b: 2.0, c: 3.0}])
    coulomb = x * y / sp.sqrt((a - b) ** 2 + (c - z) ** 2)
    assert_right(coulomb, [x, y, a, b, c, z],
                 [{x: 1.0, y: 2.0, a: 1e200, b: -1e200, c: 1e200, z: 0.0},
                  {x: 1.0, y: -1.0, a: 0.3, b: 1.1, c: -0.4, z: 2.0}])


def test_new_gates_at_50_digits():
    """The 50-digit evaluator of checks (mpeval) on the stable gates, against mpmath."""
    with mpmath.workdps(50):
        cases = [(log1p(x), {x: mpmath.mpf("1e-30")}, mpmath.log1p(mpmath.mpf("1e-30"))),
                 (expm1(x), {x: mpmath.mpf("-1e-30")}, mpmath.expm1(mpmath.mpf("-1e-30"))),
                 (hypot(x, y), {x: 3, y: 4}, mpmath.mpf(5)),
                 (logsumexp(x, y, 0), {x: 1000, y: 1000},
                  1000 + mpmath.log(2 + mpmath.exp(-1000)))]
        for expr, env, want in cases:
            got = evaluate(expr, env)
            assert abs(got - want) <= mpmath.mpf(10) ** -48 * abs(want), expr
    assert evaluate(log1p(x), {x: -2}) is None  # outside the domain, as log(1 + x) is


def test_matrix_formulas_are_stabilized_too():
    """Elementwise matrix formulas go through the same rewrites (numpy backend)."""
    n, m = sp.symbols("N M", integer=True, positive=True)
    W = sp.MatrixSymbol("W", n, m)

    def f(u):
        return 2 * sp.log(1 + sp.exp(-u)) + sp.sqrt(u**2 + 1)

    prog = symdiff.lower(symdiff.sum(symdiff.apply(f, W)), wrt=[W])
    assert {s.note for s in prog.forward if s.note} == {
        "stable: log(1 + exp(-W)) = softplus(-W)", "stable: sqrt(1 + W**2) = hypot(1, W)"}
    entries = [[1000.0, -1000.0], [0.5, 1e200]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            value, (dW,) = prog.compile("numpy").value_and_grad(np.array(entries))
    want = [oracle(f(t), [t], {t: v}) for row in entries for v in row]
    assert agrees(float(value), mpmath.fsum(w[0] for w in want))
    assert all(agrees(g, w[1]) for g, w in zip(dW.ravel(), want))
    assert symdiff.check(prog).ok


def test_reserved_helper_names_stay_user_variables():
    """A user symbol named like a helper (logsumexp) or a constant (EULER_GAMMA) is renamed."""
    lse, gamma_ = sp.Symbol("logsumexp", **R), sp.Symbol("EULER_GAMMA", **R)
    expr = sp.log(sp.exp(lse) + sp.exp(gamma_)) + sp.EulerGamma * lse
    prog = symdiff.lower(expr, wrt=[lse, gamma_])
    assert prog.args == ("logsumexp_", "EULER_GAMMA_")
    assert_right(expr, [lse, gamma_], [{lse: 1000.0, gamma_: 2.0}, {lse: -0.5, gamma_: 0.25}])
