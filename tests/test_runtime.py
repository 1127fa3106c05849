"""Tests of symdiff.runtime_math and symdiff.runtime_numpy: the helpers generated modules carry.

Each helper runs twice: as the module's own function, and as the text ``helper_source`` copies into
generated modules, executed in a namespace holding only ``math`` or ``np`` (so a helper that leans
on anything else in its module fails here). The oracle is mpmath at 50 digits, or math/numpy where
the helper only reshapes data.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import math
import pathlib
import sys
import types
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

from symdiff import runtime_math, runtime_numba, runtime_numpy, runtime_tensor
from symdiff.errors import ArgumentError
from symdiff.runtime import HELPER_NAMES, NAMED_CONSTANTS, helper_source

mp = mpmath.MPContext()  # a private context: the global mpmath.mp is left as it is
mp.dps = 50
MODULES = {"math": runtime_math, "numpy": runtime_numpy, "numba": runtime_numba}
VECTORIZED = {"erf": "erf", "erfc": "erfc", "gamma": "gamma", "loggamma": "lgamma"}


def copied(backend: str) -> types.SimpleNamespace:
    """The helpers as generated modules get them: their text run with only the backend module."""
    ns = {"math": math} if backend == "math" else {"np": np}
    for name in sorted(HELPER_NAMES):
        try:
            exec(helper_source(name, backend), ns)  # noqa: S102 (our own helper text)
        except ArgumentError:
            continue
    return types.SimpleNamespace(**{k: v for k, v in ns.items() if k in HELPER_NAMES})


@pytest.fixture(params=["module", "copied"])
def rmath(request):
    return runtime_math if request.param == "module" else copied("math")


@pytest.fixture(params=["module", "copied"])
def rnp(request):
    return runtime_numpy if request.param == "module" else copied("numpy")


def close(got: float, want, rel: float = 1e-15) -> bool:
    """got is the double nearest ``want`` (an mpmath number) to a relative ``rel``."""
    want = float(want)
    return got == want or abs(got - want) <= rel * abs(want)


@contextlib.contextmanager
def no_warnings():
    """A context in which any warning (numpy's overflow, divide, ...) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- the modules themselves


# The torch, jax and array_api helpers, read as text (their libraries are optional):
# tests/test_frameworks.py, tests/test_array_api.py
FRAMEWORK_FILES = {b: pathlib.Path(runtime_math.__file__).with_name(f"runtime_{b}.py")
                   for b in ("torch", "jax", "array_api")}


def top_level(module) -> dict[str, ast.stmt]:
    path = module if isinstance(module, pathlib.Path) else pathlib.Path(module.__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name if isinstance(node, ast.FunctionDef) else node.targets[0].id: node
            for node in tree.body if isinstance(node, (ast.FunctionDef, ast.Assign))}


@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_runtime_modules_import_only_their_backend(backend):
    module = MODULES[backend]
    tree = ast.parse(pathlib.Path(module.__file__).read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    top = [ast.unparse(node) for node in tree.body if node in imports]
    assert top == (["import math"] if backend == "math" else ["import numpy as np"])
    inner = [node for node in imports if node not in tree.body]
    scipy = "from scipy.linalg import cho_solve as solve_factored"  # optional, in a try
    assert all(ast.unparse(node) in ("import math", scipy) for node in inner)
    inside = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
              and any(isinstance(n, ast.Import) for n in ast.walk(f))}
    # numpy has no erf, erfc, gamma, lgamma: only those four (and besseli, for lgamma, and gelu,
    # for erfc) import math, in their bodies
    assert inside == (set() if backend == "math" else set(VECTORIZED) | {"besseli", "gelu"})
    with_scipy = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
                  and any(isinstance(n, ast.ImportFrom) for n in ast.walk(f))}
    assert with_scipy == (set() if backend == "math" else {"cho_solve", "cho_inverse"})
    for node in tree.body:  # nothing but the docstring, the import, defs and plain assignments
        assert isinstance(node, (ast.Expr, ast.Import, ast.FunctionDef, ast.Assign))


