"""The sigmoid gate, alone and inside a one-input neuron.

The sigmoid s = 1/(1 + exp(-t)) has a famously cheap local derivative: s * (1 - s), computed
from the forward output s that the forward pass already has. symdiff uses exactly that.

This script shows two formulas:

1. ``sigmoid(x)`` at x = 2:  d/dx sigmoid(x) = sigmoid(2) * (1 - sigmoid(2)) = 0.10499358540350662
2. the neuron ``y = sigmoid(w*x + b)`` at x = 1, w = 0.5, b = 0.5:  dy/dw = 0.19661193324148185

For each it prints the staged program, the numbers from the generated code (``math`` backend, one
point at a time), and then the ``numpy`` backend evaluating many points in one call.

Run it with ``python examples/sigmoid_neuron.py`` (from a checkout without installing symdiff:
``PYTHONPATH=src python examples/sigmoid_neuron.py``).
"""

import numpy as np
import sympy as sp

import symdiff

SIGMOID_SLOPE_AT_2 = 0.10499358540350662  # d/dx sigmoid(x) at x = 2
NEURON_DY_DW = 0.19661193324148185  # dy/dw for y = sigmoid(w*x + b) at x = 1, w = 0.5, b = 0.5


def close(got, expected):
    return abs(got - expected) <= 1e-12 * max(1, abs(expected))


def sigmoid_alone():
    x = sp.Symbol("x")
    prog = symdiff.lower(symdiff.sigmoid(x), wrt=[x])
    print("=== sigmoid(x) ===")
    print(prog)  # the backward line reuses the output: dx = dout * (out*(1 - out))
    print()

    # Generated code, math backend: one point.
    value, (dx,) = prog.compile("math").value_and_grad(2.0)
    print(f"sigmoid(2) = {value!r}")
    print(f"dsigmoid/dx at x=2 = {dx!r}")

    # Generated code, numpy backend: many points at once.
    xs = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    values, (dxs,) = prog.compile("numpy").value_and_grad(xs)
    print("numpy backend over several points:")
    print(f"  x             = {xs}")
    print(f"  sigmoid(x)    = {values}")
    print(f"  dsigmoid/dx   = {dxs}")
    print(f"numpy dsigmoid/dx at x=2 = {float(dxs[3])!r}")
    print()

    assert close(dx, SIGMOID_SLOPE_AT_2), dx
    assert close(dxs[3], SIGMOID_SLOPE_AT_2), dxs
    assert close(dxs[2], 0.25)  # the steepest point: sigmoid(0) = 1/2


def neuron():
    x, w, b = sp.symbols("x w b")
    prog = symdiff.lower(symdiff.sigmoid(w * x + b), wrt=[x, w, b])
    print("=== the neuron y = sigmoid(w*x + b) ===")
    print(prog)
    print()
    print("=== Generated code (math backend) ===")
    print(prog.source("math"))

    # Arguments follow wrt: (x, w, b).
    y, (dx, dw, db) = prog.compile("math").value_and_grad(1.0, 0.5, 0.5)
    print(f"y at x=1, w=0.5, b=0.5 = {y!r}")
    print(f"dy/dx = {dx!r}")
    print(f"dy/dw = {dw!r}")
    print(f"dy/db = {db!r}")

    # numpy backend: a gradient always has the shape of its variable. Here every argument is an
    # array of the same shape, so every gradient holds one value per point. (Had we passed a
    # plain number for b, db would be summed over the points, as for a shared bias.)
    ws = np.array([-0.5, 0.0, 0.5, 1.0])
    xs = np.ones_like(ws)
    bs = np.full_like(ws, 0.5)
    ys, (_, dws, _) = prog.compile("numpy").value_and_grad(xs, ws, bs)
    print("numpy backend over several weights (x = 1, b = 0.5):")
    print(f"  w     = {ws}")
    print(f"  y     = {ys}")
    print(f"  dy/dw = {dws}")
    print(f"numpy dy/dw at w=0.5 = {float(dws[2])!r}")

    assert close(dw, NEURON_DY_DW), dw
    assert close(dws[2], NEURON_DY_DW), dws
    # With x = 1 the weight and the bias receive the same gradient.
    assert close(db, NEURON_DY_DW) and close(dx, 0.5 * NEURON_DY_DW), (dx, db)


def main():
    sigmoid_alone()
    neuron()


if __name__ == "__main__":
    main()
