"""Verify a hand-written backward pass: prove it right, or say exactly what is wrong.

The staged example of SEEDS.md, f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2), written
by hand as a forward/backward pair, the way the backpropagation notes do it. ``symdiff.verify``
compares it with the exact gradient (sympy.diff at 50 digits) at 40 points in the formula's
domain. Then the same backward with the classic bug, ``dx = ...`` where ``dx += ...`` belongs,
and two more slips, to show the diagnoses.

Run it with ``python examples/verify_hand_gradient.py`` (from a checkout without installing:
``PYTHONPATH=src python examples/verify_hand_gradient.py``).
"""

import math

import sympy as sp

import symdiff


def sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


def forward(x, y):
    """The staged forward pass; the cache keeps what backward needs."""
    sigy = sigmoid(y)
    num = x + sigy
    sigx = sigmoid(x)
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    return f, (x, y, sigy, num, sigx, xpy, den, invden)


def backward(dout, cache):
    """The staged backward pass, with += wherever x and y fork."""
    x, y, sigy, num, sigx, xpy, den, invden = cache
    dnum = invden * dout
    dinvden = num * dout
    dden = (-1.0 / den**2) * dinvden
    dsigx = dden
    dxpysqr = dden
    dxpy = (2 * xpy) * dxpysqr
    dx = dxpy
    dy = dxpy
    dx += ((1 - sigx) * sigx) * dsigx
    dx += dnum
    dsigy = dnum
    dy += ((1 - sigy) * sigy) * dsigy
    return dx, dy


def backward_with_overwrite(dout, cache):
    """The same, with the classic bug: `dx =` where `dx +=` belongs."""
    x, y, sigy, num, sigx, xpy, den, invden = cache
    dnum = invden * dout
    dinvden = num * dout
    dden = (-1.0 / den**2) * dinvden
    dsigx = dden
    dxpysqr = dden
    dxpy = (2 * xpy) * dxpysqr
    dx = dxpy
    dy = dxpy
    dx = ((1 - sigx) * sigx) * dsigx  # BUG: overwrites the gradient that came through xpy
    dx += dnum
    dsigy = dnum
    dy += ((1 - sigy) * sigy) * dsigy
    return dx, dy


def main():
    x, y = sp.symbols("x y")
    f = (x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2)

    print("=== The hand-written forward/backward pair ===")
    right = symdiff.verify(f, [x, y], backward, forward=forward)
    print(right, end="\n\n")

    print("=== The same backward with `dx =` for `dx +=` ===")
    wrong = symdiff.verify(f, [x, y], backward_with_overwrite, forward=forward)
    print(wrong, end="\n\n")

    print("=== dy computed with the sign flipped, as a plain gradient function ===")
    def flipped(x, y):
        dx, dy = backward(1.0, forward(x, y)[1])
        return dx, -dy

    sign = symdiff.verify(f, [x, y], flipped)
    print(sign, end="\n\n")

    print("=== A derivation on paper, as strings, for g(x, y) = x*sin(x*y) ===")
    paper = symdiff.verify(x * sp.sin(x * y), [x, y], ["sin(x*y) + x*y*cos(x*y)", "x*cos(x*y)"])
    print(paper)

    assert right.ok and all(p.ok for p in right.partials)
    assert not wrong.ok and "missing a term" in wrong.partials[0].diagnosis
    assert wrong.partials[1].ok
    assert "sign flipped" in sign.partials[1].diagnosis
    assert paper.partials[0].proved
    assert "factor of 1/x" in paper.partials[1].diagnosis  # d/dy of x*sin(x*y) is x**2*cos(x*y)


if __name__ == "__main__":
    main()
