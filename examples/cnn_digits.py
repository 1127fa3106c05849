"""A small CNN, conv -> ReLU -> max-pool -> affine -> softmax cross-entropy, whose backward
symdiff generated, trained with Adam on the 8 x 8 handwritten digits.

The whole net is one formula over N-D arrays (NCHW) and matrices:

    h    = max_pool2d(relu(conv2d(X, K, c, padding=1)), 2)      X: N x 1 x 8 x 8, K: 8 x 1 x 3 x 3
    z    = flatten(h) W + b                                      W: 128 x 10, b: 1 x 10
    loss = -sum(Y * log softmax(z)) / N                          Y: N x 10 one-hot labels

symdiff lowers it to staged NumPy code (the convolution reads windows with
sliding_window_view + tensordot; its backward adds KH*KW strided slices; the pooling gradient
goes to each window's maximum) and compiles it at run time. Before training, the generated
gradient is compared with central finite differences and, when PyTorch is installed, with torch
autograd in float64.

The data are scikit-learn's digits (1797 images, shipped with scikit-learn, no download:
``pip install scikit-learn``); without scikit-learn a synthetic set of ten noisy stroke patterns
is used instead. Run ``python examples/cnn_digits.py`` (``PYTHONPATH=src`` from a checkout);
``--epochs E`` changes the length of training.
"""

import argparse

import numpy as np
import sympy as sp
from sympy.tensor.array.expressions import ArraySymbol

import symdiff

FILTERS, CLASSES, SIDE = 8, 10, 8
PARAMS = ("K", "c", "W", "b")


def cnn_formula():
    """The mean cross-entropy of the net as one SymPy formula, its parameters and arguments,
    and the logits z."""
    n = sp.Symbol("N", integer=True, positive=True)
    x = ArraySymbol("X", (n, 1, SIDE, SIDE))
    k, c = ArraySymbol("K", (FILTERS, 1, 3, 3)), ArraySymbol("c", (FILTERS,))
    pooled = SIDE // 2
    w = sp.MatrixSymbol("W", FILTERS * pooled * pooled, CLASSES)
    b, y = sp.MatrixSymbol("b", 1, CLASSES), sp.MatrixSymbol("Y", n, CLASSES)
    h = symdiff.max_pool2d(symdiff.apply(symdiff.relu, symdiff.conv2d(x, k, c, padding=1)), 2)
    z = symdiff.flatten(h) * w + symdiff.rows(b, n)
    shifted = z - symdiff.cols(symdiff.amax(z, 1), CLASSES)  # exp never overflows
    log_norm = symdiff.apply(sp.log, symdiff.sum(symdiff.apply(sp.exp, shifted), 1))
    log_softmax = shifted - symdiff.cols(log_norm, CLASSES)
    loss = -symdiff.sum(symdiff.hadamard(y, log_softmax)) / n
    return loss, [k, c, w, b], [x, k, c, w, b, y], z


