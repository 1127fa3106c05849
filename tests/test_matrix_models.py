"""Models built from matrix calculus: a GP's marginal likelihood, ridge regression, the
multivariate-normal log density; and the Cholesky route of ``symdiff.spd``.

Oracles (none is symdiff's conversion): textbook gradients written in NumPy (Rasmussen &
Williams 2006, eq. 5.9, for the GP; the normal equations for ridge; the Matrix Cookbook's
inverse and log-determinant rules for the normal density), ``sympy.diff`` of the formula
expanded entry by entry at small sizes (``ExplicitReference``, the reference ``check`` uses),
central differences, SciPy's ``multivariate_normal`` and PyTorch float64 autograd when they are
installed.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import array_ops
from symdiff.array_reference import ExplicitReference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import gp_nll  # noqa: E402 - the example is the GP under test

RNG = np.random.default_rng(14)
n = sp.Symbol("n", integer=True, positive=True)
K, A = sp.MatrixSymbol("K", n, n), sp.MatrixSymbol("A", n, n)
x, mu = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("mu", n, 1)


def _spd_matrix(size):
    a = RNG.normal(size=(size, size))
    return a @ a.T + size * np.eye(size)


def _reference(prog, values, sizes):
    """sympy.diff of the explicit formula at ``values`` (dout = 1), 50 digits."""
    return ExplicitReference(prog, sizes).gradient(values, 1.0)


# -- the Cholesky route -------------------------------------------------------------------------

inv = np.linalg.inv
SPD_ROWS = [  # formula of K = spd(K), closed form of its gradient (K symmetric)
    ("log det K", lambda k: sp.log(sp.Determinant(k)), lambda v: inv(v["K"])),
    ("det K", lambda k: sp.Determinant(k), lambda v: np.linalg.det(v["K"]) * inv(v["K"])),
    ("x'K^-1x", lambda k: x.T * k.I * x, lambda v: -inv(v["K"]) @ v["x"] @ v["x"].T
     @ inv(v["K"])),
    ("tr(K^-1)", lambda k: sp.Trace(k.I), lambda v: -inv(v["K"]) @ inv(v["K"])),
    ("tr(AK^-1)", lambda k: sp.Trace(A * k.I), lambda v: -inv(v["K"]) @ v["A"].T
     @ inv(v["K"])),
    ("sum(K^-1)", lambda k: symdiff.sum(k.I), lambda v: -inv(v["K"]) @ np.ones((4, 4))
     @ inv(v["K"])),
    ("x'K^-2x", lambda k: x.T * k**-2 * x, lambda v: -(inv(v["K"]) @ inv(v["K"]) @ v["x"]
     @ v["x"].T @ inv(v["K"]) + inv(v["K"]) @ v["x"] @ v["x"].T @ inv(v["K"])
     @ inv(v["K"]))),
]


@pytest.mark.parametrize("row", SPD_ROWS, ids=[r[0] for r in SPD_ROWS])
def test_spd_formulas_go_through_one_cholesky_factor(row):
    name, make, closed = row
    prog = symdiff.lower(make(symdiff.spd(K)), wrt=[K])
    prog.validate()
    values = {"K": _spd_matrix(4), "A": RNG.normal(size=(4, 4)), "x": RNG.normal(size=(4, 1))}
    args = [values[a] for a in prog.args]
    value, (grad,) = prog.compile("numpy").value_and_grad(*args)
    np.testing.assert_allclose(grad, closed(values), rtol=1e-9, atol=1e-12)
    plain = symdiff.lower(make(K), wrt=[K]).compile("numpy").value_and_grad(*args)
    np.testing.assert_allclose(value, plain[0], rtol=1e-12)
    if "^-2" not in name:  # SymPy's adjugate of a symbolic 4 x 4, squared: minutes
        exact = _reference(prog, values, {n: 4})
        np.testing.assert_allclose(grad, exact[0], rtol=1e-9, atol=1e-12)
    exprs = [s.rhs for s in prog.forward] + [g.local for g in prog.backward]
    gates = [type(n) for e in exprs for n in sp.preorder_traversal(e)]
    assert gates.count(array_ops.cholesky) == 1, str(prog)
    lu = {array_ops.solve, array_ops.logdet, array_ops.inverse, array_ops.det}
    assert not lu & set(gates), str(prog)


def test_spd_at_fifty_digits_matches_the_reference():
    prog = symdiff.lower(sp.Trace(x.T * symdiff.spd(K).I * x)
                         + sp.log(sp.Determinant(symdiff.spd(K))), wrt=[K, x])
    values = {"K": _spd_matrix(3), "x": RNG.normal(size=(3, 1))}
    staged = prog.evaluate(values)
    exact = _reference(prog, values, {n: 3})
    for g, e in zip(prog.grads, exact):
        np.testing.assert_allclose(np.asarray(staged[g], dtype=float), e, rtol=1e-13)


def test_spd_refuses_an_asymmetric_matrix_and_a_rectangular_declaration():
    mod = symdiff.lower(sp.log(sp.Determinant(symdiff.spd(K))), wrt=[K]).compile("numpy")
    k = _spd_matrix(3)
    k[0, 2] += 1.0
    with pytest.raises(ValueError, match="declared spd .* not symmetric"):
        mod.value_and_grad(k)
    with pytest.raises(np.linalg.LinAlgError):
        mod.value_and_grad(-_spd_matrix(3))
    with pytest.raises(symdiff.ArgumentError, match="square matrix"):
        symdiff.spd(sp.MatrixSymbol("R", n, 2))


# -- the Gaussian process (examples/gp_nll.py) ---------------------------------------------------


def _gp_by_hand(ell, sf2, noise, d, y):
    """R&W eq. 2.30 and 5.9: nll, and 1/2 tr((alpha alpha' - K^-1) dK/dtheta) negated."""
    e = np.exp(-d / (2 * ell**2))
    k = sf2 * e + noise * np.eye(len(d))
    alpha = np.linalg.solve(k, y)
    w = 0.5 * (inv(k) - alpha @ alpha.T)
    nll = 0.5 * (y.T @ alpha).item() + 0.5 * np.linalg.slogdet(k)[1]
    return nll, (np.sum(w * sf2 * e * d / ell**3), np.sum(w * e), np.trace(w))


@pytest.fixture(scope="module")
def gp():
    prog = gp_nll.gp_program()
    prog.validate()
    return prog, prog.compile("numpy")


def test_gp_gradient_against_the_textbook_and_finite_differences(gp):
    _, mod = gp
    _, d, y = gp_nll.make_data(25)
    for params in ([1.0, 1.0, 0.5], [0.3, 2.0, 0.01], [3.0, 0.5, 1.0]):
        value, grads = mod.value_and_grad(*params, d, y)
        want_value, want = _gp_by_hand(*params, d, y)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(grads, want, rtol=1e-8)
        fd = gp_nll.finite_differences(mod.value_and_grad, params, d, y)
        np.testing.assert_allclose(grads, fd, rtol=1e-6)


def test_gp_gradient_against_sympy_diff_of_the_explicit_formula(gp):
    prog, mod = gp
    _, d, y = gp_nll.make_data(4)
    values = {"ell": 0.8, "sf2": 1.5, "noise": 0.2, "D": d, "y": y}
    exact = _reference(prog, values, {sp.Symbol("N", integer=True, positive=True): 4})
    _, grads = mod.value_and_grad(*(values[a] for a in prog.args))
    np.testing.assert_allclose(grads, exact, rtol=1e-10)


def test_gp_without_spd_is_checked_and_agrees():
    nll, wrt, args = gp_nll.gp_formula()
    plain = symdiff.lower(nll.xreplace({s: s.arg for s in nll.atoms(symdiff.matrix.SPD)}),
                          wrt=wrt, args=args)
    assert "cholesky" not in plain.source("numpy")
    report = symdiff.check(plain)
    assert report.ok, str(report)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_gp_gradient_against_pytorch_autograd(gp):
    _, mod = gp
    _, d, y = gp_nll.make_data(30)
    _, grads = mod.value_and_grad(1.2, 0.7, 0.1, d, y)
    np.testing.assert_allclose(grads, gp_nll.torch_gradient([1.2, 0.7, 0.1], d, y), rtol=1e-10)


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="SciPy not installed")
def test_gp_fit_reaches_a_stationary_point(gp):
    _, mod = gp
    _, d, y = gp_nll.make_data()
    result = gp_nll.fit(mod.value_and_grad, d, y)
    assert result.success
    fitted = np.exp(result.x)
    start = mod.value_and_grad(*gp_nll.START.values(), d, y)[0]
    assert result.fun < start
    _, grads = _gp_by_hand(*fitted, d, y)
    assert np.max(np.abs(np.array(grads) * fitted)) < 1e-3  # d nll / d log p = 0


def test_the_gp_example_runs_and_prints_its_backward():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH")]
                                        if p)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "gp_nll.py")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("def gp_nll_backward(dout, cache):")
    assert "cho_inverse(" in done.stdout and "nll at start = " in done.stdout


