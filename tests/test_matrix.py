"""Matrix formulas: lowering, generated NumPy code, check and verify on random arrays.

Oracles: sympy.diff of the formula expanded entry by entry at concrete sizes (array_reference's
ExplicitReference, which uses SymPy's matrix semantics, not symdiff's conversion), central finite
differences, and the textbook matrix-calculus results written out here.
"""

import dataclasses

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.array_reference import ExplicitReference, finite_differences

N, D, M, C = sp.symbols("N D M C", integer=True, positive=True)
X = sp.MatrixSymbol("X", N, D)
W = sp.MatrixSymbol("W", D, M)
b = sp.MatrixSymbol("b", 1, M)
Z = sp.MatrixSymbol("Z", N, C)
Y = sp.MatrixSymbol("Y", N, C)
A = sp.MatrixSymbol("A", D, D)
lam = sp.Symbol("lam")

RNG = np.random.default_rng(7)


def affine():
    return X * W + symdiff.rows(b, N)


def test_affine_program_reads_like_hand_code():
    prog = symdiff.lower(affine(), wrt=[X, W, b])
    assert [s.name for s in prog.forward] == ["XW", "out"]
    text = prog.source("numpy", name="affine")
    for line in ("def affine_forward(X, W, b):", "def affine_backward(dout, cache):",
                 "def affine_value_and_grad(X, W, b):", "XW = X @ W",
                 "db = dout.sum(axis=0, keepdims=True)", "dX = dXW @ W.T", "dW = X.T @ dXW"):
        assert line in text, line
    assert "import symdiff" not in text


def test_affine_gradients_are_the_matrix_calculus_rules():
    mod = symdiff.lower(affine(), wrt=[X, W, b]).compile("numpy")
    x, w, bias = RNG.normal(size=(5, 3)), RNG.normal(size=(3, 4)), RNG.normal(size=(1, 4))
    out, cache = mod.forward(x, w, bias)
    np.testing.assert_allclose(out, x @ w + bias, rtol=1e-14)
    dout = RNG.normal(size=out.shape)
    dx, dw, db = mod.backward(dout, cache)
    np.testing.assert_allclose(dx, dout @ w.T, rtol=1e-13)
    np.testing.assert_allclose(dw, x.T @ dout, rtol=1e-13)
    np.testing.assert_allclose(db, dout.sum(axis=0, keepdims=True), rtol=1e-13)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, bias.shape)


def test_one_module_serves_every_batch_size():
    mod = symdiff.lower(affine(), wrt=[W]).compile("numpy")  # parameters: W, then X, b
    for n in (1, 2, 7):
        _, (dw,) = mod.value_and_grad(np.ones((3, 2)), np.ones((n, 3)), np.zeros((1, 2)))
        np.testing.assert_allclose(dw, np.full((3, 2), float(n)))


def _mse():
    H = symdiff.apply(symdiff.relu, affine())
    return symdiff.mean(symdiff.apply(lambda t: t**2, H - sp.MatrixSymbol("T", N, M)))


