"""Local derivatives of every gate: the one rule table of symdiff (Add, Mul and Pow here, every
other function from its row in ops.py).

A rule receives the gate's output symbol ``out`` and the gate's arguments and returns one local
derivative per argument (``None`` for a constant argument). The reverse pass multiplies each by the
upstream gradient. Rules reuse the forward output where that is cheaper than recomputing
(exp -> out, 1/x -> -out**2, sigmoid -> out*(1 - out), tanh -> 1 - out**2, hypot -> x/out,
logsumexp -> exp(t - out)).

Non-smooth convention: at a kink a gate takes its minimum-norm subgradient. Abs and relu have
derivative 0 at 0; Max/Min against a constant give 0 at the tie; Max/Min of two variables split the
gradient equally (1/2 each) at a tie; sign, Heaviside, floor and ceiling have derivative 0
everywhere (their Dirac deltas are dropped). Piecewise is differentiated branch by branch, and
each branch's derivative is used only where that branch is taken.

Functions without a rule fall back to SymPy's own ``fdiff``; one without a derivative is a
``NonDifferentiableError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from .dag import postorder
from .errors import NonDifferentiableError
from .ops import OPS

RULES: dict[type, Callable] = {}
_CONDITIONS = (Relational, BooleanAtom, BooleanFunction)


def rule(*funcs: type) -> Callable:
    """Register the decorated rule for each SymPy function class in ``funcs``."""

    def register(fn: Callable) -> Callable:
        for f in funcs:
            RULES[f] = fn
        return fn

    return register


@rule(sp.Add)
def _add(out, *terms):
    return tuple(None if t.is_Number else t.as_coeff_Mul()[0] for t in terms)


@rule(sp.Mul)
def _mul(out, *factors):
    def others(i):
        return sp.Mul(*(f for j, f in enumerate(factors) if j != i))

    return tuple(None if f.is_Number else others(i) for i, f in enumerate(factors))


@rule(sp.Pow)
def _pow(out, base, exp):
    if exp.is_Number:
        if exp == -1:
            return -out**2, None
        if exp == sp.S.Half:
            return 1 / (2 * out), None
        if exp == -sp.S.Half:
            return -out**3 / 2, None
        if exp == 2:
            return sp.Mul(2, base, evaluate=False), None  # the most common power: no simplifying
        return exp * base ** (exp - 1), None
    dbase = None if base.is_Number else exp * base ** (exp - 1)
    if base == 0:  # 0**t is 0 for t > 0 (the only open set where it is defined)
        return dbase, sp.S.Zero
    if base.is_Number and base.is_negative:
        raise NonDifferentiableError(
            f"{base}**{exp} is not real for non-integer {exp}: it has no real derivative in {exp}")
    return dbase, out * sp.log(base)


# Every other rule is a row of the op table (ops.py): its ``partials``.
RULES.update({op.cls: op.partials for op in OPS if op.partials is not None})


def local_partials(rhs: sp.Expr, out: sp.Symbol) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Local derivative of the gate ``out = rhs`` with respect to each symbol in ``rhs``.

    Zero derivatives are dropped. Arguments must be symbols or numbers, except in a compound gate
    (a Piecewise with inline branches), which is differentiated symbol by symbol.

    >>> x, out = sp.symbols("x out", real=True)
    >>> local_partials(sp.exp(x), out)
    [(x, out)]
    """
    atoms = [a if not isinstance(rhs, sp.Add) else a.as_coeff_Mul()[1] for a in rhs.args]
    rule_fn = _find_rule(type(rhs))
    if rule_fn is None or not all(a.is_Symbol or a.is_number for a in atoms):
        # Compound gates and functions without a rule: SymPy's own derivative (fdiff).
        pairs = [(s, compound_partial(rhs, s, out)) for s in _symbols_in_order(rhs)]
    else:
        parts = rule_fn(out, *rhs.args)
        assert len(parts) == len(rhs.args), f"rule for {type(rhs).__name__}: wrong arity"
        pairs = [(a, p) for a, p in zip(atoms, parts) if p is not None and a.is_Symbol]
    merged: dict[sp.Symbol, sp.Expr] = {}
    for symbol, part in pairs:
        merged[symbol] = merged.get(symbol, 0) + part
    return [(s, p) for s, p in merged.items() if p != 0]


