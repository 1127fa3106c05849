"""Issue 11 regressions: formulas people write, each against an oracle we did not write.

The oracle is SymPy's own ``diff`` of an expression built here with SymPy symbols (never symdiff's
parse of the same text), evaluated at 30 digits; both generated backends must agree with it.
"""

import math
import time

import mpmath
import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.rules import RULES

R = {"real": True}


def oracle(expr, wrt, point):
    """Value and partials of ``expr`` at ``point`` ({Symbol: float}) by sympy.diff at 30 digits."""
    subs = {s: sp.Float(v, 30) for s, v in point.items()}
    value = float(expr.evalf(30, subs=subs))
    return value, [float(sp.diff(expr, v).evalf(30, subs=subs)) for v in wrt]


def assert_backends_match(formula, expr, wrt, point, **lower_kw):
    """``formula`` (what the user passes) lowers to code agreeing with ``expr``'s oracle."""
    names = [v.name for v in wrt]
    prog = symdiff.lower(formula, wrt=names if isinstance(formula, str) else wrt, **lower_kw)
    prog.validate()
    order = [i.symbol.name for i in prog.inputs]
    args = [point[next(s for s in point if s.name == n)] for n in order]
    want_value, want_grad = oracle(expr, wrt, point)
    for backend in ("math", "numpy"):
        value, grads = prog.compile(backend).value_and_grad(*args)
        assert math.isclose(float(value), want_value, rel_tol=1e-12, abs_tol=1e-300), backend
        for got, want, name in zip(grads, want_grad, names):
            assert math.isclose(float(got), want, rel_tol=1e-10, abs_tol=1e-12), (backend, name)
    return prog


# -- 1. products of powers in a denominator ---------------------------------------------------

q, e, r, x, y, z = sp.symbols("q e r x y z", **R)
a1, a2, b1, b2 = sp.symbols("a1 a2 b1 b2", **R)
DENOMINATORS = [
    ("q/(e*r**2)", q / (e * r**2), [q, e, r]),
    ("(a1*b1 + a2*b2)/(sqrt(a1**2 + a2**2)*sqrt(b1**2 + b2**2))",
     (a1 * b1 + a2 * b2) / (sp.sqrt(a1**2 + a2**2) * sp.sqrt(b1**2 + b2**2)), [a1, a2, b1, b2]),
    ("x/(y**2*z**3)", x / (y**2 * z**3), [x, y, z]),
    ("1/(x**0.5*y**1.5)", 1 / (x**sp.Float(0.5) * y**sp.Float(1.5)), [x, y]),
    ("sin(x)/(cos(y)**2*x**(1/3))", sp.sin(x) / (sp.cos(y)**2 * x**sp.Rational(1, 3)), [x, y]),
    ("(x + y)/((x - y)**2*(x*y)**(3/2))",
     (x + y) / ((x - y)**2 * (x * y)**sp.Rational(3, 2)), [x, y]),
    ("x/(y**x*z**2)", x / (y**x * z**2), [x, y, z]),
]


@pytest.mark.parametrize("text, expr, wrt", DENOMINATORS, ids=[d[0] for d in DENOMINATORS])
def test_products_of_powers_in_a_denominator_lower_and_match(text, expr, wrt):
    point = dict(zip([q, e, r, x, y, z, a1, a2, b1, b2],
                     [1.3, 0.7, 2.1, 1.7, 0.6, 1.9, 0.4, -1.2, 2.2, 0.9]))
    point = {s: point[s] for s in wrt}
    assert_backends_match(text, expr, wrt, point)
    assert_backends_match(expr, expr, wrt, point)
    assert symdiff.check(symdiff.lower(expr, wrt=wrt)).ok


# -- 2. a declared name is a variable, whatever it spells ---------------------------------------

COLLIDING = ["E", "I", "S", "N", "O", "Q", "beta", "gamma", "lambda", "zeta", "Gamma", "pi", "e",
             "sum", "max", "math", "np", "dx", "out", "cache", "exp", "sin", "sigmoid", "dout",
             "in", "is", "float", "asfloat", "value_and_grad", "oo", "nan", "EulerGamma"]


@pytest.mark.parametrize("name", COLLIDING)
def test_a_colliding_name_is_a_variable_in_strings_and_sympy(name):
    s, t = sp.Symbol(name, **R), sp.Symbol("t", **R)
    expr = s**2 * t + s / t
    point = {s: 1.3, t: 0.7}
    assert_backends_match(f"{name}**2*t + {name}/t", expr, [s, t], point)
    assert_backends_match(expr, expr, [s, t], point)
    assert symdiff.check(symdiff.lower(f"{name}**2*t + {name}/t", wrt=[name, "t"])).ok


def test_youngs_modulus_keeps_E_a_variable():
    E, A, L = sp.symbols("E A L", **R)
    prog = assert_backends_match("E*A/L", E * A / L, [E, A, L], {E: 2.0, A: 3.0, L: 4.0})
    assert [i.symbol.name for i in prog.inputs] == ["E", "A", "L"]
    assert "math.e" not in prog.source("math")
    # Undeclared, E is Euler's number, and then it is not a parameter.
    const = symdiff.lower("E*A/L", wrt=["A", "L"])
    assert [i.symbol.name for i in const.inputs] == ["A", "L"]
    assert const.compile("math").value_and_grad(3.0, 4.0)[0] == pytest.approx(math.e * 3 / 4)


