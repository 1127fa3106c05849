"""Every small formula, in a fixed order, and the oracle harness that judges symdiff on each one.

The grammar (``OPS``) has leaves (two variable slots, named constants, numbers), unary operations
(every unary function of symdiff's string syntax, negation, integer, rational and float powers),
binary operations (+ - * / **, atan2, Max, Min, hypot, log with a base), ternary ones (3-way Max
and Min, a Piecewise) and a *repeat* node b(f(u), g(u)) that uses one subtree twice. The size of
a tree is its number of operations (a repeat counts 3: b, f and g). ``count(n)`` is the number of
trees of size n and ``tree_at(n, rank)`` the rank-th of them (a bijection on 0..count(n)-1), so
the enumeration is indexable; ``sample(total, seed)`` is a reproducible slice spread over every
size and, within a size, over the whole rank range (an affine permutation), paired with a
*naming* that spells the two variable slots (half the time x, y; otherwise names that collide
with SymPy constants, SymPy functions, Python keywords and builtins, or symdiff's own ``d`` names).

``judge(item)`` runs one tree through symdiff and returns an outcome record (see ``OUTCOMES``).
The oracle is ``sympy.diff`` of the formula built here (symdiff's own functions spelled in plain
SymPy, so no derivative of symdiff's is trusted), evaluated with mpmath at ``DPS`` digits at
random points where every intermediate value, the value and every partial are finite and real,
away from kinks, and where the reference is well conditioned (see ``Point`` and ``tolerance``).
"""

from __future__ import annotations

import math
import random
import signal
import time
import traceback
from dataclasses import dataclass, field
from functools import cache, lru_cache

import mpmath
import numpy as np
import sympy as sp

import symdiff
from symdiff.functions import relu, sigmoid, softplus

MAX_SIZE = 5  # trees with up to this many operations
DPS = 40  # digits of the reference
EPS = 2.0 ** -52
REL = 1e-8  # relative tolerance at a well-conditioned point
FLOOR = 2.0 ** 12  # ... or this many float error units of the terms' magnitude (see tolerance)
COND = 2.0 ** 8  # ... or this many times its change when inputs and intermediates move
PERTURB = 16 * EPS  # relative size of the input perturbation that measures conditioning
INACCURATE = 1e-4  # a mismatch within this relative error is "inaccurate", beyond it "wrong"
KINK = 1e-6  # a point is at least this far (relative) from a kink or a branch boundary
HUGE = 1e120  # intermediate values beyond this (or nonzero below its inverse) are out of range
POINTS = 4  # points per formula
TRIES = 40  # candidate points before a formula counts as having no domain

# Outcomes, worst first: the record of a tree carries the worst of its findings.
HARNESS_STAGES = ("build", "oracle")  # SymPy building a tree, sympy.diff of it: before symdiff
OUTCOMES = ("crash", "wrong", "refused-defect", "check-false-alarm", "verify-false-alarm",
            "timeout", "inaccurate", "refused-ok", "no-domain", "skipped", "ok")
DEFECTS = ("crash", "wrong", "refused-defect", "check-false-alarm", "verify-false-alarm")


# ---------------------------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One production: ``text`` and ``py`` are format templates over the operands' texts."""

    key: str
    arity: int
    text: str  # the formula string syntax (None: not expressible as a string)
    py: str  # SymPy construction code (V('x') is a real Symbol)
    build: object  # operands -> SymPy expression as the user writes it
    ref: object = None  # operands -> the oracle's plain-SymPy form (default: build)


def _num(value):
    return lambda: value


def _leaves() -> list[Op]:
    ops = [Op("v0", 0, "{v0}", "V({v0!r})", None), Op("v1", 0, "{v1}", "V({v1!r})", None)]
    for name in ("pi", "E"):
        ops.append(Op(name, 0, name, f"sp.{name}", _num(getattr(sp, name))))
    for name in ("EulerGamma", "Catalan", "GoldenRatio"):  # no string spelling in symdiff
        ops.append(Op(name, 0, None, f"sp.{name}", _num(getattr(sp, name))))
    numbers = [("2", "sp.Integer(2)", sp.Integer(2)), ("(-1)", "sp.Integer(-1)", sp.Integer(-1)),
               ("(1/2)", "sp.Rational(1, 2)", sp.Rational(1, 2)),
               ("0.5", "sp.Float(0.5)", sp.Float(0.5)), ("3", "sp.Integer(3)", sp.Integer(3))]
    ops += [Op(f"n{t}", 0, t, p, _num(v)) for t, p, v in numbers]
    return ops


_FUNCS = ["exp", "log", "sqrt", "cbrt", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos",
          "atan", "acot", "asec", "acsc", "sinh", "cosh", "tanh", "coth", "sech", "csch", "asinh",
          "acosh", "atanh", "acoth", "asech", "acsch", "abs", "sign", "Heaviside", "erf", "erfc",
          "floor", "ceiling", "gamma", "loggamma", "sigmoid", "relu", "softplus", "log1p",
          "expm1"]
_SPECIAL = {
    "abs": (sp.Abs, "sp.Abs({0})"),
    "sigmoid": (sigmoid, "sigmoid({0})"), "relu": (relu, "relu({0})"),
    "softplus": (softplus, "softplus({0})"),
    "log1p": (lambda a: sp.log(1 + a), "sp.log(1 + {0})"),
    "expm1": (lambda a: sp.exp(a) - 1, "(sp.exp({0}) - 1)"),
}
_REF = {
    "sigmoid": lambda a: 1 / (1 + sp.exp(-a)),
    "relu": lambda a: sp.Max(0, a),
    "softplus": lambda a: sp.log(1 + sp.exp(a)),
}
# exponent text, SymPy code, value: integer, negative, rational and float powers
_POWERS = [("2", "2", sp.Integer(2)), ("3", "3", sp.Integer(3)), ("(-1)", "-1", sp.Integer(-1)),
           ("(-2)", "-2", sp.Integer(-2)), ("(1/2)", "sp.Rational(1, 2)", sp.Rational(1, 2)),
           ("(-1/2)", "sp.Rational(-1, 2)", sp.Rational(-1, 2)),
           ("(1/3)", "sp.Rational(1, 3)", sp.Rational(1, 3)),
           ("(3/2)", "sp.Rational(3, 2)", sp.Rational(3, 2)), ("0.5", "0.5", sp.Float(0.5)),
           ("1.5", "1.5", sp.Float(1.5)), ("2.0", "2.0", sp.Float(2.0)),
           ("(-0.5)", "-0.5", sp.Float(-0.5))]