FORMULAS = {
    "affine": (affine, lambda: [X, W, b]),
    "relu-mse": (_mse, lambda: [X, W, b]),
    "transpose-and-trace": (lambda: symdiff.sum(symdiff.hadamard(A.T * A, A)), lambda: [A]),
    "quadratic-form": (lambda: sp.Trace(symdiff.sum(X, 0) * A * symdiff.sum(X, 0).T),
                       lambda: [X, A]),
    "softmax-ce": (lambda: -symdiff.sum(symdiff.hadamard(Y, Z - symdiff.cols(
        symdiff.amax(Z, 1), C) - symdiff.cols(symdiff.apply(sp.log, symdiff.sum(
            symdiff.apply(sp.exp, Z - symdiff.cols(symdiff.amax(Z, 1), C)), 1)), C))) / N,
        lambda: [Z]),
    "column-max": (lambda: symdiff.sum(symdiff.apply(sp.sin, symdiff.amax(Z, 0))), lambda: [Z]),
    "scalar-weight-decay": (lambda: symdiff.sum(symdiff.apply(sp.tanh, X * W))
                            + lam * symdiff.sum(symdiff.hadamard(W, W)), lambda: [W, lam]),
    "broadcast-into-product": (lambda: symdiff.rows(b, N).T * X, lambda: [b, X]),
    "row-broadcast-division": (lambda: symdiff.divide(X, symdiff.cols(symdiff.apply(
        lambda t: sp.sqrt(t + 1), symdiff.sum(symdiff.hadamard(X, X), 1)), D)),
        lambda: [X]),
    "sigmoid-pattern": (lambda: symdiff.apply(lambda t: 1 / (1 + sp.exp(-t)), X * W),
                        lambda: [X, W]),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_generated_gradients_match_sympy_diff_and_finite_differences(name):
    make, wrt = FORMULAS[name]
    prog = symdiff.lower(make(), wrt=wrt())
    prog.validate()
    report = symdiff.check(prog)
    assert report.ok, str(report)
    assert "sympy.diff of the explicit formula" in report.oracle


def test_the_explicit_reference_is_the_textbook_gradient():
    prog = symdiff.lower(affine(), wrt=[X, W, b])
    ref = ExplicitReference(prog, {N: 3, D: 2, M: 2})
    x, w, bias = RNG.normal(size=(3, 2)), RNG.normal(size=(2, 2)), RNG.normal(size=(1, 2))
    dout = RNG.normal(size=(3, 2))
    dx, dw, db = ref.gradient({"X": x, "W": w, "b": bias}, dout)
    np.testing.assert_allclose(dx, dout @ w.T, rtol=1e-13)
    np.testing.assert_allclose(dw, x.T @ dout, rtol=1e-13)
    np.testing.assert_allclose(db, dout.sum(axis=0, keepdims=True), rtol=1e-13)


def test_check_catches_a_wrong_backward_step():
    prog = symdiff.lower(affine(), wrt=[X, W, b])
    steps = list(prog.backward)
    k = next(i for i, g in enumerate(steps) if g.name == "dW")
    steps[k] = dataclasses.replace(steps[k], local=2 * steps[k].local)
    broken = dataclasses.replace(prog, backward=tuple(steps), _cache={})
    report = symdiff.check(broken)
    assert not report.ok and not report.partials[1].ok and report.partials[0].ok


def test_finite_differences_helper_agrees_with_the_rules():
    prog = symdiff.lower(affine(), wrt=[X, W])
    mod = prog.compile("numpy")
    x, w, bias = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)), RNG.normal(size=(1, 2))
    dout = RNG.normal(size=(4, 2))
    dx, dw = finite_differences(mod, prog, [x, w, bias], dout)
    np.testing.assert_allclose(dx, dout @ w.T, rtol=1e-6)
    np.testing.assert_allclose(dw, x.T @ dout, rtol=1e-6)


def test_listing_shows_numpy_steps_and_shapes():
    text = str(symdiff.lower(affine(), wrt=[X, W, b]))
    assert "XW = X @ W" in text and "# (N, M)" in text and "dX = dXW @ W.T" in text


def test_scalar_loss_gives_a_float_and_scalar_parameters_a_float_gradient():
    mod = symdiff.lower(FORMULAS["scalar-weight-decay"][0](), wrt=[W, lam]).compile("numpy")
    x, w = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2))
    value, (dw, dlam) = mod.value_and_grad(w, 0.5, x)  # parameters: wrt, then X
    assert np.ndim(value) == 0 and np.ndim(dlam) == 0 and dw.shape == w.shape
    assert dlam == pytest.approx(np.sum(w * w))


