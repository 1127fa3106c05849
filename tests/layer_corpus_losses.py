"""Layer corpus, part 2: losses (softmax cross-entropy, MSE, a mean over the batch, weight
decay) and a whole two-layer net, as the loss functions of course code write them.

Losses return a scalar, so a pair's backward gets a random scalar ``dout``; the softmax losses
take one-hot label rows through ``points`` (their ``(p - y)/N`` assumes rows summing to 1).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from layer_corpus_base import Bug, Case, dims, mat, one_hot_points, sigmoid, softmax
from layer_corpus_dense import affine_backward, affine_forward, relu_backward, relu_forward

import symdiff
from symdiff import layers
from symdiff.layers import Formula

# -- softmax cross-entropy with one-hot labels (pair) ---------------------------------------------


def softmax_ce_forward(z, y):
    p = softmax(z)
    return -np.sum(y * np.log(p)) / z.shape[0], (p, y)


def softmax_ce_backward(dout, cache):
    p, y = cache
    return dout * (p - y) / p.shape[0]


SOFTMAX_CE = Case("softmax cross-entropy", "pair", layers.softmax_cross_entropy(),
                  softmax_ce_backward, forward=softmax_ce_forward, points=one_hot_points(),
                  bugs=(
    Bug("missing 1/N", lambda dout, c: dout * (c[0] - c[1]), ("dZ",), "factor of N"),
    Bug("ignores dout", lambda dout, c: (c[0] - c[1]) / c[0].shape[0], ("dZ",), "dout"),
    Bug("y - p (sign flipped)", lambda dout, c: dout * (c[1] - c[0]) / c[0].shape[0], ("dZ",),
        "sign"),
    Bug("divides by N*C (np.mean habit)", lambda dout, c: dout * (c[0] - c[1]) / c[0].size,
        ("dZ",), "factor of 1/C"),
    Bug("forgets to subtract y", lambda dout, c: dout * c[0] / c[0].shape[0], ("dZ",), "term"),
))

# -- MSE, the mean over all N*M entries (pair) ----------------------------------------------------


def mse_forward(yhat, y):
    return np.mean((yhat - y) ** 2), (yhat, y)


def mse_backward(dout, cache):
    yhat, y = cache
    return dout * 2 * (yhat - y) / yhat.size


MSE = Case("mse", "pair", layers.mse(), mse_backward, forward=mse_forward, bugs=(
    Bug("divides by N, not N*M", lambda dout, c: dout * 2 * (c[0] - c[1]) / c[0].shape[0],
        ("dYhat",), "factor of M"),
    Bug("no mean at all (missing 1/(N*M))", lambda dout, c: dout * 2 * (c[0] - c[1]),
        ("dYhat",), "N*M"),
    Bug("missing factor 2", lambda dout, c: dout * (c[0] - c[1]) / c[0].size, ("dYhat",),
        "factor of 1/2"),
    Bug("y - yhat (sign flipped)", lambda dout, c: dout * 2 * (c[1] - c[0]) / c[0].size,
        ("dYhat",), "sign"),
    Bug("ignores dout", lambda dout, c: 2 * (c[0] - c[1]) / c[0].size, ("dYhat",), "dout"),
))

# -- a per-example loss summed over time and averaged over the batch (1/N): logistic loss ---------


def logistic_formula() -> Formula:
    """``sum(softplus(Z) - Y*Z) / N`` over N x T logits (binary cross-entropy with logits,
    summed over the T steps of a sequence and averaged over the batch, as cs231n's temporal
    losses do)."""
    n, t = dims("N T")
    z, y = mat("Z", n, t), mat("Y", n, t)
    per_entry = symdiff.apply(symdiff.softplus, z) - symdiff.hadamard(y, z)
    return Formula(symdiff.sum(per_entry) / n, (z,), (z, y))


def logistic_forward(z, y):
    return np.sum(np.logaddexp(0, z) - y * z) / z.shape[0], (z, y)


def logistic_backward(dout, cache):
    z, y = cache
    return dout * (sigmoid(z) - y) / z.shape[0]


LOGISTIC = Case("logistic loss, mean over batch", "pair", logistic_formula(), logistic_backward,
                forward=logistic_forward, bugs=(
    Bug("1/(N*T) (np.mean) where 1/N belongs",
        lambda dout, c: dout * (sigmoid(c[0]) - c[1]) / c[0].size, ("dZ",), "factor of 1/T"),
    Bug("missing 1/N", lambda dout, c: dout * (sigmoid(c[0]) - c[1]), ("dZ",), "factor of N"),
    Bug("y - sigmoid(z) (sign flipped)",
        lambda dout, c: dout * (c[1] - sigmoid(c[0])) / c[0].shape[0], ("dZ",), "sign"),
    Bug("ignores dout", lambda dout, c: (sigmoid(c[0]) - c[1]) / c[0].shape[0], ("dZ",),
        "dout"),
))

# -- L2 weight decay: ridge regression, sum((XW + b - Y)**2)/(2N) + lam/2 * sum(W*W) (callable) ---


def ridge_formula() -> Formula:
    n, d, m = dims("N D M")
    x, w, b, y = mat("X", n, d), mat("W", d, m), mat("b", 1, m), mat("Y", n, m)
    lam = sp.Symbol("lam", positive=True)
    residual = x * w + symdiff.rows(b, n) - y
    data = symdiff.sum(symdiff.hadamard(residual, residual)) / (2 * n)
    return Formula(data + lam / 2 * symdiff.sum(symdiff.hadamard(w, w)), (w, b), (w, b, x, y, lam))


def ridge_grad(w, b, x, y, lam, decay_w=1.0, decay_b=0.0):
    r = (x @ w + b - y) / x.shape[0]
    return x.T @ r + decay_w * lam * w, r.sum(axis=0, keepdims=True) + decay_b * lam * b


def ridge_value(w, b, x, y, lam):
    return np.sum((x @ w + b - y) ** 2) / (2 * x.shape[0]) + lam / 2 * np.sum(w * w)


RIDGE = Case("L2 weight decay (ridge loss)", "callable", ridge_formula(), ridge_grad,
             value=ridge_value, bugs=(
    Bug("decay term forgotten in dW", lambda w, b, x, y, lam: ridge_grad(w, b, x, y, lam, 0.0),
        ("dW",), "term"),
    Bug("decay applied to the bias too",
        lambda w, b, x, y, lam: ridge_grad(w, b, x, y, lam, 1.0, 1.0), ("db",), "term"),
    Bug("decay gradient 2*lam*W (the 1/2 ignored)",
        lambda w, b, x, y, lam: ridge_grad(w, b, x, y, lam, 2.0), ("dW",), "term"),
    Bug("decay divided by N like the data term",
        lambda w, b, x, y, lam: ridge_grad(w, b, x, y, lam, 1.0 / x.shape[0]), ("dW",), "1/N"),
))

# -- a two-layer net: affine - relu - affine - softmax cross-entropy + reg * (|W1|^2 + |W2|^2) ----


def two_layer_formula() -> Formula:
    n, d, h, c = dims("N D H C")
    x, y = mat("X", n, d), mat("Y", n, c)
    w1, b1, w2, b2 = mat("W1", d, h), mat("b1", 1, h), mat("W2", h, c), mat("b2", 1, c)
    reg = sp.Symbol("reg", positive=True)
    hidden = symdiff.apply(symdiff.relu, x * w1 + symdiff.rows(b1, n))
    scores = hidden * w2 + symdiff.rows(b2, n)
    # log softmax without the row-max shift (the hand code shifts): the same function, and with
    # symdiff.amax here the first verify takes 17-40 s instead of 3 s (its explicit self-check)
    log_norm = symdiff.apply(sp.log, symdiff.sum(symdiff.apply(sp.exp, scores), 1))
    log_p = scores - symdiff.cols(log_norm, c)
    loss = -symdiff.sum(symdiff.hadamard(y, log_p)) / n
    penalty = symdiff.sum(symdiff.hadamard(w1, w1)) + symdiff.sum(symdiff.hadamard(w2, w2))
    return Formula(loss + reg * penalty, (w1, b1, w2, b2), (w1, b1, w2, b2, x, y, reg))


def two_layer_grads(w1, b1, w2, b2, x, y, reg, bug=""):
    """cs231n's TwoLayerNet.loss backward pass; ``bug`` names one injected mistake."""
    pre = x @ w1 + b1
    hidden = np.maximum(0, pre)
    p = softmax(hidden @ w2 + b2)
    n = 1 if bug == "no 1/N" else x.shape[0]
    dscores = (p - y) / n
    dw2 = hidden.T @ dscores + 2 * reg * w2
    db2 = dscores if bug == "no batch sum" else dscores.sum(axis=0, keepdims=True)
    dhidden = dscores @ w2.T
    if bug != "no relu":
        dhidden = dhidden * ((x @ w1 if bug == "mask before bias" else pre) > 0)
    dw1 = x.T @ dhidden + (0 if bug == "no reg in dW1" else 2 * reg * w1)
    return dw1, dhidden.sum(axis=0, keepdims=True), dw2, db2


