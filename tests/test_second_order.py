"""The generated hvp and hessian (forward over reverse) against sympy's Hessian at 50 digits.

Oracle: ``sympy.hessian`` of the formula, evaluated with mpmath at 50 digits; the generated
functions of both backends run in floats. Formulas cover forks (a value read twice), quotients,
special functions, the non-smooth gates (relu, Abs, Max: zero second derivative away from the
kink), and a variable the formula does not read.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symdiff

x, y, z = sp.symbols("x y z", real=True)

FORMULAS = [
    (x * y + sp.sin(x) * sp.exp(y)) ** 2 / (1 + x**2),
    symdiff.sigmoid(y) * x / (symdiff.sigmoid(x) + (x + y) ** 2),  # the staged example
    sp.log(1 + sp.exp(x * y)) + sp.sqrt(x**2 + y**2 + 1),
    sp.atan2(y, x) + sp.cos(x * y) * y,
    symdiff.relu(x * y - 1) ** 2 + sp.Abs(x - y) * x,
    sp.Max(x, y) * x + x**3,
    x**2 * y + 3 * x,  # d2/dy2 = 0
    (x - 1) ** 2 + 100 * (y - x**2) ** 2 + 0 * z,  # z unused: its row and column are zero
]
POINTS = [(0.3, -0.7, 0.2), (1.3, 0.4, -2.0), (-0.8, 1.9, 0.5)]


def _exact(expr, wrt, at):
    H = sp.hessian(expr, wrt)
    subs = {s: sp.Float(v, 50) for s, v in zip(wrt, at)}
    return np.array(H.subs(subs).evalf(50), dtype=float)


@pytest.mark.parametrize("k", range(len(FORMULAS)))
@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_hessian_and_hvp_equal_sympy_hessian(k, backend):
    expr = FORMULAS[k]
    wrt = [x, y, z] if z in expr.free_symbols or k == len(FORMULAS) - 1 else [x, y]
    prog = symdiff.lower(expr, wrt, allow_unused=True)
    module = prog.compile(backend, functions=("value_and_grad", "hvp", "hessian"))
    rng = np.random.default_rng(k)
    for at in POINTS:
        at = at[:len(wrt)]
        exact = _exact(expr, wrt, at)
        value, grad = module.value_and_grad(*at)
        out, grad_h, H = module.hessian(*at)
        H = np.array(H, dtype=float)
        np.testing.assert_allclose(H, exact, rtol=1e-10, atol=1e-10)
        assert np.array_equal(H, H.T)  # symmetric by construction
        np.testing.assert_allclose(np.array(grad_h, dtype=float), np.array(grad, dtype=float),
                                   rtol=1e-13)
        assert float(out) == pytest.approx(float(value), rel=1e-14)
        v = rng.normal(size=len(wrt))
        out, grad_v, hv = module.hvp(*at, *v)
        np.testing.assert_allclose(np.array(hv, dtype=float), exact @ v, rtol=1e-10,
                                   atol=1e-10)


def test_hessian_of_arrays_is_one_array_per_point():
    prog = symdiff.lower(x**2 * y + sp.exp(x * y), [x, y])
    module = prog.compile("numpy", functions=("hessian",))
    xs, ys = np.array([0.1, 0.5, -1.0]), np.array([2.0, -0.3, 0.7])
    _, _, H = module.hessian(xs, ys)
    assert H.shape == (2, 2, 3)
    for i in range(3):
        np.testing.assert_allclose(H[..., i], _exact(x**2 * y + sp.exp(x * y), [x, y],
                                                     (xs[i], ys[i])), rtol=1e-12)


def test_hvp_reads_as_one_tangent_sweep_over_forward_and_backward():
    text = symdiff.lower(x * sp.sin(x * y), [x, y]).source("math", functions=("hvp",))
    assert "def hvp(x, y, x_t, y_t):" in text
    assert "# tangent of backprop" in text and "# backprop" in text
    assert "return out, (dx, dy), (dx_t, dy_t)" in text


def test_second_order_of_several_outputs_is_refused():
    prog = symdiff.lower([x * y, x + y], [x, y])
    with pytest.raises(symdiff.SymdiffError, match="second derivative of one output"):
        prog.source("math", functions=("hvp",))


def test_check_judges_the_generated_hvp_and_hessian():
    prog = symdiff.lower(sp.exp(x) * sp.sin(y) / (1 + y**2), [x, y])
    report = symdiff.check(prog, functions=("hvp", "hessian"), samples=4)
    assert report.ok, report


def test_numpy_results_never_share_an_array():
    module = symdiff.lower(sp.sin(x + y), [x, y]).compile("numpy", functions=("hvp", "hessian"))
    xs, ys = np.array([1.0, 2.0]), np.array([0.5, 0.1])
    _, grad, hv = module.hvp(xs, ys, np.ones(2), np.zeros(2))  # dx = dy = dxpy, dx_t = dy_t
    grad[0][0] = hv[0][0] = 99.0
    assert grad[1][0] != 99.0 and hv[1][0] != 99.0
    _, grad, _ = module.hessian(xs, ys)
    assert not np.shares_memory(grad[0], grad[1])


# -- the sparse Hessian: its pattern from the program, a colouring, one hvp per colour --------

def _chained_rosenbrock(n):
    xs = sp.symbols(f"x0:{n}", real=True)
    return sp.Add(*[100 * (xs[i + 1] - xs[i]**2)**2 + (1 - xs[i])**2 for i in range(n - 1)]), xs


SPARSE_FORMULAS = [
    _chained_rosenbrock(12),
    (sp.exp(x) * y + sp.sin(z) + z**2 * 3, (x, y, z)),  # (x, y) coupled, z alone
    (x * y * z + sp.log(1 + x**2), (x, y, z)),  # dense off the diagonal, y and z linear
    (symdiff.relu(x - y) + sp.Abs(z) * x, (x, y, z)),
]


@pytest.mark.parametrize("k", range(len(SPARSE_FORMULAS)))
def test_the_pattern_holds_every_nonzero_of_the_exact_hessian(k):
    from symdiff.sparsity import colouring, hessian_pattern
    expr, wrt = SPARSE_FORMULAS[k]
    prog = symdiff.lower(expr, list(wrt))
    pattern = hessian_pattern(prog)
    exact = sp.hessian(expr, wrt)
    for i in range(len(wrt)):
        for j in range(len(wrt)):
            if sp.simplify(exact[i, j]) != 0:
                assert j in pattern[i], (i, j)
    colour = colouring(pattern)
    for c in set(colour):  # one colour's columns share no row
        rows = [pattern[j] for j, cj in enumerate(colour) if cj == c]
        assert sum(len(r) for r in rows) == len(frozenset().union(*rows))


def test_rosenbrock_pattern_is_tridiagonal_in_three_colours():
    from symdiff.sparsity import colouring, hessian_pattern
    expr, xs = _chained_rosenbrock(30)
    pattern = hessian_pattern(symdiff.lower(expr, list(xs)))
    assert pattern == [frozenset(j for j in (i - 1, i, i + 1) if 0 <= j < 30) for i in range(30)]
    assert max(colouring(pattern)) + 1 == 3


@pytest.mark.parametrize("k", range(len(SPARSE_FORMULAS)))
def test_sparse_hess_equals_the_dense_one(k):
    pytest.importorskip("scipy")
    from symdiff import optimize
    expr, wrt = SPARSE_FORMULAS[k]
    sparse = optimize.objective(expr, list(wrt), sparse=True)
    dense = optimize.objective(expr, list(wrt))
    at = np.random.default_rng(k).normal(size=len(wrt))
    H = sparse.hess(at)
    assert H.format == "csr" and (H != H.T).nnz == 0
    exact = _exact(expr, list(wrt), at)
    np.testing.assert_allclose(H.toarray(), exact, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(H.toarray(), dense.hess(at), rtol=1e-12, atol=1e-12)
    assert sparse.colours <= len(wrt)


@pytest.mark.parametrize("k", range(len(FORMULAS) - 1))
def test_hvp_costs_at_most_four_gradients_in_operations(k):
    """Griewank & Walther's bound for forward over reverse: ops(Hv) <= 4 ops(gradient)."""
    from symdiff.tangent import count_ops
    counts = count_ops(symdiff.lower(FORMULAS[k], [x, y]))
    assert counts["gradient"] < counts["hvp"] <= 4 * counts["gradient"], counts


def test_rosenbrock_hvp_costs_at_most_four_gradients_in_operations():
    from symdiff.tangent import count_ops
    expr, xs = _chained_rosenbrock(50)
    counts = count_ops(symdiff.lower(expr, list(xs)))
    assert counts["hvp"] <= 4 * counts["gradient"], counts
