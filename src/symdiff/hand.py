"""The hand gradient a user gives to ``verify``: read it, run it, and name what it returned.

A callable is run on copies of the arguments; whatever it raises or returns that is not the
right number of partials is a finding about the hand code (``HandFailure``, its text the
finding), never a traceback from inside symdiff. A derivation (one SymPy expression or string
per wrt symbol) is parsed with the whitelist parser over the formula's symbols.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .dag import postorder, substitute
from .errors import ArgumentError
from .parse import parse


class HandFailure(Exception):
    """The hand gradient could not be evaluated at a point (it raised, or returned junk)."""


def cache_of(result):
    if not (isinstance(result, tuple) and len(result) == 2):
        raise HandFailure("forward must return (value, cache)")
    return result[1]


def partials_of(result, n: int) -> list[float]:
    """The partials a hand gradient returned: a tuple of n numbers (or (value, partials))."""
    if n == 1 and is_number(result):
        result = (result,)
    try:
        items = list(result)
    except TypeError:
        raise HandFailure(f"returned {type(result).__name__}, not {n} partials") from None
    if (len(items) == 2 and n != 2 and is_number(items[0]) and not is_number(items[1])
            and len(list(items[1])) == n):
        items = list(items[1])  # a value_and_grad: (value, partials)
    if len(items) != n:
        noun = "partial" if len(items) == 1 else "partials"
        raise HandFailure(f"returned {len(items)} {noun} for {n} wrt symbols")
    values = []
    for item in items:
        try:
            values.append(float(item))
        except (TypeError, ValueError):
            raise HandFailure(f"returned {type(item).__name__} where a number belongs") from None
    return values


def is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (tuple, list, str))


def derivation(grad, prog, ref) -> list[sp.Expr]:
    """A derivation on paper: one SymPy expression or string per wrt symbol, over the args."""
    if isinstance(grad, (str, sp.Basic)) or not hasattr(grad, "__iter__"):
        raise ArgumentError("grad must be a callable, or a list of SymPy expressions or strings "
                            "(one per wrt symbol)")
    items = list(grad)
    if len(items) != len(prog.wrt):
        raise ArgumentError(f"grad lists {len(items)} expressions for {len(prog.wrt)} wrt "
                            "symbols")
    by_name = {i.symbol.name: a for i, a in zip(prog.inputs, ref.args)}
    by_name.update((i.name, a) for i, a in zip(prog.inputs, ref.args))
    exprs = []
    for item, name in zip(items, prog.grads):
        declared = [i.symbol.name for i in prog.inputs]  # E in E*A/L stays the variable
        expr = parse(item, variables=declared) if isinstance(item, str) else item
        if isinstance(expr, (int, float)):
            expr = sp.Float(expr) if isinstance(expr, float) else sp.Integer(expr)
        if not isinstance(expr, sp.Expr):
            raise ArgumentError(f"the derivation of {name} is not an expression: {item!r}")
        unknown = sorted(s.name for s in expr.free_symbols if s.name not in by_name)
        if unknown:
            raise ArgumentError(f"the derivation of {name} uses {', '.join(unknown)}, which "
                                "the formula does not have")
        exprs.append(expr.xreplace({s: by_name[s.name] for s in expr.free_symbols}))
    return exprs


NUDGE = sp.Rational(1, 10**20)  # relative nudge of a float constant, for its first-order share


def nudged(exprs) -> tuple[list, list]:
    """Per float constant c of each derivation: (k, c), and derivation k with c nudged up and
    down by NUDGE; evaluated, their difference gives the first-order effect of rounding c."""
    owners, pairs = [], []
    for k, expr in enumerate(exprs):
        for c in {n for n in postorder(expr) if n.is_Float}:
            exact = sp.Rational(c)
            owners.append((k, c))
            pairs += [substitute(expr, {c: exact * (1 + s * NUDGE)}, evaluate=False)
                      for s in (1, -1)]
    return owners, pairs


def call_arrays(grad, forward, args, dout, n) -> tuple[list, np.ndarray | None]:
    """The hand partials at ``args`` (with ``forward``, of ``backward(dout, cache)``), each in
    the precision it was computed in, and the hand forward's value (None without forward)."""
    copies = [np.array(a) if np.ndim(a) else a for a in args]
    value = None
    try:
        if forward is not None:
            result = forward(*copies)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise HandFailure("forward must return (value, cache)")
            value = result[0]
            partials = grad(dout, result[1])
        else:
            partials = grad(*copies)
    except HandFailure:
        raise
    except Exception as exc:  # the user's code: any failure is a finding
        hint = ""
        if isinstance(exc, ValueError) and ("matmul" in str(exc) or "align" in str(exc)):
            hint = " (shapes do not fit a matrix product: a missing or extra transpose?)"
        raise HandFailure(f"raised {type(exc).__name__}: {first_line(exc)}{hint}") from None
    if n == 1 and not isinstance(partials, (tuple, list)):
        partials = (partials,)
    if not isinstance(partials, (tuple, list)) or len(partials) != n:
        count = len(partials) if isinstance(partials, (tuple, list)) else 1
        raise HandFailure(f"returned {count} partials for {n} wrt arguments")
    try:  # in the precision the hand code computed in (the judge reads it off the dtype)
        partials = [np.asarray(p) if _floating(p) else np.asarray(p, dtype=float)
                    for p in partials]
    except (TypeError, ValueError):
        raise HandFailure("returned something that is not an array of numbers") from None
    if value is not None:
        try:
            value = np.asarray(value) if _floating(value) else np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise HandFailure("forward returned a value that is not an array of "
                              "numbers") from None
    return partials, value


def first_line(exc: Exception, limit: int = 120) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _floating(partial) -> bool:
    return np.asarray(partial).dtype.kind == "f"
