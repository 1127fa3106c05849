"""Stable rewrites: numerically fragile forms of standard formulas become stable gates.

Applied once, bottom-up, while ``lower.canonicalize`` rebuilds the formula (like PyTensor's
"stabilize" rewrites). Every rewrite is an identity over the reals with the same domain, so the
staged program computes the user's formula, and ``check`` still compares it with ``sympy.diff``
of the formula as the user wrote it (``Program.expr`` is never rewritten):

- ``log(sigmoid(t))`` -> ``-softplus(-t)``; ``log(1 - sigmoid(t))`` -> ``-softplus(t)``
  (``1/(1 + exp(-t))`` is already ``sigmoid(t)``, so ``log(1/(1 + exp(-t)))`` is included);
- ``exp(u)*sigmoid(-u)`` -> ``sigmoid(u)`` (``exp(-t)/(1 + exp(-t))``, which overflows);
- ``log(c0 + c1*exp(u1) + ... )`` with positive constants (at least one exp, two terms) ->
  ``softplus(u1)`` for ``log(1 + exp(u1))``, otherwise ``logsumexp(log(c0), u1 + log(c1), ...)``;
- ``log(1 + t)`` -> ``log1p(t)`` for non-constant ``t``;
- ``c*exp(t) - c`` -> ``c*expm1(t)``, also beside other terms of a sum;
- ``sqrt(a**2 + b**2 + ...)`` of 2 to 4 terms (positive coefficients and constants allowed,
  even powers too) -> ``hypot(hypot(a, b), ...)``, and ``1/sqrt(...)`` -> ``1/hypot(...)``.

Each rewrite records a ``Note`` on the gate it introduces (``log(1 - sigmoid(z)) = -softplus(z)``);
the Lowerer prints it over code names on that gate's step (``Step.note``), and the listing and
generated code show it as a comment. ``lower.canonicalize`` hands the notes of the expression it
returns to ``Lowerer.run`` through ``hand_over``/``take_notes``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .dag import postorder, substitute, unevaluated
from .functions import expm1, hypot, log1p, logsumexp, sigmoid, softplus

NOTE_LIMIT = 100  # a longer note is cut with "..."
NOTE_NODES = 40  # a note is written out over the arguments up to this many nodes
HYPOT_LEGS = 4  # sqrt of a longer sum of squares stays: a chain of hypots multiplies roundings


@dataclass(frozen=True)
class Note:
    """``before`` (the fragile form) equals ``after`` (the stable one), over ``operands``.

    ``before`` may be ``(func, args)``, built into an expression only when the note is printed
    (constructing a SymPy function costs a third of a millisecond: thousands add up)."""

    before: sp.Expr | tuple
    after: sp.Expr
    operands: tuple


@dataclass(frozen=True)
class Rewritten:
    """A rewrite's result: the replacement, the gate its note belongs to, the pattern's operands
    and, when the note should show only part of the node, that part before and after."""

    expr: sp.Expr
    gate: sp.Expr
    operands: tuple
    before: sp.Expr | None = None
    after: sp.Expr | None = None


REWRITES: dict[type, list[Callable]] = {}


def rewrite(*kinds: type) -> Callable:
    """Register the decorated rewrite for nodes of each class in ``kinds`` (tried in order)."""

    def register(fn: Callable) -> Callable:
        for kind in kinds:
            REWRITES.setdefault(kind, []).append(fn)
        return fn

    return register


class Stabilizer:
    """Applies the rewrites to one formula, as ``rebuild``'s replace function, and keeps notes."""

    def __init__(self) -> None:
        self.notes: dict[sp.Basic, Note] = {}
        self._before: dict[sp.Basic, sp.Basic | tuple] = {}  # replacement -> what it replaced
        self._negated: dict[int, sp.Basic] = {}  # id -> a replacement c*gate, kept alive
        self._varying: dict[sp.Basic, bool] = {}

    def __call__(self, node: sp.Basic, args: tuple) -> sp.Basic | None:
        """The stable form of ``node`` rebuilt from ``args`` (None: no rewrite applies)."""
        spliced = self._splice(args) if isinstance(node, sp.Mul) else None
        if spliced is not None:
            args = spliced
        for fn in REWRITES.get(type(node), ()):
            done = fn(self, *args)
            if done is not None:
                return self._record(node, args, done)
        if spliced is not None:
            return spliced[0] if len(spliced) == 1 else sp.Mul(*spliced, evaluate=False)
        return None

    def varying(self, expr: sp.Basic) -> bool:
        """Whether ``expr`` depends on a symbol (one walk per new node, memoised)."""
        memo = self._varying
        if expr not in memo:
            for n in postorder(expr, stop=lambda n: n in memo):
                if n not in memo:
                    memo[n] = n.is_Symbol or any(memo[a] for a in n.args)
        return memo[expr]

    def _record(self, node, args, done: Rewritten) -> sp.Basic:
        before = done.before
        if before is None:  # the node as written, a rewritten argument shown as it was written
            before = (node.func, tuple(self._before.get(a, a) for a in args))
        after = done.expr if done.after is None else done.after
        self.notes.setdefault(done.gate, Note(before, after, done.operands))
        self._before[done.expr] = before
        parts = done.expr.args
        if done.expr.is_Mul and len(parts) == 2 and parts[0].is_Number and parts[1] is done.gate:
            self._negated[id(done.expr)] = done.expr  # -softplus(t), 2*expm1(t): see _splice
        return done.expr

    def _splice(self, args: tuple) -> tuple | None:
        """A product's factors with a rewritten ``c*gate`` factor spliced in: ``-y*log(sigmoid(z))``
        is ``y*softplus(-z)``, not ``-y*(-softplus(-z))`` (two negations in the listing)."""
        if not any(id(a) in self._negated for a in args):
            return None
        coeff, factors = sp.S.One, []
        for a in args:
            if id(a) in self._negated:
                c, gate = a.as_coeff_Mul()
                coeff *= c
                factors.append(gate)
            elif a.is_Number:
                coeff *= a
            else:
                factors.append(a)
        return tuple(factors) if coeff == 1 else (coeff, *factors)


