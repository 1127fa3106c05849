"""A staged program run at 50 digits: every value, every gradient and every backward term.

The one walk of a program's steps that ``Program.evaluate`` and ``to_dot(at=...)`` read. A scalar
program runs on mpmath numbers. A matrix program runs on NumPy arrays of mpmath numbers
(``dtype=object``): each whole-array gate applies its own operation (``array_ops``, exact mpmath
arithmetic at the working precision on such arrays), and each elementwise expression is
evaluated entry by entry by ``mpeval`` (NumPy broadcasting). Results come back as floats and
float arrays, keyed by their names in the generated code.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy as sp
from sympy.tensor.array.expressions import ArraySymbol

from .array_ops import ARRAY_GATES
from .dag import postorder
from .errors import ArgumentError
from .mpeval import values_at

DPS = 50  # digits of the values


def program_values(prog, point: dict, dout=1.0, dps: int = DPS) -> dict:
    """Arguments, forward steps and gradients of ``prog`` at ``point`` (code names -> floats,
    or float arrays for the arrays of a matrix program)."""
    return program_trace(prog, point, dout, dps)[0]


def program_trace(prog, point: dict, dout=1.0, dps: int = DPS) -> tuple[dict, list]:
    """``program_values`` and, per backward step, the term it adds (upstream * local)."""
    with mpmath.workdps(dps):
        env = _arguments(prog, point)
        for step in prog.forward:
            env[sp.Symbol(step.name, real=True)] = _value(step.rhs, env)
        start = sp.Symbol("d" + prog.output, real=True)
        env[start] = _upstream(prog, env, dout)
        terms = []
        for g in prog.backward:
            target, up = sp.Symbol(g.name, real=True), sp.Symbol(g.upstream, real=True)
            term = _value(g.local, env) if g.whole else env[up] * _value(g.local, env)
            env[target] = env[target] + term if g.accumulate else term
            terms.append(_floats(term))
    values = {s.name: _floats(v) for s, v in env.items() if s.name in _names(prog)}
    for z in prog.zero_grads:
        values[z] = np.zeros_like(values[z[1:]]) if z[1:] in values else 0.0
    return values, terms


def _names(prog) -> set[str]:
    return ({*prog.args, "d" + prog.output} | {s.name for s in prog.forward}
            | {g.name for g in prog.backward} | {d[0] for d in prog.dims})


def _arguments(prog, point: dict) -> dict:
    """The point as mpmath values: scalars, object arrays, and the dimensions they fix."""
    env: dict[sp.Symbol, object] = {}
    dims: dict[sp.Symbol, tuple[int, str]] = {}
    for i in prog.inputs:
        value = point[i.name]
        if not isinstance(i.symbol, (sp.MatrixSymbol, ArraySymbol)):
            env[sp.Symbol(i.name, real=True)] = mpmath.mpf(value)
            continue
        array = _array(i.name, value, len(i.symbol.shape))
        for d, n in zip(i.symbol.shape, array.shape):
            _fix(d, n, i.name, dims)
        env[sp.Symbol(i.name, real=True)] = array
    for dim, arg, axis in prog.dims:  # by code name: a dimension H beside a matrix H is H_2
        env[sp.Symbol(dim, real=True)] = mpmath.mpf(env[sp.Symbol(arg, real=True)].shape[axis])
    return env


def _array(name: str, value, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"the value of {name} is not an array of numbers") from None
    if array.ndim != ndim:
        raise ArgumentError(f"the value of {name} must be a {ndim}-D array, not of shape "
                            f"{array.shape}")
    return np.vectorize(mpmath.mpf, otypes=[object])(array) if array.size else array.astype(object)


def _fix(dim, size: int, name: str, dims: dict) -> None:
    """Record a dimension's size; a size that disagrees with the shape or an earlier array is
    an ArgumentError naming both."""
    if dim.is_Integer:
        if int(dim) != size:
            raise ArgumentError(f"{name} must have {dim} in that axis, not {size}")
        return
    seen = dims.setdefault(dim, (size, name))
    if seen[0] != size:
        raise ArgumentError(f"{dim} is {seen[0]} in {seen[1]} but {size} in {name}")


def _upstream(prog, env, dout):
    """The output's upstream gradient: ``dout``, or an array of it for an array output."""
    out = env[sp.Symbol(prog.output, real=True)]
    if isinstance(out, np.ndarray):
        given = np.broadcast_to(np.asarray(dout, dtype=float), out.shape)
        return np.vectorize(mpmath.mpf, otypes=[object])(given)
    return mpmath.mpf(dout)


def _value(expr: sp.Basic, env: dict):
    """``expr`` at ``env``: whole-array gates applied to their operands' values, the rest
    elementwise."""
    if isinstance(expr, ARRAY_GATES):
        k = expr.operands
        args = [_value(a, env) for a in expr.args]
        return type(expr).apply(*args[:k], *(int(a) for a in args[k:]))
    gates = [n for n in postorder(expr, stop=lambda n: isinstance(n, ARRAY_GATES))
             if isinstance(n, ARRAY_GATES)]
    if gates:
        held = {g: sp.Dummy(real=True) for g in gates}
        env = {**env, **{d: _value(g, env) for g, d in held.items()}}
        expr = expr.xreplace(held)
    return _elementwise(expr, env)


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray)


def _elementwise(expr: sp.Basic, env: dict):
    """``expr`` entry by entry over the arrays among its symbols' values (broadcast)."""
    symbols = [n for n in postorder(expr) if n.is_Symbol]
    arrays = {s: env[s] for s in symbols if _is_array(env[s])}
    if not arrays:
        return values_at([expr], env)[0]
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    spread = {s: np.broadcast_to(a, shape) for s, a in arrays.items()}
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        local = {s: (spread[s][index] if s in spread else env[s]) for s in symbols}
        out[index] = values_at([expr], local)[0]
    return out


def _floats(value):
    """A float, or a float array; an undefined value (nan, a comparison's bool) as nan."""
    if _is_array(value):
        return np.vectorize(_float, otypes=[float])(value) if value.size else value.astype(float)
    return _float(value)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
