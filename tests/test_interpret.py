"""The 50-digit interpreter on matrix programs: Program.evaluate and to_dot(at=...) work on them
(they raised KeyError: 'dout', later 'not a number'), and their gradients agree with SymPy's own
derivative of the formula written out entry by entry (array_reference.ExplicitReference) and
with the generated NumPy code."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import layers
from symdiff.array_reference import ExplicitReference

SIZES = {"N": 3, "M": 4, "K": 2, "D": 4, "C": 3}


def _arguments(prog, rng) -> dict:
    dims = {d: SIZES[d.name] for i in prog.inputs if isinstance(i.symbol, sp.MatrixSymbol)
            for d in i.symbol.shape if isinstance(d, sp.Symbol)}
    at = {}
    for i in prog.inputs:
        if isinstance(i.symbol, sp.MatrixSymbol):
            at[i.name] = rng.normal(size=tuple(int(d.subs(dims)) for d in i.symbol.shape))
        else:
            at[i.name] = 1e-5
    return at, dims


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_evaluate_a_layer_agrees_with_sympy_and_with_the_generated_code(name):
    prog = layers.program(name)
    at, sizes = _arguments(prog, np.random.default_rng(1))
    values = prog.evaluate(at)
    exact = ExplicitReference(prog, sizes).gradient(at, np.ones_like(values["out"]))
    grads = [i.grad for i in prog.inputs if i.grad]
    for g, want in zip(grads, exact):
        assert np.shape(values[g]) == np.shape(want)
        assert np.allclose(values[g], want, rtol=1e-12, atol=1e-14), g
    out, got = prog.compile("numpy").value_and_grad(*(at[n] for n in prog.args))
    assert np.allclose(values["out"], out, rtol=1e-12)
    for g, code in zip(grads, got):
        assert np.allclose(values[g], code, rtol=1e-9, atol=1e-12), g


def test_evaluate_takes_an_upstream_array_for_an_array_output():
    prog = layers.program("affine")
    at, _ = _arguments(prog, np.random.default_rng(2))
    dout = np.arange(12.0).reshape(3, 4)
    values = prog.evaluate(at, dout=dout)
    assert np.allclose(values["dX"], dout @ at["W"].T)
    assert np.allclose(values["dW"], at["X"].T @ dout)
    assert np.allclose(values["db"], dout.sum(axis=0, keepdims=True))


def test_tied_maxima_share_the_gradient_exactly():
    """max_mask at 50 digits: three tied maxima get 1/3 each, not a float 0.333..."""
    n, c = sp.symbols("N C", integer=True, positive=True)
    z = sp.MatrixSymbol("Z", n, c)
    prog = symdiff.lower(symdiff.sum(symdiff.amax(z, axis=1)), wrt=[z])
    values = prog.evaluate({"Z": np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 1.0]])})
    assert values["dZ"].tolist() == [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]


def test_to_dot_at_arrays_labels_edges_with_entries_and_shapes():
    prog = layers.program("affine")
    at, _ = _arguments(prog, np.random.default_rng(3))
    dot = prog.to_dot(at=at)
    assert "(3×4)" in dot and "(4×4)" in dot and "db = [3 3 3 …] (1×4)" in dot


@pytest.mark.parametrize("value, message", [
    (np.zeros(3), "must be a 2-D array"),
    ("abc", "is not an array of numbers"),
])
def test_a_bad_array_is_an_argument_error(value, message):
    prog = layers.program("affine")
    at, _ = _arguments(prog, np.random.default_rng(4))
    with pytest.raises(symdiff.ArgumentError, match=message):
        prog.evaluate({**at, "X": value})


def test_arrays_that_disagree_on_a_dimension_are_an_argument_error():
    prog = layers.program("affine")
    at, _ = _arguments(prog, np.random.default_rng(5))
    with pytest.raises(symdiff.ArgumentError, match="D is 4 in X but 3 in W"):
        prog.evaluate({**at, "W": np.ones((3, 4))})


def test_a_dimension_named_like_a_matrix_is_read_by_its_code_name():
    """MatrixSymbol H of shape (N, H): the dimension's code name is H_2 (the layer corpus's
    first RNN formula raised 'mpf object has no attribute sum' in check)."""
    n, h = sp.symbols("N H", integer=True, positive=True)
    hidden, w = sp.MatrixSymbol("H", n, h), sp.MatrixSymbol("W", h, h)
    prog = symdiff.lower(symdiff.sum(hidden * w), wrt=[w])
    assert symdiff.check(prog).ok
    values = prog.evaluate({"W": np.ones((2, 2)), "H": np.ones((3, 2))})
    np.testing.assert_array_equal(values["dW"], np.full((2, 2), 3.0))


@pytest.mark.parametrize("name", ["affine", "relu", "sigmoid", "tanh", "softmax_cross_entropy",
                                  "mse", "batchnorm"])
def test_every_layer_evaluates_and_draws_at_a_point(name):
    """Every standard layer: evaluate and to_dot(at=...) run (batch norm's 1/N made an edge
    from the dimension N, which had no value: KeyError 'N')."""
    prog = symdiff.layers.program(name)
    rng = np.random.default_rng(1)
    shapes = {"N": 3, "D": 2, "M": 2, "C": 2}
    at = {}
    for i in prog.inputs:
        if isinstance(i.symbol, sp.MatrixSymbol):
            at[i.name] = rng.normal(size=tuple(shapes.get(str(d), d) for d in i.symbol.shape))
        else:
            at[i.name] = 0.5
    values = prog.evaluate(at)
    assert all(g in values for g in prog.grads)
    assert prog.to_dot(at=at).startswith("digraph")