def test_a_matrix_the_formula_does_not_use_gets_a_zero_gradient_of_its_shape():
    V = sp.MatrixSymbol("V", 2, 3)
    mod = symdiff.lower(symdiff.sum(X), wrt=[X, V]).compile("numpy")
    _, (dx, dv) = mod.value_and_grad(np.ones((4, 5)), np.ones((2, 3)))
    np.testing.assert_array_equal(dx, np.ones((4, 5)))
    np.testing.assert_array_equal(dv, np.zeros((2, 3)))


def test_user_names_that_clash_are_renamed():
    dX, np_ = sp.MatrixSymbol("dX", N, D), sp.MatrixSymbol("np", N, D)
    prog = symdiff.lower(symdiff.sum(symdiff.hadamard(dX, np_)), wrt=[dX, np_])
    mod = prog.compile("numpy")
    a, c = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    _, (da, dc) = mod.value_and_grad(a, c)
    np.testing.assert_allclose(da, c)
    np.testing.assert_allclose(dc, a)


@pytest.mark.parametrize("call, message", [
    (lambda: symdiff.lower(affine(), wrt=[X], args=None).source("math"), "only the numpy"),
    (lambda: symdiff.lower(affine(), wrt=[N]), "is a dimension"),
    (lambda: symdiff.rows(W, N), "repeats a row"),
    (lambda: symdiff.cols(W, N), "repeats a column"),
    (lambda: symdiff.sum(X, axis=2), "axis must be"),
    (lambda: symdiff.amax(X, 3), "amax axis"),
    (lambda: symdiff.sum(3), "takes a matrix expression"),
    # Trace, Inverse, Determinant and X[0, 1] lower now (tests/test_matrix_calculus.py)
    (lambda: symdiff.lower(X[N - 1, 0], wrt=[X]), "needs numeric indices"),
    (lambda: symdiff.lower(sp.MatPow(A, sp.S.Half), wrt=[A]), "nonzero integer exponent"),
    (lambda: symdiff.lower(sp.Adjoint(A), wrt=[A]), "Adjoint is not supported"),
])
def test_bad_matrix_input_gets_a_clear_error(call, message):
    with pytest.raises(symdiff.SymdiffError, match=message):
        call()


# -- verify hand-written array gradients -------------------------------------------------------


def _affine_backward(transpose_dw=False, no_batch_sum=False, mean_scale=False):
    def backward(dout, cache):
        x, w = cache
        dw = x.T @ dout
        if transpose_dw:
            dw = dw.T
        if mean_scale:
            dw = dw / x.shape[0]
        db = dout if no_batch_sum else dout.sum(axis=0, keepdims=True)
        return dout @ w.T, dw, db

    return backward


def _affine_forward(x, w, bias):
    return x @ w + bias, (x, w)


def _verify(backward):
    return symdiff.verify(affine(), [X, W, b], backward, forward=_affine_forward)


def test_verify_accepts_a_correct_affine_backward():
    report = _verify(_affine_backward())
    assert report.ok, str(report)


def test_verify_names_a_wrong_transpose():
    report = _verify(_affine_backward(transpose_dw=True))
    assert not report.ok and report.partials[0].ok and report.partials[2].ok
    assert "transposed" in report.partials[1].diagnosis


def test_verify_names_a_missing_batch_sum():
    report = _verify(_affine_backward(no_batch_sum=True))
    assert "misses the sum over the batch axis" in report.partials[2].diagnosis


def test_verify_names_a_spurious_1_over_n():
    report = _verify(_affine_backward(mean_scale=True))
    assert "1/N" in report.partials[1].diagnosis


def test_verify_names_a_missing_1_over_n_in_a_mean_loss():
    T = sp.MatrixSymbol("T", N, M)
    loss = symdiff.mean(symdiff.apply(lambda t: t**2, X * W - T), 0) * sp.OneMatrix(M, 1)
    loss = sp.Trace(loss)

    def hand(x, w, t):  # forgot the 1/N of the mean
        return (2 * (x @ w - t) @ w.T, 2 * x.T @ (x @ w - t))

    report = symdiff.verify(loss, [X, W], hand)
    assert [p.ok for p in report.partials] == [False, False]
    assert all("a missing 1/N" in p.diagnosis for p in report.partials), str(report)


