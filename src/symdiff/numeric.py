"""High-precision evaluation and domain sampling: the numbers every check compares against.

``evaluate`` computes a SymPy expression at a point with SymPy Floats of ``dps`` digits, one DAG
node at a time (iterative, memoised), so shared subexpressions cost once and deep formulas do not
recurse. A value that is complex, infinite or NaN comes back as None: the point is outside the
formula's domain. ``sample_points`` draws random points where a formula is defined.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

import mpmath
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from .dag import postorder

DPS = 50  # digits for the reference values


def evaluate(expr: sp.Basic, env: dict[sp.Symbol, object], dps: int = DPS) -> mpmath.mpf | None:
    """``expr`` at the point ``env`` (symbol -> number), or None outside the domain.

    >>> x = sp.Symbol("x", real=True)
    >>> float(evaluate(sp.sin(x) ** 2 + sp.cos(x) ** 2, {x: 0.3}))
    1.0
    """
    values = evaluate_many([expr], env, dps)
    return values[0]


def evaluate_many(exprs: Iterable[sp.Basic], env: dict, dps: int = DPS) -> list:
    """Several expressions at one point, sharing the work on common subexpressions."""
    exprs = list(exprs)
    done: dict[sp.Basic, sp.Basic] = {}
    point = {s: sp.Float(v, dps) if not isinstance(v, sp.Basic) else v for s, v in env.items()}
    for root in exprs:
        for node in postorder(root, stop=lambda n: n in done):
            if node in done:
                continue
            done[node] = _node_value(node, point, done, dps)
    with mpmath.workdps(dps):
        return [_as_mpf(done[e], dps) for e in exprs]


def _node_value(node, point, done, dps):
    """One node's value over the reals: a non-real intermediate (log(-1)) is undefined (nan)."""
    if node.is_Symbol:
        if node not in point:
            raise KeyError(f"no value for symbol {node}")
        return point[node]
    if not node.args:
        if node.is_Integer or node.is_Boolean or not node.is_number:
            return node
        return node.evalf(dps)
    args = [done[a] for a in node.args]
    if isinstance(node, ExprCondPair):
        return tuple(args)  # (value, condition), read only by its Piecewise
    if isinstance(node, sp.Piecewise):
        return _piecewise_value(args)
    with mpmath.workdps(dps):
        try:
            value = node.func(*args)
            if isinstance(value, sp.Expr) and not value.is_Atom and value.is_number:
                value = value.evalf(dps)  # functions SymPy leaves unevaluated (besselj, ...)
        except (ZeroDivisionError, ValueError, TypeError, OverflowError):
            return sp.nan
    if isinstance(value, sp.Expr) and value.is_number and value.is_extended_real is False:
        return sp.nan
    return value


def _piecewise_value(pairs):
    """Conditions in order, as the generated code does: the first true one picks its branch."""
    for value, condition in pairs:
        if condition is sp.true:
            return value
        if condition is not sp.false:
            return sp.nan  # an undefined condition (log(-1) > 0): undefined here
    return sp.nan


def _as_mpf(value, dps: int) -> mpmath.mpf | None:
    if isinstance(value, sp.logic.boolalg.BooleanAtom):
        return mpmath.mpf(bool(value))
    if not isinstance(value, sp.Expr) or not value.is_number:
        return None
    if not (value.is_extended_real and value.is_finite):
        return None
    try:
        return mpmath.mpf(value.evalf(dps))
    except (TypeError, ValueError):
        return None


def sample_points(
    names: list[sp.Symbol],
    defined: Callable[[dict], bool],
    count: int,
    seed: int = 0,
    tries_per_point: int = 40,
) -> list[dict]:
    """``count`` random points (symbol -> float) where ``defined(point)`` holds.

    Most coordinates are uniform in [-3, 3]; some are in (0, 1) or of magnitude 1e-2..1e2, so
    formulas defined only for positive arguments or small arguments are still reached.
    """
    rng = random.Random(seed)
    points: list[dict] = []
    for _ in range(count * tries_per_point):
        if len(points) == count:
            break
        point = {s: _draw(rng) for s in names}
        if defined(point):
            points.append(point)
    return points


def _draw(rng: random.Random) -> float:
    u = rng.random()
    if u < 0.6:
        return rng.uniform(-3.0, 3.0)
    if u < 0.8:
        return rng.uniform(0.0, 1.0)
    return math.copysign(10 ** rng.uniform(-2.0, 2.0), rng.random() - 0.5)


def program_values(prog, point: dict[str, float], dout: float = 1.0, dps: int = DPS) -> dict:
    """Arguments, forward steps and gradients of ``prog`` at ``point`` (code names -> floats)."""
    return program_trace(prog, point, dout, dps)[0]


def program_trace(prog, point: dict[str, float], dout: float = 1.0,
                  dps: int = DPS) -> tuple[dict, list[float]]:
    """``program_values`` and, per backward step, the term it adds (upstream * local)."""
    env: dict[sp.Symbol, sp.Basic] = {}
    values: dict[str, float] = {}
    for name in prog.args:
        env[sp.Symbol(name, real=True)] = sp.Float(point[name], dps)
        values[name] = float(point[name])
    for step in prog.forward:
        value = evaluate_many([step.rhs], env, dps)[0]
        values[step.name] = float(value) if value is not None else math.nan
        env[sp.Symbol(step.name, real=True)] = sp.Float(value if value is not None else "nan", dps)
    terms = []
    with mpmath.workdps(dps):
        grads = {"d" + prog.output: mpmath.mpf(dout)}
        for g in prog.backward:
            local = evaluate_many([g.local], env, dps)[0]
            term = grads[g.upstream] * (local if local is not None else mpmath.nan)
            grads[g.name] = grads[g.name] + term if g.accumulate else term
            terms.append(float(term))
    values.update((name, float(v)) for name, v in grads.items())
    values.update((z, 0.0) for z in prog.zero_grads)
    return values, terms