def _pow_op(text, code, value):
    return Op(f"pow{text}", 1, f"({{0}}**{text})", f"({{0}})**{code}",
              lambda a: sp.Pow(a, value))


def _unary() -> list[Op]:
    ops = [Op("neg", 1, "(-{0})", "(-({0}))", lambda a: -a)]
    for name in _FUNCS:
        build, py = _SPECIAL.get(name, (getattr(sp, name, None), f"sp.{name}({{0}})"))
        ops.append(Op(name, 1, f"{name}({{0}})", py, build, _REF.get(name)))
    ops += [_pow_op(*p) for p in _POWERS]
    return ops


def _binary() -> list[Op]:
    return [
        Op("add", 2, "({0} + {1})", "({0} + {1})", lambda a, b: a + b),
        Op("sub", 2, "({0} - {1})", "({0} - {1})", lambda a, b: a - b),
        Op("mul", 2, "({0}*{1})", "({0})*({1})", lambda a, b: a * b),
        Op("div", 2, "({0}/{1})", "({0})/({1})", lambda a, b: a / b),
        Op("pow", 2, "({0}**{1})", "({0})**({1})", lambda a, b: a ** b),
        Op("atan2", 2, "atan2({0}, {1})", "sp.atan2({0}, {1})", sp.atan2),
        Op("Max", 2, "Max({0}, {1})", "sp.Max({0}, {1})", sp.Max),
        Op("Min", 2, "Min({0}, {1})", "sp.Min({0}, {1})", sp.Min),
        Op("hypot", 2, "hypot({0}, {1})", "sp.sqrt(({0})**2 + ({1})**2)",
           lambda a, b: sp.sqrt(a ** 2 + b ** 2)),
        Op("logb", 2, "log({0}, {1})", "sp.log({0}, {1})", sp.log),
    ]


def _ternary() -> list[Op]:
    return [
        Op("Max3", 3, "Max({0}, {1}, {2})", "sp.Max({0}, {1}, {2})", sp.Max),
        Op("Min3", 3, "Min({0}, {1}, {2})", "sp.Min({0}, {1}, {2})", sp.Min),
        Op("Piecewise", 3, "Piecewise(({0}, {2} > 0), ({1}, True))",
           "sp.Piecewise(({0}, ({2}) > 0), ({1}, True))",
           lambda a, b, c: sp.Piecewise((a, c > 0), (b, True))),
    ]


LEAVES, UNARY, BINARY, TERNARY = _leaves(), _unary(), _binary(), _ternary()
REPEAT_OUTER = BINARY[:4]  # b in b(f(u), g(u))
OPS = {op.key: op for op in LEAVES + UNARY + BINARY + TERNARY}

# A family: (arity, cost, number of labels). The repeat family's labels are (b, f, g) triples.
_FAMILIES = [("leaf", 0, 0, len(LEAVES)), ("unary", 1, 1, len(UNARY)),
             ("binary", 2, 1, len(BINARY)), ("ternary", 3, 1, len(TERNARY)),
             ("repeat", 1, 3, len(REPEAT_OUTER) * len(UNARY) ** 2)]

# Names for the two variable slots. Half the namings are plain; the others collide with SymPy
# constants (E, I, S, N, O, Q, pi), SymPy functions (beta, gamma, zeta, Gamma), Python keywords
# and builtins (lambda, sum, max), module names of generated code (math, np), a gradient name
# (dx beside x) or the output's name (out).
COLLIDING = ["E", "I", "S", "N", "O", "Q", "beta", "gamma", "lambda", "zeta", "Gamma", "pi",
             "sum", "max", "math", "np", "dx", "out"]
_PAIRS = [(c, "x") for c in COLLIDING] + [
    ("x", "dx"), ("dx", "x"), ("E", "pi"), ("I", "S"), ("lambda", "gamma"), ("sum", "max"),
    ("math", "np"), ("out", "N"), ("O", "Q"), ("beta", "zeta"), ("Gamma", "E"), ("y", "dy")]
NAMINGS = [("x", "y")] * len(_PAIRS) + _PAIRS


# ---------------------------------------------------------------------------------------------
# Counting and unranking
# ---------------------------------------------------------------------------------------------

@cache
def count(n: int) -> int:
    """The number of trees with exactly n operations.

    >>> count(0) == len(LEAVES)
    True
    """
    if n < 0:
        return 0
    return sum(labels * _seq(arity, n - cost) for _, arity, cost, labels in _FAMILIES)


@cache
def _seq(arity: int, m: int) -> int:
    """The number of ``arity``-tuples of trees whose sizes add up to m."""
    if m < 0:
        return 0
    if arity == 0:
        return 1 if m == 0 else 0
    return sum(count(s) * _seq(arity - 1, m - s) for s in range(m + 1))


def tree_at(n: int, rank: int) -> tuple:
    """The rank-th tree of size n: (key, children) or ("repeat", (b, f, g), (u,)).

    >>> tree_at(0, 0)
    ('v0', ())
    """
    if not 0 <= rank < count(n):
        raise IndexError(f"rank {rank} out of range for size {n}")
    for family, arity, cost, labels in _FAMILIES:
        per_label = _seq(arity, n - cost)
        block = labels * per_label
        if rank >= block:
            rank -= block
            continue
        label, rest = divmod(rank, per_label)
        children = _seq_at(arity, n - cost, rest)
        if family == "repeat":
            f_g = len(UNARY) ** 2
            b, fg = divmod(label, f_g)
            f, g = divmod(fg, len(UNARY))
            return ("repeat", (REPEAT_OUTER[b].key, UNARY[f].key, UNARY[g].key), children)
        table = {"leaf": LEAVES, "unary": UNARY, "binary": BINARY, "ternary": TERNARY}[family]
        return (table[label].key, children)
    raise AssertionError("unreachable: the blocks cover count(n)")


def _seq_at(arity: int, m: int, rank: int) -> tuple:
    if arity == 0:
        return ()
    for s in range(m + 1):
        tail = _seq(arity - 1, m - s)
        block = count(s) * tail
        if rank < block:
            head, rest = divmod(rank, tail)
            return (tree_at(s, head),) + _seq_at(arity - 1, m - s, rest)
        rank -= block
    raise AssertionError("unreachable")


def size_of(tree: tuple) -> int:
    if tree[0] == "repeat":
        return 3 + size_of(tree[2][0])
    return (0 if OPS[tree[0]].arity == 0 else 1) + sum(size_of(c) for c in tree[1])


def _children(tree):
    return tree[2] if tree[0] == "repeat" else tree[1]


