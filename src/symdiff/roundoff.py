"""Float rounding, as the judges model it: the unit roundoff, the normal float range, the size
of the terms a float evaluation rounds, and the exact value of a float constant.
"""

from __future__ import annotations

import sys

import mpmath
import sympy as sp

from .dag import postorder, substitute
from .numeric import evaluate_many

UNIT = 2.0**-53  # unit roundoff of float64
FLOAT_MAX = mpmath.mpf(sys.float_info.max)
FLOAT_TINY = mpmath.mpf(sys.float_info.min)  # the smallest normal double


def times(weight, error):
    """``weight * error`` where no error propagates nothing, even through an infinite weight,
    and a zero weight propagates nothing, even an infinite error (Max(asin(floor(y)), x) where
    x is the larger: asin' is infinite at floor(y) = 1, and the bound was nan)."""
    return 0 if error == 0 or weight == 0 else weight * error


def float_constant(constant: sp.Float) -> mpmath.mpf:
    return constant._to_mpmath(mpmath.mp.prec)


def exact_floats(expr: sp.Basic) -> sp.Basic:
    """``expr`` with every Float replaced by the exact binary fraction it holds.

    A float in a formula means the double nearest to it, which is what generated code computes.
    SymPy would fold Float arithmetic at 53 bits (``diff(0.1*x**3)`` is
    ``0.30000000000000004*x**2``, not 3 times the double 0.1), so a reference built on Floats
    is off by a rounding.
    """
    floats = {n: sp.Rational(n) for n in postorder(expr) if n.is_Float}
    return substitute(expr, floats, evaluate=False) if floats else expr


def magnitude(expr, env, value):
    """The size of the terms a float evaluation of a small expression rounds: its value with
    every sum of absolute values and every product of absolute values (``1 - coth(u)**2`` at
    u = 17 is 3e-15, its terms 1 and 1 + 3e-15: the rounding of coth is 1e-16 of the result's
    size, not of 3e-15). A function or a division is its own absolute value. Never below the
    value's own size."""
    if expr.is_Atom:
        return abs(value)
    nodes = postorder(expr)
    values = dict(zip(nodes, evaluate_many(nodes, env)))  # a condition's value is 1 or 0
    size: dict[sp.Basic, mpmath.mpf] = {}
    for node in nodes:
        v = values[node]
        if isinstance(node, sp.Piecewise):  # the branch it takes
            taken = next((p.expr for p in node.args if values.get(p.cond)), None)
            size[node] = size.get(taken, abs(v) if v is not None else mpmath.inf)
        elif v is None:
            size[node] = mpmath.inf
        elif isinstance(node, sp.Add):
            size[node] = mpmath.fsum(size[a] for a in node.args)
        elif isinstance(node, sp.Mul):
            size[node] = mpmath.fprod(size[a] for a in node.args)
        elif isinstance(node, sp.Pow) and node.exp.is_Integer and node.exp > 0:
            size[node] = size[node.base] ** int(node.exp)
        else:
            size[node] = abs(v)
    return max(abs(value), size[expr]) if mpmath.isfinite(size[expr]) else abs(value)
