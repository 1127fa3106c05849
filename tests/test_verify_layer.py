"""verify_layer and kinds: textbook layer objects, and hand code that draws its own dropout mask.

The layers are written as people write them (forward(x) / backward(dout), gradients stored on
the object); the oracle is symdiff's checked gradient of the formula, and for the mask, the
mask itself: a hand layer whose mask differs from the formula's would be reported wrong.
"""

import numpy as np
import pytest
import sympy as sp

import symdiff

N, D, M = sp.symbols("N D M", integer=True, positive=True)
X = sp.MatrixSymbol("X", N, D)
W = sp.MatrixSymbol("W", D, M)
b = sp.MatrixSymbol("b", 1, M)
MASK = sp.MatrixSymbol("MASK", N, D)
Y = sp.MatrixSymbol("Y", N, D)
p = sp.Symbol("p", positive=True)


class Affine:  # a book's layer: parameters at construction, gradients as attributes
    def __init__(self, W, b):
        self.W, self.b = W, b.reshape(-1)  # the book keeps b 1-D

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dout @ self.W.T


class Dropout:  # draws its own mask, as the books do: np.random.rand(*x.shape) > ratio
    def __init__(self, ratio):
        self.ratio = ratio

    def forward(self, x):
        self.mask = np.random.rand(*x.shape) > self.ratio
        return x * self.mask / (1 - self.ratio)

    def backward(self, dout):
        return dout * self.mask / (1 - self.ratio)


def affine():
    return X * W + symdiff.rows(b, N)


def test_a_layer_object_with_attribute_gradients_is_verified():
    report = symdiff.verify_layer(affine(), [X, W, b], Affine, lambda layer: (layer.dW, layer.db))
    assert report.ok, str(report)


def test_a_wrong_attribute_gradient_is_named():
    class Broken(Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.dW = self.dW.T if self.dW.shape[0] == self.dW.shape[1] else self.dW / len(dout)
            return dx

    report = symdiff.verify_layer(affine(), [X, W, b], Broken, lambda layer: (layer.dW, layer.db))
    assert [v.ok for v in report.partials] == [True, False, True]


def test_a_grads_count_that_does_not_fit_is_a_finding():
    report = symdiff.verify_layer(affine(), [X, W, b], Affine, lambda layer: (layer.dW,))
    assert not report.ok and "grads(layer) 1 for 2 parameters" in report.partials[0].diagnosis


def test_a_dropout_layer_that_draws_its_own_mask_gets_the_formulas_mask():
    formula = symdiff.hadamard(X, MASK) / (1 - p)
    report = symdiff.verify_layer(formula, [X], Dropout, args=[X, MASK, p],
                                  kinds={"MASK": "mask"}, domain={"p": (0.1, 0.9)})
    assert report.ok, str(report)

    class Unscaled(Dropout):  # forgot the inverted-dropout scaling in backward
        def backward(self, dout):
            return dout * self.mask

    wrong = symdiff.verify_layer(formula, [X], Unscaled, args=[X, MASK, p],
                                 kinds={"MASK": "mask"}, domain={"p": (0.1, 0.9)})
    assert not wrong.ok


@pytest.mark.parametrize("draw", [
    lambda shape, keep: np.random.rand(*shape) < keep,
    lambda shape, keep: np.random.random(shape) < keep,
    lambda shape, keep: np.random.uniform(size=shape) < keep,
    lambda shape, keep: np.random.binomial(1, keep, size=shape),
    lambda shape, keep: np.random.default_rng(3).random(shape) < keep,
])
def test_drawn_masks_serves_every_common_way_to_draw(draw):
    mask = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    with symdiff.drawn_masks([mask]):
        got = draw(mask.shape, 0.8)
        other = np.random.rand(4)  # another shape: an ordinary draw
    np.testing.assert_array_equal(np.asarray(got, dtype=float), mask)
    assert other.shape == (4,) and np.random.rand is not None


@pytest.mark.parametrize("kind, holds", [
    ("one_hot", lambda y: np.all(y.sum(axis=1) == 1) and set(np.unique(y)) <= {0.0, 1.0}),
    ("mask", lambda y: set(np.unique(y)) <= {0.0, 1.0}),
    ("positive", lambda y: np.all(y > 0)),
    ("probabilities", lambda y: np.allclose(y.sum(axis=1), 1) and np.all(y > 0)),
])
def test_kinds_give_every_trial_a_fitting_value(kind, holds):
    seen = []

    def hand(x, y):
        seen.append(y)
        return (y,)

    report = symdiff.verify(symdiff.sum(symdiff.hadamard(X, Y)), [X], hand, kinds={"Y": kind})
    assert report.ok and seen and all(holds(y) for y in seen)


def test_an_spd_kind_makes_a_log_determinant_checkable():
    A = sp.MatrixSymbol("A", N, N)
    prog = symdiff.lower(sp.log(sp.Determinant(A)), wrt=[A])
    report = symdiff.check(prog, kinds={"A": "spd"})
    assert report.ok, str(report)
    assert all(np.all(np.linalg.eigvalsh(np.array(pt["A"])) > 0) for pt in report.points)


@pytest.mark.parametrize("options, message", [
    ({"kinds": {"Z": "mask"}}, "not an argument"),
    ({"kinds": {"Y": "sparse"}}, "unknown kind"),
    ({"kinds": {"Y": "mask"}, "domain": {"Y": (0, 1)}}, "both a domain and a kind"),
])
def test_bad_kinds_are_named(options, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        symdiff.verify(symdiff.sum(symdiff.hadamard(X, Y)), [X], lambda x, y: (y,), **options)


def test_kinds_are_refused_for_a_scalar_formula():
    x = sp.Symbol("x")
    with pytest.raises(symdiff.ArgumentError, match="no arrays|has none"):
        symdiff.verify(x**2, [x], lambda x: (2 * x,), kinds={"x": "mask"})


def test_a_matrix_declared_spd_is_drawn_spd_so_check_can_judge_it():
    """symdiff.spd(K): the generated code refuses a K that is not symmetric, so random normal
    arrays could never check it; check and verify draw K symmetric positive definite."""
    n = sp.Symbol("n", integer=True, positive=True)
    K, y = sp.MatrixSymbol("K", n, n), sp.MatrixSymbol("y", n, 1)
    nll = (y.T * symdiff.spd(K).I * y)[0, 0] / 2 + sp.log(sp.Determinant(symdiff.spd(K))) / 2
    prog = symdiff.lower(nll, wrt=[K])
    report = symdiff.check(prog)
    assert report.ok, str(report)
    assert all(np.all(np.linalg.eigvalsh(np.array(p["K"])) > 0) for p in report.points)

    def hand(k, yy):
        ki = np.linalg.inv(k)
        a = ki @ yy
        return ((ki - a @ a.T) / 2,)

    assert symdiff.verify(nll, [K], hand).ok