def slots(tree: tuple) -> set[str]:
    """The variable slots (v0, v1) the tree uses."""
    if tree[0] in ("v0", "v1"):
        return {tree[0]}
    return set().union(*[slots(c) for c in _children(tree)]) if _children(tree) else set()


def keys(tree: tuple) -> set[str]:
    """Every operation and leaf key in the tree."""
    if tree[0] == "repeat":
        return set(tree[1]) | keys(tree[2][0])
    return {tree[0]}.union(*[keys(c) for c in tree[1]])


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

SHARES = {1: 0.08, 2: 0.14, 3: 0.2, 4: 0.24, 5: 0.34}  # of a sample, by size (size 0: all)
# A uniform draw over all trees of a size is almost always a ternary node of three constants
# (the count grows as len(LEAVES)**leaves); the sample instead draws the shape node by node with
# these family weights and each label uniformly, and a leaf is a variable with VAR_LEAF odds.
FAMILY_WEIGHTS = {"unary": 5, "binary": 4, "ternary": 1, "repeat": 1}
VAR_LEAF = 0.55


@dataclass(frozen=True)
class Item:
    """One sampled formula: a tree (size, rank) and a naming of its variable slots."""

    size: int
    rank: int
    naming: int

    @property
    def tree(self) -> tuple:
        return tree_at(self.size, self.rank)

    @property
    def names(self) -> dict:
        v0, v1 = NAMINGS[self.naming]
        return {"v0": v0, "v1": v1}

    def __str__(self) -> str:
        return f"Item({self.size}, {self.rank}, {self.naming})"


def sample(total: int, seed: int = 0) -> list[Item]:
    """``total`` distinct items, reproducibly (same total and seed, same list), over sizes
    0..MAX_SIZE: every tree of size 0 with a variable, then SHARES of the rest by size.

    >>> len(sample(50)) == 50 and sample(50) == sample(50)
    True
    """
    items = [Item(0, r, r % len(NAMINGS)) for r in range(count(0)) if slots(tree_at(0, r))]
    left = total - len(items)
    quotas = {n: int(left * SHARES[n]) for n in range(1, MAX_SIZE + 1)}
    quotas[MAX_SIZE] += left - sum(quotas.values())
    carry = 0  # what a small size could not fill (size 1 has few trees) goes to the next
    for n, quota in quotas.items():
        got = _stratum(n, quota + carry, seed)
        carry = quota + carry - len(got)
        items += got
    return items[:total]


def _stratum(n: int, quota: int, seed: int) -> list[Item]:
    rng = random.Random(f"symdiff-enumerate/{seed}/{n}")
    seen, out = set(), []
    for _ in range(50 * quota + 100):  # small sizes may have fewer distinct trees than asked
        if len(out) == quota:
            break
        tree = draw(n, rng)
        if not slots(tree):
            continue
        rank = rank_of(tree)
        if rank in seen:
            continue
        seen.add(rank)
        out.append(Item(n, rank, rng.randrange(len(NAMINGS))))
    return out


def draw(n: int, rng: random.Random) -> tuple:
    """A random tree of size n (the sample's distribution; see FAMILY_WEIGHTS)."""
    if n == 0:
        if rng.random() < VAR_LEAF:
            return (rng.choice(["v0", "v0", "v1"]), ())
        rare = {"EulerGamma", "Catalan", "GoldenRatio"}  # no string spelling: a third as often
        consts = LEAVES[2:]
        return (rng.choices(consts, [1 if op.key in rare else 3 for op in consts])[0].key, ())
    families = [f for f in FAMILY_WEIGHTS if n >= (3 if f == "repeat" else 1)]
    family = rng.choices(families, [FAMILY_WEIGHTS[f] for f in families])[0]
    if family == "repeat":
        b, f, g = rng.choice(REPEAT_OUTER), rng.choice(UNARY), rng.choice(UNARY)
        return ("repeat", (b.key, f.key, g.key), (draw(n - 3, rng),))
    table = {"unary": UNARY, "binary": BINARY, "ternary": TERNARY}[family]
    op = rng.choice(table)
    sizes = rng.choice(_compositions(n - 1, op.arity))
    return (op.key, tuple(draw(s, rng) for s in sizes))


@cache
def _compositions(m: int, parts: int) -> list[tuple]:
    if parts == 1:
        return [(m,)]
    return [(s,) + rest for s in range(m + 1) for rest in _compositions(m - s, parts - 1)]


def rank_of(tree: tuple) -> int:
    """The inverse of tree_at: tree_at(size_of(t), rank_of(t)) == t."""
    n = size_of(tree)
    offset = 0
    for family, arity, cost, labels in _FAMILIES:
        per_label = _seq(arity, n - cost)
        if _family_of(tree) != family:
            offset += labels * per_label
            continue
        label = _label_of(tree, family)
        return offset + label * per_label + _seq_rank(_children(tree), n - cost)
    raise AssertionError("unreachable")


def _family_of(tree) -> str:
    if tree[0] == "repeat":
        return "repeat"
    return {0: "leaf", 1: "unary", 2: "binary", 3: "ternary"}[OPS[tree[0]].arity]


def _label_of(tree, family) -> int:
    if family == "repeat":
        b, f, g = tree[1]
        u = [op.key for op in UNARY]
        return ([op.key for op in REPEAT_OUTER].index(b) * len(u) + u.index(f)) * len(u) \
            + u.index(g)
    table = {"leaf": LEAVES, "unary": UNARY, "binary": BINARY, "ternary": TERNARY}[family]
    return [op.key for op in table].index(tree[0])


def _seq_rank(children, m: int) -> int:
    if not children:
        return 0
    first, rest = children[0], children[1:]
    s0 = size_of(first)
    offset = sum(count(s) * _seq(len(rest), m - s) for s in range(s0))
    return offset + rank_of(first) * _seq(len(rest), m - s0) + _seq_rank(rest, m - s0)


# ---------------------------------------------------------------------------------------------
# Building a tree as SymPy (as the user writes it, and the oracle's form) and as text
# ---------------------------------------------------------------------------------------------

def build(tree: tuple, names: dict, oracle: bool = False):
    """The SymPy expression of a tree; ``oracle`` spells symdiff's own functions in plain SymPy."""
    key, rest = tree[0], tree[1:]
    if key == "repeat":
        (b, f, g), (u,) = rest
        arg = build(u, names, oracle)
        return _apply(OPS[b], [_apply(OPS[f], [arg], oracle), _apply(OPS[g], [arg], oracle)],
                      oracle)
    if key in ("v0", "v1"):
        return sp.Symbol(names[key], real=True)
    return _apply(OPS[key], [build(c, names, oracle) for c in rest[0]], oracle)


