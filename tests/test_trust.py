"""Issue 11 regressions: formulas people write, each against an oracle we did not write.

The oracle is SymPy's own ``diff`` of an expression built here with SymPy symbols (never symdiff's
parse of the same text), evaluated at 30 digits; both generated backends must agree with it.
"""

import math

import numpy as np
import pytest
import sympy as sp

import symdiff

R = {"real": True}


def oracle(expr, wrt, point):
    """Value and partials of ``expr`` at ``point`` ({Symbol: float}) by sympy.diff at 30 digits."""
    subs = {s: sp.Float(v, 30) for s, v in point.items()}
    value = float(expr.evalf(30, subs=subs))
    return value, [float(sp.diff(expr, v).evalf(30, subs=subs)) for v in wrt]


def assert_backends_match(formula, expr, wrt, point, **lower_kw):
    """``formula`` (what the user passes) lowers to code agreeing with ``expr``'s oracle."""
    names = [v.name for v in wrt]
    prog = symdiff.lower(formula, wrt=names if isinstance(formula, str) else wrt, **lower_kw)
    prog.validate()
    order = [i.symbol.name for i in prog.inputs]
    args = [point[next(s for s in point if s.name == n)] for n in order]
    want_value, want_grad = oracle(expr, wrt, point)
    for backend in ("math", "numpy"):
        value, grads = prog.compile(backend).value_and_grad(*args)
        assert math.isclose(float(value), want_value, rel_tol=1e-12, abs_tol=1e-300), backend
        for got, want, name in zip(grads, want_grad, names):
            assert math.isclose(float(got), want, rel_tol=1e-10, abs_tol=1e-12), (backend, name)
    return prog


# -- 1. products of powers in a denominator ---------------------------------------------------

q, e, r, x, y, z = sp.symbols("q e r x y z", **R)
a1, a2, b1, b2 = sp.symbols("a1 a2 b1 b2", **R)
DENOMINATORS = [
    ("q/(e*r**2)", q / (e * r**2), [q, e, r]),
    ("(a1*b1 + a2*b2)/(sqrt(a1**2 + a2**2)*sqrt(b1**2 + b2**2))",
     (a1 * b1 + a2 * b2) / (sp.sqrt(a1**2 + a2**2) * sp.sqrt(b1**2 + b2**2)), [a1, a2, b1, b2]),
    ("x/(y**2*z**3)", x / (y**2 * z**3), [x, y, z]),
    ("1/(x**0.5*y**1.5)", 1 / (x**sp.Float(0.5) * y**sp.Float(1.5)), [x, y]),
    ("sin(x)/(cos(y)**2*x**(1/3))", sp.sin(x) / (sp.cos(y)**2 * x**sp.Rational(1, 3)), [x, y]),
    ("(x + y)/((x - y)**2*(x*y)**(3/2))",
     (x + y) / ((x - y)**2 * (x * y)**sp.Rational(3, 2)), [x, y]),
    ("x/(y**x*z**2)", x / (y**x * z**2), [x, y, z]),
]


@pytest.mark.parametrize("text, expr, wrt", DENOMINATORS, ids=[d[0] for d in DENOMINATORS])
def test_products_of_powers_in_a_denominator_lower_and_match(text, expr, wrt):
    point = dict(zip([q, e, r, x, y, z, a1, a2, b1, b2],
                     [1.3, 0.7, 2.1, 1.7, 0.6, 1.9, 0.4, -1.2, 2.2, 0.9]))
    point = {s: point[s] for s in wrt}
    assert_backends_match(text, expr, wrt, point)
    assert_backends_match(expr, expr, wrt, point)
    assert symdiff.check(symdiff.lower(expr, wrt=wrt)).ok
