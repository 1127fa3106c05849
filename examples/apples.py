"""Buying apples: the smallest computational graph, forward and backward.

You buy 2 apples at 100 each and pay 10% tax:

    total = price * count * tax = 100 * 2 * 1.1 = 220

The forward pass computes ``price * count`` (200) and then the total (220). The backward pass
starts from d total/d total = 1 and walks right to left; each multiply gate hands its upstream
gradient to each input times the *other* input:

    d total/d tax = 200, d total/d (price*count) = 1.1, d total/d price = 2.2, d total/d count = 110

This script lowers the formula with symdiff, prints the program and the generated code, and gets
the numbers two ways: from the compiled generated code (the gradients of the inputs), and from
``Program.evaluate``, which runs the program's steps one by one and returns every value and
gradient, including the intermediate ``price*count`` that the generated function keeps to itself.

Run it with ``python examples/apples.py`` (from a checkout without installing symdiff:
``PYTHONPATH=src python examples/apples.py``).
"""

import sympy as sp

import symdiff


def main():
    price, count, tax = sp.symbols("price count tax")
    total = price * count * tax

    prog = symdiff.lower(total, wrt=[price, count, tax])
    print("=== The staged program (symdiff names the output 'out') ===")
    print(prog)
    print()
    print("=== Generated code (math backend) ===")
    print(prog.source("math"))

    # 1. The generated code: value and gradients of the inputs.
    module = prog.compile("math")
    value, (dprice, dcount, dtax) = module.value_and_grad(100, 2, 1.1)

    # 2. The same program, step by step, keeping every intermediate value and gradient.
    values = prog.evaluate({price: 100, count: 2, tax: 1.1})
    grads = values  # gradients are keyed "d" + name: dprice, dcountprice, ...
    middle = prog.forward[0].name  # the intermediate price*count ("countprice")
    out = prog.output

    # The graph: forward values on the top row, gradients (d total / d node) below them.
    nodes = ["price", "count", middle, "tax", out]
    width = 14
    print("=== The graph: values (forward) above, gradients d total/d node (backward) below ===")
    print(f"{'node':<12}" + "".join(f"{name:>{width}}" for name in nodes))
    print(f"{'forward  ->':<12}" + "".join(f"{values[name]:>{width}.12g}" for name in nodes))
    print(f"{'backward <-':<12}" + "".join(f"{grads['d' + name]:>{width}.12g}" for name in nodes))
    print()

    print("=== The same graph as Graphviz DOT (render: dot -Tsvg -o apples.svg) ===")
    print(prog.to_dot(at={price: 100, count: 2, tax: 1.1}))

    print("=== Results (full precision) ===")
    print(f"total = {value!r}")
    print(f"dprice = {dprice!r}")
    print(f"dcount = {dcount!r}")
    print(f"dtax = {dtax!r}")
    print(f"d{middle} = {grads['d' + middle]!r}")

    # --- Fail loudly if the numbers drift from the worked example (SEEDS section 2). ---
    def close(got, expected):
        return abs(got - expected) <= 1e-12 * max(1, abs(expected))

    assert close(value, 220), value
    assert close(dprice, 2.2) and close(dcount, 110) and close(dtax, 200), (dprice, dcount, dtax)
    assert close(grads["d" + middle], 1.1), grads
    # The step-by-step run agrees with the generated code.
    assert close(values[out], value)
    assert close(grads["dprice"], dprice) and close(grads["dcount"], dcount)
    assert close(grads["dtax"], dtax)


if __name__ == "__main__":
    main()