def test_every_helper_name_is_a_runtime_definition():
    defined = set().union(*(top_level(m).keys() for m in MODULES.values()),
                          top_level(runtime_tensor).keys())
    for path in FRAMEWORK_FILES.values():
        defined |= top_level(path).keys()
    assert defined == HELPER_NAMES
    for backend, module in MODULES.items():
        for name, node in top_level(module).items():
            source = helper_source(name, backend)
            if isinstance(node, ast.FunctionDef):  # the copied text is the tested function
                assert source == inspect.getsource(getattr(module, name))
            else:
                assert source.startswith(f"{name} = {getattr(module, name)!r}  # ")
    for name in top_level(runtime_tensor):  # the N-D gates' helpers, numpy's only
        assert helper_source(name, "numpy") == inspect.getsource(getattr(runtime_tensor, name))
    for name, _ in NAMED_CONSTANTS.values():  # the numpy backend takes runtime_math's line
        assert helper_source(name, "numpy") == helper_source(name, "math")


def test_constants_are_sympys_values_to_double_precision():
    for constant, (name, what) in NAMED_CONSTANTS.items():
        assert getattr(runtime_math, name) == float(constant.evalf(50))
        assert not hasattr(runtime_numpy, name)  # one copy, shared by both backends
        assert helper_source(name, "math").endswith(f"  # sympy.{constant}: {what}\n")
    assert runtime_math.EULER_GAMMA == float(mp.euler)
    assert runtime_math.CATALAN == float(mp.catalan)
    assert runtime_math.GOLDEN_RATIO == float(mp.phi)
    root = mp.findroot(lambda t: t**3 - t**2 - t - 1, 1.8)
    assert runtime_math.TRIBONACCI == float(root)


# ---------------------------------------------------------------- math helpers


def test_math_sigmoid_never_overflows(rmath):
    for t in (-800.0, -745.0, -709.9, -709.0, -708.5, -708.0, -30.0, 0.0, 0.5, 40.0, 800.0):
        want = 1 / (1 + mp.exp(-mp.mpf(t)))
        assert close(rmath.sigmoid(t), want), t
    assert rmath.sigmoid(0.0) == 0.5 and rmath.sigmoid(800.0) == 1.0
    assert rmath.sigmoid(-800.0) == 0.0  # exp(-800) is below the smallest double


def test_math_relu(rmath):
    assert [rmath.relu(t) for t in (-2.0, 0.0, 3.5)] == [0.0, 0.0, 3.5]
    assert isinstance(rmath.relu(-1), float)


def test_math_softplus(rmath):
    for t in (-1000.0, -30.0, -1.0, 0.0, 1e-9, 2.0, 30.0, 1000.0):
        assert close(rmath.softplus(t), mp.log(1 + mp.exp(t))), t
    assert rmath.softplus(1000.0) == 1000.0 and rmath.softplus(-1000.0) == 0.0


def test_math_sech_csch(rmath):
    for t in (-800.0, -3.0, -1e-9, 1e-9, 0.5, 20.0, 800.0):
        assert close(rmath.sech(t), mp.sech(t)), t
        assert close(rmath.csch(t), mp.csch(t)), t
    assert rmath.sech(0.0) == 1.0
    assert math.copysign(1.0, rmath.csch(-800.0)) == -1.0  # -0.0: signed as t
    with pytest.raises(ZeroDivisionError):
        rmath.csch(0.0)


def test_math_acot_and_undefined(rmath):
    assert rmath.acot(0.0) == math.pi / 2 == rmath.acot(0)
    for t in (-2.0, -1e-300, 0.5, 3.0, 1e300):
        assert close(rmath.acot(t), mp.acot(t)), t
    assert float(sp.acot(-2)) == pytest.approx(rmath.acot(-2.0), rel=1e-15)  # SymPy's branch
    with pytest.raises(ValueError, match="math domain error"):
        rmath.undefined()


