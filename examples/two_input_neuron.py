"""A two-input neuron: f = sigmoid(w0*x0 + w1*x1 + w2).

The formula is written in plain SymPy with the sigmoid spelled out, ``1/(1 + exp(-t))``.
symdiff recognises that pattern as one sigmoid gate, so the generated backward pass uses the
cheap local derivative ``out*(1 - out)`` instead of differentiating exp and 1/t separately.

With weights w = (2, -3, -3) and inputs x = (-1, -2):

    f     = 0.7310585786300049
    df/dx = (0.3932238664829637, -0.5898357997244456)
    df/dw = (-0.19661193324148185, -0.3932238664829637, 0.19661193324148185)

The script prints the staged program, the generated code and these numbers.

Run it with ``python examples/two_input_neuron.py`` (from a checkout without installing symdiff:
``PYTHONPATH=src python examples/two_input_neuron.py``).
"""

import sympy as sp

import symdiff

EXPECTED_F = 0.7310585786300049
EXPECTED_DX = (0.3932238664829637, -0.5898357997244456)
EXPECTED_DW = (-0.19661193324148185, -0.3932238664829637, 0.19661193324148185)


def close(got, expected):
    return abs(got - expected) <= 1e-12 * max(1, abs(expected))


def main():
    x0, x1, w0, w1, w2 = sp.symbols("x0 x1 w0 w1 w2")
    dot = w0 * x0 + w1 * x1 + w2
    f = 1 / (1 + sp.exp(-dot))

    # Differentiate with respect to the inputs and the weights. The generated functions take
    # their arguments in this order: (x0, x1, w0, w1, w2).
    prog = symdiff.lower(f, wrt=[x0, x1, w0, w1, w2])
    print("=== The staged program ===")
    print(prog)
    print()
    print("=== Generated code (math backend) ===")
    print(prog.source("math"))

    value, grads = prog.compile("math").value_and_grad(-1.0, -2.0, 2.0, -3.0, -3.0)
    dx0, dx1, dw0, dw1, dw2 = grads

    print("=== At w = (2, -3, -3), x = (-1, -2) ===")
    print(f"f = {value!r}")
    print(f"dx0 = {dx0!r}")
    print(f"dx1 = {dx1!r}")
    print(f"dw0 = {dw0!r}")
    print(f"dw1 = {dw1!r}")
    print(f"dw2 = {dw2!r}")

    # --- Fail loudly if the numbers drift from the worked example (SEEDS section 2). ---
    # The exp(...) pattern became a single sigmoid gate.
    assert isinstance(prog.forward[-1].rhs, symdiff.sigmoid), prog.forward[-1]
    assert close(value, EXPECTED_F), value
    for got, expected in zip((dx0, dx1), EXPECTED_DX, strict=True):
        assert close(got, expected), (got, expected)
    for got, expected in zip((dw0, dw1, dw2), EXPECTED_DW, strict=True):
        assert close(got, expected), (got, expected)


if __name__ == "__main__":
    main()