def _apply(op: Op, args: list, oracle: bool):
    fn = op.ref if oracle and op.ref is not None else op.build
    return fn(*args)


def text(tree: tuple, names: dict, template: str = "text") -> str | None:
    """The formula string of a tree (None if it has no string spelling); ``py``: SymPy code."""
    key, rest = tree[0], tree[1:]
    if key == "repeat":
        (b, f, g), (u,) = rest
        arg = text(u, names, template)
        if arg is None:
            return None
        inner = [getattr(OPS[f], template).format(arg), getattr(OPS[g], template).format(arg)]
        return getattr(OPS[b], template).format(*inner)
    fmt = getattr(OPS[key], template)
    if fmt is None:
        return None
    if key in ("v0", "v1"):
        return fmt.format(**names)
    parts = [text(c, names, template) for c in rest[0]]
    return None if any(p is None for p in parts) else fmt.format(*parts)


def string_form(tree: tuple, names: dict) -> tuple[str | None, str]:
    """The formula string for symdiff's parser, or None and the reason it has none."""
    used = {names[s] for s in slots(tree)}
    k = keys(tree)
    if k & {"EulerGamma", "Catalan", "GoldenRatio"}:
        return None, "a named constant with no string spelling"
    clash = sorted(used & (k & {"pi", "E"}))
    if clash:
        return None, f"the variable {clash[0]} and the constant {clash[0]} in one formula"
    return text(tree, names), ""


# ---------------------------------------------------------------------------------------------
# The oracle: reference values, error scales, conditioning, kinks
# ---------------------------------------------------------------------------------------------

class NoOracle(Exception):
    """sympy.diff left something the oracle cannot evaluate (an unevaluated derivative)."""


def _drop_step_derivatives(expr):
    """sympy.diff leaves DiracDelta (of sign, Heaviside), Derivative(floor(u)) and Subs(0, ..);
    all are 0 away from the kinks, which every point avoids."""
    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    steps = (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)
    expr = expr.replace(lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, steps),
                        lambda e: sp.S.Zero)
    expr = expr.replace(lambda e: isinstance(e, sp.Subs) and e.expr == 0, lambda e: sp.S.Zero)
    if expr.has(sp.Derivative, sp.Subs):
        raise NoOracle(f"sympy.diff leaves an unevaluated derivative: {expr}")
    return expr


_NAMES = ["exp", "log", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan",
          "acot", "asec", "acsc", "sinh", "cosh", "tanh", "coth", "sech", "csch", "asinh",
          "acosh", "atanh", "acoth", "asech", "acsch", "erf", "erfc", "gamma", "loggamma",
          "polygamma", "atan2", "sign", "floor"]
_MP = {getattr(sp, n): getattr(mpmath, n) for n in _NAMES}
_HALF = mpmath.mpf(0.5)
_MP.update({sp.Abs: abs, sp.ceiling: mpmath.ceil, sp.Max: max, sp.Min: min,
            sp.Heaviside: lambda t, at_zero=_HALF: (
                mpmath.mpf(1) if t > 0 else mpmath.mpf(0) if t < 0 else at_zero)})
_MP.update({sigmoid: lambda t: 1 / (1 + mpmath.exp(-t)), relu: lambda t: max(0, t),
            softplus: lambda t: mpmath.log1p(mpmath.exp(t))})  # for the user's form only
_RELATIONS = {sp.StrictGreaterThan: lambda a, b: a > b, sp.GreaterThan: lambda a, b: a >= b,
              sp.StrictLessThan: lambda a, b: a < b, sp.LessThan: lambda a, b: a <= b,
              sp.Equality: lambda a, b: a == b, sp.Unequality: lambda a, b: a != b}
_KINK_AT_ZERO = (sp.Abs, sp.sign, sp.Heaviside, sp.atan2)  # atan2: the cut y = 0 (first arg)


class _Eval:
    """SymPy expressions evaluated at one point with mpmath, walking the DAG once (memoised).

    A Piecewise evaluates only the branch it takes (as the README's convention says symdiff's
    code does); every kink met (|u|, sign, Heaviside, floor, ceiling, Max/Min ties, Piecewise
    conditions, atan2's cut) records its relative gap in ``gaps``. Values may be complex;
    callers reject those points."""

    def __init__(self, env: dict, jitter=None, limit=HUGE):
        self.memo, self.gaps, self.jitter, self.limit = dict(env), [], jitter, limit

    def __call__(self, e):
        got = self.memo.get(e)
        if got is None:
            got = self._compute(e)
            if isinstance(got, mpmath.mpc) and got.imag == 0:  # csch of a real, for one
                got = got.real
            if self.jitter is not None and not e.is_Atom:
                got = got * (1 + self.jitter())  # a rounding error at each step, as floats
                # make, constant steps too (log(0.5, 1/2) is 1 or 1 - 1e-16: its power's
                # gradient is 0 or 3e-17); not on numbers: x**(-1) must stay a reciprocal
            self.memo[e] = got
        return got

    def _compute(self, e):
        if e.is_Atom:  # a number or a named constant; a constant expression is evaluated
            return _const(e)  # node by node, so that a complex intermediate is seen
        if isinstance(e, sp.Piecewise):
            for expr, cond in e.args:
                if self.truth(cond):
                    return self(expr)
            return mpmath.nan
        if isinstance(e, sp.log) and isinstance(e.args[0], sp.Add) and 1 in e.args[0].args:
            # log(1 + exp(t)) at t = -221 is 0 at 40 digits: log1p keeps it (softplus)
            rest = self(sp.Add(*[a for a in e.args[0].args if a != 1]))
            return mpmath.log1p(rest)
        args = [self(a) for a in e.args]
        if isinstance(e, sp.Add):
            return mpmath.fsum(args)
        if isinstance(e, sp.Mul):
            return mpmath.fprod(args)
        if isinstance(e, sp.Pow):
            return mpmath.power(*args)
        if any(abs(a) > self.limit for a in args):  # cosh(gamma(50**2)) takes mpmath minutes
            raise OverflowError("a function of an operand out of range")
        self._kinks(e, args)
        fn = _MP.get(type(e))
        if fn is None:
            raise NoOracle(f"no mpmath function for {type(e).__name__}")
        return fn(*args)

    def _kinks(self, e, args) -> None:
        if isinstance(e, _KINK_AT_ZERO):
            self.gaps.append(_gap(args[0]))
        elif isinstance(e, (sp.floor, sp.ceiling)):
            self.gaps.append(_gap(args[0] - mpmath.nint(args[0])) / max(1, abs(args[0])))
        elif isinstance(e, (sp.Max, sp.Min)):
            self.gaps += [_gap(a - b) for i, a in enumerate(args) for b in args[i + 1:]]

    def truth(self, cond) -> bool:
        if cond is sp.true or cond is sp.false:
            return bool(cond)
        if isinstance(cond, sp.core.relational.Relational):
            lhs, rhs = self(cond.lhs), self(cond.rhs)
            self.gaps.append(_gap(lhs - rhs))
            return _RELATIONS[type(cond)](lhs, rhs)
        if isinstance(cond, sp.And):
            return all(self.truth(c) for c in cond.args)
        if isinstance(cond, sp.Or):
            return any(self.truth(c) for c in cond.args)
        if isinstance(cond, sp.Not):
            return not self.truth(cond.args[0])
        raise NoOracle(f"cannot evaluate the condition {cond}")