BESSEL = [(nu, x) for nu in (0, 1, 2, 5, 0.5, 2.5, -1, -2)
          for x in (1e-8, 0.1, 0.7, 2.5, 10.0, 33.3, 100.0, 300.0, 700.0, -0.3, -5.0, -50.0)
          if x > 0 or nu == int(nu)]


def bessel(nu, x):
    """mpmath's I_nu(x), complex-typed at x < 0 (an imaginary part of rounding noise)."""
    value = mp.besseli(nu, x)
    assert abs(mp.im(value)) <= 1e-40 * abs(mp.re(value))
    return mp.re(value)


def test_besseli_matches_mpmath(rmath, rnp):
    """sympy.stats' von Mises density divides by besseli(0, k); its derivative is besseli(1, k)."""
    for nu, x in BESSEL:
        want = bessel(nu, x)
        assert close(rmath.besseli(nu, x), want, rel=1e-14), (nu, x)
    nus, xs = np.array([p[0] for p in BESSEL], float), np.array([p[1] for p in BESSEL])
    got = rnp.besseli(nus, xs)
    for g, (nu, x) in zip(got, BESSEL):
        assert close(float(g), bessel(nu, x), rel=1e-14), (nu, x)
    assert rmath.besseli(0, 0.0) == 1.0 and rmath.besseli(3, 0.0) == 0.0
    assert float(rnp.besseli(0.0, 0.0)) == 1.0 and float(rnp.besseli(2.0, 0.0)) == 0.0
    assert math.isinf(rmath.besseli(0, 1000.0))  # e**1000 is beyond floats
    with pytest.raises(ValueError, match="domain"):
        rmath.besseli(0.5, -1.0)
    assert math.isnan(float(rnp.besseli(0.5, -1.0)))


def test_numpy_acot(rnp):
    """pi/2 at 0 and at -0.0 (ceil(-0.4) is -0.0, and 1/-0.0 is -inf: arctan gave -pi/2)."""
    assert rnp.acot(0.0) == rnp.acot(-0.0) == np.pi / 2
    ts = np.array([-2.0, -1e-300, -0.0, 0.0, 0.5, 3.0, 1e300])
    got = rnp.acot(ts)
    assert got.shape == ts.shape
    for t, g in zip(ts, got):
        assert close(float(g), mp.acot(t) if t else mp.pi / 2), t


def test_math_logsumexp(rmath):
    for terms in [(3.0,), (1000.0, 1000.0), (1e308, 1e308), (-1000.0, -1000.5, -2000.0),
                  (700.0, 710.0, -5.0), (0.0, 1e-300)]:
        want = mp.log(mp.fsum(mp.exp(t) for t in terms))
        assert close(rmath.logsumexp(*terms), want), terms
    inf = math.inf
    assert rmath.logsumexp(inf, 1.0) == inf
    assert rmath.logsumexp(-inf, -inf) == -inf
    assert rmath.logsumexp(-inf, 0.0) == 0.0


NEGATIVE = (-1e-6, -0.5, -0.999, -1.3, -2.7, -10.2, -99.5)
POSITIVE = (1e-6, 0.01, 0.3, 0.5, 0.9, 1.0, 1.4616321449683622, 2.0, 5.5, 9.99, 10.0, 10.5,
            50.0, 1e3, 1e6, 1e15)


def digamma_tolerance(x: float, want) -> float:
    """About 1e-16 absolute, and for x < 0.5 what the float product pi*x (off by up to about an
    ulp) does to the reflection term pi/tan(pi*x), whose slope is pi/sin(pi*x)**2."""
    tol = 1e-15 * max(1.0, abs(float(want)))
    if x < 0.5:
        a = mp.pi * x
        tol += 2 * math.ulp(float(a)) * float(mp.pi / mp.sin(a) ** 2)
    return tol


def test_math_digamma(rmath):
    for x in POSITIVE + NEGATIVE:
        want = mp.digamma(x)
        assert abs(rmath.digamma(x) - want) <= digamma_tolerance(x, want), x


# ---------------------------------------------------------------- numpy helpers


