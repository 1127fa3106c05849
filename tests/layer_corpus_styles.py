"""Layer corpus, part 5: the same layers written in two more styles.

float32: pairs that cast their inputs to float32 and compute the backward in float32 (GPU code,
many books); their bugs include mixed-precision ones (a float16 cache or product).

Layer objects, as in "Deep Learning from Scratch" (``common/layers.py``): ``Affine(W, b)``,
``Relu()``, ``Sigmoid()``, ``SoftmaxWithLoss()`` with ``forward``/``backward(dout)`` and the
weight gradients stored as ``layer.dW``, ``layer.db``, verified through
``symdiff.verify_layer`` (``object_pair`` records what it needs). Relu's backward zeroes ``dout``
in place, as the book's does; Dropout draws its own mask with ``np.random.rand`` in forward, and
``kinds={"M": "mask"}`` makes verify serve it the formula's mask.
"""

from __future__ import annotations

import numpy as np
from layer_corpus_base import Bug, Case, object_pair, one_hot_points, softmax

from symdiff import layers

F32, F16 = np.float32, np.float16

# -- float32 pairs --------------------------------------------------------------------------------


def affine32_forward(x, w, b):
    x, w, b = (a.astype(F32) for a in (x, w, b))
    return x @ w + b, (x, w)


def affine32_backward(dout, cache, bug=""):
    x, w = cache
    dout = np.asarray(dout, dtype=F32)
    dw = (x.astype(F16).T @ dout.astype(F16)).astype(F32) if bug == "f16" else x.T @ dout
    dw = dw / F32(x.shape[0]) if bug == "1/N" else dw
    db = dout if bug == "no batch sum" else dout.sum(axis=0, keepdims=True)
    return dout @ w.T, dw, db


def _affine32(bug):
    return lambda dout, cache: affine32_backward(dout, cache, bug)


AFFINE32 = Case("affine", "float32", layers.affine(), affine32_backward,
                forward=affine32_forward, bugs=(
    Bug("db without the batch sum", _affine32("no batch sum"), ("db",), "batch axis"),
    Bug("dW computed in float16", _affine32("f16"), ("dW",), "precision"),
    Bug("dW divided by N", _affine32("1/N"), ("dW",), "1/N"),
))


def sigmoid32_forward(x):
    s = (1 / (1 + np.exp(-x.astype(F32)))).astype(F32)
    return s, s


def sigmoid32_forward_f16_cache(x):
    s, _ = sigmoid32_forward(x)
    return s, s.astype(F16)


def sigmoid32_backward(dout, s):
    return np.asarray(dout, dtype=F32) * s * (1 - s)


SIGMOID32 = Case("sigmoid", "float32", layers.sigmoid(), sigmoid32_backward,
                 forward=sigmoid32_forward, bugs=(
    Bug("tanh' (1 - s**2) used", lambda dout, s: np.asarray(dout, F32) * (1 - s * s), ("dX",),
        "derivative"),
    Bug("output cached in float16", sigmoid32_backward, ("dX",), "precision",
        forward=sigmoid32_forward_f16_cache),
    Bug("ignores dout", lambda dout, s: s * (1 - s), ("dX",), "dout"),
))


def softmax32_forward(z, y):
    z32 = z.astype(F32)
    p = softmax(z32)
    return F32(-np.sum(y * np.log(p)) / z.shape[0]), (p, y.astype(F32))


def softmax32_forward_f16_cache(z, y):
    loss, (p, y32) = softmax32_forward(z, y)
    return loss, (p.astype(F16), y32)


def softmax32_backward(dout, cache):
    p, y = cache
    return F32(dout) * (p - y) / F32(p.shape[0])


SOFTMAX32 = Case("softmax cross-entropy", "float32", layers.softmax_cross_entropy(),
                 softmax32_backward, forward=softmax32_forward, points=one_hot_points(), bugs=(
    Bug("missing 1/N", lambda dout, c: F32(dout) * (c[0] - c[1]), ("dZ",), "factor of N"),
    Bug("ignores dout", lambda dout, c: (c[0] - c[1]) / F32(c[0].shape[0]), ("dZ",), "dout"),
    Bug("probabilities cached in float16", softmax32_backward, ("dZ",), "precision",
        forward=softmax32_forward_f16_cache),
))


