"""Layer corpus, part 1: affine and the elementwise activations, written as people write them.

Pairs follow cs231n's ``layers.py`` (``affine_forward`` / ``affine_backward`` ...); callables
return the partials of the summed output from the arguments, as a ``*_grad(x)`` helper would.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from layer_corpus_base import RAISES, Bug, Case, dims, mat, sigmoid

import symdiff
from symdiff import layers
from symdiff.layers import Formula

# -- affine: out = x @ w + b, b a (1, M) row ------------------------------------------------------


def affine_forward(x, w, b):
    return x @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def affine_backward_1d_bias(dout, cache):  # cs231n and PyTorch: db has shape (M,)
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine_1d_bug_sum_axis_1(dout, cache):  # 1-D, but the sum over the wrong axis
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=1)


def affine_1d_bug_mean(dout, cache):  # np.mean where the sum belongs
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.mean(axis=0)


def affine_1d_bug_dw_from_dx(dout, cache):  # dW = x.T @ dout forgotten: W.T @ ... mixed up
    x, w, _ = cache
    return dout @ w.T, -(x.T @ dout), dout.sum(axis=0)


def affine_bug_no_batch_sum(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout


def affine_bug_sum_axis_1(dout, cache):
    x, w, _ = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=1, keepdims=True)


def affine_bug_dw_transposed(dout, cache):
    x, w, _ = cache
    return dout @ w.T, dout.T @ x, dout.sum(axis=0, keepdims=True)


def affine_bug_dx_no_transpose(dout, cache):
    x, w, _ = cache
    return dout @ w, x.T @ dout, dout.sum(axis=0, keepdims=True)


def affine_bug_dw_over_n(dout, cache):  # a 1/N carried over from the loss layer
    x, w, _ = cache
    return dout @ w.T, x.T @ dout / x.shape[0], dout.sum(axis=0, keepdims=True)


AFFINE = Case("affine", "pair", layers.affine(), affine_backward, forward=affine_forward, bugs=(
    Bug("db without the batch sum", affine_bug_no_batch_sum, ("db",), "batch axis"),
    Bug("db summed over axis 1", affine_bug_sum_axis_1, ("db",), "axis"),
    Bug("dW = dout.T @ x (transposed)", affine_bug_dw_transposed, ("dW",), "transposed"),
    Bug("dx = dout @ w (missing transpose)", affine_bug_dx_no_transpose, RAISES, "transpose"),
    Bug("dW divided by N", affine_bug_dw_over_n, ("dW",), "1/N"),
))

AFFINE_1D = Case("affine, 1-D bias", "pair", layers.affine(), affine_backward_1d_bias,
                 forward=affine_forward, bugs=(  # db of shape (M,): the 1-D convention
    Bug("1-D db summed over axis 1", affine_1d_bug_sum_axis_1, ("db",), "shape"),
    Bug("1-D db as a mean over the batch", affine_1d_bug_mean, ("db",), "1/N"),
    Bug("dW sign flipped", affine_1d_bug_dw_from_dx, ("dW",), "sign flipped"),
))

# -- relu -----------------------------------------------------------------------------------------


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, x):
    return dout * (x > 0)


RELU = Case("relu", "pair", layers.relu(), relu_backward, forward=relu_forward, bugs=(
    Bug("mask inverted (x < 0)", lambda dout, x: dout * (x < 0), ("dX",), "where"),
    Bug("mask taken from dout, not x", lambda dout, x: dout * (dout > 0), ("dX",), "where"),
    Bug("ignores dout (returns the mask)", lambda dout, x: (x > 0).astype(float), ("dX",),
        "dout"),
    Bug("multiplies by relu(x), not relu'(x)", lambda dout, x: dout * np.maximum(0, x),
        ("dX",), "derivative"),
    Bug("forgets the mask (returns dout)", lambda dout, x: dout.copy(), ("dX",), "where"),
))

# -- leaky relu (callable: the partial of sum(leaky_relu(X))) -------------------------------------

ALPHA = 0.01


def leaky_relu_formula() -> Formula:
    n, d = dims("N D")
    x = mat("X", n, d)
    alpha = sp.Rational(1, 100)
    return Formula(symdiff.apply(lambda t: sp.Piecewise((t, t > 0), (alpha * t, True)), x),
                   (x,), (x,))


LEAKY_RELU = Case("leaky relu", "callable", leaky_relu_formula(),
                  lambda x: np.where(x > 0, 1.0, ALPHA),
                  value=lambda x: np.where(x > 0, x, ALPHA * x), bugs=(
    Bug("negative slope dropped (relu's derivative)", lambda x: np.where(x > 0, 1.0, 0.0),
        ("dX",), "where"),
    Bug("branches swapped", lambda x: np.where(x > 0, ALPHA, 1.0), ("dX",), "where"),
    Bug("alpha * x, not alpha, on the negative side", lambda x: np.where(x > 0, 1.0, ALPHA * x),
        ("dX",), "where"),
    Bug("the forward value used as the derivative", lambda x: np.where(x > 0, x, ALPHA * x),
        ("dX",), "derivative"),
))

# -- sigmoid (pair, the output cached) ------------------------------------------------------------


def sigmoid_forward(x):
    s = sigmoid(x)
    return s, s


def sigmoid_forward_caching_x(x):
    return sigmoid(x), x


SIGMOID = Case("sigmoid", "pair", layers.sigmoid(), lambda dout, s: dout * s * (1 - s),
               forward=sigmoid_forward, bugs=(
    Bug("tanh' (1 - s**2) used for sigmoid'", lambda dout, s: dout * (1 - s**2), ("dX",),
        "derivative"),
    Bug("sign flipped: s * (s - 1)", lambda dout, s: dout * s * (s - 1), ("dX",), "sign"),
    Bug("ignores dout", lambda dout, s: s * (1 - s), ("dX",), "dout"),
    Bug("s * (1 - s) evaluated at the cached input x", lambda dout, x: dout * x * (1 - x),
        ("dX",), "derivative", forward=sigmoid_forward_caching_x),
    Bug("drops the (1 - s) factor", lambda dout, s: dout * s, ("dX",), "derivative"),
))

# -- tanh (callable: the partial of sum(tanh(X))) -------------------------------------------------

TANH = Case("tanh", "callable", layers.tanh(), lambda x: 1 - np.tanh(x) ** 2, value=np.tanh,
            bugs=(
    Bug("1 - tanh(x) (square missing)", lambda x: 1 - np.tanh(x), ("dX",), "derivative"),
    Bug("sigmoid' form t * (1 - t)", lambda x: np.tanh(x) * (1 - np.tanh(x)), ("dX",),
        "derivative"),
    Bug("1 - x**2 (at the input, not the output)", lambda x: 1 - x**2, ("dX",), "derivative"),
    Bug("sech(x), not sech(x)**2", lambda x: 1 / np.cosh(x), ("dX",), "derivative"),
))

# -- dropout with its mask given (inverted dropout, keep probability 1/2) -------------------------


def dropout_formula() -> Formula:
    n, d = dims("N D")
    x, m = mat("X", n, d), mat("Mask", n, d)
    return Formula(2 * symdiff.hadamard(x, m), (x,), (x, m))


def mask_points():
    rng = np.random.default_rng(11)
    return [{"Mask": (rng.random((n, d)) < 0.5).astype(float)}
            for n, d in ((5, 3), (4, 7), (8, 2), (3, 6))]


def dropout_forward(x, mask):
    return x * mask / 0.5, mask


DROPOUT = Case("dropout, mask given", "pair", dropout_formula(),
               lambda dout, mask: dout * mask / 0.5, forward=dropout_forward, points=mask_points,
               bugs=(
    Bug("forgets the 1/p rescale", lambda dout, mask: dout * mask, ("dX",), "factor"),
    Bug("mask inverted (1 - mask)", lambda dout, mask: dout * (1 - mask) / 0.5, ("dX",),
        "where"),
    Bug("ignores dout", lambda dout, mask: mask / 0.5, ("dX",), "dout"),
))

CASES = (AFFINE, AFFINE_1D, RELU, LEAKY_RELU, SIGMOID, TANH, DROPOUT)
