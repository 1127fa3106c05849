"""Where the judges look: random points of a scalar formula, random arrays of a matrix one.

Scalar formulas: ``sample_points`` draws points where a predicate (the formula is defined)
holds, mostly uniform in [-3, 3] with some small and some large magnitudes, inside the user's
``domain`` intervals and the signs the symbols declare.

Matrix formulas: a trial is a set of concrete sizes for the symbolic dimensions and one array per
argument. ``check_sizes`` are fixed small sizes (3, 2, 4, ... in name order), ``trial_sizes``
distinct random ones (2..8) except those the user's arrays fix; ``random_arguments`` draws
normal entries (or entries uniform in the argument's ``domain`` interval, or an array of its
declared kind: one-hot rows, a 0/1 mask, labels, an SPD matrix, ...) and ``finite_run``
redraws until the formula is finite. ``given_arrays`` reads a user's point of arrays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import sympy as sp

from .dag import postorder
from .errors import ArgumentError
from .matrix import SPD
from .tensor import LOWERED, ArraySymbol

CHECK_SIZES = (3, 2, 4, 5, 6)  # concrete sizes for the symbolic dimensions, in name order
TRIAL_SIZES = range(2, 9)  # the sizes random trials draw from, distinct while they last
WINDOW_SIZES = (3, 2, 4, 1)  # sizes of formulas with N-D windows: small, the reference expands
WINDOW_TRIALS, WINDOW_COST = range(1, 6), 1000  # their random trials: sizes, product at most
ARRAYS = (sp.MatrixSymbol, ArraySymbol)  # array arguments: matrices, N-D arrays (tensor.py)


# -- scalar points ----------------------------------------------------------------------------


def sample_points(
    names: list[sp.Symbol],
    defined: Callable[[dict], bool],
    count: int,
    seed: int = 0,
    box: dict | None = None,
    tries_per_point: int = 40,
    signs: dict | None = None,
) -> list[dict]:
    """``count`` random points (symbol -> float) where ``defined(point)`` holds.

    A symbol in ``box`` (symbol -> (lo, hi), the user's domain) is uniform in [lo, hi]. Other
    coordinates are mostly uniform in [-3, 3]; some are in (0, 1) or of magnitude 1e-2..1e2, so
    formulas defined only for positive arguments or small arguments are still reached; a symbol
    in ``signs`` (symbol -> 1 or -1: declared positive or negative) gets that sign.
    """
    rng = random.Random(seed)
    box, signs = box or {}, signs or {}
    points: list[dict] = []

    def draw(s):
        if s in box:
            return rng.uniform(*box[s])
        v = _draw(rng)
        return math.copysign(v, signs[s]) if s in signs else v

    for _ in range(count * tries_per_point):
        if len(points) == count:
            break
        point = {s: draw(s) for s in names}
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


def argument_named(prog, key, what: str, noun: str = "argument"):
    """The Input a user names (a Symbol, its name, or its code name), or an ArgumentError
    saying that ``what`` names no argument (no ``noun``) of the formula."""
    name = key if isinstance(key, str) else getattr(key, "name", None)
    for i in prog.inputs:
        if name in (i.symbol.name, i.name):
            return i
    known = ", ".join(sorted({i.symbol.name for i in prog.inputs}))
    raise ArgumentError(f"{what} names {key!r}, which is not a{'n' if noun[0] in 'aeiou' else ''} "
                        f"{noun} of the formula (its {noun}s: {known or 'none'})")


def domain_intervals(prog, domain) -> dict[str, tuple[float, float]]:
    """A user's sampling domain, ``{name or Symbol: (lo, hi)}``, by argument code name."""
    if domain is None:
        return {}
    if not isinstance(domain, dict):
        raise ArgumentError(f"domain must be a dict of variable -> (lo, hi), got {domain!r}")
    box = {}
    for key, interval in domain.items():
        arg = argument_named(prog, key, "domain", "variable")
        box[arg.name] = _interval(arg.symbol.name, interval)
    return box


def _interval(name: str, interval) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ArgumentError(f"domain of {name} must be a pair (lo, hi) of numbers, "
                            f"got {interval!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ArgumentError(f"domain of {name} must have finite lo < hi, got ({lo}, {hi})")
    return lo, hi


# -- random arrays ----------------------------------------------------------------------------


def dimension_symbols(prog) -> list[sp.Symbol]:
    """The symbolic dimensions of a matrix program's arguments, by name."""
    dims = {d for i in prog.inputs if isinstance(i.symbol, ARRAYS)
            for n in i.symbol.shape for d in n.free_symbols}  # H of a size 4*H too
    return sorted(dims, key=lambda d: d.name)


def check_sizes(prog, sizes: dict | None = None) -> dict:
    """Concrete sizes for the dimensions: the user's ``sizes`` (name or Symbol -> int), else
    3, 2, 4, 5, 6 in name order."""
    dims = dimension_symbols(prog)
    if sizes is None:
        return _fitting(prog, dims)
    if not isinstance(sizes, dict):
        raise ArgumentError(f"sizes must be a dict of dimension -> int, got {sizes!r}")
    chosen = {}
    for d, v in sizes.items():
        name = d if isinstance(d, str) else getattr(d, "name", None)
        dim = next((s for s in dims if s.name == name), None)
        if dim is None:
            raise ArgumentError(f"{d!r} is not a dimension of the formula "
                                f"({', '.join(s.name for s in dims) or 'none'})")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ArgumentError(f"the size of {name} must be a positive integer, got {v!r}")
        chosen[dim] = int(v)
    found = {d: chosen.get(d, CHECK_SIZES[k % len(CHECK_SIZES)]) for k, d in enumerate(dims)}
    if not fits(prog, found):
        raise ArgumentError(f"at the sizes {sizes_text(found)} a window of the formula (a "
                            "kernel, a pooling window) does not fit in its image")
    return found


def fits(prog, sizes: dict) -> bool:
    """Whether every N-D node (a convolution, a pooling) has a positive size at ``sizes``."""
    nodes = [n for n in postorder(prog.expr) if isinstance(n, LOWERED)]
    return all(sp.sympify(k).subs(sizes) >= 1 for n in nodes for k in n.shape)


def _fitting(prog, dims) -> dict:
    """The check sizes: 3, 2, 4, ... in name order; for a formula with N-D windows the first
    rotation of WINDOW_SIZES (or, failing them, a seeded random choice) where they fit."""
    if not any(isinstance(n, LOWERED) for n in postorder(prog.expr)):
        return {d: CHECK_SIZES[k % len(CHECK_SIZES)] for k, d in enumerate(dims)}
    pool = WINDOW_SIZES
    rng = random.Random(0)
    tries = [{d: pool[(k + r) % len(pool)] for k, d in enumerate(dims)} for r in range(len(pool))]
    tries += [{d: rng.choice(pool) for d in dims} for _ in range(500)]
    found = next((t for t in tries if fits(prog, t)), None)
    if found is None:
        raise ArgumentError("no small sizes fit the windows of the formula: give sizes=")
    return found


def trial_sizes(prog, fixed: dict, rng: random.Random) -> dict:
    """Distinct random sizes for the dimensions, except those the given arrays fix."""
    sizes: dict = {}
    derived: list = []
    for i in prog.inputs:
        if i.name in fixed and isinstance(i.symbol, ARRAYS):
            for dim, n in zip(i.symbol.shape, np.shape(fixed[i.name])):
                if isinstance(dim, sp.Symbol):
                    if sizes.setdefault(dim, n) != n:
                        raise ArgumentError(f"the point gives {dim} two sizes: {sizes[dim]}, {n}")
                elif not dim.is_Integer:
                    derived.append((dim, n, i.name))  # 4*H: read once the plain sizes are
                elif int(dim) != n:
                    raise ArgumentError(f"{i.name} must have {dim} at that axis, got {n}")
    _derived_sizes(derived, sizes)
    windows = any(isinstance(n, LOWERED) for n in postorder(prog.expr))
    pool = WINDOW_TRIALS if windows else TRIAL_SIZES
    for _ in range(500 if windows else 1):  # N-D: small sizes where every window fits
        drawn = dict(sizes)
        free = [n for n in pool if n not in drawn.values()]
        rng.shuffle(free)
        for dim in dimension_symbols(prog):
            if dim not in drawn:
                drawn[dim] = free.pop() if free else rng.randint(pool[0], pool[-1])
        if not windows or fits(prog, drawn) and math.prod(drawn.values()) <= WINDOW_COST:
            return drawn
    raise ArgumentError("no small random sizes fit the windows of the formula with the arrays "
                        "given")


def _derived_sizes(derived: list, sizes: dict) -> None:
    """Sizes that are expressions (a W of 4*H columns given at a point): each agrees with the
    plain sizes, or fixes its one unknown dimension (8 columns: H = 2)."""
    for _ in range(len(derived)):
        for dim, n, name in derived:
            known = dim.subs(sizes)
            unknown = sorted(known.free_symbols, key=lambda d: d.name)
            if not unknown and known != n:
                raise ArgumentError(f"{name} must have {dim} = {known} at that axis, got {n}")
            if len(unknown) == 1:
                roots = [r for r in sp.solve(sp.Eq(known, n), unknown[0])
                         if r.is_Integer and r > 0]
                if not roots:
                    raise ArgumentError(f"{name} has {n} at an axis of size {dim}: no size "
                                        f"{unknown[0]} gives that")
                sizes[unknown[0]] = int(roots[0])


KINDS = {  # what an array argument may be declared to hold, and how a trial draws one
    "one_hot": "one-hot rows: a single 1 per row, at a random column",
    "mask": "a 0/1 mask (each entry 1 with probability 1/2)",
    "spd": "a symmetric positive-definite matrix (A A^T + n I)",
    "positive": "entries uniform in (0.1, 2)",
    "probabilities": "rows of positive entries summing to 1",
}


def argument_kinds(prog, kinds) -> dict[str, str]:
    """A user's ``kinds`` (argument name or Symbol -> a KINDS name), by argument code name."""
    if kinds is None:
        return {}
    if not isinstance(kinds, dict):
        raise ArgumentError(f"kinds must be a dict of argument -> kind, got {kinds!r}")
    found = {}
    for key, kind in kinds.items():
        arg = argument_named(prog, key, "kinds")
        if kind not in KINDS:
            raise ArgumentError(f"unknown kind {kind!r} for {arg.symbol.name}: choose from "
                                f"{', '.join(KINDS)}")
        if not isinstance(arg.symbol, ARRAYS):
            raise ArgumentError(f"{arg.symbol.name} is a scalar: kinds are for arrays (domain= "
                                f"gives a scalar's interval)")
        found[arg.name] = kind
    return found


def drawing_rules(prog, domain=None, kinds=None) -> dict:
    """Per argument code name: its interval (``domain``) or its kind (``kinds``), never both;
    a matrix the formula declares ``symdiff.spd`` is drawn SPD unless the user says otherwise."""
    rules: dict = dict(domain_intervals(prog, domain))
    for name, kind in argument_kinds(prog, kinds).items():
        if name in rules:
            raise ArgumentError(f"{name} has both a domain and a kind: give one")
        rules[name] = kind
    declared = {n.arg for n in postorder(prog.expr) if isinstance(n, SPD)}
    for i in prog.inputs:
        if i.symbol in declared:
            rules.setdefault(i.name, "spd")
    return rules


def _of_kind(kind: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if kind == "mask":  # any number of axes
        return (rng.random(shape) < 0.5).astype(float)
    rows, cols = shape
    if kind == "one_hot":
        return np.eye(cols)[rng.integers(0, cols, size=rows)]
    if kind == "spd":
        a = rng.normal(size=shape)
        return a @ a.T + rows * np.eye(rows)
    if kind == "positive":
        return rng.uniform(0.1, 2.0, size=shape)
    p = rng.uniform(0.1, 1.0, size=shape)
    return p / p.sum(axis=1, keepdims=True)


def random_arguments(prog, sizes: dict, rng: np.random.Generator, positive: bool = False,
                     rules: dict | None = None) -> list:
    """Arguments in parameter order: normal arrays of the concrete shapes (|entries| + 0.1 when
    ``positive``), scalars in (0.1, 1); an argument in ``rules`` is uniform in its interval or
    drawn as its kind (``KINDS``)."""
    values = []
    for i in prog.inputs:
        shape = array_shape(i, sizes)
        rule = (rules or {}).get(i.name)
        if isinstance(rule, str):
            values.append(_of_kind(rule, shape, rng))
        elif rule is not None:
            values.append(rng.uniform(*rule, size=shape) if shape else float(rng.uniform(*rule)))
        elif shape:
            a = rng.normal(size=shape)
            values.append(np.abs(a) + 0.1 if positive else a)
        else:
            values.append(float(rng.uniform(0.1, 1.0)))
    return values


def array_shape(i, sizes: dict) -> tuple[int, ...]:
    """The concrete shape of input ``i`` at ``sizes`` (``()`` for a scalar)."""
    if not isinstance(i.symbol, ARRAYS):
        return ()
    return tuple(int(n) for n in i.symbol.subs(sizes).shape)


def finite_run(module, prog, sizes, rng, rules=None, fixed=None):
    """Arguments where the formula is finite (normal data, else positive data), the output.

    ``fixed`` (code name -> array) are the user's arrays; the others are drawn. None when the
    user's arrays are all the arguments and the formula is not finite there."""
    fixed = fixed or {}
    for positive in (False, True):
        for _ in range(5):
            drawn = random_arguments(prog, sizes, rng, positive, rules)
            args = [fixed.get(i.name, a) for i, a in zip(prog.inputs, drawn)]
            with np.errstate(all="ignore"):
                out, _ = module.forward(*args)
            if np.all(np.isfinite(out)):
                return args, out
            if len(fixed) == len(args):
                return None
    raise ArgumentError("found no random arrays where the formula is finite"
                        + (" with the arrays given" if fixed else ""))


def given_arrays(prog, point) -> dict:
    """A user's point of a matrix formula: argument (code) name -> float array or number."""
    if not isinstance(point, dict):
        raise ArgumentError(f"a point must be a dict of argument -> array, got {point!r}")
    fixed = {}
    for key, value in point.items():
        arg = argument_named(prog, key, "the point")
        name = arg.symbol.name
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ArgumentError(f"the value of {name} is not an array of numbers") from None
        if isinstance(arg.symbol, ARRAYS) and array.ndim != len(arg.symbol.shape):
            raise ArgumentError(f"{name} must be a {len(arg.symbol.shape)}-D array, got shape "
                                f"{array.shape}")
        if not isinstance(arg.symbol, ARRAYS) and array.ndim:
            raise ArgumentError(f"{name} is a scalar, got an array of shape {array.shape}")
        fixed[arg.name] = array if array.ndim else float(array)
    return fixed


def sizes_text(sizes: dict) -> str:
    return ", ".join(f"{d}={n}" for d, n in sizes.items())