def test_cli_declares_wrt_names(capsys):
    from symdiff.cli import main

    assert main(["gen", "E*A/L", "--wrt", "E,A,L"]) == 0
    assert "def value_and_grad(E, A, L):" in capsys.readouterr().out


# -- 6. interface surprises ------------------------------------------------------------------

@pytest.mark.parametrize("wrt, fragment", [
    (["xx"], "wrt names 'xx', which is not a variable of the formula (its variables: x, y)"),
    (["x y"], "wrt entry 'x y' is not one name"),
    (["x", "z"], "'z'"),
])
def test_a_wrt_name_missing_from_the_formula_is_an_error(wrt, fragment):
    with pytest.raises(symdiff.ArgumentError) as info:
        symdiff.lower("x*y", wrt=wrt)
    assert fragment in str(info.value)


def test_allow_unused_and_absent_symbols_get_zero_gradients():
    prog = symdiff.lower("x*y", wrt=["x", "z"], allow_unused=True)
    assert prog.compile("math").value_and_grad(2.0, 5.0, 3.0)[1] == (3.0, 0.0)  # (x, z, y)
    z = sp.Symbol("z")  # a SymPy Symbol keeps its documented zero gradient
    assert symdiff.grad(x * y, wrt=[x, z])(2.0, 5.0, 3.0)[1] == (3.0, 0.0)


def test_cli_typo_in_wrt_exits_2(capsys):
    from symdiff.cli import main

    assert main(["gen", "x*y", "--wrt", "xx"]) == 2
    err = capsys.readouterr().err
    assert "'xx'" in err and "x, y" in err and err.count("\n") == 1


def test_default_parameter_order_is_natural():
    prog = symdiff.lower("x1 + x10 + x2 + y", wrt=["y"])
    assert [i.symbol.name for i in prog.inputs] == ["y", "x1", "x2", "x10"]
    xs = sp.symbols("x1 x10 x2 x9", **R)
    assert [i.symbol.name for i in symdiff.lower(sum(xs), wrt=list(xs[:1])).inputs] == [
        "x1", "x2", "x9", "x10"]


def test_a_matrix_power_of_a_non_square_matrix_is_refused_at_lowering():
    N, M = sp.symbols("N M", integer=True, positive=True)
    R = sp.MatrixSymbol("R", N, M)
    with pytest.raises(symdiff.UnsupportedFunctionError, match="only a square matrix has powers"):
        symdiff.lower(symdiff.sum(R**2), wrt=[R])
    S = sp.MatrixSymbol("S", N, N)  # square: S @ S, checked against SymPy's own expansion
    assert symdiff.check(symdiff.lower(symdiff.sum(S**2), wrt=[S])).ok


# -- 7. the signature output on ordinary formulas -------------------------------------------------

def test_backward_reads_cached_forward_values_instead_of_recomputing():
    prog = symdiff.lower("sin(x)*cos(x)", wrt=["x"])
    locals_ = {(g.name, g.source): str(g.local) for g in prog.backward}
    assert locals_[("dx", "sinx")] == "cosx" and locals_[("dx", "cosx")] == "-sinx"
    src = prog.source("math")
    assert "math.cos(x)" in src.split("def backward")[0]  # computed once, in forward
    body = src.split("def backward")[1].split("def value_and_grad")[0]
    assert "math.cos" not in "\n".join(ln for ln in body.splitlines() if "#" not in ln)
    prog = symdiff.lower("atan2(y, x) + log(x**2 + y**2)", wrt=["x", "y"])
    backward = "\n".join(str(g) for g in prog.backward)
    assert "**2" not in backward.replace("xsqr", "")  # x**2 + y**2 is read, not rebuilt
    assert symdiff.check(prog).ok


@pytest.mark.parametrize("formula, wrt, step", [
    ("(2*x - 1)*y", ["x", "y"], "twoxm1 = -1 + 2*x"),
    ("x/sqrt(x**2 + y)", ["x", "y"], "invsqrtden = 1/sqrt(den)"),
    ("x/sqrt(x**2 + y**2)", ["x", "y"], "invhypotxy = 1/hypotxy"),
    ("thetadot**2*l**2", ["thetadot", "l"], "thetadotsqr = thetadot**2"),
    ("(0.5*x + y)*z", ["x", "y", "z"], "sum1 = y + 0.5*x"),  # no name hides the 0.5
    ("sin(3*x*y*z)", ["x", "y", "z"], "threexyz = 3*xy*z"),
])
def test_step_names_do_not_mislead(formula, wrt, step):
    assert step in [str(s) for s in symdiff.lower(formula, wrt=wrt).forward]