def test_numpy_sigmoid_softplus_without_warnings(rnp):
    t = np.array([-800.0, -708.5, 0.0, 40.0, 800.0])
    with no_warnings():
        got, soft = rnp.sigmoid(t), rnp.softplus(np.array([-1000.0, 0.0, 1000.0]))
    assert all(close(g, 1 / (1 + mp.exp(-mp.mpf(v)))) for g, v in zip(got, t))
    assert soft[0] == 0.0 and soft[2] == 1000.0 and close(soft[1], mp.log(2))
    assert rnp.sigmoid(0.0) == 0.5
    assert list(rnp.relu(np.array([-2.0, 0.0, 3.5]))) == [0.0, 0.0, 3.5]


def test_numpy_sech_csch(rnp):
    t = np.array([-800.0, -3.0, -1e-9, 1e-9, 0.5, 800.0])
    with no_warnings():
        sech, csch = rnp.sech(t), rnp.csch(t)
    for v, s, c in zip(t, sech, csch):
        assert close(s, mp.sech(v)) and close(c, mp.csch(v)), v
    with np.errstate(divide="ignore"):
        assert rnp.csch(np.float64(0.0)) == np.inf  # as 1/0 in numpy
        assert rnp.csch(np.float64(-0.0)) == -np.inf


def test_numpy_logsumexp(rnp):
    a = np.array([1000.0, 1e308, -1000.0, 700.0, np.inf])
    b = np.array([1000.0, 1e308, -1000.5, 710.0, 1.0])
    c = np.array([-1000.0, 0.0, -2000.0, -5.0, -np.inf])
    with no_warnings():
        got = rnp.logsumexp(a, b, c)
    for i, g in enumerate(got[:4]):
        terms = (a[i], b[i], c[i])
        assert close(g, mp.log(mp.fsum(mp.exp(t) for t in terms))), terms
    assert got[4] == np.inf
    with np.errstate(divide="ignore"):  # log(0): -inf, as numpy's log
        assert rnp.logsumexp(np.array(-np.inf), np.array(-np.inf)) == -np.inf
    assert rnp.logsumexp(np.array([-np.inf]), np.array([0.0]))[0] == 0.0


def test_numpy_digamma_matches_mpmath_and_math(rnp):
    grid = np.array(POSITIVE + NEGATIVE)
    got = rnp.digamma(grid)
    for x, g in zip(grid, got):
        want = mp.digamma(x)
        assert abs(g - want) <= digamma_tolerance(float(x), want), x
        assert g == pytest.approx(runtime_math.digamma(float(x)), rel=1e-13)
    assert rnp.digamma(2.0).shape == ()


@pytest.mark.parametrize("name", sorted(VECTORIZED))
def test_numpy_vectorized_math_functions(rnp, name):
    oracle = {"erf": mp.erf, "erfc": mp.erfc, "gamma": mp.gamma,
              "loggamma": lambda t: mp.log(abs(mp.gamma(t)))}[name]
    t = np.array([[-2.5, -0.5, 0.25], [1.0, 3.5, 7.0]])
    got = getattr(rnp, name)(t)
    assert got.shape == t.shape and got.dtype == np.float64
    for v, g in zip(t.ravel(), got.ravel()):
        assert g == getattr(math, VECTORIZED[name])(v)
        assert close(g, oracle(v), rel=1e-13), (name, v)
    assert float(getattr(rnp, name)(1.5)) == getattr(math, VECTORIZED[name])(1.5)


def test_unbroadcast(rnp):
    g = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(rnp.unbroadcast(g, np.zeros(4)), g.sum(axis=0))
    assert np.array_equal(rnp.unbroadcast(g, np.zeros((3, 1))), g.sum(axis=1, keepdims=True))
    assert np.array_equal(rnp.unbroadcast(g, np.zeros((1, 4))), g.sum(axis=0, keepdims=True))
    total = rnp.unbroadcast(g, 2.0)
    assert type(total) is float and total == 66.0
    assert rnp.unbroadcast(g, np.zeros((3, 4))) is g  # a float array of like's shape, as it is
    ones = rnp.unbroadcast(1.0, np.zeros((2, 3)))  # a scalar gradient broadcast up
    assert ones.shape == (2, 3) and ones.flags.writeable and np.all(ones == 1.0)
    ints = rnp.unbroadcast(np.array([1, 2]), np.zeros(2))
    assert ints.dtype == np.float64 and list(ints) == [1.0, 2.0]
    assert rnp.unbroadcast(np.ones(3), 2.0, shape=(4, 3)) == 12.0  # broadcast to shape first


