"""Matrix formulas with slices and blocks, constants, scalars added and elementwise Max/Min.

Oracles: ``symdiff.check`` (sympy.diff of the formula written out entry by entry at concrete
sizes, SymPy's own MatrixSlice semantics, and central differences), and gradients computed by
hand in NumPy.
"""

import re

import numpy as np
import pytest
import sympy as sp

import symdiff

H, D, N, M = sp.symbols("H D N M", integer=True, positive=True)
RNG = np.random.default_rng(14)


def _ok(prog, **kw):
    report = symdiff.check(prog, **kw)
    assert report.ok, report


def test_packed_lstm_gate_weights_are_four_slices_of_a_4h_wide_matrix():
    W = sp.MatrixSymbol("W", D, 4 * H)
    X, h = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("h", N, H)
    i, f, g, o = (X * W[:, k * H:(k + 1) * H] for k in range(4))
    expr = symdiff.sum(symdiff.hadamard(h, symdiff.apply(sp.tanh, i))
                       + symdiff.hadamard(f, o) + g)
    prog = symdiff.lower(expr, wrt=[W, X])
    prog.validate()
    _ok(prog)
    ww, xx, hh = RNG.normal(size=(3, 8)), RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2))
    value, (dw, dx) = prog.compile("numpy").value_and_grad(ww, xx, hh)
    gi, gf, gg, go = (xx @ ww[:, 2 * k:2 * k + 2] for k in range(4))
    assert np.isclose(value, np.sum(hh * np.tanh(gi) + gf * go + gg))
    dgates = np.hstack([hh * (1 - np.tanh(gi)**2), go, np.ones_like(gg), gf])  # hand gradient
    assert dw.shape == ww.shape and dx.shape == xx.shape
    np.testing.assert_allclose(dw, xx.T @ dgates, rtol=1e-12)
    np.testing.assert_allclose(dx, dgates @ ww.T, rtol=1e-12)


def test_a_row_and_a_numeric_block():
    W = sp.MatrixSymbol("W", N, M)
    expr = symdiff.sum(symdiff.apply(sp.exp, W[2, :])) + symdiff.sum(
        symdiff.hadamard(W[0:2, 1:3], W[1:3, 0:2]))
    prog = symdiff.lower(expr, wrt=[W])
    assert "W[2:3, 0:M]" in prog.source("numpy")
    _ok(prog, sizes={"N": 4, "M": 3})
    ww = RNG.normal(size=(5, 4))
    _, (dw,) = prog.compile("numpy").value_and_grad(ww)
    hand = np.zeros_like(ww)
    hand[2, :] += np.exp(ww[2, :])
    hand[0:2, 1:3] += ww[1:3, 0:2]
    hand[1:3, 0:2] += ww[0:2, 1:3]
    np.testing.assert_allclose(dw, hand, rtol=1e-13)


def test_a_slice_with_a_step_is_refused_with_the_spelling_that_works():
    W = sp.MatrixSymbol("W", N, M)
    with pytest.raises(symdiff.UnsupportedFunctionError, match=re.escape('A[r0:r1, c0:c1]')):
        symdiff.lower(symdiff.sum(W[::2, :]), wrt=[W])


def test_constant_zero_one_matrices_are_numpy_array_constants():
    A = sp.MatrixSymbol("A", N, 2)
    P = sp.ImmutableMatrix([[1, 0], [1, 1]])
    expr = symdiff.sum(symdiff.hadamard(A * P, A)) + symdiff.sum(A * sp.ones(2, 1))
    prog = symdiff.lower(expr, wrt=[A])
    source = prog.source("numpy")
    assert "np.array([[1, 0], [1, 1]])" in source and "np.array([[1], [1]])" in source
    _ok(prog)
    aa = RNG.normal(size=(4, 2))
    pp = np.array([[1.0, 0.0], [1.0, 1.0]])
    value, (da,) = prog.compile("numpy").value_and_grad(aa)
    assert np.isclose(value, np.sum((aa @ pp) * aa) + np.sum(aa))
    assert da.shape == aa.shape
    np.testing.assert_allclose(da, aa @ pp + aa @ pp.T + 1, rtol=1e-13)  # by hand


def test_a_matrix_of_symbols_is_refused_naming_matrixsymbol():
    A, t = sp.MatrixSymbol("A", N, 2), sp.Symbol("t")
    with pytest.raises(symdiff.UnsupportedFunctionError, match=re.escape('MatrixSymbol')):
        symdiff.lower(symdiff.sum(A * sp.ImmutableMatrix([[t], [1]])), wrt=[A])