def _two_layer_bug(name):
    return lambda *args: two_layer_grads(*args, bug=name)


def two_layer_value(w1, b1, w2, b2, x, y, reg):
    p = softmax(np.maximum(0, x @ w1 + b1) @ w2 + b2)
    return -np.sum(y * np.log(p)) / x.shape[0] + reg * (np.sum(w1 * w1) + np.sum(w2 * w2))


TWO_LAYER = Case("two-layer net loss", "callable", two_layer_formula(), two_layer_grads,
                 value=two_layer_value, points=one_hot_points(sizes=((5, 3), (6, 4), (4, 2))),
                 bugs=(
    Bug("relu backward forgotten", _two_layer_bug("no relu"), ("dW1", "db1"), "where"),
    Bug("relu mask from x @ W1, before the bias", _two_layer_bug("mask before bias"),
        ("dW1", "db1"), "where"),
    Bug("reg term forgotten in dW1", _two_layer_bug("no reg in dW1"), ("dW1",), "term"),
    Bug("db2 without the batch sum", _two_layer_bug("no batch sum"), ("db2",), "batch axis"),
    Bug("missing 1/N on dscores", _two_layer_bug("no 1/N"), ("dW1", "db1", "dW2", "db2"),
        "1/N"),
))

# -- the same net with an MSE loss (examples/two_layer_net.py), chained from the layer pairs ------


