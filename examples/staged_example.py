"""The staged example: symdiff writes the backward pass a person would write by hand.

The formula is

    f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2),   sigmoid(t) = 1/(1 + exp(-t))

written in plain SymPy, with the sigmoid spelled out as ``1/(1 + exp(-t))``. symdiff recognises
the sigmoid gate, splits the formula into eight small forward steps (``sigy``, ``num``, ``sigx``,
``xpy``, ``xpysqr``, ``den``, ``invden`` and the output), and walks them in reverse, one small
block per step. ``x`` and ``y`` feed several steps, so their gradients accumulate with ``+=``.

This script prints:

1. the program listing (forward and backward steps),
2. the Python module symdiff generates for the ``math`` backend,
3. the value and gradient at x = 3, y = -4 from that generated code, next to ``sympy.diff``,
4. the report of ``symdiff.check``, which verifies the gradient against an independent reference.

Run it with ``python examples/staged_example.py`` (from a checkout without installing symdiff:
``PYTHONPATH=src python examples/staged_example.py``).
"""

import sympy as sp

import symdiff


def main():
    x, y = sp.symbols("x y")

    def sigmoid(t):
        """The logistic function, written out the way it appears on paper."""
        return 1 / (1 + sp.exp(-t))

    f = (x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2)

    # Lower the formula to a staged program: forward steps and backward (gradient) steps.
    prog = symdiff.lower(f, wrt=[x, y])

    print("=== The staged program ===")
    print(prog)
    print()

    # The same program as a self-contained Python module (it only imports math).
    print("=== Generated code (math backend) ===")
    print(prog.source(backend="math"))

    # Compile the generated module and run it at one point.
    module = prog.compile("math")
    point = {x: 3, y: -4}
    value, (dx, dy) = module.value_and_grad(3.0, -4.0)

    # The reference: SymPy differentiates the whole formula symbolically.
    ref_value = float(f.evalf(30, subs=point))
    ref_dx = float(sp.diff(f, x).evalf(30, subs=point))
    ref_dy = float(sp.diff(f, y).evalf(30, subs=point))

    print("=== At x = 3, y = -4 ===")
    print(f"{'':6}{'generated code':>24}  {'sympy.diff':>24}")
    print(f"{'f':6}{value!r:>24}  {ref_value!r:>24}")
    print(f"{'dx':6}{dx!r:>24}  {ref_dx!r:>24}")
    print(f"{'dy':6}{dy!r:>24}  {ref_dy!r:>24}")
    print()

    # An independent check at many random points, for both backends.
    report = symdiff.check(prog)
    print("=== symdiff.check ===")
    print(report)

    # --- Fail loudly if symdiff no longer reproduces the staged program (SEEDS section 3). ---
    forward_names = [step.name for step in prog.forward]
    assert forward_names[:-1] == ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden"], \
        forward_names
    last = prog.forward[-1]  # the output step multiplies the numerator by 1/denominator
    assert last.op == "mul" and {s.name for s in last.rhs.free_symbols} == {"num", "invden"}
    grad_names = {g.name for g in prog.backward}
    assert grad_names == {"dnum", "dinvden", "dden", "dsigx", "dxpysqr", "dxpy", "dsigy",
                          "dx", "dy"}, grad_names
    # x and y are used in several steps: their later gradient writes accumulate with +=.
    for name in ("dx", "dy"):
        writes = [g.accumulate for g in prog.backward if g.name == name]
        assert writes[0] is False and all(writes[1:]) and len(writes) > 1, (name, writes)
    for got, expected in [(value, ref_value), (dx, ref_dx), (dy, ref_dy)]:
        assert abs(got - expected) <= 1e-12 * max(1, abs(expected)), (got, expected)
    assert report.ok


if __name__ == "__main__":
    main()