# -- the rewrites -----------------------------------------------------------------------------


@rewrite(sp.log)
def _log_sigmoid(ctx: Stabilizer, arg, *rest) -> Rewritten | None:
    """log(sigmoid(t)) = -softplus(-t); log(1 - sigmoid(t)) = -softplus(t)."""
    if rest:
        return None
    if isinstance(arg, sigmoid):
        t = arg.args[0]
        gate = softplus(negated(t), evaluate=False)
        return Rewritten(-gate, gate, (t,))
    if isinstance(arg, sp.Add) and len(arg.args) == 2:
        one = [a for a in arg.args if is_value(a, 1)]
        other = [a for a in arg.args if not is_value(a, 1)]
        if len(one) == 1 and len(other) == 1:
            c, s = other[0].as_coeff_Mul()
            if is_value(c, -1) and isinstance(s, sigmoid):
                gate = softplus(s.args[0], evaluate=False)
                return Rewritten(-gate, gate, (s.args[0],))
    return None


@rewrite(sp.log)
def _log_sum_exp(ctx: Stabilizer, arg, *rest) -> Rewritten | None:
    """log(1 + exp(u)) = softplus(u); log(c0 + c1*exp(u1) + ...) = logsumexp(log(c0), u1 + ...)."""
    terms = None if rest else _exp_terms(ctx, arg)
    if terms is None:
        return None
    exps = [u for _, u in terms if u is not None]
    if len(exps) == 1 and len(terms) == 2 and all(is_value(c, 1) for c, _ in terms):
        gate = softplus(exps[0], evaluate=False)
        return Rewritten(gate, gate, (exps[0],))
    constant = sum((c for c, u in terms if u is None), sp.S.Zero)
    shifts, placed = [], False
    for c, u in terms:
        if u is not None:
            shifts.append(u if is_value(c, 1) else sp.Add(u, sp.log(c), evaluate=False))
        elif not placed:  # all constant terms as one: log(c0 + c0') is one argument
            shifts.append(sp.log(constant))
            placed = True
    gate = logsumexp(*shifts, evaluate=False)
    return Rewritten(gate, gate, tuple(exps))


def _exp_terms(ctx: Stabilizer, arg) -> list | None:
    """``[(c, u)]`` for a sum of terms ``c*exp(u)`` and constants ``(c, None)``, all ``c``
    positive numbers, with at least one exp and some ``u`` not constant; otherwise None."""
    if not isinstance(arg, sp.Add):
        return None
    terms = []
    for term in arg.args:
        if term.is_Number:
            if not term.is_positive:
                return None
            terms.append((term, None))
            continue
        c, e = term.as_coeff_Mul()
        if not (c.is_positive and isinstance(e, sp.exp)):
            return None
        terms.append((c, e.args[0]))
    return terms if any(u is not None and ctx.varying(u) for _, u in terms) else None


