"""The matrix-calculus mistakes of a hand gradient: an inverse transposed, a missing
symmetrisation, a missing scalar factor such as det(X). Each is named only when it explains the
hand partial on every trial (``array_diagnose`` calls these before its generic patterns).

- inverse transposed: the program recompiled with every inverse (and solve) of one matrix
  transposed, forward and backward, reproduces the hand partial (X⁻¹ written where X⁻ᵀ belongs);
- missing symmetrisation over a square argument A: the hand code rerun with Aᵀ in place of A,
  averaged with its first run, gives the exact partial (2·A·x where (A + Aᵀ)·x belongs);
- a missing (or extra) scalar factor: hand = exact / s (or s * exact) with s a scalar step of the
  forward (det(X): the hand is the gradient of log det X).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy as sp

from .array_ops import det, inverse, solve, transpose
from .dag import postorder, substitute
from .interpret import program_values


def close(a, b, rel: float) -> bool:
    """Same shape, and every entry within ``rel`` times the largest exact entry."""
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return bool(np.all(np.abs(a - b) <= rel * scale))


def explains(prog, forward, backward, k, trials, hands_k, rel) -> bool:
    """The program with these forward and backward steps gives partial ``k`` = the hand's on
    every trial."""
    variant = dataclasses.replace(prog, forward=tuple(forward), backward=tuple(backward),
                                  _cache={})
    try:
        module = variant.compile("numpy")
        return all(close(h, np.asarray(module.backward(t.dout, module.forward(*t.args)[1])[k],
                                       dtype=float), rel) for h, t in zip(hands_k, trials))
    except Exception:  # a variant that does not run explains nothing
        return False


def matrix_diagnosis(prog, k, trials, hands_k, rel, rerun=None) -> str:
    """An inverse transposed, or a missing symmetrisation; "" when neither fits."""
    for base, steps in _inverse_variants(prog):
        if explains(prog, steps[0], steps[1], k, trials, hands_k, rel):
            return _inverse_text(prog, base)
    return _symmetrisation(prog, k, trials, hands_k, rel, rerun) if rerun else ""


def _base(prog, node) -> str | None:
    """The matrix an inverse's operand is, through transposes and transpose steps."""
    steps = {s.name: s.rhs for s in prog.forward}
    while True:
        if isinstance(node, transpose):
            node = node.args[0]
        elif node.is_Symbol and isinstance(steps.get(node.name), transpose):
            node = steps[node.name]
        else:
            return node.name if node.is_Symbol else None


def _inverse_variants(prog):
    """Per matrix with an inverse: (its name, (forward, backward) with each inverse of it
    transposed)."""
    exprs = [s.rhs for s in prog.forward] + [g.local for g in prog.backward]
    bases = sorted({b for e in exprs for n in postorder(e) if isinstance(n, (inverse, solve))
                    for b in [_base(prog, n.args[0])] if b})
    for base in bases:
        forward = [dataclasses.replace(s, rhs=_flip(prog, base, s.rhs)) for s in prog.forward]
        backward = [dataclasses.replace(g, local=_flip(prog, base, g.local))
                    for g in prog.backward]
        yield base, (forward, backward)


def _flip(prog, base: str, expr):
    """``expr`` with each inverse (and solve) of ``base`` taken of its transpose."""
    swap = {n: n.func(transpose(n.args[0]), *n.args[1:]) for n in postorder(expr)
            if isinstance(n, (inverse, solve)) and _base(prog, n.args[0]) == base}
    return substitute(expr, swap) if swap else expr


def _inverse_text(prog, base: str) -> str:
    """Which way round is certain when the formula holds X once, as det(X) or one X⁻¹ (its
    gradient is then c·X⁻ᵀ or -X⁻ᵀ C X⁻ᵀ); otherwise the text says either way."""
    symbol = next((i.symbol for i in prog.inputs if i.name == base), None)
    swapped = f"hand = the exact gradient with every {base}⁻¹ and {base}⁻ᵀ swapped"
    if symbol is not None and _once_inverted(prog.expr, symbol):
        return f"the inverse is transposed: {base}⁻¹ written where {base}⁻ᵀ belongs ({swapped})"
    return (f"the inverse of {base} is transposed: {base}⁻¹ written where {base}⁻ᵀ belongs, or "
            f"the reverse ({swapped})")


def _once_inverted(expr, symbol) -> bool:
    """``symbol`` occurs once in ``expr``, right under an Inverse, a negative MatPow or a
    Determinant."""
    uses = [node for node in sp.preorder_traversal(expr)
            if any(a == symbol for a in getattr(node, "args", ()))]
    if len(uses) != 1 or sum(1 for n in sp.preorder_traversal(expr) if n == symbol) != 1:
        return False
    node = uses[0]
    return isinstance(node, (sp.Inverse, sp.Determinant)) or (
        isinstance(node, sp.MatPow) and bool(node.exp.is_negative))


def _symmetrisation(prog, k, trials, hands_k, rel, rerun) -> str:
    """The exact partial is the hand's averaged over A and Aᵀ, for a square argument A (not
    the partial's own): the hand is right only for a symmetric A."""
    own = next(i.name for i in prog.inputs if i.grad == prog.grads[k])
    for j, name in enumerate(prog.args):
        a = trials[0].args[j]
        if name == own or np.ndim(a) != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
            continue
        fits = True
        for i, (t, h) in enumerate(zip(trials, hands_k)):
            args = list(t.args)
            args[j] = np.array(t.args[j]).T
            other = rerun(i, args)
            if other is None or not close((h + np.asarray(other[k], dtype=float)) / 2,
                                          t.exact[k], rel):
                fits = False
                break
        if fits:
            return (f"misses the symmetrisation {name} + {name}ᵀ: it is right only for a "
                    f"symmetric {name} ({name} = {name}ᵀ assumed); the exact partial is the "
                    f"hand's averaged over {name} and {name}ᵀ (e.g. 2·{name}·x written where "
                    f"({name} + {name}ᵀ)·x belongs)")
    return ""


def step_factor(prog, trials, ratios, rel) -> str:
    """hand = exact / s or s * exact, with ``ratios`` (hand / exact per trial) following a
    scalar forward step s (det(X): the hand is the gradient of log det X)."""
    shapes = prog.shapes or {}
    scalar = [s for s in prog.forward if shapes.get(s.name) == ()]
    if not scalar:
        return ""
    values = [program_values(prog, dict(zip(prog.args, t.args)), t.dout, 20) for t in trials]
    for step in scalar:
        v = [float(env[step.name]) for env in values]
        if len({round(x, 12) for x in v}) == 1 or not all(np.isfinite(v)) or 0 in v:
            continue
        for power, text in ((-1, f"missing the factor {step.rhs}"),
                            (1, f"a factor {step.rhs} too many")):
            if all(abs(c - x**power) <= 4 * rel * abs(x**power) for c, x in zip(ratios, v)):
                note = ""
                if power == -1 and isinstance(step.rhs, det):
                    m = step.rhs.args[0]
                    note = (f" (it is the gradient of log det({m}), {m}⁻ᵀ: the gradient of "
                            f"det({m}) is det({m}) {m}⁻ᵀ)")
                return f"{text}: hand = exact {'/' if power < 0 else '*'} {step.rhs}{note}"
    return ""

