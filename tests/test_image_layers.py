"""symdiff.layers' image layers (conv2d, pooling, dropout, flatten) in one generated module.

The module written by ``layers.module_source`` is executed on its own (it imports only numpy);
each layer's ``<layer>_backward`` is compared with torch.nn.functional autograd in float64 (or,
for dropout and flatten, with the textbook rule: mask times 1/(1 - p); a reshape).
"""

from __future__ import annotations

import numpy as np
import pytest

from symdiff import layers
from symdiff.errors import ArgumentError

FORMULAS = {
    "conv2d": layers.conv2d(stride=2, padding=1),
    "conv2d_same": layers.conv2d(padding=1),
    "max_pool2d": layers.max_pool2d(2),
    "avg_pool2d": layers.avg_pool2d(3, stride=1),
    "dropout": layers.dropout(0.25),
    "flatten": layers.flatten(),
}


@pytest.fixture(scope="module")
def module():
    source = layers.module_source(FORMULAS)
    assert source.count("\ndef conv2d_windows(") == 1  # each helper once
    namespace: dict = {}
    exec(compile(source, "layers_gen.py", "exec"), namespace)  # noqa: S102 - our own module
    return namespace


def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


def _autograd(fn, values, dout):
    torch, _ = _torch()
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = fn(*tensors)
    (out * torch.tensor(dout)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("name, stride, padding, kernel", [
    ("conv2d", 2, 1, (3, 3)), ("conv2d_same", 1, 1, (3, 3)), ("conv2d_same", 1, 1, (5, 3))])
def test_conv2d_layer_against_torch(module, name, stride, padding, kernel):
    """One generated conv2d_forward/backward serves every batch, image and kernel size."""
    _, functional = _torch()
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(3, 2, 7, 6)), rng.normal(size=(4, 2) + kernel),
              rng.normal(size=4)]
    out, cache = module[f"{name}_forward"](*values)
    dout = rng.normal(size=out.shape)
    grads = module[f"{name}_backward"](dout, cache)
    want, want_grads = _autograd(
        lambda x, w, b: functional.conv2d(x, w, b, stride=stride, padding=padding), values, dout)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    for got, exp in zip(grads, want_grads):
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, size, stride", [("max_pool2d", 2, 2), ("avg_pool2d", 3, 1)])
def test_pool_layers_against_torch(module, name, size, stride):
    _, functional = _torch()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 6))
    out, cache = module[f"{name}_forward"](x)
    dout = rng.normal(size=out.shape)
    (dx,) = module[f"{name}_backward"](dout, cache)
    want, (want_dx,) = _autograd(lambda t: getattr(functional, name)(t, size, stride), [x], dout)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)


def test_dropout_and_flatten_layers(module):
    rng = np.random.default_rng(2)
    x, mask = rng.normal(size=(2, 3, 4, 5)), (rng.random((2, 3, 4, 5)) >= 0.25).astype(float)
    out, cache = module["dropout_forward"](x, mask)
    np.testing.assert_allclose(out, x * mask / 0.75, rtol=1e-15)
    dout = rng.normal(size=out.shape)
    (dx,) = module["dropout_backward"](dout, cache)
    np.testing.assert_allclose(dx, dout * mask / 0.75, rtol=1e-15)
    flat, cache = module["flatten_forward"](x)
    assert flat.shape == (2, 60) and np.array_equal(flat[1], x[1].ravel())
    (dx,) = module["flatten_backward"](flat * 2, cache)
    assert np.array_equal(dx, 2 * x)


def test_layer_options_and_names():
    assert "conv2d(X, Wt, 2, 1)" in str(layers.program("conv2d", stride=2, padding=1))
    with pytest.raises(ArgumentError, match="takes no options"):
        layers.program("affine", stride=2)
    with pytest.raises(ArgumentError, match="unknown layer"):
        layers.program("conv3d")
    with pytest.raises(ArgumentError, match="must name a layers.Formula"):
        layers.module_source({"conv2d": "conv2d"})
    source = layers.module_source(["affine", "conv2d"])  # image layers by name, defaults
    assert "def conv2d_backward(dout, cache):" in source and "def affine_forward(" in source