def test_a_scalar_added_to_a_matrix_is_add_scalar():
    A, c = sp.MatrixSymbol("A", N, M), sp.Symbol("c")
    prog = symdiff.lower(symdiff.sum(symdiff.apply(sp.exp, symdiff.add_scalar(A, c))), wrt=[A, c])
    _ok(prog)
    aa = RNG.normal(size=(3, 4))
    value, (da, dc) = prog.compile("numpy").value_and_grad(aa, 0.3)
    assert np.isclose(value, np.sum(np.exp(aa + 0.3)))
    np.testing.assert_allclose(da, np.exp(aa + 0.3), rtol=1e-13)
    assert np.ndim(dc) == 0 and np.isclose(dc, np.sum(np.exp(aa + 0.3)))


def test_what_sympy_refuses_for_a_matrix_plus_a_scalar_names_add_scalar():
    A, c = sp.MatrixSymbol("A", N, M), sp.Symbol("c")
    with pytest.raises(symdiff.UnsupportedFunctionError,
                       match=re.escape("symdiff.add_scalar(A, c)")):
        symdiff.lower(sp.Add(A, c, evaluate=False), wrt=[A])


def test_elementwise_maximum_and_minimum_of_two_matrices():
    A, B = sp.MatrixSymbol("A", N, M), sp.MatrixSymbol("B", N, M)
    expr = symdiff.sum(symdiff.hadamard(symdiff.maximum(A, B), symdiff.minimum(A, 2 * B)))
    prog = symdiff.lower(expr, wrt=[A, B])
    assert "np.maximum(A, B)" in prog.source("numpy")
    _ok(prog)
    aa, bb = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    value, (da, db) = prog.compile("numpy").value_and_grad(aa, bb)
    hi, lo = np.maximum(aa, bb), np.minimum(aa, 2 * bb)
    assert np.isclose(value, np.sum(hi * lo))
    np.testing.assert_allclose(da, lo * (aa > bb) + hi * (aa < 2 * bb), rtol=1e-13)  # by hand
    np.testing.assert_allclose(db, lo * (bb > aa) + 2 * hi * (2 * bb < aa), rtol=1e-13)


def test_verify_judges_hand_gradients_of_a_gate_slice_and_of_maximum():
    W, X = sp.MatrixSymbol("W", D, 4 * H), sp.MatrixSymbol("X", N, D)
    h = sp.MatrixSymbol("h", N, H)
    expr = symdiff.sum(symdiff.hadamard(h, X * W[:, H:2 * H]))

    def hand(w, x, hh, lo=1):
        dw = np.zeros_like(w)
        dw[:, lo * hh.shape[1]:(lo + 1) * hh.shape[1]] = x.T @ hh
        return dw

    assert symdiff.verify(expr, [W], hand, args=[W, X, h]).ok
    wrong = symdiff.verify(expr, [W], lambda w, x, hh: hand(w, x, hh, lo=0), args=[W, X, h])
    assert not wrong.ok  # the gradient of another gate's block
    A, B, c = sp.MatrixSymbol("A", N, M), sp.MatrixSymbol("B", N, M), sp.Symbol("c")
    expr = symdiff.sum(symdiff.maximum(A, symdiff.add_scalar(B, c)))

    def hand_max(a, b, cc):
        up = (a > b + cc) * 1.0
        return up, 1 - up, float(np.sum(1 - up))

    assert symdiff.verify(expr, [A, B, c], hand_max, args=[A, B, c]).ok


def test_a_slice_bound_that_is_a_scalar_argument_is_refused():
    W, k = sp.MatrixSymbol("W", N, M), sp.Symbol("k", integer=True, positive=True)
    with pytest.raises(symdiff.ArgumentError, match=re.escape('bounds are numbers or sizes')):
        symdiff.lower(symdiff.sum(W[:, 0:k]) + k, wrt=[W])


def test_generated_code_refuses_an_array_whose_size_is_not_the_derived_one():
    W, h = sp.MatrixSymbol("W", D, 4 * H), sp.MatrixSymbol("h", N, H)
    X = sp.MatrixSymbol("X", N, D)
    mod = symdiff.lower(symdiff.sum(symdiff.hadamard(h, X * W[:, H:2 * H])), wrt=[W]).compile(
        "numpy")
    with pytest.raises(ValueError, match=re.escape('W must have 4*H entries in axis 1')):
        mod.value_and_grad(np.ones((3, 9)), np.ones((4, 3)), np.ones((4, 2)))


def test_a_point_with_a_packed_matrix_fixes_the_gate_width():
    W, h = sp.MatrixSymbol("W", D, 4 * H), sp.MatrixSymbol("h", N, H)
    X = sp.MatrixSymbol("X", N, D)
    prog = symdiff.lower(symdiff.sum(symdiff.hadamard(h, X * W[:, H:2 * H])), wrt=[W])
    _ok(prog, points=[{"W": RNG.normal(size=(3, 12))}])  # H = 3
    with pytest.raises(symdiff.ArgumentError, match=re.escape('no size H')):
        symdiff.check(prog, points=[{"W": RNG.normal(size=(3, 10))}])


