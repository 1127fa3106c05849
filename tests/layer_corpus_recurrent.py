"""Layer corpus, part 4: recurrent cells. A vanilla RNN step and its time-unrolled loop (cs231n
``rnn_step_forward`` / ``rnn_backward``), an LSTM step and a GRU step with one weight matrix per
gate (the from-scratch style of d2l.ai), all with (1, H) bias rows.

A step with several outputs (the LSTM's ``next_h, next_c``; the unrolled RNN's ``h1, h2, h3``)
is checked against the scalar ``sum(D1 * out1) + sum(D2 * out2) + ...`` with the upstream
gradients ``D_k`` as arguments (``paired_loss``): the hand backward gets ``dout * D_k``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from layer_corpus_base import Bug, Case, dims, mat, paired_backward, paired_loss
from layer_corpus_gates import GRU, LSTM

import symdiff
from symdiff.layers import Formula


def _tanh_step(x, h, wx, wh, b):
    return symdiff.apply(sp.tanh, x * wx + h * wh + symdiff.rows(b, x.shape[0]))


def rnn_step_formula() -> Formula:
    n, d, h = dims("N D H")
    x, prev_h, b = mat("X", n, d), mat("Hprev", n, h), mat("b", 1, h)
    wx, wh = mat("Wx", d, h), mat("Wh", h, h)
    return Formula(_tanh_step(x, prev_h, wx, wh, b), (x, prev_h, wx, wh, b),
                   (x, prev_h, wx, wh, b))


def rnn_step_forward(x, prev_h, wx, wh, b):
    next_h = np.tanh(x @ wx + prev_h @ wh + b)
    return next_h, (x, prev_h, wx, wh, next_h)


def rnn_step_backward(dnext_h, cache, bug=""):
    x, prev_h, wx, wh, next_h = cache
    dtanh = dnext_h * (1 - (prev_h if bug == "tanh' of prev_h" else next_h) ** 2)
    dx = dtanh @ wx.T
    dprev_h = dtanh @ (wh if bug == "no transpose" else wh.T)
    dwx = x.T @ (dnext_h if bug == "dWx without tanh'" else dtanh)
    dwh = (next_h if bug == "dWh from next_h" else prev_h).T @ dtanh
    db = dtanh if bug == "no batch sum" else dtanh.sum(axis=0, keepdims=True)
    return dx, dprev_h, dwx, dwh, db


def _rnn_bug(name):
    return lambda dout, cache: rnn_step_backward(dout, cache, bug=name)


RNN_STEP = Case("rnn step", "pair", rnn_step_formula(), rnn_step_backward,
                forward=rnn_step_forward, bugs=(
    Bug("tanh' taken of prev_h, not next_h", _rnn_bug("tanh' of prev_h"),
        ("dX", "dHprev", "dWx", "dWh", "db"), "derivative"),
    Bug("dWh = next_h.T @ dtanh (wrong h)", _rnn_bug("dWh from next_h"), ("dWh",), "swapped"),
    Bug("dprev_h = dtanh @ Wh (missing transpose, Wh square)", _rnn_bug("no transpose"),
        ("dHprev",), "transpose"),
    Bug("db without the batch sum", _rnn_bug("no batch sum"), ("db",), "batch axis"),
    Bug("dWx skips the tanh' factor", _rnn_bug("dWx without tanh'"), ("dWx",), "derivative"),
))

# -- the RNN unrolled over T = 3 steps, shared weights, loss sum_t sum(D_t * h_t) -----------------

STEPS = 3


def rnn_unrolled_formula() -> Formula:
    n, d, h = dims("N D H")
    xs = [mat(f"X{t}", n, d) for t in range(1, STEPS + 1)]
    ups = [mat(f"D{t}", n, h) for t in range(1, STEPS + 1)]
    h0, wx, wh, b = mat("H0", n, h), mat("Wx", d, h), mat("Wh", h, h), mat("b", 1, h)
    hidden, loss = h0, 0
    for x, up in zip(xs, ups):
        hidden = _tanh_step(x, hidden, wx, wh, b)
        loss = loss + symdiff.sum(symdiff.hadamard(up, hidden))
    wrt = (*xs, h0, wx, wh, b)
    return Formula(loss, wrt, (*wrt, *ups))


def rnn_forward(*args):
    """cs231n's rnn_forward, with the T inputs as separate (N, D) arrays."""
    *xs, h0, wx, wh, b = args
    h, hs, caches = h0, [], []
    for x in xs:
        h, cache = rnn_step_forward(x, h, wx, wh, b)
        hs.append(h)
        caches.append(cache)
    return tuple(hs), caches


def rnn_backward(*args, bug=""):
    """cs231n's rnn_backward: the upstream gradient of every h_t plus the one from step t + 1."""
    *dhs, caches = args
    dxs, dprev = [None] * len(dhs), 0
    dwx = dwh = db = 0
    for t in reversed(range(len(dhs))):
        dh = dhs[t] if bug == "no h path" else dhs[t] + dprev
        dx, dprev, dwx_t, dwh_t, db_t = rnn_step_backward(dh, caches[t])
        dxs[t] = dx
        dwx = dwx_t if bug in ("= for +=", "= for += everywhere") else dwx + dwx_t
        dwh = dwh_t if bug == "= for += everywhere" else dwh + dwh_t
        db = db_t if bug == "= for += everywhere" else db + db_t
    return (*dxs, dprev, dwx, dwh, db)


def _unrolled(bug=""):
    return paired_backward(lambda *args: rnn_backward(*args, bug=bug))


_ALL_BUT_LAST = ("dX1", "dX2", "dH0", "dWx", "dWh", "db")
RNN_UNROLLED = Case("rnn, 3 steps unrolled", "pair", rnn_unrolled_formula(), _unrolled(),
                    forward=paired_loss(rnn_forward, STEPS), bugs=(
    Bug("dh_t misses the gradient from step t+1 (the h path)", _unrolled("no h path"),
        _ALL_BUT_LAST, "term"),
    Bug("dWx = ... where += belongs (only step 1 kept)", _unrolled("= for +="), ("dWx",), "+="),
    Bug("= for += in dWx, dWh and db", _unrolled("= for += everywhere"), ("dWx", "dWh", "db"),
        "+="),
))

CASES = (RNN_STEP, RNN_UNROLLED, LSTM, GRU)