def load_data(seed=0):
    """(images N x 1 x 8 x 8 in [0, 1], integer labels, the source's name)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return synthetic_digits(seed) + ("synthetic strokes (scikit-learn is not installed)",)
    digits = load_digits()
    return digits.images[:, None] / 16.0, digits.target, "scikit-learn digits"


def synthetic_digits(seed, count=1500):
    """Ten classes of 8 x 8 stroke patterns (bars, crosses, boxes, diagonals), shifted by up to
    one pixel, with Gaussian noise."""
    base = np.zeros((CLASSES, SIDE, SIDE))
    base[0, 1:7, [1, 6]] = base[0, [1, 6], 1:7] = 1  # a box
    base[1, :, 4] = 1
    base[2, 4, :] = 1
    base[3, np.arange(8), np.arange(8)] = 1
    base[4, np.arange(8), 7 - np.arange(8)] = 1
    base[5, :, 4] = base[5, 4, :] = 1
    base[6, [1, 4, 6], 1:7] = 1
    base[7, 1:7, [1, 4, 6]] = 1
    base[8, 1:4, 1:4] = base[8, 4:7, 4:7] = 1
    base[9, 1:7, 1] = base[9, 6, 1:7] = 1
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=count)
    shifts = rng.integers(-1, 2, size=(count, 2))
    images = np.stack([np.roll(base[k], tuple(s), axis=(0, 1)) for k, s in zip(labels, shifts)])
    images = np.clip(images + 0.3 * rng.normal(size=images.shape), 0, 1)
    return images[:, None], labels


def initial_params(rng):
    return {"K": rng.normal(0, np.sqrt(2 / 9), (FILTERS, 1, 3, 3)), "c": np.zeros(FILTERS),
            "W": rng.normal(0, np.sqrt(1 / 128), (128, CLASSES)), "b": np.zeros((1, CLASSES))}


def check_gradient(module, params, x, y, rng):
    """The largest relative difference of the generated gradient from central differences
    (12 random entries of each parameter) and, with torch, from torch autograd.

    The check moves the channel biases c off 0: with c = 0 the blank background of a digit
    convolves to exactly 0, where ReLU has a kink and a central difference straddles it (the
    generated code, like torch, takes relu'(0) = 0)."""
    params = {**params, "c": rng.normal(0, 0.1, FILTERS)}
    loss, cache = module.forward(x, *(params[p] for p in PARAMS), y)
    grads = dict(zip(PARAMS, module.backward(1.0, cache)))
    worst_fd = 0.0
    for name in PARAMS:
        for index in [tuple(rng.integers(0, n) for n in params[name].shape) for _ in range(12)]:
            moved = {p: v.copy() for p, v in params.items()}
            moved[name][index] += 1e-6
            up = module.forward(x, *(moved[p] for p in PARAMS), y)[0]
            moved[name][index] -= 2e-6
            down = module.forward(x, *(moved[p] for p in PARAMS), y)[0]
            fd = (up - down) / 2e-6
            worst_fd = max(worst_fd, abs(fd - grads[name][index]) / max(1e-3, abs(fd)))
    return worst_fd, torch_difference(params, x, y, loss, grads)


def torch_difference(params, x, y, loss, grads):
    """max |generated - torch| / max |torch| over the loss and every gradient (None without
    torch)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    t = {p: torch.tensor(v, dtype=torch.float64, requires_grad=True) for p, v in params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), t["K"], t["c"], padding=1)), 2)
    z = h.reshape(len(x), -1) @ t["W"] + t["b"]
    t_loss = F.cross_entropy(z, torch.tensor(y.argmax(axis=1)))
    t_loss.backward()
    pairs = [(loss, t_loss.item())] + [(grads[p], t[p].grad.numpy()) for p in PARAMS]
    return max(float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(b)))) for a, b in pairs)


class Adam:
    """Adam (Kingma & Ba) with the usual betas 0.9, 0.999 and eps 1e-8."""

    def __init__(self, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def update(self, params, grads):
        self.t += 1
        for k in params:
            self.m[k] = self.beta1 * self.m.get(k, 0) + (1 - self.beta1) * grads[k]
            self.v[k] = self.beta2 * self.v.get(k, 0) + (1 - self.beta2) * grads[k] ** 2
            m_hat = self.m[k] / (1 - self.beta1**self.t)
            v_hat = self.v[k] / (1 - self.beta2**self.t)
            params[k] = params[k] - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def main(epochs=12, batch=64, seed=0):
    loss, wrt, args, logits = cnn_formula()
    module = symdiff.lower(loss, wrt=wrt, args=args).compile("numpy")
    predict = symdiff.lower(logits, wrt=wrt, args=args[:-1]).compile("numpy").forward
    images, labels, source = load_data(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    split = int(0.8 * len(labels))
    train, test = order[:split], order[split:]
    onehot = np.eye(CLASSES)[labels]
    print(f"data: {source}, {len(train)} training and {len(test)} test images")
    params = initial_params(rng)
    worst_fd, worst_torch = check_gradient(module, params, images[train[:16]],
                                           onehot[train[:16]], rng)
    print(f"gradient vs central differences: max relative difference = {worst_fd:.2e}")
    print("gradient vs torch autograd (float64): " + (
        "torch is not installed" if worst_torch is None else
        f"max relative difference = {worst_torch:.2e}"))
    adam = Adam()
    for epoch in range(1, epochs + 1):
        shuffled, total = rng.permutation(train), 0.0
        for start in range(0, len(shuffled), batch):
            rows = shuffled[start:start + batch]
            value, cache = module.forward(images[rows], *(params[p] for p in PARAMS),
                                          onehot[rows])
            adam.update(params, dict(zip(PARAMS, module.backward(1.0, cache))))
            total += value * len(rows)
        print(f"epoch {epoch:2d}: training loss = {total / len(train):.4f}")
    z, _ = predict(images[test], *(params[p] for p in PARAMS))
    print(f"test accuracy = {np.mean(np.argmax(z, axis=1) == labels[test]):.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    main(parser.parse_args().epochs)