def _sigmoid_argument(node):
    """``u`` when ``node`` is 1/(1 + exp(u)) (the plain form of sigmoid(-u)), or a negative
    integer power of 1 + exp(u) (SymPy's form of sigmoid(-u)**k), else None."""
    if not (isinstance(node, sp.Pow) and node.exp.is_Integer and node.exp < 0
            and isinstance(node.base, sp.Add)):
        return None
    terms = node.base.args
    if len(terms) == 2 and sp.S.One in terms:
        e = terms[0] if terms[1] == 1 else terms[1]
        if isinstance(e, sp.exp) and e.args[0].free_symbols:
            return e.args[0]
    return None


def _gap(v):
    if not isinstance(v, mpmath.mpf):
        raise TypeError("a complex kink argument")
    return abs(v) / max(1, abs(v))


@lru_cache(maxsize=8192)
def _const(e):
    """A number (pi, sqrt(2), asin(GoldenRatio), zoo) at DPS digits, complex if it is."""
    v = sp.N(e, DPS + 10)
    if v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return mpmath.nan
    re, im = v.as_real_imag()
    real = mpmath.mpf(str(re)) if re != 0 else mpmath.mpf(0)
    return real if im == 0 else mpmath.mpc(real, mpmath.mpf(str(im)))


@lru_cache(maxsize=1024)
def _derivative_of(func, nargs: int, index: int):
    """(dummies, d func(dummies) / d dummies[index]) for a function class, once per class."""
    dummies = tuple(sp.Dummy(f"a{i}", real=True) for i in range(nargs))
    return dummies, _drop_step_derivatives(sp.diff(func(*dummies), dummies[index]))


