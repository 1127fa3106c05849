"""Layer corpus, part 4b: an LSTM step and a GRU step with one weight matrix per gate (d2l.ai's
from-scratch style: ``W_xi, W_hi, b_i`` for the input gate, and so on), as cs231n-style pairs.

The LSTM step has two outputs and is checked through ``paired_loss`` (see
``layer_corpus_recurrent``); the GRU step has one (the next hidden state).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from layer_corpus_base import Bug, Case, dims, mat, paired_backward, paired_loss, sigmoid

import symdiff
from symdiff.layers import Formula


def _gate_symbols(gates: str, d, h) -> list:
    """Wx<g>, Wh<g>, b<g> for every gate letter, in that order."""
    return [m for g in gates
            for m in (mat(f"Wx{g}", d, h), mat(f"Wh{g}", h, h), mat(f"b{g}", 1, h))]


def _pre(x, hidden, wx, wh, b):
    return x * wx + hidden * wh + symdiff.rows(b, x.shape[0])


def _sig(a):
    return symdiff.apply(symdiff.sigmoid, a)


def _tanh(a):
    return symdiff.apply(sp.tanh, a)


def _gate_grads(da, x, h, wx, wh):
    """The weight gradients of one gate from its pre-activation gradient, and its input terms."""
    return (x.T @ da, h.T @ da, da.sum(axis=0, keepdims=True)), da @ wx.T, da @ wh.T


# -- LSTM -----------------------------------------------------------------------------------------


def lstm_formula() -> Formula:
    n, d, h = dims("N D H")
    x, hprev, cprev = mat("X", n, d), mat("Hprev", n, h), mat("Cprev", n, h)
    params = _gate_symbols("ifoc", d, h)
    i, f, o = (_sig(_pre(x, hprev, *params[3 * k:3 * k + 3])) for k in range(3))
    g = _tanh(_pre(x, hprev, *params[9:12]))
    c_next = symdiff.hadamard(f, cprev) + symdiff.hadamard(i, g)
    h_next = symdiff.hadamard(o, _tanh(c_next))
    dh, dc = mat("Dh", n, h), mat("Dc", n, h)
    loss = symdiff.sum(symdiff.hadamard(dh, h_next)) + symdiff.sum(symdiff.hadamard(dc, c_next))
    wrt = (x, hprev, cprev, *params)
    return Formula(loss, wrt, (*wrt, dh, dc))


def lstm_step_forward(x, h, c, *params):
    acts = [x @ params[3 * k] + h @ params[3 * k + 1] + params[3 * k + 2] for k in range(4)]
    i, f, o = (sigmoid(a) for a in acts[:3])
    g = np.tanh(acts[3])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    return (h_next, c_next), (x, h, c, params, i, f, o, g, c_next)


def lstm_step_backward(dnext_h, dnext_c, cache, bug=""):
    x, h, c, params, i, f, o, g, c_next = cache
    tc = np.tanh(c_next)
    do = dnext_h * tc
    local = 1 - (c_next**2 if bug == "tanh' of c" else tc**2)
    dc = dnext_h * o * local + (0 if bug == "no dnext_c" else dnext_c)
    di, df = (dc * c, dc * g) if bug == "di df swapped" else (dc * g, dc * c)
    dg = dc * i
    dgate = [di * i * (1 - i), df * f * (1 - f), do * o * (1 - o),
             dg * (g * (1 - g) if bug == "sigmoid' for g" else 1 - g**2)]
    dx, dh, grads = 0, 0, []
    for k, da in enumerate(dgate):
        weights, dx_k, dh_k = _gate_grads(da, x, h, params[3 * k], params[3 * k + 1])
        grads += weights
        dx, dh = dx + dx_k, dh + dh_k
    return (dx, dh, dc if bug == "dprev_c = dc" else dc * f, *grads)


def _lstm(bug=""):
    return paired_backward(lambda dh, dc, cache: lstm_step_backward(dh, dc, cache, bug=bug))


def _lstm_grads(gates: str, inputs=("dX", "dHprev")) -> tuple:
    return (*inputs, *(n for g in gates for n in (f"dWx{g}", f"dWh{g}", f"db{g}")))


_BUT_O = ("dX", "dHprev", "dCprev", *_lstm_grads("ifc", ()))  # every partial but the output gate's
LSTM = Case("lstm step", "pair", lstm_formula(), _lstm(),
            forward=paired_loss(lstm_step_forward, 2), bugs=(
    Bug("dc forgets the upstream dnext_c", _lstm("no dnext_c"), _BUT_O, "term"),
    Bug("dprev_c = dc, without the forget gate", _lstm("dprev_c = dc"), ("dCprev",), "factor"),
    Bug("tanh'(c_next) as 1 - c_next**2", _lstm("tanh' of c"), _BUT_O, "derivative"),
    Bug("sigmoid' used for the tanh candidate g", _lstm("sigmoid' for g"), _lstm_grads("c"),
        "derivative"),
    Bug("di and df swapped", _lstm("di df swapped"), _lstm_grads("if"), "swapped"),
))

# -- GRU ------------------------------------------------------------------------------------------


def gru_formula() -> Formula:
    n, d, h = dims("N D H")
    x, hprev = mat("X", n, d), mat("Hprev", n, h)  # a matrix "H" clashes with the dim H
    params = _gate_symbols("zrh", d, h)
    z = _sig(_pre(x, hprev, *params[0:3]))
    r = _sig(_pre(x, hprev, *params[3:6]))
    wxh, whh, bh = params[6:9]
    cand = _tanh(_pre(x, symdiff.hadamard(r, hprev), wxh, whh, bh))
    h_next = symdiff.hadamard(z, hprev) + cand - symdiff.hadamard(z, cand)
    return Formula(h_next, (x, hprev, *params), (x, hprev, *params))


def gru_step_forward(x, h, *params):
    z = sigmoid(x @ params[0] + h @ params[1] + params[2])
    r = sigmoid(x @ params[3] + h @ params[4] + params[5])
    cand = np.tanh(x @ params[6] + (r * h) @ params[7] + params[8])
    return z * h + (1 - z) * cand, (x, h, params, z, r, cand)


def gru_step_backward(dout, cache, bug=""):
    x, h, params, z, r, cand = cache
    dz = dout * ((cand - h) if bug == "dz sign" else (h - cand))
    dh = 0 if bug == "no direct path" else dout * z
    da_h = dout * (1 - z) * (1 - cand**2)
    (dwxh, dwhh, dbh), dx, drh = _gate_grads(da_h, x, r * h, params[6], params[7])
    dh = dh if bug == "no path through r*h" else dh + drh * r
    dr = drh * h
    da_r = dr if bug == "no sigmoid' for r" else dr * r * (1 - r)
    (dwxr, dwhr, dbr), dx_r, dh_r = _gate_grads(da_r, x, h, params[3], params[4])
    (dwxz, dwhz, dbz), dx_z, dh_z = _gate_grads(dz * z * (1 - z), x, h, params[0], params[1])
    return (dx + dx_r + dx_z, dh + dh_r + dh_z, dwxz, dwhz, dbz, dwxr, dwhr, dbr, dwxh, dwhh, dbh)


def _gru(bug):
    return lambda dout, cache: gru_step_backward(dout, cache, bug=bug)


GRU = Case("gru step", "pair", gru_formula(), gru_step_backward, forward=gru_step_forward, bugs=(
    Bug("dh misses the direct path z * dout", _gru("no direct path"), ("dHprev",), "term"),
    Bug("dz = dout * (cand - h) (sign flipped)", _gru("dz sign"), _lstm_grads("z"), "sign"),
    Bug("dh misses the path through r * h", _gru("no path through r*h"), ("dHprev",), "term"),
    Bug("dr skips sigmoid'", _gru("no sigmoid' for r"), _lstm_grads("r"), "derivative"),
))