# -- ridge regression and the multivariate normal ----------------------------------------------

N, P, M = sp.symbols("N P M", integer=True, positive=True)
X, W, Y = sp.MatrixSymbol("X", N, P), sp.MatrixSymbol("W", P, M), sp.MatrixSymbol("Y", N, M)
lam = sp.Symbol("lam", positive=True)
RIDGE = sp.Trace((X * W - Y).T * (X * W - Y)) + lam * sp.Trace(W.T * W)


def test_ridge_regression_written_with_traces():
    prog = symdiff.lower(RIDGE, wrt=[W, lam])
    xv, yv, wv = RNG.normal(size=(20, 5)), RNG.normal(size=(20, 3)), RNG.normal(size=(5, 3))
    values = {"X": xv, "Y": yv, "W": wv, "lam": 0.3}
    mod = prog.compile("numpy")
    value, (dw, dlam) = mod.value_and_grad(*(values[a] for a in prog.args))
    assert value == pytest.approx(np.sum((xv @ wv - yv) ** 2) + 0.3 * np.sum(wv**2), rel=1e-13)
    np.testing.assert_allclose(dw, 2 * xv.T @ (xv @ wv - yv) + 0.6 * wv, rtol=1e-12)
    assert dlam == pytest.approx(np.sum(wv**2), rel=1e-13)
    best = np.linalg.solve(xv.T @ xv + 0.3 * np.eye(5), xv.T @ yv)  # the normal equations
    _, (at_best, _) = mod.value_and_grad(*({**values, "W": best}[a] for a in prog.args))
    assert np.max(np.abs(at_best)) < 1e-12
    matmuls = [s for s in prog.forward if isinstance(s.rhs, array_ops.matmul)]
    assert len(matmuls) == 1, str(prog)  # the residual X @ W - Y once, no W.T @ X.T
    report = symdiff.check(prog)
    assert report.ok, str(report)