@rewrite(sp.log)
def _log1p(ctx: Stabilizer, arg, *rest) -> Rewritten | None:
    """log(1 + t) = log1p(t) for non-constant t (log(2 + x) stays)."""
    if rest or not isinstance(arg, sp.Add):
        return None
    numbers = [k for k, a in enumerate(arg.args) if a.is_Number]
    if len(numbers) != 1 or not is_value(arg.args[numbers[0]], 1):
        return None
    others = [a for k, a in enumerate(arg.args) if k != numbers[0]]
    t = others[0] if len(others) == 1 else sp.Add(*others, evaluate=False)
    if not ctx.varying(t):
        return None
    gate = log1p(t, evaluate=False)
    return Rewritten(gate, gate, (t,))


@rewrite(sp.Add)
def _expm1(ctx: Stabilizer, *terms) -> Rewritten | None:
    """c*exp(t) - c = c*expm1(t) (exp(x) - 2 stays); other terms of the sum stay beside it."""
    numbers = [k for k, a in enumerate(terms) if a.is_Number]
    if len(numbers) != 1:
        return None
    k = numbers[0]
    for j, term in enumerate(terms):
        c, e = term.as_coeff_Mul()
        if (isinstance(e, sp.exp) and c.is_Number and is_value(c + terms[k], 0)
                and ctx.varying(e.args[0])):
            gate = expm1(e.args[0], evaluate=False)
            new = gate if is_value(c, 1) else sp.Mul(c, gate, evaluate=False)
            rest = [new if i == j else a for i, a in enumerate(terms) if i != k]
            whole = rest[0] if len(rest) == 1 else sp.Add(*rest, evaluate=False)
            pair = [terms[k], term] if terms[k].is_positive else [term, terms[k]]  # 1 - exp(x)
            return Rewritten(whole, gate, (e.args[0],),
                             before=sp.Add(*pair, evaluate=False), after=new)
    return None


@rewrite(sp.Add)
def _one_minus_sigmoid(ctx: Stabilizer, *terms) -> Rewritten | None:
    """1 - sigmoid(t) = sigmoid(-t): the difference is 0 in floats for t > 37 (the focal loss's
    (1 - p)**gamma then has log(0) in its gradient)."""
    if len(terms) != 2:
        return None
    for one, other in (terms, terms[::-1]):
        c, s = other.as_coeff_Mul()
        if is_value(one, 1) and is_value(c, -1) and isinstance(s, sigmoid):
            gate = sigmoid(negated(s.args[0]), evaluate=False)
            return Rewritten(gate, gate, (s.args[0],))
    return None


@rewrite(sp.Pow)
def _hypot(ctx: Stabilizer, base, exp) -> Rewritten | None:
    """sqrt(a**2 + b**2 + ...) = hypot(hypot(a, b), ...); 1/sqrt(...) = 1/hypot(...)."""
    if not (is_value(exp, sp.S.Half) or is_value(exp, -sp.S.Half)) or not base.is_Add:
        return None
    legs = [_leg(ctx, t) for t in base.args] if len(base.args) <= HYPOT_LEGS else []
    if len(legs) < 2 or None in legs or not any(ctx.varying(leg) for leg in legs):
        return None
    gate = legs[0]
    for leg in legs[1:]:
        gate = hypot(gate, leg, evaluate=False)
    whole = gate if is_value(exp, sp.S.Half) else sp.Pow(gate, -1, evaluate=False)
    return Rewritten(whole, gate, tuple(legs))