def test_asmatrix(rnp):
    a = rnp.asmatrix([[1, 2], [3, 4]], "A", (2, None))
    assert a.dtype == np.float64 and a.shape == (2, 2)
    assert rnp.asmatrix(np.ones((3, 5)), "B").shape == (3, 5)
    with pytest.raises(ValueError, match=r"A must be a 2 x n matrix \(a 2-D array\), got shape"
                                         r" \(3,\)"):
        rnp.asmatrix([1.0, 2.0, 3.0], "A", (2, None))
    with pytest.raises(ValueError, match=r"W must be a n x 3 matrix .* got shape \(2, 2\)"):
        rnp.asmatrix(np.ones((2, 2)), "W", (None, 3))


def test_asfloat(rnp):
    one = rnp.asfloat(1)
    assert type(one) is np.float64 and one == 1.0
    with np.errstate(divide="ignore"):
        assert one / rnp.asfloat(0) == np.inf  # a numpy scalar: 1/0 is inf, not an error
    arr = rnp.asfloat([1, 2, 3])
    assert arr.dtype == np.float64 and list(arr) == [1.0, 2.0, 3.0]
    x = np.array([0.5, 1.5], dtype=np.float32)
    assert rnp.asfloat(x).dtype == np.float32  # already floating: kept


def test_jacobian_array_broadcasts_entries_and_arguments(rnp):
    x = np.array([1.0, 2.0, 3.0])
    jac = rnp.jacobian_array(((x, 1.0), (0.0, 2 * x)), x, 5.0)
    assert jac.shape == (2, 2, 3) and jac.dtype == np.float64
    assert list(jac[0, 0]) == [1.0, 2.0, 3.0] and list(jac[0, 1]) == [1.0] * 3
    assert list(jac[1, 1]) == [2.0, 4.0, 6.0] and not np.shares_memory(jac, x)
    assert rnp.jacobian_array(((1, 2),), 0.5).tolist() == [[1.0, 2.0]]  # numbers become floats