def test_a_three_way_max_tie_splits_in_thirds_and_a_constant_tie_gives_zero():
    for backend in ("math", "numpy"):
        f = symdiff.grad("Max(x, y, z)", wrt=["x", "y", "z"], backend=backend)
        assert f(1.0, 1.0, 1.0)[1] == pytest.approx((1 / 3, 1 / 3, 1 / 3))
        assert f(1.0, 2.0, 2.0)[1] == pytest.approx((0, 0.5, 0.5))
        assert f(3.0, 2.0, 2.0)[1] == pytest.approx((1, 0, 0))
        g = symdiff.grad("Min(x, y, 1)", wrt=["x", "y"], backend=backend)
        assert g(1.0, 1.0)[1] == (0, 0) and g(0.0, 0.0)[1] == (0.5, 0.5)
    assert symdiff.check(symdiff.lower("Max(x, y, z, 0) + Min(x, 2*y, z)", wrt=["x", "y", "z"])).ok


def test_any_sympy_number_symbol_is_emitted_as_its_value():
    """sympy.physics writes hbar (a NumberSymbol): code carries its value, check agrees."""
    from sympy.physics.quantum.constants import hbar

    m, w = sp.symbols("m omega", positive=True)
    expr = 5 * hbar * w / (2 * m)
    prog = assert_backends_match(expr, expr, [m, w], {m: 1.5, w: 2.5})
    assert symdiff.check(prog).ok


def test_an_n_ary_max_won_by_its_constant_has_zero_gradient_not_nan():
    """Found by the enumerated corpus: Max(3, y, x) divided 0 by 0 where 3 is the maximum."""
    for backend in ("math", "numpy"):
        f = symdiff.grad("Max(3, y, x)", wrt=["x", "y"], backend=backend)
        assert f(1.0, 2.0)[1] == (0.0, 0.0) and f(3.0, 3.0)[1] == (0.0, 0.0)
        assert f(5.0, 2.0)[1] == (1.0, 0.0)


def test_the_beta_function_lowers_through_gammas():
    """sympy.stats' Beta density writes beta(a, b); the code computes it from math.gamma."""
    a, b, u = sp.symbols("a b u", positive=True)
    expr = u**(a - 1) * (1 - u)**(b - 1) / sp.beta(a, b)
    prog = assert_backends_match(expr, expr, [a, b, u], {a: 2.5, b: 1.5, u: 0.3})
    assert symdiff.check(prog).ok


def test_the_focal_loss_stays_finite_where_one_minus_p_rounds_to_zero():
    al, g, z = sp.symbols("alpha g z", **R)
    p = 1 / (1 + sp.exp(-z))
    expr = -al * (1 - p)**g * sp.log(p)
    prog = symdiff.lower("-alpha*(1 - sigmoid(z))**g*log(sigmoid(z))", wrt=["alpha", "g", "z"])
    assert "stable: 1 - sigmoid(z) = sigmoid(-z)" in str(prog)
    for backend in ("math", "numpy"):
        value, grads = prog.compile(backend).value_and_grad(1.5, 2.0, 45.0)
        assert all(math.isfinite(v) for v in (value, *grads))
    assert symdiff.check(prog).ok
    assert_backends_match(prog.expr, expr, [al, g, z], {al: 1.5, g: 2.0, z: 3.0})


def test_an_integral_float_exponent_of_a_negative_base_is_real():
    """landscapes' dixon_price writes (x1 - 1.0)**2.0: real for x1 < 1, as Python computes it."""
    x1, x2 = sp.symbols("x1 x2", **R)
    expr = (x1 - 1.0)**2.0 + 2 * (2.0 * x2**2.0 - x1)**2.0
    prog = assert_backends_match(expr, expr, [x1, x2], {x1: -1.3, x2: -0.4})
    assert "**2.0" not in str(prog)
    x3 = sp.Symbol("x3", **R)
    dixon = expr + 2 * (2.0 * x3**2.0 - x2)**2.0
    assert symdiff.verify(dixon, [x1, x2, x3], [sp.diff(dixon, v) for v in (x1, x2, x3)],
                          samples=10).ok
    assert symdiff.verify(expr, [x1, x2], [sp.diff(expr, v) for v in (x1, x2)]).ok


@pytest.mark.parametrize("func, oracle", [(sp.sech, lambda t: 1 / mpmath.cosh(t)),
                                          (sp.csch, lambda t: 1 / mpmath.sinh(t))])
def test_sech_and_csch_of_a_large_argument_do_not_overflow(func, oracle):
    """1/cosh(t) overflows in cosh for |t| > 710 where sech(t) is tiny (sech(exp(17)))."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(func(sp.exp(x)), wrt=[x])
    for backend in ("math", "numpy"):
        f = prog.compile(backend).value_and_grad
        assert f(17.0) == (0.0, (0.0,)) or f(17.0) == (0.0, (-0.0,))
        for t in (-800.0, -3.0, -1e-9, 1e-9, 0.4, 30.0, 800.0):
            value, _ = symdiff.lower(func(x), wrt=[x]).compile(backend).value_and_grad(t)
            assert value == pytest.approx(float(oracle(mpmath.mpf(t))), rel=4e-16, abs=1e-320)
    assert symdiff.check(prog).ok


def test_acot_of_zero_is_half_pi_in_both_backends():
    """The math code printed atan(1/t): ZeroDivisionError at t = 0 (floor(atan2(0.5, x)))."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.acot(sp.floor(sp.atan2(0.5, x))), wrt=[x])
    for backend in ("math", "numpy"):
        assert float(prog.compile(backend).value_and_grad(17.0)[0]) == math.pi / 2
        ceiling = symdiff.lower(sp.acot(sp.ceiling(x)), wrt=[x]).compile(backend)
        assert float(ceiling.value_and_grad(-0.4)[0]) == math.pi / 2  # ceil(-0.4) is -0.0
    assert symdiff.check(prog).ok


