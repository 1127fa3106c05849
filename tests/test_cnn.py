"""The CNN of examples/cnn_digits.py: one formula, conv -> ReLU -> max-pool -> flatten -> affine
-> softmax-CE, whose generated gradient matches finite differences and torch autograd, and
which learns (a short run on the synthetic strokes, so the test needs no scikit-learn).
The full run on scikit-learn's digits (12 epochs, ~97% test accuracy) is the example itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import symdiff

PATH = Path(__file__).resolve().parents[1] / "examples" / "cnn_digits.py"


@pytest.fixture(scope="module")
def cnn():
    spec = importlib.util.spec_from_file_location("cnn_digits", PATH)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    loss, wrt, args, _ = example.cnn_formula()
    prog = symdiff.lower(loss, wrt=wrt, args=args)
    prog.validate()
    return example, prog.compile("numpy")


def test_generated_gradient_matches_differences_and_torch(cnn):
    example, module = cnn
    images, labels = example.synthetic_digits(seed=3, count=24)
    rng = np.random.default_rng(4)
    params = example.initial_params(rng)
    worst_fd, worst_torch = example.check_gradient(module, params, images,
                                                   np.eye(10)[labels], rng)
    assert worst_fd < 1e-6
    if worst_torch is not None:  # torch installed: float64 autograd of the same net
        assert worst_torch < 1e-12


def test_the_net_learns_the_synthetic_strokes(cnn):
    example, module = cnn
    images, labels = example.synthetic_digits(seed=5, count=400)
    onehot = np.eye(10)[labels]
    rng = np.random.default_rng(6)
    params, adam = example.initial_params(rng), example.Adam()
    losses = []
    for _ in range(3):
        for start in range(0, 400, 50):
            rows = slice(start, start + 50)
            value, cache = module.forward(images[rows], *(params[p] for p in example.PARAMS),
                                          onehot[rows])
            adam.update(params, dict(zip(example.PARAMS, module.backward(1.0, cache))))
            losses.append(value)
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])


def test_check_of_the_whole_net_is_refused_not_hung(cnn):
    """Written out entry by entry at its fixed 8 x 8 size the net has ~19,000 window terms;
    SymPy would take minutes, so the reference refuses it and names what to check instead."""
    example, _ = cnn
    loss, wrt, args, _ = example.cnn_formula()
    with pytest.raises(symdiff.InputTooLargeError, match="check its layers separately"):
        symdiff.check(symdiff.lower(loss, wrt=wrt, args=args), kinds={"Y": "one_hot"})


def test_conv_benchmark_quick_run_agrees(capsys):
    """benchmarks/conv.py --quick: the generated layer, the textbook im2col layer and (when
    installed) torch compute the same output and gradients."""
    spec = importlib.util.spec_from_file_location(
        "conv_benchmark", PATH.parents[1] / "benchmarks" / "conv.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(quick=True)
    printed = capsys.readouterr().out
    differences = [float(line.rsplit("= ", 1)[1]) for line in printed.splitlines()
                   if "max relative difference" in line]
    assert len(differences) >= 2 and max(differences) < 1e-12
    assert "| im2col (hand NumPy) |" in printed
