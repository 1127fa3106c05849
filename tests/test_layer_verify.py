"""verify on the layers: a correct hand-written forward/backward pair passes, a buggy one is
caught and explained (the pairs are written the way people write them, cs231n style)."""

import numpy as np
import pytest

import symdiff
from symdiff import layers

# -- hand-written layers (forward returns (out, cache); backward(dout, cache) -> grads) ---------


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def affine_backward_no_batch_sum(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout


def affine_backward_transposed(dout, cache):
    x, w = cache
    return dout @ w.T, (x.T @ dout).T, dout.sum(axis=0, keepdims=True)


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return (dout * (x > 0),)


def relu_backward_doubled(dout, x):
    return (2 * dout * (x > 0),)


def sigmoid_forward(x):
    s = 1 / (1 + np.exp(-x))
    return s, s


def sigmoid_backward(dout, s):
    return (dout * s * (1 - s),)


def sigmoid_backward_flipped(dout, s):
    return (dout * s * (s - 1),)


def tanh_forward(x):
    t = np.tanh(x)
    return t, t


def tanh_backward(dout, t):
    return (dout * (1 - t**2),)


def tanh_backward_halved(dout, t):
    return (dout * (1 - t**2) / 2,)


def softmax_ce_forward(z, y):
    shifted = z - z.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.sum(y * np.log(p)) / z.shape[0]
    return loss, (p, y)


def softmax_ce_backward(dout, cache):
    p, y = cache
    return (dout * (p - y) / p.shape[0],)


def softmax_ce_backward_no_mean(dout, cache):
    p, y = cache
    return (dout * (p - y),)


def mse_forward(yhat, y):
    return np.mean((yhat - y) ** 2), (yhat, y)


def mse_backward(dout, cache):
    yhat, y = cache
    return (dout * 2 * (yhat - y) / yhat.size,)


def mse_backward_batch_only(dout, cache):  # divides by N, forgets the M of the mean
    yhat, y = cache
    return (dout * 2 * (yhat - y) / yhat.shape[0],)


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    n = dout.shape[0]
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (
        n * np.sqrt(var + eps))
    return dx, (dout * xhat).sum(axis=0, keepdims=True), dout.sum(axis=0, keepdims=True)


def batchnorm_backward_no_batch_sum(dout, cache):
    dx, _, dbeta = batchnorm_backward(dout, cache)
    xhat = cache[0]
    return dx, dout * xhat, dbeta


CASES = {
    "affine": (affine_forward, affine_backward, [
        (affine_backward_no_batch_sum, 2, "misses the sum over the batch axis"),
        (affine_backward_transposed, 1, "transposed"),
    ]),
    "relu": (relu_forward, relu_backward, [(relu_backward_doubled, 0, "factor of 2")]),
    "sigmoid": (sigmoid_forward, sigmoid_backward, [(sigmoid_backward_flipped, 0, "sign flipped")]),
    "tanh": (tanh_forward, tanh_backward, [(tanh_backward_halved, 0, "factor of 1/2")]),
    "softmax_cross_entropy": (softmax_ce_forward, softmax_ce_backward, [
        (softmax_ce_backward_no_mean, 0, "a missing 1/N")]),
    "mse": (mse_forward, mse_backward, [(mse_backward_batch_only, 0, "a missing 1/M")]),
    "batchnorm": (batchnorm_forward, batchnorm_backward, [
        (batchnorm_backward_no_batch_sum, 1, "misses the sum over the batch axis")]),
}


def one_hot_labels():
    """Points for the softmax layer: its hand gradient (p - y)/N assumes one-hot labels."""
    rng = np.random.default_rng(5)
    return [{"Y": np.eye(c)[rng.integers(0, c, size=n)]} for n, c in ((5, 3), (7, 4), (3, 6))]


POINTS = {"softmax_cross_entropy": one_hot_labels}


def _verify(name, backward):
    forward = CASES[name][0]
    formula = getattr(layers, name)()
    points = POINTS[name]() if name in POINTS else None
    return symdiff.verify(formula.expr, formula.wrt, backward, args=formula.args,
                          forward=forward, points=points)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_correct_hand_layer_is_verified(name):
    report = _verify(name, CASES[name][1])
    assert report.ok, str(report)


def test_random_labels_refute_the_one_hot_shortcut():
    # (p - y)/N is the gradient only when each row of Y sums to 1: on general Y it is wrong
    assert not _verify_random_labels().ok


def _verify_random_labels():
    formula = layers.softmax_cross_entropy()
    return symdiff.verify(formula.expr, formula.wrt, softmax_ce_backward, args=formula.args,
                          forward=softmax_ce_forward)


@pytest.mark.parametrize("name, k", [(n, k) for n in sorted(CASES)
                                     for k in range(len(CASES[n][2]))])
def test_a_buggy_hand_layer_is_caught_and_explained(name, k):
    backward, partial, expected = CASES[name][2][k]
    formula = getattr(layers, name)()
    report = _verify(name, backward)
    assert not report.ok
    assert [p.ok for p in report.partials] == [j != partial for j in range(len(formula.wrt))]
    assert expected in report.partials[partial].diagnosis, str(report)