def test_a_branch_sympy_folds_to_a_non_real_constant_is_undefined_only_there():
    """Piecewise((cot(pi), y > 0), (pi, True)) is zoo for y > 0 and pi elsewhere: it was refused
    as "undefined everywhere". The math code raises where it is undefined, numpy gives nan."""
    x, y = sp.symbols("x y", **R)
    p = sp.Piecewise((-1, x > 0), (2, True))
    cases = [(sp.Max(sp.acsch(sp.Piecewise((sp.cot(sp.pi), y > 0), (sp.pi, True))), x), [x, y],
              (0.0, 1.0), (0.0, -1.0), math.asinh(1 / math.pi)),
             (p**-0.5 - sp.sinh(p**-0.5), [x], (1.0,), (-1.0,), 2**-0.5 - math.sinh(2**-0.5))]
    for expr, wrt, undefined, defined, value in cases:
        prog = symdiff.lower(expr, wrt=wrt)
        with pytest.raises(ValueError, match="undefined"):
            prog.compile("math").value_and_grad(*undefined)
        with np.errstate(all="ignore"):
            out, grads = prog.compile("numpy").value_and_grad(*undefined)
        assert math.isnan(out) and all(math.isnan(g) for g in grads)
        for backend in ("math", "numpy"):
            assert float(prog.compile(backend).value_and_grad(*defined)[0]) == \
                pytest.approx(value, rel=1e-15)
        assert symdiff.check(prog).ok
    with pytest.raises(symdiff.UnsupportedFunctionError, match="undefined everywhere"):
        symdiff.lower(x + sp.nan, wrt=[x])
    with pytest.raises(symdiff.UnsupportedFunctionError, match="not real"):
        symdiff.lower(x + sp.I, wrt=[x])
    with pytest.raises(symdiff.UnsupportedFunctionError, match="asech.E. is a complex number"):
        symdiff.lower(x * sp.asech(sp.E), wrt=[x])  # the math code raised at run time
    for complex_constant in [(-1)**sp.GoldenRatio, (-2)**sp.pi]:  # is_real None: evaluated
        with pytest.raises(symdiff.UnsupportedFunctionError, match="is a complex number"):
            symdiff.lower(sp.atan2(x, 2 * x * complex_constant), wrt=[x])  # numpy raised
    assert symdiff.lower(x * 2**sp.pi * sp.pi**sp.E, wrt=[x]).compile("math").value_and_grad(
        1.0)[1][0] == pytest.approx(float(2**sp.pi * sp.pi**sp.E), rel=1e-15)  # real ones stay
    branches = sp.Piecewise((1, sp.atan2(y, 0.5) > 0), (x * sp.asech(sp.E), True))
    f = symdiff.lower(branches, wrt=[x, y]).compile("math").value_and_grad
    assert f(2.0, 2.0) == (1.0, (0.0, 0.0))  # the complex branch is not evaluated where untaken
    z = sp.Symbol("z", **R)
    f = symdiff.lower(sp.log(2, sp.Piecewise((z, z > 0), ((-1)**z, True))), wrt=[z])
    assert f.compile("math").value_and_grad(4.0)[0] == pytest.approx(0.5, rel=1e-15)


def test_a_complex_branch_is_undefined_where_taken_and_a_nested_one_only_in_its_branch():
    """log(x, -1) = -I*log(x)/pi is complex wherever it is taken; an inner Piecewise's undefined
    branch does not make the outer branch holding it undefined."""
    x, y = sp.symbols("x y", **R)
    prog = symdiff.lower(sp.Piecewise((sp.log(x, -1), x > 0), (2 * x, True)), wrt=[x])
    f = prog.compile("math").value_and_grad
    assert f(-3.0) == (-6.0, (2.0,))
    with pytest.raises(ValueError, match="undefined"):
        f(3.0)
    inner = sp.Piecewise((sp.cot(sp.pi), y > 0), (x**2, True))
    prog = symdiff.lower(sp.Piecewise((inner, x > 0), (2 * x, True)), wrt=[x, y])
    f = prog.compile("math").value_and_grad
    assert f(3.0, -1.0) == (9.0, (6.0, 0.0)) and f(-3.0, 1.0) == (-6.0, (2.0, 0.0))
    with pytest.raises(ValueError, match="undefined"):
        f(3.0, 1.0)
    assert symdiff.check(prog).ok


