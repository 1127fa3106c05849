"""High-precision evaluation and domain sampling: the numbers every check compares against.

``evaluate`` computes a SymPy expression at a point at ``dps`` digits over the reals (see
``mpeval``): a value that is complex, infinite or NaN comes back as None, the point is outside the
formula's domain. ``within_budget`` gives SymPy work (a proof, a derivative) a time limit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable

import mpmath
import sympy as sp

from .mpeval import values_at

DPS = 50  # digits for the reference values


def evaluate(expr: sp.Basic, env: dict[sp.Symbol, object], dps: int = DPS) -> mpmath.mpf | None:
    """``expr`` at the point ``env`` (symbol -> number), or None outside the domain.

    >>> x = sp.Symbol("x", real=True)
    >>> float(evaluate(sp.sin(x) ** 2 + sp.cos(x) ** 2, {x: 0.3}))
    1.0
    """
    return evaluate_many([expr], env, dps)[0]


def evaluate_many(exprs: Iterable[sp.Basic], env: dict, dps: int = DPS) -> list:
    """Several expressions at one point (sharing common subexpressions); None where undefined."""
    with mpmath.workdps(dps):
        return [_finite(v) for v in values_at(list(exprs), env)]


def _finite(value):
    if isinstance(value, (bool, int, float)):  # relu's max(x, 0) is the int 0 for x < 0
        value = mpmath.mpf(value)
    if isinstance(value, mpmath.mpf) and mpmath.isfinite(value):
        return value
    return None


def within_budget(task, seconds: float, default=False, unbounded=False):
    """``task()`` if it finishes within ``seconds`` (SIGALRM, main thread only), else ``default``.

    SymPy's simplify has no time limit of its own; a symbolic attempt that fails or times out is
    "not proved", never a crash or a hang. An alarm already running (a caller's own time limit)
    is kept: the budget is cut to what remains of it, and it is set again afterwards with the
    time this took taken off (so it still fires, at once if it is due). In another thread no
    alarm can be set: ``unbounded`` then runs the task with no limit instead of giving up.
    """
    if not (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()):
        return task() if unbounded else default
    outer, _ = signal.getitimer(signal.ITIMER_REAL)
    budget = min(seconds, outer) if outer else seconds
    started = time.monotonic()

    over = []  # set once the task is done: a late alarm (one already pending) is then a no-op

    def expire(signum, frame):
        if not over:
            raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    # again every 50 ms after the budget: SymPy catches exceptions in places, so one alarm
    # can be swallowed (simplify of a Piecewise then ran for minutes)
    signal.setitimer(signal.ITIMER_REAL, budget, 0.05)
    try:
        try:
            return task()
        finally:  # an alarm that fires in here is caught below too; after `over`, none raises
            over.append(True)
            signal.setitimer(signal.ITIMER_REAL, 0)
    except (_Timeout, Exception):  # out of time, or SymPy failing to simplify
        return default
    finally:
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


class _Timeout(BaseException):  # noqa: N818 (a signal, not an error: no `except Exception`)
    pass
