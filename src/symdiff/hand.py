"""The hand gradient a user gives to ``verify``: read it, run it, and name what it returned.

A callable is run on copies of the arguments; whatever it raises or returns that is not the
right number of partials is a finding about the hand code (``HandFailure``, its text the
finding), never a traceback from inside symdiff. A derivation (one SymPy expression or string
per wrt symbol) is parsed with the whitelist parser over the formula's symbols.
"""

from __future__ import annotations

import contextlib

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


def call_arrays(grad, forward, args, dout, n, masks=()) -> tuple[list, np.ndarray | None]:
    """The hand partials at ``args`` (with ``forward``, of ``backward(dout, cache)``), each in
    the precision it was computed in, and the hand forward's value (None without forward).
    ``masks`` are served to the hand code's own random draws (``drawn_masks``)."""
    copies = [np.array(a) if np.ndim(a) else a for a in args]
    value = None
    try:
        if forward is not None:
            with drawn_masks(masks):
                result = forward(*copies)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise HandFailure("forward must return (value, cache)")
            value = result[0]  # a copy of dout: hand code may change it in place (relu)
            partials = grad(np.array(dout) if np.ndim(dout) else dout, result[1])
        else:
            with drawn_masks(masks):
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


class _Drawn(np.ndarray):
    """A random draw that stands for a 0/1 mask: any comparison with it gives the mask, so
    ``rand(...) < keep`` and ``rand(...) > drop`` both keep exactly the mask's entries."""

    def _mask(self, other):
        return self.mask.copy()

    __lt__ = __le__ = __gt__ = __ge__ = _mask

    def __array_finalize__(self, obj):
        self.mask = getattr(obj, "mask", None)


@contextlib.contextmanager
def drawn_masks(masks):
    """Within the block, NumPy's random draws of a mask's shape give that mask.

    ``np.random.rand``, ``random``, ``random_sample``, ``uniform`` and the methods ``random``
    and ``uniform`` of ``np.random.default_rng()`` return a draw any comparison of which is the
    mask (``np.random.rand(*x.shape) < p`` keeps exactly its 1s); ``np.random.binomial`` and
    ``Generator.binomial`` return the mask itself. Each mask is served once, in order, to the
    first draw of its shape; other draws are ordinary seeded random numbers. This is how
    ``verify`` passes the formula's dropout mask to hand code that draws its own. What it
    cannot judge: the hand code's own keep rule (``rand > p`` keeps with probability 1 - p,
    ``rand < p`` with p); any comparison gives the formula's mask.
    """
    server = _MaskServer(masks, np.random.default_rng)
    patched = {"rand": server.rand, "random": server.random, "random_sample": server.random,
               "uniform": server.uniform, "binomial": server.binomial,
               "default_rng": server.generator}
    saved = {name: getattr(np.random, name) for name in patched}
    try:
        for name, f in patched.items():
            setattr(np.random, name, f)
        yield
    finally:
        for name, f in saved.items():
            setattr(np.random, name, f)


class _MaskServer:
    """The patched draws of ``drawn_masks``: a mask for the first draw of its shape."""

    def __init__(self, masks, default_rng):
        self.pending = [np.asarray(m, dtype=float) for m in masks]
        self.default_rng = default_rng
        self.seeded = default_rng(0)

    def serve(self, size, real, binomial=False):
        shape = None if size is None else tuple(int(n) for n in np.atleast_1d(size))
        for k, m in enumerate(self.pending):
            if m.shape == shape:
                self.pending.pop(k)
                if binomial:
                    return m.copy()
                draw = np.full(shape, 0.5).view(_Drawn)
                draw.mask = m.astype(bool)
                return draw
        return real()

    def rand(self, *dims):
        return self.serve(dims or None, lambda: self.seeded.random(dims or None))

    def random(self, size=None):
        return self.serve(size, lambda: self.seeded.random(size))

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.serve(size, lambda: self.seeded.uniform(low, high, size))

    def binomial(self, n, p, size=None):
        return self.serve(size, lambda: self.seeded.binomial(n, p, size), binomial=True)

    def generator(self, seed=None):
        return _Generator(self, self.default_rng(seed))


class _Generator:
    """``np.random.default_rng()`` inside ``drawn_masks``: masks for random/uniform/binomial."""

    def __init__(self, server, real):
        self._server, self._real = server, real

    def random(self, size=None, **kw):
        return self._server.serve(size, lambda: self._real.random(size, **kw))

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._server.serve(size, lambda: self._real.uniform(low, high, size))

    def binomial(self, n, p, size=None):
        return self._server.serve(size, lambda: self._real.binomial(n, p, size), binomial=True)

    def __getattr__(self, name):
        return getattr(self._real, name)