@pytest.mark.parametrize("func, t", [(sp.tanh, 25.0), (symdiff.sigmoid, 50.0), (sp.coth, 25.0)])
def test_a_saturated_textbook_derivative_is_accurate_to_eps_absolute(func, t):
    """sigmoid' = s*(1 - s), tanh' = 1 - tanh**2 (the staged example's rule, and PyTorch's and
    JAX's): where s rounds to 1 the difference is 0 to within eps of its terms, not to a relative
    error (the README's non-smooth and tails convention). The error stays below 2**-52."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(func(x), wrt=[x])
    exact = sp.diff(func(x).rewrite(sp.exp), x).subs(x, t).evalf(40)
    for backend in ("math", "numpy"):
        grad = float(prog.compile(backend).value_and_grad(t)[1][0])
        assert abs(grad - float(exact)) <= 2.0**-52 and abs(float(exact)) < 1e-16
    assert symdiff.check(prog).ok


def test_check_does_not_blame_code_where_rounding_reaches_a_singularity(monkeypatch):
    """asec(coth(t)) at t = 19: coth rounds to 1, where asec' is infinite, so the float code
    divides by zero, but its error bound exceeds the partial's size (no digit is determined):
    the verdict rests on the 50-digit program there, and a note says where and why."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.asec(sp.coth(x * (x / 0.5)**x)), wrt=[x])
    with np.errstate(all="ignore"):
        report = symdiff.check(prog)
    assert report.ok and not report.raised, str(report)
    assert any("determines no digit" in n and "ZeroDivisionError" in n for n in report.notes)
    keep = RULES[sp.asec]
    monkeypatch.setitem(RULES, sp.asec, lambda out, a: (1.001 * keep(out, a)[0],))
    wrong = symdiff.lower(sp.asec(sp.coth(x * (x / 0.5)**x)), wrt=[x])
    with np.errstate(all="ignore"):  # a wrong rule is still caught (by the 50-digit program)
        assert not symdiff.check(wrong).ok


def test_evaluating_a_tower_of_exponentials_finishes():
    """sinh(cosh(sinh(12))) would need ln 2 to 10**4782 bits: the sampler skips such points."""
    y = sp.Symbol("y", **R)
    report = symdiff.check(symdiff.lower(sp.sinh(sp.cosh(sp.sinh(y))), wrt=[y]))
    assert report.ok and len(report.points) == 20


def test_a_stabilized_program_quotes_the_formula_as_written():
    """check compares against the user's formula, so its header (and the listing) quote it;
    the rewrites are shown where they happen, in # stable: notes."""
    written = "-y*log(sigmoid(z)) - (1 - y)*log(1 - sigmoid(z))"
    prog = symdiff.lower(written, wrt=["y", "z"])
    assert str(prog).splitlines()[0] == f"out = f(y, z) = {written}"
    assert "# stable: log(1 - sigmoid(z)) = -softplus(z)" in str(prog)
    assert str(symdiff.check(prog)).splitlines()[0] == f"check: {written}"


def test_check_and_verify_sample_declared_signs():
    """Symbol('x', positive=True) is drawn positive: SymPy folds sqrt(x**2) to x for it, which
    is the formula the user means only where x > 0."""
    x, y = sp.Symbol("x", positive=True), sp.Symbol("y", negative=True)
    z = sp.Symbol("z", **R)
    report = symdiff.check(symdiff.lower(sp.sqrt(x**2) * y * z, wrt=[x, y, z]))
    assert report.ok and all(p["x"] > 0 and p["y"] < 0 for p in report.points)
    assert min(p["z"] for p in report.points) < 0 < max(p["z"] for p in report.points)
    verdict = symdiff.verify(sp.sqrt(x**2) * y, [x, y], [y, x], samples=8)
    assert verdict.ok and all(p["x"] > 0 and p["y"] < 0 for p in verdict.points)