def batchnorm32_forward(x, gamma, beta, eps, cache_dtype=F32):
    x, gamma, beta = (a.astype(F32) for a in (x, gamma, beta))
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + F32(eps))
    return gamma * xhat + beta, (xhat.astype(cache_dtype), gamma, var, F32(eps))


def batchnorm32_backward(dout, cache, bug=""):
    xhat, gamma, var, eps = cache
    dout = np.asarray(dout, dtype=F32)
    n = F32(dout.shape[0])
    dxhat = dout * gamma
    mean_term = 0 if bug == "no mean term" else dxhat.sum(axis=0, keepdims=True)
    dx = (n * dxhat - mean_term - xhat * (dxhat * xhat).sum(axis=0, keepdims=True)) / (
        n * np.sqrt(var + eps))
    dgamma = dout * xhat if bug == "no batch sum" else (dout * xhat).sum(axis=0, keepdims=True)
    return dx, dgamma, dout.sum(axis=0, keepdims=True)


BATCHNORM32 = Case("batchnorm", "float32", layers.batchnorm(), batchnorm32_backward,
                   forward=batchnorm32_forward, bugs=(
    Bug("drops the path through the mean",
        lambda dout, cache: batchnorm32_backward(dout, cache, "no mean term"), ("dX",), "term"),
    Bug("dgamma without the batch sum",
        lambda dout, cache: batchnorm32_backward(dout, cache, "no batch sum"), ("dscale",),
        "batch axis"),
    Bug("xhat cached in float16", batchnorm32_backward, ("dX", "dscale"), "precision",
        forward=lambda x, g, b, eps: batchnorm32_forward(x, g, b, eps, F16)),
))

# -- layer objects --------------------------------------------------------------------------------


def _object_bug(label, pair, wrong, expect) -> Bug:
    forward, backward = pair
    return Bug(label, backward, wrong, expect, forward=forward)


class Affine:
    def __init__(self, W, b, bug=""):
        self.W, self.b, self.bug = W, b, bug
        self.x = self.dW = self.db = None

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(dout.T, self.x) if self.bug == "dW transposed" else np.dot(self.x.T, dout)
        self.db = {"no batch sum": lambda: dout, "axis 1": lambda: np.sum(dout, axis=1)}.get(
            self.bug, lambda: np.sum(dout, axis=0, keepdims=True))()
        return dx


def _affine_object(bug=""):
    return object_pair(lambda w, b: Affine(w, b, bug), lambda layer: (layer.dW, layer.db))


AFFINE_OBJECT = Case("affine", "object", layers.affine(), _affine_object()[1],
                     forward=_affine_object()[0], bugs=(
    _object_bug("self.dW = dout.T @ x (transposed)", _affine_object("dW transposed"),
        ("dW",), "transposed"),
    _object_bug("self.db = dout (no batch sum)", _affine_object("no batch sum"), ("db",),
        "batch axis"),
    _object_bug("self.db summed over axis 1", _affine_object("axis 1"), ("db",), "axis"),
))


class Relu:
    def __init__(self, bug=""):
        self.mask, self.bug = None, bug

    def forward(self, x):
        self.mask = (x > 0) if self.bug == "mask inverted" else (x <= 0)
        out = x.copy()
        out[x <= 0] = 0
        return out

    def backward(self, dout):
        if self.bug == "no mask":
            return dout
        if self.bug == "mask from dout":
            self.mask = dout <= 0
        dout[self.mask] = 0  # in place, as the book does
        return dout


def _relu_object(bug=""):
    return object_pair(lambda: Relu(bug), lambda layer: ())


RELU_OBJECT = Case("relu", "object", layers.relu(), _relu_object()[1], forward=_relu_object()[0],
                   bugs=(
    _object_bug("mask stored as x > 0 (inverted)", _relu_object("mask inverted"), ("dX",),
        "where"),
    _object_bug("backward forgets the mask", _relu_object("no mask"), ("dX",), "where"),
    _object_bug("mask recomputed from dout", _relu_object("mask from dout"), ("dX",),
        "where"),
))


class Sigmoid:
    def __init__(self, bug=""):
        self.out, self.bug = None, bug

    def forward(self, x):
        out = 1 / (1 + np.exp(-x))
        self.out = x if self.bug == "stores x" else out
        return out

    def backward(self, dout):
        if self.bug == "tanh'":
            return dout * (1.0 - self.out**2)
        if self.bug == "no 1 - out":
            return dout * self.out
        return dout * (1.0 - self.out) * self.out


