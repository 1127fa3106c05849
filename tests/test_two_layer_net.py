"""examples/two_layer_net.py: the generated gradients of Linear -> ReLU -> Linear -> MSE are right
(finite differences, PyTorch autograd when installed) and every optimizer lowers the loss."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_layer_net.py"


@pytest.fixture(scope="module")
def example():
    """The example script imported as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location("two_layer_net_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def net(example):
    return example.net_program().compile("numpy")


def random_problem(seed, n=6, d=3, h=5, m=2):
    """Small random data and weights with distinct dims (the program reads them at run time)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, m))
    params = {"W1": rng.normal(size=(d, h)), "b1": rng.normal(size=(1, h)),
              "W2": rng.normal(size=(h, m)), "b2": rng.normal(size=(1, m))}
    return x, y, params


def test_gradients_match_central_differences(example, net):
    x, y, params = random_problem(1)
    loss, grads = example.loss_and_grads(net, x, y, params)
    expected = np.mean((np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"]
                        + params["b2"] - y) ** 2)
    assert abs(loss - expected) <= 1e-13 * expected
    h = 1e-6
    for key in example.PARAMS:
        assert grads[key].shape == params[key].shape
        numeric = np.zeros_like(params[key])
        for index in np.ndindex(params[key].shape):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[key][index] += h
            plus = example.loss_and_grads(net, x, y, shifted)[0]
            shifted[key][index] -= 2 * h
            minus = example.loss_and_grads(net, x, y, shifted)[0]
            numeric[index] = (plus - minus) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        assert np.max(np.abs(grads[key] - numeric)) <= 1e-6 * scale, key


@pytest.mark.parametrize("name", ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"])
def test_every_optimizer_lowers_the_loss(example, net, name):
    x, y, params = example.make_data()
    before = {k: v.copy() for k, v in params.items()}
    losses = example.train(net, example.OPTIMIZERS[name](), x, y, params)
    assert all(np.array_equal(params[k], before[k]) for k in params)  # train copies the weights
    assert len(losses) == example.STEPS + 1 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])


def test_optimizers_follow_their_update_rules(example):
    """One or two hand-checked steps of each optimizer on a single weight."""
    g = {"w": np.array([2.0])}

    def approx(value):  # eps (1e-8) in the denominators moves the results by ~1e-7
        return pytest.approx(value, abs=1e-6)

    def steps(optimizer, count):
        params = {"w": np.array([1.0])}
        for _ in range(count):
            optimizer.update(params, g)
        return float(params["w"][0])

    assert steps(example.SGD(lr=0.1), 1) == approx(0.8)
    assert steps(example.Momentum(lr=0.1, momentum=0.9), 2) == approx(1 - 0.2 - 0.38)
    assert steps(example.AdaGrad(lr=0.1), 2) == approx(1 - 0.1 - 0.1 * 2 / np.sqrt(8))
    rms = 1 - 0.1 * 2 / np.sqrt(0.01 * 4)
    assert steps(example.RMSProp(lr=0.1, decay_rate=0.99), 1) == approx(rms)
    assert steps(example.Adam(lr=0.1), 2) == approx(1 - 0.2)  # bias-corrected: lr per step


def test_gradients_match_pytorch_autograd(example, net):
    torch = pytest.importorskip("torch")
    for seed in (2, 3):
        x, y, params = random_problem(seed, n=9, d=4, h=7, m=3)
        loss, grads = example.loss_and_grads(net, x, y, params)
        weights = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
                   for k, v in params.items()}
        xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        hidden = torch.relu(xt @ weights["W1"] + weights["b1"])
        reference = torch.nn.functional.mse_loss(hidden @ weights["W2"] + weights["b2"], yt)
        reference.backward()
        assert abs(loss - reference.item()) <= 1e-12 * abs(reference.item())
        for key in example.PARAMS:
            np.testing.assert_allclose(grads[key], weights[key].grad.numpy(),
                                       rtol=1e-10, atol=1e-13, err_msg=key)