def test_check_does_not_judge_float_code_where_a_step_is_beyond_the_float_range():
    """gamma(x**3) at x = -10.76 is about 1e-3300: it underflows in any float code, and
    asech(0) divides by zero, though the formula (about 7600) and its gradient are defined."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.asech(sp.gamma(x**3)), wrt=[x])
    with np.errstate(all="ignore"):
        report = symdiff.check(prog, points=[{"x": -10.7601}], samples=5)
    assert report.ok and not report.raised, str(report)
    assert any("beyond the float range" in n for n in report.notes)
    keep = RULES[sp.asech]
    with pytest.MonkeyPatch.context() as m:  # the 50-digit program is still judged there
        m.setitem(RULES, sp.asech, lambda out, a: (1.001 * keep(out, a)[0],))
        with np.errstate(all="ignore"):
            assert not symdiff.check(symdiff.lower(sp.asech(sp.gamma(x**3)), wrt=[x]),
                                     points=[{"x": -10.7601}], samples=1).ok


@pytest.mark.parametrize("bad", [3, {"math"}, b"math"])
def test_a_backends_argument_that_is_not_a_list_of_names_is_an_argument_error(bad):
    x = sp.Symbol("x", **R)
    with pytest.raises(symdiff.ArgumentError, match="backends must be a backend name"):
        symdiff.check(symdiff.lower(sp.sin(x), wrt=[x]), backends=bad)


def test_backends_none_is_every_backend_that_runs_the_program():
    x = sp.Symbol("x", **R)
    assert symdiff.check(symdiff.lower(sp.sin(x), wrt=[x]), backends=None).backends == \
        symdiff.check(symdiff.lower(sp.sin(x), wrt=[x])).backends == ("math", "numpy")


def test_an_exact_zero_partial_does_not_make_a_point_fragile(monkeypatch):
    """Code that raises where every partial and every local derivative is determined is
    reported, even where one partial is exactly 0 (its tolerance is 1e-300, not below it):
    here generated math code that divides by zero at I = 0.5, where Max takes atan(S) and
    dI is exactly 0. (At I = 7.8, erf rounds to 1.0 and acos' is undetermined in floats:
    there the same failure is a note, see the test below.)"""
    i, s = sp.symbols("I S", **R)
    prog = symdiff.lower(sp.exp(sp.Max(sp.acos(sp.erf(i)), sp.atan(s))), wrt=[i, s])
    real = prog.compile("math")

    class Failing:
        @staticmethod
        def value_and_grad(big_i, small_s):
            if big_i == 0.5:
                raise ZeroDivisionError("float division by zero")
            return real.value_and_grad(big_i, small_s)

    monkeypatch.setattr(type(prog), "compile", lambda self, backend="math", name=None: Failing)
    report = symdiff.check(prog, points=[{"I": 0.5, "S": 1.820786357461798}], samples=3,
                           backends=["math"])
    assert not report.ok and report.raised, str(report)


def test_the_error_bound_of_an_inline_branch_counts_the_terms_it_cancels():
    """The local of Piecewise((coth(u), c), ...) is 1 - coth(u)**2 inline: at u = 17 it is 3e-15
    from terms of size 1, so a float evaluation is 1e-16 off; the bound was ops * u * 3e-15."""
    o = sp.Symbol("out", **R)
    prog = symdiff.lower(sp.Piecewise((sp.coth(o), sp.pi / o > 0), (sp.asech(2), True)), wrt=[o])
    report = symdiff.check(prog, points=[{"out": 17.4128}], samples=4)
    assert report.ok, str(report)
    keep = RULES[sp.coth]
    with pytest.MonkeyPatch.context() as m:  # still tight enough to catch a wrong rule there
        m.setitem(RULES, sp.coth, lambda out, a: (1.0001 * keep(out, a)[0],))
        wrong = symdiff.lower(sp.Piecewise((sp.coth(o), sp.pi / o > 0), (0, True)), wrt=[o])
        assert not symdiff.check(wrong, points=[{"out": 1.3}], samples=2).ok


def test_an_n_ary_max_with_a_compound_constant_never_divides_by_zero():
    """Max(S, 0.5 + acosh(E), 1/I): the tie test read 0.5 - out + acosh(e) == 0, which rounds
    differently from the forward's 0.5 + acosh(e), so no operand reached the max and the share
    was 0/0 (ZeroDivisionError). It compares out <= 0.5 + acosh(e), as the forward computes."""
    i, s = sp.symbols("I S", **R)
    prog = symdiff.lower(sp.Max(sp.Max(s, sp.acosh(sp.E) + 0.5), 1 / i), wrt=[i, s])
    for backend in ("math", "numpy"):
        f = prog.compile(backend).value_and_grad
        out, grads = f(-1.5183288765212928, -0.21974161812786708)  # the constant wins
        assert float(out) == 0.5 + math.acosh(math.e) and [float(g) for g in grads] == [0, 0]
        assert [float(g) for g in f(0.3, 1 / 0.3)[1]] == pytest.approx([-0.5 / 0.09, 0.5])  # tie
    assert symdiff.check(prog).ok


def test_a_value_that_rounds_onto_a_pole_is_a_fragile_point():
    """gamma(Max(x, log(2, 0.5))) at x < -1: the reference's log(2)/log(0.5) (0.5 a float) is
    not exactly -1, so gamma is 4.5e15 there, but the float code's constant is exactly -1.0, a
    pole: the math code raises. Its value's error bound exceeds the value: a note, not RAISED."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.gamma(sp.Max(x, sp.log(2, 0.5))), wrt=[x])
    with np.errstate(all="ignore"):
        report = symdiff.check(prog, points=[{"x": -10.7601}], samples=6)
    assert report.ok and not report.raised, str(report)
    assert any("no digit of the value" in n for n in report.notes)


