"""The records of the layer corpus (``layer_corpus.py``) and the helpers its parts share.

A ``Case`` is one layer written one way: its formula (a ``symdiff.layers.Formula``), a correct
hand implementation in one style, and its ``Bug``s, each a separate hand implementation with a
short label of the mistake, the partials it really gets wrong, and the keyword a good diagnosis
would contain. Styles: ``pair`` (cs231n: ``forward(*args) -> (out, cache)`` and
``backward(dout, cache)``), ``callable`` (the partials of the summed output, from the
arguments), ``float32`` (a pair computing in float32) and ``object`` (a layer class with
``forward``/``backward`` and gradients stored as attributes, adapted to a pair by
``object_pair``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symdiff.layers import Formula

STYLES = ("pair", "callable", "float32", "object")
RAISES = ("*",)  # Bug.wrong of a mistake that makes the hand code raise: every partial fails


@dataclass(frozen=True)
class Bug:
    """A realistic mistake: ``hand`` is the buggy backward (or callable) in the case's style."""

    label: str  # the mistake, as a reviewer would name it
    hand: Callable
    wrong: tuple[str, ...]  # the partials (report names, "dW") it changes; RAISES if it raises
    expect: str  # the keyword a good diagnosis would contain
    forward: Callable | None = None  # a forward of its own, when the mistake is in the cache


@dataclass(frozen=True)
class Case:
    """A layer in one style: formula, correct hand code, and its bugs."""

    layer: str
    style: str
    formula: Formula
    hand: Callable
    bugs: tuple[Bug, ...]
    forward: Callable | None = None
    points: Callable | None = None  # () -> list of point dicts (labels, masks); None: random
    samples: int | None = None  # random trials (verify's default when None)
    false_alarm: str = ""  # why the current verifier reports the correct code WRONG
    value: Callable | None = None  # a callable case's formula in NumPy (for the tests' oracle)
    kinds: dict | None = None  # verify's kinds= (a mask the layer draws itself)
    domain: dict | None = None  # verify's domain=

    @property
    def name(self) -> str:
        return f"{self.layer} [{self.style}]"


def dims(names: str) -> tuple:
    return sp.symbols(names, integer=True, positive=True)


def mat(name: str, n, m) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, n, m)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot_points(label: str = "Y", sizes=((5, 3), (7, 4), (3, 6), (6, 2)), seed: int = 5):
    """Points fixing one-hot label rows ``label`` (N x C) at a few sizes: a hand gradient
    ``(p - y)/N`` is right only when every label row sums to 1."""

    def points():
        rng = np.random.default_rng(seed)
        return [{label: np.eye(c)[rng.integers(0, c, size=n)]} for n, c in sizes]

    return points


def object_pair(make: Callable, grads: Callable, n_inputs: int = 1):
    """A layer object as a ``(forward, backward)`` pair for ``verify(..., forward=)``.

    ``make(*params)`` builds the layer from the arguments after the first ``n_inputs`` (its
    weights), ``layer.forward(*inputs)`` gives the output, ``layer.backward(dout)`` the input
    gradient(s) and ``grads(layer)`` the weight gradients stored on it (``layer.dW``).
    """

    def forward(*args):
        layer = make(*args[n_inputs:])
        return layer.forward(*args[:n_inputs]), layer

    def backward(dout, layer):
        dinputs = layer.backward(dout)
        dinputs = dinputs if isinstance(dinputs, tuple) else (dinputs,)
        return (*dinputs, *grads(layer))

    backward.layer = (make, grads, n_inputs)  # layer_corpus.verify hands these to verify_layer
    return forward, backward


def paired_loss(step_forward: Callable, n_outputs: int):
    """The forward of ``L = sum(D1 * out1) + ... `` for a step with several outputs.

    A cell step returning ``(next_h, next_c)`` is checked against a scalar formula that pairs
    each output with an upstream-gradient argument ``D_k`` (the last ``n_outputs`` arguments);
    the backward then receives ``dout * D_k`` as the upstream gradients of the outputs, as in
    the time-unrolled backward that calls it.
    """

    def forward(*args):
        ups = args[-n_outputs:]
        outs, cache = step_forward(*args[:-n_outputs])
        outs = outs if isinstance(outs, tuple) else (outs,)
        return sum(float(np.sum(u * o)) for u, o in zip(ups, outs)), (cache, ups)

    return forward


def paired_backward(step_backward: Callable):
    """The backward matching ``paired_loss``: ``step_backward(dout * D1, ..., cache)``."""

    def backward(dout, cache):
        step_cache, ups = cache
        return step_backward(*(dout * u for u in ups), step_cache)

    return backward