class Oracle:
    """sympy.diff of one formula (its plain-SymPy form), evaluated with mpmath, and the
    per-point facts the comparison needs: value, partials, their error scales, usability."""

    def __init__(self, expr, wrt: list, user=None):
        self.expr, self.wrt = expr, wrt
        # The formula as the user wrote it, when its plain-SymPy form differs: SymPy simplifies
        # sigmoid(log(x)) = 1/(1 + exp(-log(x))) to x/(x + 1), real where log(x) is not, so a
        # point must also keep every intermediate of the user's form real.
        self.user = user if user is not None and user != expr else None
        self.partials = [_drop_step_derivatives(sp.diff(expr, v)) for v in wrt]
        self.order = symdiff.dag.postorder(expr)

    def reference(self, point, limit=HUGE):
        """(evaluator, [value, partials...]) at a point (mpf values, possibly complex)."""
        ev = _Eval({v: mpmath.mpf(x) for v, x in zip(self.wrt, point)}, limit=limit)
        return ev, [ev(self.expr)] + [ev(p) for p in self.partials]

    def at(self, point: list[float]):
        """([value, partials], tolerances) at a point of floats, or None where not usable."""
        with mpmath.workdps(DPS):
            try:
                ev, main = self.reference(point)
                if not all(_real(v) for v in main) or not _in_range(main):
                    return None
                if not all(_real(v) for v in ev.memo.values()) or not _in_range(ev.memo.values()):
                    return None  # a complex or out-of-range intermediate value
                if any(g <= KINK for g in ev.gaps) or not self._user_real(point):
                    return None
                scales = self._scales(ev)
                deltas = self._perturbation(point, main, ev)
                if any(t == 0 for t in main[1:]) and self._shaky_locals(point, ev):
                    return None
            except (ZeroDivisionError, ValueError, OverflowError, TypeError, ArithmeticError):
                return None
            if scales is None or deltas is None:
                return None
        tol = []
        for t, sc, d in zip(main, scales, deltas):
            t_abs, sc = abs(float(t)), float(sc)
            if COND * d > 1e-6 * max(t_abs, sc):  # ill conditioned: a comparison means little
                return None
            tol.append(max(REL * t_abs, FLOOR * EPS * sc, COND * d))
        return [float(t) for t in main], tol

    def _user_real(self, point) -> bool:
        if self.user is None:
            return True
        ev = _Eval({v: mpmath.mpf(x) for v, x in zip(self.wrt, point)})
        ev(self.user)
        return (all(_real(v) for v in ev.memo.values()) and _in_range(ev.memo.values())
                and all(g > KINK for g in ev.gaps))

    def _scales(self, ev):
        """The magnitude of the terms: for the value, the sum over nodes of |adjoint| * |node|
        (a first-order bound on its rounding errors, in units of eps); for each partial, the
        sum over all paths of the product of |local partials|, which is what any chain-rule
        evaluation adds up (so cancellation among those terms is allowed for)."""
        adj = {self.expr: mpmath.mpf(1)}
        for node in reversed(self.order):
            w = adj.get(node)
            if w is None or node.is_Symbol or not node.free_symbols or node not in ev.memo:
                continue
            for child, local in self._terms(node, ev):
                if not _real(local):
                    return None
                adj[child] = adj.get(child, mpmath.mpf(0)) + w * abs(local)
        value = mpmath.fsum(w * abs(ev.memo[n]) for n, w in adj.items() if n in ev.memo)
        out = [value] + [adj.get(v, mpmath.mpf(0)) for v in self.wrt]
        return out if all(_real(s) and abs(s) < HUGE for s in out) else None

    def _terms(self, node, ev):
        """(operand, magnitude of the terms of its local partial) for the scales: the local
        partial, except where the textbook derivative of a function subtracts from 1: any
        chain-rule code computes sigmoid' = s*(1 - s), tanh' = 1 - tanh**2, coth' = 1 - coth**2
        (PyTorch, JAX and symdiff alike), whose terms are s and s**2 (1 and tanh**2), so
        where s saturates it is 0 to within eps of them, not to a relative error."""
        arg = _sigmoid_argument(node)
        if arg is not None and node in ev.memo:  # s**k, with its k s**(k-1) * s*(1 - s)
            k = -int(node.exp)
            out = abs(ev.memo[node])
            return [(arg, k * out * (1 + mpmath.root(out, k)))]
        if isinstance(node, (sp.tanh, sp.coth)) and node in ev.memo:
            return [(node.args[0], 1 + ev.memo[node] ** 2)]
        return self._locals(node, ev)

    def _locals(self, node, ev):
        """(operand, local partial value) for each operand with a variable behind it."""
        args, vals = node.args, [ev.memo.get(a) for a in node.args]
        if isinstance(node, sp.Piecewise):
            taken = next(e for e, c in node.args if ev.truth(c))
            return [(taken, mpmath.mpf(1))]
        if isinstance(node, (sp.Max, sp.Min)):
            top = ev.memo[node]
            return [(next(a for a, v in zip(args, vals) if v == top), mpmath.mpf(1))]
        out = []
        for i, a in enumerate(args):
            if not a.free_symbols:
                continue
            if isinstance(node, sp.Add):
                local = mpmath.mpf(1)
            elif isinstance(node, sp.Mul):
                local = mpmath.fprod(v for j, v in enumerate(vals) if j != i)
            elif isinstance(node, sp.Pow):
                b, p = vals
                local = p * mpmath.power(b, p - 1) if i == 0 else ev.memo[node] * mpmath.log(b)
            else:
                dummies, deriv = _derivative_of(node.func, len(args), i)
                local = _Eval(dict(zip(dummies, vals)))(deriv)
            out.append((a, local))
        return out

    def _perturbation(self, point, main, ev0):
        """The largest change of value and partials when the inputs and the result of every
        step (of the formula and of its partials) are rounded by up to PERTURB (relative,
        independently, each step computed from its rounded operands): how much an honest
        float evaluation may differ from the exact one here (log(erf(y)) at y = 5.5, or
        1/sqrt(1 - u**2) at u = expm1(t) near -1, lose digits whatever the program)."""
        rng = random.Random(repr(point))
        worst = [mpmath.mpf(0)] * len(main)
        for _ in range(2):
            moved = {v: mpmath.mpf(x) * (1 + mpmath.mpf(rng.uniform(-PERTURB, PERTURB)))
                     for v, x in zip(self.wrt, point)}
            ev = _Eval(moved, jitter=lambda: mpmath.mpf(rng.uniform(-PERTURB, PERTURB)))
            rows = [ev(self.expr)] + [ev(p) for p in self.partials]
            if not all(_real(v) for v in rows) or any(g <= KINK for g in ev.gaps):
                return None
            worst = [max(w, abs(r - t)) for w, r, t in zip(worst, rows, main)]
        return [float(w) for w in worst]


    def rounds_onto_a_singularity(self, point, want) -> bool:
        """Looked at only where generated code failed (so the points judged stay the same): does
        rounding every step up by PERTURB, or every step down, change the value or a partial
        by more than its size, or make it undefined? erf(6.5) is 1 - 4e-20: rounded up it is
        over 1, and -log(2)/log(erf(x)) jumps from +1.7e19 to -inf. The random perturbation
        of ``at`` may miss that; floats compute erf(6.5) = 1.0 and the log's pole."""
        with mpmath.workdps(DPS):
            for sign in (1, -1):
                ev = _Eval({v: mpmath.mpf(x) for v, x in zip(self.wrt, point)},
                           jitter=lambda sign=sign: sign * mpmath.mpf(PERTURB))
                try:
                    rows = [ev(self.expr)] + [ev(d) for d in self.partials]
                except (ZeroDivisionError, ValueError, OverflowError, TypeError, ArithmeticError):
                    return True
                if any(not _real(r) or abs(r - w) > abs(w) for r, w in zip(rows, want)):
                    return True
        return False

    def _shaky_locals(self, point, ev0) -> bool:
        """Does a local partial change by more than its size when every step is rounded by up
        to PERTURB? Then floats determine none of its digits (erf(7.8) rounds to 1.0, where
        acos' is infinite), and code may compute 0 * inf behind a branch that is not taken,
        where the exact partial is 0 and no tolerance allows anything (only looked at there)."""
        rng = random.Random(repr(point) + "locals")
        ev = _Eval({v: mpmath.mpf(x) for v, x in zip(self.wrt, point)},
                   jitter=lambda: mpmath.mpf(rng.uniform(-PERTURB, PERTURB)))
        ev(self.expr)
        for node in self.order:
            if node.is_Symbol or not node.free_symbols or node not in ev0.memo:
                continue
            if isinstance(node, (sp.Piecewise, sp.Max, sp.Min)):
                continue  # 1 on the branch taken: nothing to round
            if any(a.free_symbols and not (a in ev0.memo and a in ev.memo) for a in node.args):
                continue  # log(1 + u) is evaluated as log1p(u): 1 + u has no value of its own
            for (_, exact), (_, moved) in zip(self._locals(node, ev0), self._locals(node, ev)):
                if not (_real(exact) and _real(moved)) or abs(moved - exact) > abs(exact):
                    return True
        return False


def _real(v) -> bool:
    """A finite real mpmath number; mpmath returns some real values as complex with a zero
    imaginary part (csch of a real), which count as real."""
    if isinstance(v, mpmath.mpc):
        return v.imag == 0 and mpmath.isfinite(v.real)
    return isinstance(v, mpmath.mpf) and mpmath.isfinite(v)


def _in_range(values) -> bool:
    return all(abs(v) < HUGE and (v == 0 or abs(v) > 1 / HUGE) for v in values)


# ---------------------------------------------------------------------------------------------
# The harness: one tree through symdiff, one outcome record
# ---------------------------------------------------------------------------------------------

class Timeout(BaseException):
    """The per-formula time limit passed (a BaseException, so no `except Exception` eats it)."""


@dataclass
class Record:
    """What happened to one formula. ``failures`` are dicts: kind (an outcome), stage, path
    (sympy or string), backend, exc (exception type), message."""

    item: str
    size: int
    python: str  # SymPy code that rebuilds the formula (V(name) is a real Symbol)
    string: str | None  # the formula string given to symdiff's parser
    wrt: list
    outcome: str = "ok"
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    points: int = 0
    checked: bool = False
    stage: str = ""  # where a timeout struck
    seconds: float = 0.0

    def fail(self, kind: str, stage: str, path: str = "", backend: str = "", exc: str = "",
             message: str = "") -> None:
        self.failures.append({"kind": kind, "stage": stage, "path": path, "backend": backend,
                              "exc": exc, "message": message[:400]})

    def finish(self) -> Record:
        kinds = [f["kind"] for f in self.failures]
        self.outcome = next((o for o in OUTCOMES if o in kinds), self.outcome)
        return self