def test_a_point_is_in_the_domain_only_if_the_value_is_the_same_at_90_digits():
    """cos(x**x)**x at x = 38.03: x**x ~ 1e60, so at 50 digits cos has no right digit: the
    reference said undefined where it is defined, or gave a wrong value. Such points are skipped
    (the value at 90 digits must agree)."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.log(sp.tan(sp.cos(x**x)**x), x), wrt=[x])
    from symdiff.reference import Reference
    ref = Reference(prog)
    for v in (38.0326, 38.03257):  # undefined at 50 digits; -6.094 at 50 and -6.168 at 90
        assert not ref.defined({ref.args[0]: v})
    assert ref.defined({ref.args[0]: 1.3}) == (ref.gradient({ref.args[0]: 1.3})[0] is not None)


def test_an_undetermined_local_derivative_behind_a_zero_upstream_is_a_fragile_point(monkeypatch):
    """exp(Max(acos(erf(I)), atan(S))) at I = 6: erf(6) rounds to 1.0, where acos' is infinite,
    and the Max takes atan(S), so dI is exactly 0 but the code computes 0 * (-1/sqrt(0)): the
    math code raises, numpy gives nan. No digit of that local derivative is determined in floats:
    a note, not RAISED or MISMATCH; a wrong acos rule is still caught by the 50-digit program."""
    big_i, s = sp.symbols("I S", **R)
    expr = sp.exp(sp.Max(sp.acos(sp.erf(big_i)), sp.atan(s)))
    at = [{"I": 6.0, "S": 0.3}, {"I": 0.2, "S": 0.3}, {"I": -0.4, "S": 0.1}]
    with np.errstate(all="ignore"):
        report = symdiff.check(symdiff.lower(expr, wrt=[big_i, s]), points=at)
    assert report.ok and not report.raised, str(report)
    assert any("local derivative" in n and "ZeroDivisionError" in n for n in report.notes)
    keep = RULES[sp.acos]
    monkeypatch.setitem(RULES, sp.acos, lambda out, a: (1.001 * keep(out, a)[0],))
    with np.errstate(all="ignore"):
        wrong = symdiff.check(symdiff.lower(expr, wrt=[big_i, s]), points=at)
    assert not wrong.ok and not wrong.partials[0].ok, str(wrong)


def test_a_formula_sympy_differentiates_for_minutes_is_checked_by_central_differences():
    """tanh(x - (x**(1/3))**-0.5): SymPy's diff asks whether a power is real by polynomial gcds
    for minutes; the reference gives up on sympy.diff after DIFF_SECONDS and uses the
    central-difference oracle (a right program stays OK; the report names the oracle)."""
    x = sp.Symbol("x", **R)
    started = time.process_time()
    report = symdiff.check(symdiff.lower(sp.tanh(x - (x**sp.Rational(1, 3))**-0.5), wrt=[x]))
    assert time.process_time() - started < 60  # a hang guard, not a speed target
    assert report.ok and report.oracle.startswith("central difference"), str(report)


@pytest.mark.parametrize("func, at", [(sp.atan, 400.0), (sp.acot, 400.0)])
def test_a_local_derivative_beyond_the_float_range_is_not_judged(func, at):
    """atan(exp(x)) at x = 400: exp(400) ~ 5e173 is a float, but atan' = 1/(1 + u**2) is
    ~1e-347: the math code's u**2 overflows (OverflowError), numpy's dx underflows to 0 (the
    exact 1.9e-174 is a product of 1e-347 and 5e173). Float code cannot do better, in any
    staged form: the point is not judged (a note says so), the 50-digit program is."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(func(sp.exp(x)), wrt=[x])
    with np.errstate(all="ignore"):
        report = symdiff.check(prog, points=[{"x": at}, {"x": 0.5}, {"x": -1.7}])
    assert report.ok and not report.raised, str(report)
    assert any("beyond the float range" in n and "x=400" in n for n in report.notes), str(report)


def test_a_nested_constant_is_computed_once_at_high_precision():
    """log(cosh(erfc(E))): cosh(1.1e-4) = 1 + 6e-9 in floats keeps 8 digits of the log, so code
    computing the constant step by step was off by 1e-8 (relative); the lowering folds a
    constant with a function of a function in it to its value, and the listing still quotes the
    formula as written. Single functions of named constants (sqrt(2/pi), log(2)) stay."""
    g, x = sp.Symbol("Gamma", **R), sp.Symbol("x", **R)
    expr = sp.log(sp.cosh(sp.erfc(sp.E)), g)**3
    prog = symdiff.lower(expr, wrt=[g])
    want = sp.N(expr.subs(g, sp.Float(0.7779475496600057, 40)), 30)
    for backend in ("math", "numpy"):
        value = float(prog.compile(backend).value_and_grad(0.7779475496600057)[0])
        assert abs(value - float(want)) <= 4 * 2.0**-52 * abs(float(want))
    assert "out = log(cosh(erfc(E)))**3/log(Gamma)**3" in prog.source("math")
    kept = symdiff.lower(x * sp.sqrt(2 / sp.pi) + sp.log(2) * x, wrt=[x]).source("math")
    assert "math.pi" in kept and "math.log(2)" in kept, kept


def test_a_time_budget_inside_a_callers_own_alarm_keeps_that_alarm():
    """within_budget under a running alarm (the corpus harness has one per formula): the budget
    is cut to what is left of it, and the caller's alarm is set again afterwards, so SymPy work
    is limited there too (it ran unbounded: the sympy.diff of tanh(x - (x**(1/3))**-0.5) took
    the whole 30 s of the harness)."""
    import signal

    from symdiff.numeric import within_budget

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        started = time.monotonic()
        assert within_budget(lambda: time.sleep(5), 0.2, default="late") == "late"
        assert time.monotonic() - started < 2
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 25 < left <= 30 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_composition_sympy_cannot_rebuild_is_not_proved_rather_than_a_check_error():
    """Max(x, y, Piecewise(...)**y): composing the gradient for the symbolic proof folds a
    Piecewise into a Max with a nan argument, and SymPy raises ValueError ('not comparable');
    check said 'check failed'. The proof is just not made; the numbers decide."""
    x, y = sp.symbols("x y", **R)
    expr = sp.Max(sp.Min(x, x), y, sp.Piecewise((sp.Max(x, y), y > 0), (-1, True))**y)
    report = symdiff.check(symdiff.lower(expr, wrt=[x, y]))
    assert report.ok and not any(r.proved for r in report.partials), str(report)


@pytest.mark.parametrize("func, at", [(sp.asinh, [1e200, -3e160, 0.3]),
                                      (sp.acosh, [1e200, 1 + 1e-9]),
                                      (sp.acsch, [1e-200, -3e-160, 0.5])])
