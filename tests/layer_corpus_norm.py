"""Layer corpus, part 3: batch norm (training mode) and layer norm.

Batch norm twice: the compact backward of cs231n's ``batchnorm_backward_alt`` and the step-by-
step computational-graph backward (the widely read "understanding the backward pass through
batch normalization" derivation), whose classic mistakes are dropped fork terms.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from layer_corpus_base import Bug, Case, dims, mat

import symdiff
from symdiff import layers
from symdiff.layers import Formula

# -- batch norm, the compact backward (pair) ------------------------------------------------------


def batchnorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache, bug=""):
    xhat, gamma, var, eps = cache
    n = 1 if bug == "no 1/N" else dout.shape[0]
    dxhat = dout * gamma
    mean_term = 0 if bug == "no mean term" else dxhat.sum(axis=0, keepdims=True)
    var_term = 0 if bug == "no var term" else xhat * (dxhat * xhat).sum(axis=0, keepdims=True)
    std = np.sqrt(var) if bug == "no eps" else np.sqrt(var + eps)
    dx = (dout.shape[0] * dxhat - mean_term - var_term) / (n * std)
    dgamma = dout * xhat if bug == "no batch sum" else (dout * xhat).sum(axis=0, keepdims=True)
    return dx, dgamma, dout.sum(axis=0, keepdims=True)


def _bn_bug(name):
    return lambda dout, cache: batchnorm_backward(dout, cache, bug=name)


BATCHNORM = Case("batchnorm", "pair", layers.batchnorm(), batchnorm_backward,
                 forward=batchnorm_forward, bugs=(
    Bug("dgamma without the batch sum", _bn_bug("no batch sum"), ("dscale",), "batch axis"),
    Bug("drops the path through the mean", _bn_bug("no mean term"), ("dX",), "term"),
    Bug("drops the path through the variance", _bn_bug("no var term"), ("dX",), "term"),
    Bug("sqrt(var) without eps in the backward", _bn_bug("no eps"), ("dX",), "eps"),
    Bug("missing 1/N", _bn_bug("no 1/N"), ("dX",), "factor of N"),
))

# -- batch norm, the computational-graph backward (pair) ------------------------------------------


def batchnorm_graph_forward(x, gamma, beta, eps):
    n = x.shape[0]
    mu = x.sum(axis=0, keepdims=True) / n
    xmu = x - mu
    var = (xmu**2).sum(axis=0, keepdims=True) / n
    sqrtvar = np.sqrt(var + eps)
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    return gamma * xhat + beta, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)


def batchnorm_graph_backward(dout, cache, bug=""):
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0, keepdims=True)
    dgamma = (dout * xhat).sum(axis=0, keepdims=True)
    dxhat = dout * gamma
    divar = (dxhat * xmu).sum(axis=0, keepdims=True)
    dxmu1 = dxhat * ivar
    dsqrtvar = -divar / sqrtvar**2
    dvar = (1 if bug == "dvar without 1/2" else 0.5) / np.sqrt(var + eps) * dsqrtvar
    dsq = np.ones_like(dout) * dvar / n
    dxmu2 = 2 * xmu * dsq
    dxmu = dxmu1 if bug == "no variance path" else dxmu1 + dxmu2
    dx1 = dxmu
    dmu = -dxmu.sum(axis=0, keepdims=True)
    dx2 = np.ones_like(dout) * dmu / n
    dx = dx2 if bug == "= for +=" else dx1 if bug == "no mean path" else dx1 + dx2
    return dx, dgamma, dbeta


def _bn_graph_bug(name):
    return lambda dout, cache: batchnorm_graph_backward(dout, cache, bug=name)


BATCHNORM_GRAPH = Case("batchnorm, graph backward", "pair", layers.batchnorm(),
                       batchnorm_graph_backward, forward=batchnorm_graph_forward, bugs=(
    Bug("drops dx2, the path through mu", _bn_graph_bug("no mean path"), ("dX",), "term"),
    Bug("drops dxmu2, the path through var", _bn_graph_bug("no variance path"), ("dX",),
        "term"),
    Bug("dx = dx2 (= where += belongs)", _bn_graph_bug("= for +="), ("dX",), "+="),
    Bug("dvar misses the 1/2 of d sqrt", _bn_graph_bug("dvar without 1/2"), ("dX",), "term"),
))

# -- layer norm: each row normalised over its D features; gamma, beta 1 x D rows (pair) -----------


def layernorm_formula() -> Formula:
    n, d = dims("N D")
    x = mat("X", n, d)
    gamma, beta = mat("scale", 1, d), mat("shift", 1, d)  # "gamma" would clash with sp.gamma
    eps = sp.Symbol("eps", positive=True)
    centered = x - symdiff.cols(symdiff.mean(x, 1), d)
    var = symdiff.mean(symdiff.apply(lambda t: t**2, centered), 1)
    inv_std = symdiff.apply(lambda t: 1 / sp.sqrt(t + eps), var)
    xhat = symdiff.hadamard(centered, symdiff.cols(inv_std, d))
    out = symdiff.hadamard(symdiff.rows(gamma, n), xhat) + symdiff.rows(beta, n)
    return Formula(out, (x, gamma, beta), (x, gamma, beta, eps))


def layernorm_forward(x, gamma, beta, eps):
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def layernorm_backward(dout, cache, bug=""):
    xhat, gamma, var, eps = cache
    d = 1 if bug == "no 1/D" else dout.shape[1]
    axis = 0 if bug == "batch axis" else 1
    dxhat = dout * gamma
    mean_term = 0 if bug == "no mean term" else dxhat.sum(axis=axis, keepdims=True)
    var_term = xhat * (dxhat * xhat).sum(axis=axis, keepdims=True)
    dx = (dout.shape[1] * dxhat - mean_term - var_term) / (d * np.sqrt(var + eps))
    dgamma = (dout * xhat).sum(axis=1 if bug == "dgamma axis 1" else 0, keepdims=True)
    return dx, dgamma, dout.sum(axis=0, keepdims=True)


def _ln_bug(name):
    return lambda dout, cache: layernorm_backward(dout, cache, bug=name)


LAYERNORM = Case("layernorm", "pair", layernorm_formula(), layernorm_backward,
                 forward=layernorm_forward, bugs=(
    Bug("dx reduces over the batch axis (batchnorm copy-paste)", _ln_bug("batch axis"),
        ("dX",), "axis"),
    Bug("drops the path through the mean", _ln_bug("no mean term"), ("dX",), "term"),
    Bug("dgamma summed over axis 1", _ln_bug("dgamma axis 1"), ("dscale",), "axis"),
    Bug("missing 1/D", _ln_bug("no 1/D"), ("dX",), "factor of D"),
))

CASES = (BATCHNORM, BATCHNORM_GRAPH, LAYERNORM)
