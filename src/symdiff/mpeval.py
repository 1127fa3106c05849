"""Evaluate a SymPy expression at a point with mpmath, one DAG node at a time, over the reals.

Every node is computed once (iterative, memoised), in mpmath numbers at the working precision:
tens of times faster than SymPy Floats, which re-run SymPy's simplification and assumptions at
every node. Semantics are real-valued: a complex result (``log(-1)``, ``sqrt(-2)``,
``asin(2)``), a division by zero or a domain error makes the node undefined (nan), and nan
propagates. A Piecewise takes the first branch whose condition is true, and is undefined when a
condition it has to look at is undefined, as generated code is. Functions missing from the table
fall back to SymPy's own numeric evaluation.
"""

from __future__ import annotations

import mpmath
import sympy as sp
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair

from .dag import postorder
from .ops import NAN, OPS


def values_at(exprs: list, env: dict) -> list:
    """The value of each expression (mpf, bool, or nan) at ``env`` (symbol -> number).

    Runs at mpmath's current working precision; callers set it (``mpmath.workdps``).
    """
    done: dict = {}
    for root in exprs:
        for node in postorder(root, stop=lambda n: n in done):
            if node not in done:
                done[node] = _value(node, env, done)
    return [done[e] for e in exprs]


def _value(node, env, done):
    if node.is_Symbol:
        return _number(env[node])
    if not node.args:
        return _atom(node)
    args = [done[a] for a in node.args]
    if isinstance(node, ExprCondPair):
        return tuple(args)  # (value, condition): read by its Piecewise only
    if isinstance(node, sp.Piecewise):
        return _piecewise(args)
    if isinstance(node, (Relational, sp.And, sp.Or, sp.Not, sp.ITE)):
        return _logic(node, args)
    if any(_undefined(a) for a in args):
        return NAN
    if not isinstance(node, _ARITHMETIC) and any(_beyond_reach(a) for a in args):
        return NAN
    rule = _TABLE.get(type(node))
    try:
        value = rule(*args) if rule is not None else _fallback(node, args)
    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
        return NAN
    if isinstance(value, mpmath.mpc):
        return NAN if value.imag != 0 else value.real
    return value


# A function of a number beyond 2**MAX_MAG (about 10**1233, far past any float) is treated as
# undefined: sinh(cosh(sinh(12))) would need ln 2 to 10**4782 bits, and never finish. Sums and
# products of such numbers are cheap, and a float program never holds them anyway.
MAX_MAG = 4096
_ARITHMETIC = (sp.Add, sp.Mul)


def _beyond_reach(value) -> bool:
    return isinstance(value, mpmath.mpf) and mpmath.isfinite(value) and mpmath.mag(value) > MAX_MAG


def _number(value):
    if isinstance(value, (mpmath.mpf, bool)):
        return value
    if isinstance(value, sp.Basic):
        return _atom(value)
    return mpmath.mpf(value)


def _atom(node):
    if node is sp.true or node is sp.false:
        return bool(node)
    if node.is_Integer:
        return mpmath.mpf(int(node))
    if node.is_Rational:
        return mpmath.mpf(int(node.p)) / int(node.q)
    if node.is_Float:
        return node._to_mpmath(mpmath.mp.prec)
    if node is sp.oo:
        return mpmath.inf
    if node is sp.nan or node is sp.zoo or not node.is_number:
        return NAN
    if node.is_extended_real is False:
        return NAN
    return node.evalf(mpmath.mp.dps)._to_mpmath(mpmath.mp.prec)


def _undefined(value) -> bool:
    return isinstance(value, mpmath.mpf) and mpmath.isnan(value)


def _piecewise(pairs):
    for value, condition in pairs:
        if condition is True:
            return value
        if condition is not False:  # an undefined condition: the code cannot decide either
            return NAN
    return NAN


def _logic(node, args):
    if any(_undefined(a) for a in args if not isinstance(a, bool)):
        return NAN
    if isinstance(node, Relational):
        op = {sp.Lt: lambda a, b: a < b, sp.Le: lambda a, b: a <= b,
              sp.Gt: lambda a, b: a > b, sp.Ge: lambda a, b: a >= b,
              sp.Eq: lambda a, b: a == b, sp.Ne: lambda a, b: a != b}[type(node)]
        return bool(op(*args))
    if isinstance(node, sp.And):
        return all(args)
    if isinstance(node, sp.Or):
        return any(args)
    if isinstance(node, sp.Not):
        return not args[0]
    return args[1] if args[0] else args[2]  # ITE


def _fallback(node, args):
    """SymPy's own numeric evaluation, for functions without an mpmath entry here."""
    dps = mpmath.mp.dps
    sympy_args = [sp.Float(a, dps) if isinstance(a, mpmath.mpf) else sp.sympify(a) for a in args]
    value = node.func(*sympy_args)
    if isinstance(value, sp.Expr) and not value.is_Atom and value.is_number:
        value = value.evalf(dps)
    if not isinstance(value, sp.Expr) or not value.is_number or value.is_extended_real is False:
        return NAN
    return _atom(value)


def _power(base, exp):
    if base == 0 and exp < 0:
        return NAN  # 1/0: undefined, as for division
    return mpmath.power(base, exp)


# Add, Mul and Pow are structure; every function's implementation is its row's ``mp`` (ops.py).
_TABLE = {
    sp.Add: lambda *a: mpmath.fsum(a),
    sp.Mul: lambda *a: mpmath.fprod(a),
    sp.Pow: _power,
    **{op.cls: op.mp for op in OPS if op.mp is not None},
}