def points_for(oracle: Oracle, key: str, count_: int = POINTS, tries: int = TRIES):
    """Up to ``count_`` usable points (with reference and tolerances), from ``tries`` random
    candidates: mostly in [-3, 3], some in [-1, 1] and some in [-12, 12]."""
    rng = random.Random(key)
    found = []
    for _ in range(tries):
        point = []
        for _v in oracle.wrt:
            r = rng.random()
            width = 3.0 if r < 0.6 else 1.0 if r < 0.8 else 12.0
            point.append(rng.uniform(-width, width))
        got = oracle.at(point)
        if got is not None:
            found.append((point, *got))
            if len(found) == count_:
                break
    return found


def judge(item: Item, *, check_verify: bool = False, timeout: float | None = None,
          seed: int = 0) -> Record:
    """Run one sampled formula through symdiff and the oracle; never raises (but Ctrl-C)."""
    tree, names = item.tree, item.names
    string, why = string_form(tree, names)
    rec = Record(str(item), item.size, text(tree, names, "py"), string, [])
    if string is None:
        rec.notes.append(f"string path skipped: {why}")
    start = time.perf_counter()
    if timeout:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    stage = ["build"]
    try:
        _judge(rec, tree, names, check_verify, f"{item}/{seed}", stage)
    except Timeout:  # in building the formula or the oracle, SymPy's time, not symdiff's
        kind = "skipped" if stage[0] in HARNESS_STAGES else "timeout"
        rec.failures.append({"kind": kind, "stage": stage[0], "path": "", "backend": "",
                             "exc": "Timeout", "message": f"over {timeout} s"})
        rec.stage = stage[0]
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    rec.seconds = time.perf_counter() - start
    return rec.finish()


def _on_alarm(signum, frame):
    raise Timeout()


def _judge(rec, tree, names, check_verify, key, stage) -> None:
    try:
        user = build(tree, names)
        custom = keys(tree) & {"sigmoid", "relu", "softplus"}
        ref = build(tree, names, oracle=True) if custom else user
    except Exception as exc:  # SymPy refuses to build it (e.g. I > 0): not a symdiff formula
        rec.fail("skipped", "build", exc=type(exc).__name__, message=str(exc))
        return
    order = [names[s] for s in ("v0", "v1") if s in slots(tree)]
    free = {s.name for s in user.free_symbols}
    rec.wrt = [n for n in dict.fromkeys(order) if n in free]
    if not rec.wrt or not isinstance(user, sp.Expr):
        rec.fail("skipped", "build", message="constant after SymPy's evaluation")
        return
    wrt = [sp.Symbol(n, real=True) for n in rec.wrt]
    stage[0] = "oracle"
    try:
        oracle = Oracle(ref, wrt, user)
        pts = points_for(oracle, key)
    except NoOracle as exc:
        rec.fail("skipped", "oracle", message=str(exc))
        return
    except Exception as exc:  # the harness's own limit (SymPy or mpmath), reported as such
        rec.fail("skipped", "oracle", exc=type(exc).__name__, message="oracle error: " + _tb(exc))
        return
    rec.points = len(pts)
    if not pts:
        _no_domain(rec, user, wrt)
        return
    programs = {}
    for path in ("sympy", "string"):
        if path == "string" and rec.string is None:
            continue
        formula, names_wrt = (user, wrt) if path == "sympy" else (rec.string, rec.wrt)
        stage[0] = f"lower ({path})"
        prog = _lower(rec, path, formula, names_wrt)
        if prog is not None:
            programs[path] = (prog, _run_backends(rec, path, prog, pts, stage, oracle))
    if check_verify and "sympy" in programs:
        rec.checked = True
        _check_and_verify(rec, user, wrt, oracle, programs["sympy"], stage)


def _no_domain(rec, user, wrt) -> None:
    """No usable point: symdiff may refuse (right if the formula is nowhere real) or lower."""
    try:
        symdiff.lower(user, wrt=wrt, args=wrt)
        rec.fail("no-domain", "oracle", message="no point with a finite real value and "
                 "gradient found; symdiff lowers it")
    except symdiff.SymdiffError as exc:
        rec.fail("refused-ok", "lower (sympy)", "sympy", exc=type(exc).__name__,
                 message=str(exc))
    except Exception as exc:
        rec.fail("crash", "lower (sympy)", "sympy", exc=type(exc).__name__, message=_tb(exc))


def _lower(rec, path, formula, wrt):
    try:
        return symdiff.lower(formula, wrt=wrt, args=wrt)
    except symdiff.SymdiffError as exc:
        ok = _name_clash(rec, path) or _undeclared(rec, path, exc)
        kind = "refused-ok" if ok else "refused-defect"
        rec.fail(kind, "lower", path, exc=type(exc).__name__, message=str(exc))
    except Exception as exc:
        rec.fail("crash", "lower", path, exc=type(exc).__name__, message=_tb(exc))
    return None


def _name_clash(rec, path) -> bool:
    """A string that calls a function by the name of one of its declared variables
    (gamma(u)*gamma): refusing that ambiguity by name is legitimate."""
    return path == "string" and any(f"{n}(" in rec.string for n in rec.wrt)


def _undeclared(rec, path, exc) -> bool:
    """A string naming a variable that args=wrt leaves out: SymPy's constructors folded it away
    in the SymPy form (Piecewise((y, c(dy)), (y, True)) is y), the parser keeps what the text
    says, so lower(text, wrt, args=wrt) is rightly refused with the missing name."""
    if path != "string" or not isinstance(exc, symdiff.ArgumentError):
        return False
    missing = str(exc).partition("missing: ")[2].split(", ")
    return all(m and m not in rec.wrt and m in rec.string for m in missing)


def _run_backends(rec, path, prog, pts, stage, oracle) -> bool:
    """Generated code of both backends vs the oracle at every point; True when all agree."""
    good = True
    for backend in ("math", "numpy"):
        stage[0] = f"source ({path}, {backend})"
        try:
            prog.source(backend)
            stage[0] = f"compile ({path}, {backend})"
            module = prog.compile(backend)
        except symdiff.SymdiffError as exc:
            rec.fail("refused-defect", "source", path, backend, type(exc).__name__, str(exc))
            good = False
            continue
        except Exception as exc:
            rec.fail("crash", "source", path, backend, type(exc).__name__, _tb(exc))
            good = False
            continue
        stage[0] = f"run ({path}, {backend})"
        good &= _run(rec, path, backend, module, pts, oracle)
    return good