def test_a_block_matrix_of_a_weight_and_a_bias_column():
    """[W b; 0 1] @ [X; 1]: an affine map written with blocks (ZeroMatrix, Identity and
    OneMatrix blocks too); gradients against NumPy by hand and check's entry-by-entry
    sympy.diff."""
    W, b = sp.MatrixSymbol("W", N, D), sp.MatrixSymbol("b", N, 1)
    X = sp.MatrixSymbol("X", D, M)
    stacked = sp.BlockMatrix([[X], [sp.OneMatrix(1, M)]])
    top = sp.BlockMatrix([[W, b], [sp.ZeroMatrix(1, D), sp.Identity(1)]])
    expr = symdiff.sum(symdiff.apply(sp.tanh, top * stacked))
    prog = symdiff.lower(expr, wrt=[W, b, X])
    assert "np.block(" in prog.source("numpy")
    _ok(prog, sizes={"N": 2, "D": 2, "M": 3})
    ww, bb, xx = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 1)), RNG.normal(size=(3, 3))
    value, (dw, db, dx) = prog.compile("numpy").value_and_grad(ww, bb, xx)
    z = ww @ xx + bb
    assert np.isclose(value, np.sum(np.tanh(z)) + 3 * np.tanh(1.0))
    dz = 1 - np.tanh(z) ** 2
    np.testing.assert_allclose(dw, dz @ xx.T, rtol=1e-12)
    np.testing.assert_allclose(db, dz.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(dx, ww.T @ dz, rtol=1e-12)
    for g in (dw, db):  # blocks of one gradient array, returned as arrays of their own
        assert g.flags.writeable and not np.shares_memory(dw, db)


def test_a_gradient_that_numpy_gives_as_a_view_is_returned_as_an_array_of_its_own():
    X = sp.MatrixSymbol("X", N, D)
    first_row = np.array([[1.0], [0.0]])
    for expr, want in ((symdiff.sum(X), 1.0), (symdiff.sum(X[0:1, :]), first_row),
                       (symdiff.sum(X[0:1, :]) + symdiff.sum(X), 1.0 + first_row)):
        _, (dx,) = symdiff.lower(expr, wrt=[X]).compile("numpy").value_and_grad(np.ones((2, 3)))
        dx += 1.0  # a read-only broadcast view would raise here
        np.testing.assert_allclose(dx, want + 1.0 + 0 * dx)


def test_trace_of_a_block_matrix_gram_and_a_stacked_quadratic_form():
    A, B = sp.MatrixSymbol("A", N, N), sp.MatrixSymbol("B", N, 2)
    x = sp.MatrixSymbol("x", N + 2, 1)
    Mx = sp.BlockMatrix([[A, B]])
    for expr in (sp.Trace(Mx.T * Mx), (x.T * Mx.T * Mx * x)[0, 0]):
        _ok(symdiff.lower(expr, wrt=[A, B] + ([x] if expr.has(x) else [])))
    _, (da, db) = symdiff.lower(sp.Trace(Mx.T * Mx), wrt=[A, B]).compile("numpy").value_and_grad(
        aa := RNG.normal(size=(3, 3)), bb := RNG.normal(size=(3, 2)))
    np.testing.assert_allclose(da, 2 * aa, rtol=1e-13)  # d tr(M'M) = 2 M, block by block
    np.testing.assert_allclose(db, 2 * bb, rtol=1e-13)


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api"])
def test_slices_and_blocks_run_in_torch_jax_and_array_api_as_in_numpy(backend):
    """The other printers of submatrix, submatrix_grad and block, against numpy's code (the
    array_api module on NumPy arrays, which it takes without array-api-compat)."""
    if backend != "array_api":
        pytest.importorskip(backend)
    W = sp.MatrixSymbol("W", D, 2 * H)
    X, h = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("h", N, H)
    gates = sp.BlockMatrix([[X * W[:, 0:H], h]])
    expr = symdiff.sum(symdiff.apply(sp.sin, gates)) + symdiff.sum(X * W[:, H:2 * H])
    prog = symdiff.lower(expr, wrt=[W, X, h])
    args = RNG.normal(size=(3, 4)), RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2))
    want = prog.compile("numpy").value_and_grad(*args)
    module = prog.compile(backend)
    if backend == "torch":
        import torch
        got = module.value_and_grad(*(torch.tensor(a) for a in args))
    elif backend == "jax":
        import jax
        with jax.enable_x64(True):
            got = module.value_and_grad(*args)
    else:
        got = module.value_and_grad(*args)
    assert np.isclose(float(got[0]), want[0], rtol=1e-12)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12)