def test_max_mask(rnp):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    mask = rnp.max_mask(a, a.max(axis=1, keepdims=True), 1)
    assert np.array_equal(mask, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    assert np.array_equal(rnp.max_mask(a, a.max(axis=0, keepdims=True), 0),
                          [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_first_max_mask_gives_a_tie_to_its_first_entry(rnp):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    assert np.array_equal(rnp.first_max_mask(a, a.max(axis=1, keepdims=True), 1),
                          [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.array_equal(rnp.first_max_mask(a, a.max(axis=0, keepdims=True), 0),
                          [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    from symdiff.array_ops import first_max_mask  # the interpreter's own, on the same arrays
    np.testing.assert_array_equal(first_max_mask.apply(a, a.max(axis=1, keepdims=True), 1),
                                  rnp.first_max_mask(a, a.max(axis=1, keepdims=True), 1))


def test_entry_grad(rnp):
    g = rnp.entry_grad(2.5, 1, 0, (2, 3))
    assert g.shape == (2, 3) and g[1, 0] == 2.5 and np.count_nonzero(g) == 1


def test_logdet_against_mpmath(rnp):
    a = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    exact = mpmath.log(mpmath.det(mpmath.matrix(a.tolist())))
    assert rnp.logdet(a) == pytest.approx(float(exact), rel=1e-15)
    big = 1e200 * np.eye(4)  # det overflows; its log does not
    assert rnp.logdet(big) == pytest.approx(4 * 200 * math.log(10), rel=1e-15)
    assert np.isnan(rnp.logdet(np.diag([1.0, -1.0])))  # log of a negative determinant
    assert rnp.logdet(np.zeros((2, 2))) == -np.inf


def _spd(n, seed=3):
    a = np.random.default_rng(seed).normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


def test_cholesky_helpers_against_mpmath(rnp):
    k, b = _spd(4), np.arange(8.0).reshape(4, 2)
    c = rnp.cholesky(k)
    exact = mpmath.matrix(k.tolist())
    np.testing.assert_allclose(c @ c.T, k, rtol=1e-14)
    assert rnp.cho_logdet(c) == pytest.approx(float(mpmath.log(mpmath.det(exact))), rel=1e-14)
    inverse = np.array((exact**-1).tolist(), dtype=float)
    np.testing.assert_allclose(rnp.cho_inverse(c), inverse, rtol=1e-13)
    np.testing.assert_allclose(rnp.cho_solve(c, b), inverse @ b, rtol=1e-13)
    with pytest.raises(ValueError, match="not symmetric"):
        rnp.cholesky(k + np.triu(np.ones((4, 4)), 1))
    with pytest.raises(np.linalg.LinAlgError):
        rnp.cholesky(-k)


def test_cholesky_helpers_without_scipy(rnp, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)  # import scipy.linalg fails
    k, b = _spd(5), np.ones((5, 1))
    c = rnp.cholesky(k)
    np.testing.assert_allclose(rnp.cho_solve(c, b), np.linalg.solve(k, b), rtol=1e-12)
    np.testing.assert_allclose(rnp.cho_inverse(c), np.linalg.inv(k), rtol=1e-12)


def fused_square(calls):
    def fused(x, y):
        calls.append(np.shape(x))
        return x * x + y, (2 * x, np.ones_like(y))
    return fused


def test_in_blocks_splits_rows_and_gives_the_same_numbers(rnp):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3000, 7)), rng.standard_normal((3000, 7))
    calls = []
    value, (dx, dy) = rnp.in_blocks(fused_square(calls), (x, y))
    assert len(calls) == -(-3000 // (8192 // 7)) and calls[0] == (8192 // 7, 7)
    assert np.array_equal(value, x * x + y) and np.array_equal(dx, 2 * x)
    assert np.array_equal(dy, np.ones_like(y))


def test_in_blocks_calls_once_when_blocks_do_not_apply(rnp):
    for args in [(np.ones(100), np.ones(100)),  # small
                 (np.ones((3000, 7)), np.ones(7)),  # different shapes
                 (2.0, 3.0)]:  # scalars
        calls = []
        value, _ = rnp.in_blocks(fused_square(calls), args)
        assert len(calls) == 1
        assert np.array_equal(value, np.asarray(args[0]) ** 2 + args[1])
    calls = []

    def reduced(x):  # the value is not elementwise: one call on everything
        calls.append(x.shape)
        return x.sum(), (np.ones_like(x),)
    value, _ = rnp.in_blocks(reduced, (np.ones((20000,)),))
    assert value == 20000.0 and calls[-1] == (20000,)


def test_numpy_gamma_and_loggamma_give_nan_at_a_pole_for_that_element_only(rnp):
    """math.gamma raises at a pole; one such element made the whole array call raise
    (gamma(Max(x, -1)) for x < -1). numpy functions give nan there, and inf on overflow."""
    with np.errstate(all="ignore"):
        got = rnp.gamma(np.array([-1.0, 0.0, 0.5, 200.0, 3.0]))
        logs = rnp.loggamma(np.array([0.0, -2.0, 0.5, 3.0]))
    assert np.isnan(got[0]) and np.isnan(got[1]) and np.isinf(got[3])
    assert close(float(got[2]), mp.gamma(0.5)) and float(got[4]) == 2.0
    assert np.isnan(logs[0]) and np.isnan(logs[1])
    assert close(float(logs[2]), mp.loggamma(0.5)) and close(float(logs[3]), mp.log(2))