def _find_rule(cls: type) -> Callable | None:
    for base in cls.__mro__:
        if base in RULES:
            return RULES[base]
    return None


def _symbols_in_order(expr: sp.Basic) -> list[sp.Symbol]:
    return [n for n in postorder(expr) if n.is_Symbol]


def compound_partial(rhs: sp.Expr, symbol: sp.Symbol, out: sp.Symbol) -> sp.Expr:
    """d rhs / d symbol by the chain rule over the gate's own small DAG, with this rule table.

    Used for a Piecewise gate with inline branches and for functions without a rule. Every
    intermediate is real (SymPy's diff would write re/im for Abs(log(x))), and kinks inside a
    branch follow the same convention as staged gates.
    """
    d: dict[sp.Basic, sp.Expr] = {}
    for node in postorder(rhs):
        d[node] = _node_partial(node, symbol, d)
    return d[rhs].xreplace({rhs: out})  # reuse the output where it reappears (e.g. LambertW)


def _node_partial(node: sp.Basic, symbol: sp.Symbol, d: dict) -> sp.Expr:
    if node.is_Symbol:
        return sp.S.One if node == symbol else sp.S.Zero
    if node is sp.nan:
        return sp.nan  # an undefined branch (see lower.canonicalize): its gradient too
    if isinstance(node, _CONDITIONS) or not node.args:
        return sp.S.Zero  # constants, and conditions (a condition has no derivative)
    inner = [d[a] for a in node.args]
    if all(g == 0 for g in inner):
        return sp.S.Zero
    if isinstance(node, ExprCondPair):  # a branch: its value's derivative
        return inner[0]
    if isinstance(node, sp.Piecewise):
        return sp.Piecewise(*((d[pair.expr], pair.cond) for pair in node.args))
    if isinstance(node, sp.Add):
        return sp.Add(*inner)
    if isinstance(node, sp.Mul):
        return sp.Add(*(g * sp.Mul(*(a for j, a in enumerate(node.args) if j != i))
                        for i, g in enumerate(inner) if g != 0))
    rule_fn = _find_rule(type(node))
    if rule_fn is not None and not (isinstance(node, (sp.Max, sp.Min)) and len(node.args) != 2):
        parts = rule_fn(node, *node.args)
    else:
        parts = [_fdiff(node, i) if g != 0 else None for i, g in enumerate(inner)]
    assert len(parts) == len(inner), f"rule for {type(node).__name__}: wrong arity"
    return sp.Add(*(p * g for p, g in zip(parts, inner) if g != 0 and p is not None))


def _fdiff(node: sp.Basic, index: int) -> sp.Expr:
    """SymPy's own derivative of a function with respect to its argument ``index``."""
    try:
        part = node.fdiff(index + 1)
    except (ArgumentIndexError, NotImplementedError, AttributeError, ValueError, TypeError):
        part = None
    if part is None or part.has(sp.Derivative, sp.Subs):
        raise NonDifferentiableError(f"{node} has no known derivative in argument {index + 1}")
    return part


def derivative(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """``sympy.diff`` with the almost-everywhere-zero derivatives of step functions dropped.

    DiracDelta terms and derivatives of floor/ceiling/sign/Heaviside become 0; any other
    derivative SymPy leaves unevaluated is a NonDifferentiableError.
    """
    try:
        part = sp.diff(expr, symbol)
    except (ArgumentIndexError, NotImplementedError, ValueError, TypeError) as exc:
        raise NonDifferentiableError(f"cannot differentiate with respect to {symbol}: {exc}") \
            from None
    part = part.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    part = part.replace(
        lambda e: isinstance(e, sp.Derivative) and _piecewise_constant(e.expr),
        lambda e: sp.S.Zero,
    )
    # floor(g(x))' comes back as Subs(Derivative(floor(xi), xi), xi, g(x))*g'(x)
    part = part.replace(lambda e: isinstance(e, sp.Subs) and e.expr == 0, lambda e: sp.S.Zero)
    if part.has(sp.Derivative, sp.Subs):
        found = next(iter(part.atoms(sp.Derivative, sp.Subs)))
        raise NonDifferentiableError(f"no known derivative: {found}")
    return part


def _piecewise_constant(expr: sp.Basic) -> bool:
    return isinstance(expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside))