def _mvn(s):
    r = x - mu
    return (-sp.Trace(r.T * s.I * r) / 2 - sp.log(sp.Determinant(s)) / 2
            - n * sp.log(2 * sp.pi) / 2)


@pytest.mark.parametrize("declared", [False, True], ids=["LU", "spd"])
def test_multivariate_normal_log_density(declared):
    s_ = sp.MatrixSymbol("S", n, n)
    prog = symdiff.lower(_mvn(symdiff.spd(s_) if declared else s_), wrt=[x, mu, s_])
    values = {"x": RNG.normal(size=(5, 1)), "mu": RNG.normal(size=(5, 1)), "S": _spd_matrix(5)}
    value, (dx, dmu, ds) = prog.compile("numpy").value_and_grad(
        *(values[a] for a in prog.args))
    si, r = inv(values["S"]), values["x"] - values["mu"]
    want = -0.5 * (r.T @ si @ r).item() - 0.5 * np.linalg.slogdet(values["S"])[1] \
        - 2.5 * np.log(2 * np.pi)
    assert value == pytest.approx(want, rel=1e-13)
    if importlib.util.find_spec("scipy") is not None:
        from scipy.stats import multivariate_normal
        assert value == pytest.approx(multivariate_normal(values["mu"].ravel(), values["S"])
                                      .logpdf(values["x"].ravel()), rel=1e-12)
    np.testing.assert_allclose(dx, -si @ r, rtol=1e-12)
    np.testing.assert_allclose(dmu, si @ r, rtol=1e-12)
    np.testing.assert_allclose(ds, 0.5 * (si @ r @ r.T @ si - si), rtol=1e-11, atol=1e-14)
    if not declared:
        report = symdiff.check(prog)
        assert report.ok, str(report)
