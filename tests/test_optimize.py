"""symdiff.optimize: SciPy's vector conventions over generated code, against independent oracles.

fun/jac/hess/hessp are compared with sympy.diff / sympy.hessian evaluated at 50 digits; the
Moré-Garbow-Hillstrom example must reach the published minima with SciPy (skipped without it).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import optimize

ROOT = Path(__file__).resolve().parents[1]
x, y, z, a = sp.symbols("x y z a", real=True)
FORMULAS = [
    (1 - x)**2 + 100 * (y - x**2)**2,
    sp.exp(x * y) * sp.sin(z) + sp.log(1 + x**2) * z,
    symdiff.sigmoid(x * y - z) + x / (1 + y**2 + z**2),
]


def _exact(expr, wrt, at):
    subs = dict(zip(wrt, (sp.Float(v, 50) for v in at)))
    grad = [float(sp.diff(expr, s).evalf(50, subs=subs)) for s in wrt]
    hess = [[float(sp.diff(expr, s, t).evalf(50, subs=subs)) for t in wrt] for s in wrt]
    return float(expr.evalf(50, subs=subs)), np.array(grad), np.array(hess)


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_fun_jac_match_sympy(expr):
    wrt = sorted(expr.free_symbols, key=lambda s: s.name)
    obj = optimize.objective(expr, wrt)
    rng = np.random.default_rng(0)
    for _ in range(3):
        at = rng.uniform(-1.5, 1.5, len(wrt))
        value, grad, _ = _exact(expr, wrt, at)
        assert obj.fun(at) == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(obj.jac(at), grad, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_hess_and_hessp_match_sympy(expr):
    wrt = sorted(expr.free_symbols, key=lambda s: s.name)
    obj = optimize.objective(expr, wrt)
    rng = np.random.default_rng(1)
    at, p = rng.uniform(-1.5, 1.5, len(wrt)), rng.normal(size=len(wrt))
    _, _, hess = _exact(expr, wrt, at)
    np.testing.assert_allclose(obj.hess(at), hess, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(obj.hessp(at, p), hess @ p, rtol=1e-10, atol=1e-10)


def test_params_fix_the_other_arguments_and_x_follows_wrt_order():
    obj = optimize.objective((a * x - y)**2 + a, [y, x], params={"a": 3.0})
    assert obj.fun([1.0, 2.0]) == 25.0 + 3.0  # y = 1, x = 2
    np.testing.assert_array_equal(obj.jac([1.0, 2.0]), [-10.0, 30.0])


def test_jac_is_a_fresh_array_each_call():
    obj = optimize.objective(x**2 + y**2, [x, y])
    first = obj.jac([1.0, 2.0])
    first[:] = 0.0
    np.testing.assert_array_equal(obj.jac([1.0, 2.0]), [2.0, 4.0])


def test_value_is_computed_once_for_fun_then_jac(monkeypatch):
    obj = optimize.objective(x**2 * y, [x, y])
    module = obj._v.module("value_and_grad")
    calls = []
    original = module.value_and_grad
    monkeypatch.setattr(module, "value_and_grad", lambda *v: calls.append(v) or original(*v))
    obj.fun([1.0, 2.0]), obj.jac([1.0, 2.0]), obj.fun([1.0, 3.0])
    assert len(calls) == 2


def test_residuals_fun_and_jacobian():
    res = optimize.residuals([x * y - 1, sp.exp(x) + y], [x, y])
    at = np.array([0.5, -2.0])
    np.testing.assert_allclose(res.fun(at), [-2.0, np.exp(0.5) - 2.0], rtol=1e-15)
    np.testing.assert_allclose(res.jac(at), [[-2.0, 0.5], [np.exp(0.5), 1.0]], rtol=1e-15)
    assert res.jac(at).shape == (2, 2) and res.m == 2


@pytest.mark.parametrize("call, message", [
    (lambda: optimize.objective(a * x, [x]), "missing: a"),
    (lambda: optimize.objective(a * x, [x], params={"x": 1.0, "a": 1.0}), "is a wrt symbol"),
    (lambda: optimize.objective(a * x, [x], params={"q": 1.0, "a": 1.0}), "not an argument"),
    (lambda: optimize.objective(x * y, [x, y]).fun([1.0]), "1-D vector of 2 values"),
    (lambda: optimize.objective(x * y, [x, y]).hessp([1.0, 2.0], [1.0]), "p must be"),
    (lambda: optimize.objective(sp.Trace(sp.MatrixSymbol("W", 2, 2)), ["W"]), "scalar symbols"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        call()


def test_mgh_example_reaches_the_published_minima():
    pytest.importorskip("scipy")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "optimize_mgh.py")],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if "trust-ncg" in line]) == 5
    assert len([line for line in lines if "least_squares" in line]) == 2
