"""The functions a formula string may call, and the builders of the SymPy nodes they make.

``FUNCTIONS`` maps each callable name to (fewest arguments, most or None, the kind of each
argument, the string repeating: ``v`` value, ``c`` condition, ``p`` a (value, condition) pair;
builder). Most rows come from the op table: every spelling of an ``Op`` row (its
``names`` and ``arity``, ops.py) with the builder its ``build`` names in ``_BUILDERS``; the
others spell structure, not an op (sqrt, cbrt, pow, where, Piecewise).

A builder takes (arguments, ev, column). With ``ev`` false it builds its node unevaluated (the
parser decides, from the depth and size of the operands); with ``ev`` true it first has
guards.py refuse what SymPy could not fold in reasonable time. Every node leaves ``fresh``.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from .guards import check_exp, check_gamma, check_power, check_product, check_sum
from .ops import OPS


def fresh(obj: sp.Basic) -> sp.Basic:
    """Cache the hash and ``is_commutative`` of a new node now, from those of its arguments.

    Later they are looked up, not computed by a recursion down a deep unevaluated tree.
    """
    hash(obj)
    obj.is_commutative  # noqa: B018
    return obj


def power(base: sp.Basic, exp: sp.Basic, ev: bool, col: int) -> sp.Basic:
    """``base**exp``, guarded when evaluated.

    >>> two, ten = sp.Integer(2), sp.Integer(10)
    >>> power(two, ten, True, 1), power(two, ten, False, 1)
    (1024, 2**10)
    """
    if ev:
        check_power(base, exp, col)
    return fresh(sp.Pow(base, exp, evaluate=ev))


def add(terms: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    """The sum of ``terms``, guarded when evaluated."""
    if ev:
        check_sum(terms, col)
    return fresh(sp.Add(*terms, evaluate=ev))


def negate(obj: sp.Basic, ev: bool) -> sp.Basic:
    """``-obj``, as SymPy writes it: ``(-1)*obj``."""
    return fresh(sp.Mul(sp.S.NegativeOne, obj, evaluate=ev))


def product(factors: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    """The product of ``factors``, guarded when evaluated."""
    if ev:
        check_product(factors, col)
    return fresh(sp.Mul(*factors, evaluate=ev))


def lattice(cls: type, args: list[sp.Basic], ev: bool) -> sp.Basic:
    """And, Or, Max or Min of ``args``."""
    if ev:
        return fresh(cls(*args))
    # Even unevaluated these sort their arguments by recursive keys: build the node directly.
    unique = list(dict.fromkeys(args))
    if len(unique) == 1:
        return unique[0]
    obj = sp.Basic.__new__(cls, *unique)
    obj._argset = frozenset(unique)
    return fresh(obj)


def nested_conditions(pairs) -> bool:
    """Whether a condition of these (value, condition) pairs has a Piecewise inside."""
    return any(cond.has(sp.Piecewise) for _, cond in pairs)


def _piecewise(pairs: list[tuple[sp.Basic, sp.Basic]], ev: bool) -> sp.Basic:
    if ev and not nested_conditions(pairs):
        return fresh(sp.Piecewise(*pairs))
    # ExprCondPair folds a condition holding a Piecewise (exponential when nested), even
    # unevaluated; build the node directly.
    nodes = [fresh(sp.Tuple.__new__(ExprCondPair, value, cond)) for value, cond in pairs]
    return fresh(sp.Basic.__new__(sp.Piecewise, *nodes))


def _apply(cls: type) -> Callable:
    return lambda args, ev, col: fresh(cls(*args, evaluate=ev))


def _log(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    if ev:
        return fresh(sp.log(*args))
    logs = [fresh(sp.log(arg, evaluate=False)) for arg in args]
    if len(logs) == 1:
        return logs[0]
    return fresh(sp.Mul(logs[0], power(logs[1], sp.S.NegativeOne, ev, col), evaluate=False))


def _exp(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    if ev:
        check_exp(args[0], col)
    return fresh(sp.exp(args[0], evaluate=ev))


def _gamma(cls: type) -> Callable:
    def build(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
        if ev:
            check_gamma(cls, args[0], col)
        return fresh(cls(args[0], evaluate=ev))
    return build


def _hypot(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    squares = [power(arg, sp.Integer(2), ev, col) for arg in args]
    return power(add(squares, ev, col), sp.S.Half, ev, col)


def _log1p(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    return fresh(sp.log(fresh(sp.Add(sp.S.One, args[0], evaluate=ev)), evaluate=ev))


def _expm1(args: list[sp.Basic], ev: bool, col: int) -> sp.Basic:
    return fresh(sp.Add(_exp(args, ev, col), sp.S.NegativeOne, evaluate=ev))


def _root(exp: sp.Rational) -> Callable:
    return lambda args, ev, col: power(args[0], exp, ev, col)


# How a row of the op table (ops.py) is built from its arguments: its ``build``.
_BUILDERS: dict[str, Callable[[type], Callable]] = {
    "apply": _apply, "exp": lambda cls: _exp, "log": lambda cls: _log,
    "gamma": _gamma, "hypot": lambda cls: _hypot, "log1p": lambda cls: _log1p,
    "expm1": lambda cls: _expm1,
    "lattice": lambda cls: lambda args, ev, col: lattice(cls, args, ev),
}
FUNCTIONS: dict[str, tuple[int, int | None, str, Callable]] = {
    # name: (fewest arguments, most arguments or None, kinds of the arguments, builder)
    **{name: (low, high, "v", _BUILDERS[op.build](op.cls))
       for op in OPS for name, low, high in op.spellings()},
    # spellings that are structure, not an op: roots and powers, branches
    "sqrt": (1, 1, "v", _root(sp.S.Half)),
    "cbrt": (1, 1, "v", _root(sp.Rational(1, 3))),
    "pow": (2, 2, "v", lambda args, ev, col: power(*args, ev, col)),
    "where": (3, 3, "cvv", lambda a, ev, col: _piecewise([(a[1], a[0]), (a[2], sp.true)], ev)),
    "Piecewise": (1, None, "p", lambda args, ev, col: _piecewise(args, ev)),
    "piecewise": (1, None, "p", lambda args, ev, col: _piecewise(args, ev)),
}
FUNCTION_NAMES = frozenset(FUNCTIONS)