def test_inverse_hyperbolic_partials_do_not_overflow_where_they_are_representable(func, at):
    """asinh' = 1/sqrt(u**2 + 1) at u = gamma(138) ~ 1e235: u**2 overflowed, numpy returned 0
    where the partial is ~1e-235 (asinh(gamma(floor(x)*log(x))) at x = 38: dx was 0, not 4.9),
    math raised OverflowError. The rows use 1/hypot(1, u), 1/(sqrt(u - 1)*sqrt(u + 1)) and
    -1/(|u|*hypot(1, u)); each partial is right to a few ulps on both sides of 1e154."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(func(x), wrt=[x])
    for v in at:
        want = float(sp.diff(func(x), x).subs(x, sp.Float(v, 60)).evalf(30))
        for backend in ("math", "numpy"):
            got = float(prog.compile(backend).value_and_grad(v)[1][0])
            assert abs(got - want) <= 8 * 2.0**-52 * abs(want), (backend, v, got, want)


def test_a_value_beyond_the_float_range_inside_a_branch_condition_is_not_judged():
    """Piecewise((x, exp(x**x) > 0), (2, True)) at x = 17.4: the condition's exp(x**x) ~
    e**(1e21) is inside one step, not a step of its own; the math code's exp overflows
    (OverflowError). The point is not judged (a note), the 50-digit program is."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(sp.Piecewise((x, sp.exp(x**x) > 0), (2, True)), wrt=[x])
    with np.errstate(all="ignore"):
        report = symdiff.check(prog, points=[{"x": 17.4128}, {"x": 0.5}, {"x": 2.0}])
    assert report.ok and not report.raised, str(report)
    assert any("beyond the float range" in n and "x=17.4128" in n for n in report.notes)


def test_a_branch_undecided_in_floats_is_not_judged():
    """Min(sin(Max(pi, relu(p))), sech(E)) at E = 38: exactly, sin(pi) = 0 < sech(38) = 6e-17
    and dE = 0; in floats sin(math.pi) = 1.2e-16 > 6e-17, so the code rightly takes sech and
    dE = -6e-17. The Min compares values closer than their float error bounds: a note, not a
    MISMATCH. Where the sides are apart (E = 1), a wrong sech rule is still caught."""
    e, p = sp.symbols("E pi", **R)
    expr = sp.Min(sp.sin(sp.Max(symdiff.relu(p), sp.pi)), sp.sech(e))
    at = [{"E": 38.0326, "pi": -2.08344}, {"E": 1.0, "pi": 0.5}, {"E": -0.3, "pi": 4.0}]
    report = symdiff.check(symdiff.lower(expr, wrt=[e, p]), points=at)
    assert report.ok, str(report)
    assert any("undecided in floats" in n and "E=38.0326" in n for n in report.notes)


def test_a_folded_exponent_just_below_an_integer_is_not_truncated():
    """x**erfc(softplus(pi) - pi**2.0) is x**(2 - 3.2e-21): the folded 50-digit exponent is
    not an integer, but the old test (is its double integral?) said it was and int() of it is
    1: the code computed x**1, a wrong value. A true float integer (x**2.0) is still x**2."""
    x = sp.Symbol("x", **R)
    prog = symdiff.lower(x**sp.erfc(symdiff.softplus(sp.pi) - sp.pi**2.0), wrt=[x])
    out, (dx,) = prog.compile("math").value_and_grad(0.72)
    assert out == pytest.approx(0.72**2, rel=1e-15) and dx == pytest.approx(1.44, rel=1e-15)
    assert symdiff.check(prog).ok
    assert symdiff.lower(x**2.0, wrt=[x]).forward[0].rhs == x**2


def test_a_floor_within_float_error_of_an_integer_is_undecided():
    """hypot(floor(sigmoid(x)), log(acosh(x))) at x = 49.4: sigmoid is 1 - 3.6e-22, so floor is
    0, but floats round sigmoid to 1.0 and floor to 1 (dx off by 20%). The floor's argument is
    closer to an integer than its error bound: not judged there, a note says so."""
    x = sp.Symbol("x", **R)
    expr = sp.sqrt(sp.floor(symdiff.sigmoid(x))**2 + sp.log(sp.acosh(x))**2)
    report = symdiff.check(symdiff.lower(expr, wrt=[x]), points=[{"x": 49.3769}, {"x": 2.5}])
    assert report.ok, str(report)
    assert any("undecided in floats" in n for n in report.notes), str(report)


def test_a_zero_local_times_an_infinite_bound_carries_no_error():
    """atanh(Min(0, x)) - Min(0, x)**1.5 at x > 0: the bound of 0**1.5 is infinite (its
    exponent's partial has log(0)), and the backward multiplied it by the local 0: a nan
    tolerance, so an exact 0 was a MISMATCH ('error 0 where nan is allowed')."""
    x = sp.Symbol("x", **R)
    expr = sp.atanh(sp.Min(x, x - x)) - sp.Min(x, x - x)**1.5
    with np.errstate(all="ignore"):
        report = symdiff.check(symdiff.lower(expr, wrt=[x]), points=[{"x": 0.0676}, {"x": -0.5}])
    assert report.ok, str(report)