def _sigmoid_object(bug=""):
    return object_pair(lambda: Sigmoid(bug), lambda layer: ())


SIGMOID_OBJECT = Case("sigmoid", "object", layers.sigmoid(), _sigmoid_object()[1],
                      forward=_sigmoid_object()[0], bugs=(
    _object_bug("tanh' (1 - out**2) used", _sigmoid_object("tanh'"), ("dX",), "derivative"),
    _object_bug("drops the (1 - out) factor", _sigmoid_object("no 1 - out"), ("dX",),
        "derivative"),
    _object_bug("self.out stores the input x", _sigmoid_object("stores x"), ("dX",),
        "derivative"),
))


class SoftmaxWithLoss:
    def __init__(self, bug=""):
        self.y = self.t = None
        self.bug = bug

    def forward(self, x, t):
        self.t, self.y = t, softmax(x)
        return -np.sum(t * np.log(self.y)) / x.shape[0]

    def backward(self, dout=1):
        n = self.t.shape[0]
        if self.bug == "book":  # the book's code: right only as the last layer (dout = 1)
            return (self.y - self.t) / n
        if self.bug == "no 1/N":
            return dout * (self.y - self.t)
        if self.bug == "t - y":
            return dout * (self.t - self.y) / n
        return dout * (self.y - self.t) / n


def _softmax_object(bug=""):
    return object_pair(lambda: SoftmaxWithLoss(bug), lambda layer: (), n_inputs=2)


SOFTMAX_OBJECT = Case("softmax cross-entropy", "object", layers.softmax_cross_entropy(),
                      _softmax_object()[1], forward=_softmax_object()[0],
                      points=one_hot_points(), bugs=(
    _object_bug("ignores dout (the book's backward(dout=1))", _softmax_object("book"),
        ("dZ",), "dout"),
    _object_bug("missing 1/N", _softmax_object("no 1/N"), ("dZ",), "factor of N"),
    _object_bug("t - y (sign flipped)", _softmax_object("t - y"), ("dZ",), "sign"),
))

class Dropout:  # the book's: mask = rand > ratio in forward, inverted-dropout scaling
    def __init__(self, ratio, bug=""):
        self.ratio, self.bug, self.mask = ratio, bug, None

    def forward(self, x):
        self.mask = np.random.rand(*x.shape) > self.ratio
        return x * self.mask / (1 - self.ratio)

    def backward(self, dout):
        if self.bug == "no rescale":
            return dout * self.mask
        if self.bug == "fresh mask":  # draws a second mask in backward
            return dout * (np.random.rand(*dout.shape) > self.ratio) / (1 - self.ratio)
        if self.bug == "no mask":
            return dout / (1 - self.ratio)
        return dout * self.mask / (1 - self.ratio)


def _dropout_object(bug=""):
    return object_pair(lambda ratio: Dropout(ratio, bug), lambda layer: ())


def _dropout_formula():
    import sympy as sp

    import symdiff

    n, d = sp.symbols("N D", integer=True, positive=True)
    x, m = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("M", n, d)
    p = sp.Symbol("p", positive=True)
    return layers.Formula(symdiff.hadamard(x, m) / (1 - p), (x,), (x, m, p))


DROPOUT_OBJECT = Case("dropout, mask drawn in forward", "object", _dropout_formula(),
                      _dropout_object()[1], forward=_dropout_object()[0],
                      kinds={"M": "mask"}, domain={"p": (0.1, 0.9)}, bugs=(
    _object_bug("backward forgets the 1/(1 - p) rescale", _dropout_object("no rescale"), ("dX",),
                "1 - p"),
    _object_bug("backward draws a fresh mask", _dropout_object("fresh mask"), ("dX",), "mask"),
    _object_bug("backward forgets the mask", _dropout_object("no mask"), ("dX",), "mask"),
))

CASES = (AFFINE32, SIGMOID32, SOFTMAX32, BATCHNORM32, AFFINE_OBJECT, RELU_OBJECT, SIGMOID_OBJECT,
         SOFTMAX_OBJECT, DROPOUT_OBJECT)