def mse_net_formula() -> Formula:
    n, d, h, m = dims("N D H M")
    x, y = mat("X", n, d), mat("Y", n, m)
    w1, b1, w2, b2 = mat("W1", d, h), mat("b1", 1, h), mat("W2", h, m), mat("b2", 1, m)
    hidden = symdiff.apply(symdiff.relu, x * w1 + symdiff.rows(b1, n))
    prediction = hidden * w2 + symdiff.rows(b2, n)
    return Formula(symdiff.mean(symdiff.apply(lambda t: t**2, prediction - y)),
                   (w1, b1, w2, b2), (w1, b1, w2, b2, x, y))


def mse_net_forward(w1, b1, w2, b2, x, y):
    """affine -> relu -> affine -> mse, each layer's cache kept, as a cs231n Solver model."""
    a1, cache1 = affine_forward(x, w1, b1)
    h, cache_relu = relu_forward(a1)
    pred, cache2 = affine_forward(h, w2, b2)
    loss, cache_loss = mse_forward(pred, y)
    return loss, (cache1, cache_relu, cache2, cache_loss)


def mse_net_backward(dout, cache, bug=""):
    cache1, cache_relu, cache2, cache_loss = cache
    if bug == "mse over N":
        yhat, y = cache_loss
        dpred = dout * 2 * (yhat - y) / yhat.shape[0]
    else:
        dpred = mse_backward(1.0 if bug == "ignores dout" else dout, cache_loss)
    if bug == "pre-activation cache":  # the second affine handed the first's input cache
        cache2 = (cache_relu, cache2[1], cache2[2])
    dh, dw2, db2 = affine_backward(dpred, cache2)
    da1 = dh if bug == "no relu" else relu_backward(dh, cache_relu)
    _, dw1, db1 = affine_backward(da1, cache1)
    return dw1, db1, dw2, db2


def _net(bug):
    return lambda dout, cache: mse_net_backward(dout, cache, bug)


_ALL = ("dW1", "db1", "dW2", "db2")
MSE_NET = Case("two-layer net, MSE (chained pairs)", "pair", mse_net_formula(), mse_net_backward,
               forward=mse_net_forward, bugs=(
    Bug("relu backward skipped in the chain", _net("no relu"), ("dW1", "db1"), "where"),
    Bug("dW2 from the pre-activation a1, not relu(a1)", _net("pre-activation cache"), ("dW2",),
        "where"),
    Bug("mse backward divides by N, not N*M", _net("mse over N"), _ALL, "factor of M"),
    Bug("the loss's dout ignored", _net("ignores dout"), _ALL, "dout"),
))

CASES = (SOFTMAX_CE, MSE, LOGISTIC, RIDGE, TWO_LAYER, MSE_NET)
