"""A two-layer net, Linear -> ReLU -> Linear -> MSE, trained with gradients symdiff wrote.

The whole net is one matrix formula,

    loss = mean((relu(X W1 + b1) W2 + b2 - Y)**2)

with X: N x D, W1: D x H, b1: 1 x H, W2: H x M, b2: 1 x M, Y: N x M. symdiff lowers it to staged
forward/backward code (printed below) and compiles it at run time; nobody derives a gradient
by hand. The net then learns a small synthetic regression task (N = 64 points in D = 4
dimensions, targets from a fixed random smooth function) with five optimizers written out here,
each a class with ``update(params, grads)``: SGD, Momentum, AdaGrad, RMSProp and Adam, with the
hyperparameters of the classic presentations (momentum 0.9, eps 1e-8, RMSProp decay 0.99, Adam
betas 0.9 and 0.999). Each optimizer starts from the same initial weights; the script prints the
loss every 50 of 300 full-batch steps.

Run it with ``python examples/two_layer_net.py`` (from a checkout without installing symdiff:
``PYTHONPATH=src python examples/two_layer_net.py``).
"""

import numpy as np
import sympy as sp

import symdiff

N_POINTS, D_IN, HIDDEN, D_OUT = 64, 4, 16, 1
STEPS, REPORT_EVERY = 300, 50
PARAMS = ("W1", "b1", "W2", "b2")


def net_formula():
    """The loss of the net as a SymPy matrix formula, its parameters (wrt) and arguments."""
    n, d, h, m = sp.symbols("N D H M", integer=True, positive=True)
    x, y = sp.MatrixSymbol("X", n, d), sp.MatrixSymbol("Y", n, m)
    w1, b1 = sp.MatrixSymbol("W1", d, h), sp.MatrixSymbol("b1", 1, h)
    w2, b2 = sp.MatrixSymbol("W2", h, m), sp.MatrixSymbol("b2", 1, m)
    hidden = symdiff.apply(symdiff.relu, x * w1 + symdiff.rows(b1, n))   # Linear -> ReLU
    prediction = hidden * w2 + symdiff.rows(b2, n)                      # Linear
    loss = symdiff.mean(symdiff.apply(lambda t: t**2, prediction - y))  # MSE over all entries
    return loss, [w1, b1, w2, b2], [x, y, w1, b1, w2, b2]


def net_program():
    """The staged program of the net: forward(X, Y, W1, b1, W2, b2), backward -> 4 gradients."""
    loss, wrt, args = net_formula()
    return symdiff.lower(loss, wrt=wrt, args=args)


def make_data(seed=0):
    """N x D inputs and N x 1 targets of a fixed random smooth function, plus initial weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_POINTS, D_IN))
    a, c = rng.normal(size=(D_IN, D_OUT)), rng.normal(size=(D_IN, D_OUT))
    y = np.sin(x @ a) + 0.5 * np.cos(x @ c)
    params = {
        "W1": rng.normal(size=(D_IN, HIDDEN)) * np.sqrt(2.0 / D_IN),  # He initialization
        "b1": np.zeros((1, HIDDEN)),
        "W2": rng.normal(size=(HIDDEN, D_OUT)) * np.sqrt(1.0 / HIDDEN),
        "b2": np.zeros((1, D_OUT)),
    }
    return x, y, params


# -- optimizers: update(params, grads) changes the arrays of params in place --------------------

class SGD:
    """Plain gradient descent: w -= lr * g."""

    def __init__(self, lr=0.1):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum:
    """A velocity that remembers past steps: v = momentum*v - lr*g; w += v."""

    def __init__(self, lr=0.05, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class AdaGrad:
    """A per-weight step that shrinks with the accumulated squared gradients h."""

    def __init__(self, lr=0.1, eps=1e-8):
        self.lr, self.eps, self.h = lr, eps, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + self.eps)


class RMSProp:
    """AdaGrad with a moving average of squared gradients instead of their sum."""

    def __init__(self, lr=0.01, decay_rate=0.99, eps=1e-8):
        self.lr, self.decay_rate, self.eps, self.h = lr, decay_rate, eps, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(value) for key, value in params.items()}
        for key in params:
            self.h[key] = self.decay_rate * self.h[key] + (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + self.eps)


class Adam:
    """Moving averages of the gradient (m) and its square (v), both bias-corrected."""

    def __init__(self, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(value) for key, value in params.items()}
            self.v = {key: np.zeros_like(value) for key, value in params.items()}
        self.t += 1
        for key in params:
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            m_hat = self.m[key] / (1 - self.beta1**self.t)
            v_hat = self.v[key] / (1 - self.beta2**self.t)
            params[key] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS = {"SGD": SGD, "Momentum": Momentum, "AdaGrad": AdaGrad, "RMSProp": RMSProp,
              "Adam": Adam}


# -- training ------------------------------------------------------------------------------------

def loss_and_grads(net, x, y, params):
    """The loss and {name: gradient} from the generated code."""
    loss, grads = net.value_and_grad(x, y, *(params[key] for key in PARAMS))
    return float(loss), dict(zip(PARAMS, grads))


def train(net, optimizer, x, y, params, steps=STEPS):
    """Full-batch training; returns the loss before each step and after the last one."""
    params = {key: value.copy() for key, value in params.items()}
    losses = []
    for _ in range(steps):
        loss, grads = loss_and_grads(net, x, y, params)
        losses.append(loss)
        optimizer.update(params, grads)
    losses.append(loss_and_grads(net, x, y, params)[0])
    return losses


def main():
    prog = net_program()
    print(prog)  # the staged forward and backward passes, with the shape of every step
    print()
    net = prog.compile("numpy")
    x, y, params = make_data()
    print(f"{N_POINTS} points, D = {D_IN}, H = {HIDDEN}, M = {D_OUT}; loss every "
          f"{REPORT_EVERY} of {STEPS} steps")
    print(f"initial loss = {loss_and_grads(net, x, y, params)[0]:.6f}")
    for name, optimizer in OPTIMIZERS.items():
        losses = train(net, optimizer(), x, y, params)
        curve = "  ".join(f"{loss:.4f}" for loss in losses[::REPORT_EVERY])
        print(f"{name:<9} {curve}")
        print(f"{name} final loss = {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