def _run(rec, path, backend, module, pts, oracle) -> bool:
    try:
        rows = _values(module, backend, [p for p, _, _ in pts], len(rec.wrt))
    except Exception as exc:
        rec.fail("crash", "run", path, backend, type(exc).__name__, _tb(exc))
        return False
    for (point, want, tol), got in zip(pts, rows):
        fragile = any(w != 0 and t >= abs(w) for w, t in zip(want, tol))  # an exact 0 is not
        failed = isinstance(got, Exception) or not all(_finite(g) for g in got)
        if failed and (fragile or oracle.rounds_onto_a_singularity(point, want)):
            continue  # no digit is determined here: an inf, nan or raise is honest
        if isinstance(got, Exception):
            rec.fail("crash", "run", path, backend, type(got).__name__, _tb(got))
            return False
        bad = _mismatch(rec.wrt, want, tol, got)
        if bad:
            at = ", ".join(f"{n}={v!r}" for n, v in zip(rec.wrt, point))
            kind = "inaccurate" if _near(bad) else "wrong"
            rec.fail(kind, "run", path, backend, "",
                     f"{bad[0]}: got {bad[1]!r}, want {bad[2]!r} (tol {bad[3]:.2g}) at {at}")
            return kind == "inaccurate"  # "matched" for judging check's verdict
    return True


def _values(module, backend, points, n):
    """[(value, partial, ...)] of the generated value_and_grad at each point."""
    if backend == "math":  # per point: an exception is judged with the point (see _run)
        out = []
        for p in points:
            try:
                value, grads = module.value_and_grad(*p)
                out.append([value, *grads])
            except Exception as exc:
                out.append(exc)
        return out
    cols = [np.array([p[k] for p in points]) for k in range(n)]
    with np.errstate(all="ignore"):
        value, grads = module.value_and_grad(*cols)
    rows = [np.broadcast_to(np.asarray(v), (len(points),)) for v in (value, *grads)]
    return [[_scalar(r[i]) for r in rows] for i in range(len(points))]


def _scalar(v):
    """A float, or the complex number numpy gave (judged wrong, not a crash of the harness)."""
    return complex(v) if np.iscomplexobj(v) else float(v)


def _near(bad) -> bool:
    """A mismatch of a finite number right to INACCURATE relative to the exact value: the
    cancellation of a rule like 1 - coth(u)**2 near |coth| = 1, reported as "inaccurate", not
    as a wrong result (a wrong rule or a constant for a variable is off by far more)."""
    label, got, want, tol = bad
    finite = isinstance(got, float) and math.isfinite(got)
    return finite and abs(got - want) <= INACCURATE * abs(want)


def _finite(g) -> bool:
    return isinstance(g, (int, float)) and math.isfinite(g)


def _mismatch(wrt, want, tol, got):
    if len(got) != len(want):
        return ("arity", len(got), len(want), 0.0)
    labels = ["value"] + [f"d{n}" for n in wrt]
    for label, w, t, g in zip(labels, want, tol, got):
        if isinstance(g, complex) and g.imag == 0:
            g = g.real
        try:
            g = float(g)
        except (TypeError, ValueError):
            return (label, g, w, t)
        if not math.isfinite(g) or abs(g - w) > t:
            return (label, g, w, t)
    return None


def _check_and_verify(rec, user, wrt, oracle, program, stage) -> None:
    prog, matched = program
    stage[0] = "check"
    try:
        report = symdiff.check(prog)
        if matched and not report.ok:
            rec.fail("check-false-alarm", "check", "sympy", message=_first_bad(report))
        elif not matched and report.ok:
            rec.fail("wrong", "check", "sympy", message="check says OK on a program the "
                     "oracle finds wrong")
    except symdiff.SymdiffError as exc:
        rec.fail("refused-defect", "check", "sympy", exc=type(exc).__name__, message=str(exc))
    except Exception as exc:
        rec.fail("crash", "check", "sympy", exc=type(exc).__name__, message=_tb(exc))
    stage[0] = "verify"
    try:
        report = symdiff.verify(user, wrt, exact_gradient(oracle), args=wrt)
        if not report.ok:
            rec.fail("verify-false-alarm", "verify", "sympy", message=_first_bad(report))
    except symdiff.SymdiffError as exc:
        rec.fail("refused-defect", "verify", "sympy", exc=type(exc).__name__, message=str(exc))
    except Exception as exc:
        rec.fail("crash", "verify", "sympy", exc=type(exc).__name__, message=_tb(exc))


# The exact gradient's intermediates may go far past floats (erf(u)' = exp(-u**2) at u = 1e167
# is 0 in floats); a function of an operand beyond this is still too slow for mpmath.
GRAD_LIMIT = mpmath.mpf(10) ** 1000
AGREE = mpmath.mpf(10) ** -20  # the exact gradient at two precisions, this close, is settled


def exact_gradient(oracle: Oracle):
    """sympy.diff's gradient as a float callable: mpmath at DPS digits and twice that, more
    until two precisions agree (acoth(coth(u)) at u = 49 needs coth(u) - 1 ~ 1e-43;
    exp(I**(E/I)) - 1 at I = 0.068 is 1e-47), rounded once, so it is right in floats; a point
    where it is not real raises, as hand code would."""
    def grad(*args):
        last = None
        for dps in (DPS, 2 * DPS, 4 * DPS, 8 * DPS):
            with mpmath.workdps(dps):
                try:
                    _, rows = oracle.reference([float(a) for a in args], limit=GRAD_LIMIT)
                except (ZeroDivisionError, ValueError, OverflowError, ArithmeticError):
                    continue
                if not all(_real(r) for r in rows[1:]):
                    continue
                got = [mpmath.re(r) for r in rows[1:]]
                scale = max(abs(g) for g in got)  # a partial that is 0 by cancellation is noise
                if last is not None and all(abs(a - b) <= AGREE * scale
                                            for a, b in zip(last, got)):
                    return tuple(float(g) for g in got)  # two precisions agree: right in floats
                last = got  # exp(1e-47) - 1 is 0 at 40 digits: try again with more
        if last is not None:  # never settled: the most precise one
            return tuple(float(g) for g in last)
        raise ValueError("the exact gradient is not real here")
    return grad


def _first_bad(report) -> str:
    lines = [line.strip() for line in str(report).splitlines()]
    bad = [line for line in lines if "WRONG" in line or "note:" in line or "raised" in line]
    return " | ".join(bad[:3]) or lines[-1]


def _tb(exc: BaseException) -> str:
    """The exception and the innermost frame that raised it (where to look)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" [{frames[-1].filename.split('/')[-1]}:{frames[-1].lineno} in {frames[-1].name}]" \
        if frames else ""
    return f"{exc}{where}"