def test_verify_square_transpose_sign_and_swap():
    loss = symdiff.sum(symdiff.hadamard(A * A, A))  # sum_ij (A A)_ij A_ij
    mod = symdiff.lower(loss, wrt=[A]).compile("numpy")

    def right(a):
        return mod.value_and_grad(a)[1]

    def transposed(a):
        return (right(a)[0].T,)

    def flipped(a):
        return (-right(a)[0],)

    assert symdiff.verify(loss, [A], right).ok
    assert "transposed" in symdiff.verify(loss, [A], transposed).partials[0].diagnosis
    assert "sign flipped" in symdiff.verify(loss, [A], flipped).partials[0].diagnosis
    B = sp.MatrixSymbol("B", D, D)
    swapped = symdiff.verify(symdiff.sum(symdiff.hadamard(A, B * B)), [A, B],
                             lambda a, bb: (2 * bb.T @ a, bb @ bb))
    assert "swapped" in swapped.partials[1].diagnosis


def test_verify_names_a_missing_fork_term():
    # X is used twice: by the product and by the penalty; the hand code forgets the penalty
    loss = symdiff.sum(X * W) + symdiff.sum(symdiff.hadamard(X, X))

    def hand(x, w):
        return (np.ones((x.shape[0], w.shape[1])) @ w.T,
                x.T @ np.ones((x.shape[0], w.shape[1])))

    report = symdiff.verify(loss, [X, W], hand)
    assert not report.partials[0].ok and report.partials[1].ok
    assert "missing a term at a fork" in report.partials[0].diagnosis, str(report)


def test_verify_reports_a_hand_backward_that_raises():
    def broken(dout, cache):
        x, w = cache
        return dout @ w, x.T @ dout, dout.sum(axis=0, keepdims=True)  # w, not w.T

    report = _verify(broken)
    assert not report.ok and "transpose" in report.partials[0].diagnosis


def test_arguments_must_be_matrices_of_the_declared_shape():
    mod = symdiff.lower(affine(), wrt=[X, W, b]).compile("numpy")
    x, w = RNG.normal(size=(5, 3)), RNG.normal(size=(3, 4))
    message = r"b must be a 1 x n matrix \(a 2-D array\), got shape \(4,\)"
    with pytest.raises(ValueError, match=message):
        mod.forward(x, w, np.zeros(4))
    with pytest.raises(ValueError, match="b must be a 1 x n matrix"):
        mod.forward(x, w, np.zeros((2, 4)))
    out, _ = mod.forward(x.tolist(), w, np.zeros((1, 4)))  # nested lists are fine
    assert out.shape == (5, 4)


@pytest.mark.parametrize("point, message", [
    ({"V": np.zeros((2, 2))}, "not an argument"),
    ({"X": np.zeros(3)}, "2-D array"),
    ({"X": np.zeros((3, 2)), "W": np.zeros((3, 4))}, "two sizes"),
    ({"b": np.zeros((2, 4))}, "must have 1 at that axis"),
])
def test_verify_points_for_arrays_are_checked(point, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        symdiff.verify(affine(), [X, W, b], _affine_backward(), forward=_affine_forward,
                       points=[point])


def test_verify_uses_the_given_arrays():
    x = RNG.normal(size=(6, 3))
    seen = []

    def backward(dout, cache):
        seen.append(cache[0].shape)
        return _affine_backward()(dout, cache)

    report = symdiff.verify(affine(), [X, W, b], backward, forward=_affine_forward,
                            points=[{"X": x}])
    assert report.ok and set(seen) == {(6, 3)}  # (run twice: at dout and at dout / 2)