def _leg(ctx: Stabilizer, term) -> sp.Basic | None:
    """``a`` for a term ``a**2`` of a sum of squares (``sqrt(c)*a**k`` for ``c*a**(2k)``)."""
    if term.is_Number:
        return sp.sqrt(term) if term.is_positive else None
    c, p = term.as_coeff_Mul()
    if not (c.is_positive and p.is_Pow and p.exp.is_Integer and p.exp > 0 and p.exp % 2 == 0):
        return None
    leg = p.base if p.exp == 2 else sp.Pow(p.base, p.exp // 2, evaluate=False)
    return leg if is_value(c, 1) else sp.Mul(sp.sqrt(c), leg, evaluate=False)


@rewrite(sp.Mul)
def _exp_sigmoid(ctx: Stabilizer, *factors) -> Rewritten | None:
    """exp(u)*sigmoid(-u) = sigmoid(u): exp(u)/(1 + exp(u)) overflows for large u."""
    for i, e in enumerate(factors):
        if not isinstance(e, sp.exp):
            continue
        u = e.args[0]
        for j, s in enumerate(factors):
            if isinstance(s, sigmoid) and same(s.args[0], negated(u)):
                gate = sigmoid(u, evaluate=False)
                rest = [gate if k == i else f for k, f in enumerate(factors) if k != j]
                whole = rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False)
                return Rewritten(whole, gate, (u,),
                                 before=sp.Mul(e, s, evaluate=False), after=gate)
    return None


# -- small helpers ----------------------------------------------------------------------------


def negated(t: sp.Basic) -> sp.Basic:
    """``-t`` without distributing over a sum (``-(w*x + b)`` stays one operand)."""
    if t.is_Add:
        return sp.Mul(sp.S.NegativeOne, t, evaluate=False)
    return -t


def same(a: sp.Basic, b: sp.Basic) -> bool:
    """Structural equality, trying identity and the cached hash before SymPy's recursive ==."""
    return a is b or (hash(a) == hash(b) and a == b)


def is_value(a: sp.Basic, value) -> bool:
    """``a`` is the number ``value`` exactly (a Float 1.0 is 1; SymPy's == says it is not)."""
    if not a.is_Number:
        return False
    if a.is_Float:
        return a.is_finite and sp.Rational(a) == value
    return a == value


# -- notes: rewrites -> the Lowerer -----------------------------------------------------------

_handoff = threading.local()


def hand_over(root: sp.Basic, notes: dict) -> None:
    """Keep the notes of the canonical ``root`` for the ``take_notes`` that lowers it next."""
    _handoff.item = (root, notes)


def take_notes(root: sp.Basic) -> dict:
    """The notes ``hand_over`` kept for this very ``root`` (by identity), once; else none."""
    item = getattr(_handoff, "item", None)
    _handoff.item = None
    return item[1] if item is not None and item[0] is root else {}


def note_text(note: Note, values: dict) -> str:
    """``stable: before = after`` over code names (``values``: canonical node -> its step
    symbol, argument symbol or constant). Written out over the arguments when that is short
    (``log(1 - sigmoid(w*x + b))``), else over the names of the operands' steps."""
    note = Note(_written(note.before), note.after, note.operands)
    if all(_at_most(e, NOTE_NODES) for e in (note.before, note.after)):
        text = _note_over(note, {n: values[n] for e in (note.before, note.after)
                                 for n in postorder(e) if n.is_Symbol and n in values})
        if len(text) <= NOTE_LIMIT:
            return text
    mapping = {}
    for operand in note.operands:
        for n in postorder(operand, stop=lambda n: n in values):
            if n in values:
                mapping[n] = values[n]
    for side in (note.before, note.after):
        for n in postorder(side, stop=lambda n: n in mapping):
            if n.is_Symbol and n in values:
                mapping[n] = values[n]
    text = _note_over(note, mapping)
    return text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 3] + "..."


def _written(before) -> sp.Basic:
    """The fragile form of a note as an expression (see ``Note.before``)."""
    if isinstance(before, sp.Basic):
        return before
    func, args = before
    return unevaluated(func, tuple(_written(a) for a in args))


def _note_over(note: Note, mapping: dict) -> str:
    before, after = (_text(substitute(e, mapping, evaluate=False))
                     for e in (note.before, note.after))
    return " ".join(f"stable: {before} = {after}".split())


def _text(expr: sp.Basic) -> str:
    """``expr`` as text; a large one only by its head (``log(...)``): the note is cut anyway."""
    if _at_most(expr, 4 * NOTE_NODES):
        return sp.sstr(expr, order="none")
    return f"{expr.func.__name__}(...)"


def _at_most(expr: sp.Basic, cap: int) -> bool:
    """Whether ``expr`` has at most ``cap`` distinct nodes (a walk that stops past the cap)."""
    seen, stack = {expr}, [expr]
    while stack:
        for arg in stack.pop().args:
            if arg not in seen:
                if len(seen) == cap:
                    return False
                seen.add(arg)
                stack.append(arg)
    return True
