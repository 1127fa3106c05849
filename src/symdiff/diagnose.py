"""Explain a wrong partial: the simplest pattern that fits every sample point.

``diagnose`` gets the hand values ``h``, the exact values ``t`` and the tolerance per point, and
tries explanations from simplest to least simple; the first that fits all points is the answer:

1. the hand partial is zero everywhere;
2. it is the exact partial times a constant: sign flipped, a factor of 2, 1/N, ...;
3. it equals another variable's partial (swapped);
4. it lacks one term of a fork of the staged program: one contribution dropped, or a ``=`` where
   ``+=`` belongs so the earlier contributions are lost;
5. it uses a commonly confused local derivative (``CONFUSIONS``: tanh's for sigmoid's, a
   derivative taken at the input where the output belongs, an inverted ReLU mask);
6. it is right on one side of zero of an argument or a step, wrong on the other ("wrong where
   x < 0"), with the pattern on the wrong side when there is one;
7. it is close (relative error at most 1e-3) wherever it fails: imprecise floats, not a wrong
   formula (a cancellation such as log(1 + tiny) in the hand code).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy as sp
from sympy.core.relational import Relational

from .array_ops import first_max_mask, max_mask
from .dag import postorder, substitute
from .functions import relu, sigmoid, softplus
from .numeric import evaluate_many
from .tensor_ops import max_pool2d_dx, max_pool2d_first_dx


@dataclass
class Evidence:
    """What the verifier knows at the sample points, for explanations that need the program."""

    prog: object  # the Program
    ref: object  # its Reference
    symbolic: object  # (k, "ratio" | "difference") -> simplified expression or None
    points: list[dict]
    truth: list  # per point: (exact partials, their error estimates)
    states: list  # per point: forward values and float error bounds of the staged program
    allowed: list  # per partial, per point: the tolerance of that partial

    def where(self, i: int) -> str:
        return ", ".join(f"{s.name}={float(v):.6g}" for s, v in self.points[i].items())


def diagnose(k: int, h: list, t: list, allowed: list, ev: Evidence) -> str:
    """A short lowercase explanation of why hand partial ``k`` is wrong."""
    for i, a in enumerate(h):
        if not mpmath.isfinite(a):
            kind = "nan" if mpmath.isnan(a) else "inf"
            return f"returned {kind} where the exact partial is finite ({ev.where(i)})"
    for explain in (_zero, _factor, _swapped, _fork, _confused, _symbolic, _region,
                    _inaccurate):
        text = explain(k, h, t, allowed, ev)
        if text:
            return text
    bad = sum(1 for a, b, tol in zip(h, t, allowed) if not abs(a - b) <= tol)
    return f"wrong at {bad} of {len(h)} points, with no simple pattern"


INACCURATE = 1e-3  # a hand partial this close everywhere it fails is imprecise, not wrong


def _inaccurate(k, h, t, allowed, ev) -> str:
    bad = [i for i, (a, b, tol) in enumerate(zip(h, t, allowed)) if not abs(a - b) <= tol]
    rel = [abs(h[i] - t[i]) / abs(t[i]) if t[i] != 0 else mpmath.inf for i in bad]
    if not bad or max(rel) > INACCURATE:
        return ""
    worst = bad[rel.index(max(rel))]
    return (f"inaccurate in floats at {len(bad)} of {len(h)} points (relative error up to "
            f"{mpmath.nstr(max(rel), 2)}, at {ev.where(worst)}), right at the others: a "
            "cancellation in the hand code, such as log(1 + tiny)?")


def _fits(h, values, allowed, scale=1, only=None) -> bool:
    idx = range(len(h)) if only is None else only
    return all(abs(h[i] - values[i]) <= allowed[i] * scale for i in idx)


def _zero(k, h, t, allowed, ev) -> str:
    if _fits(h, [0] * len(h), allowed):
        return "is zero everywhere, but the exact partial is not: a missing partial?"
    return ""


def _factor(k, h, t, allowed, ev, only=None) -> str:
    idx = list(range(len(h)) if only is None else only)
    best = max(idx, key=lambda i: abs(t[i]) / allowed[i])
    if not abs(t[best]) > 100 * allowed[best]:
        return ""
    c = _nice(h[best] / t[best])
    if abs(c - 1) < 1e-9 or c == 0:
        return ""
    scaled = [c * v for v in t]
    if not _fits(h, scaled, allowed, scale=max(1, abs(c)), only=idx):
        return ""
    if c == -1:
        return "sign flipped: hand = -exact at every point"
    sign = " (sign flipped)" if c < 0 else ""
    return f"off by a factor of {_text(c)}{sign}: hand = {_text(c)} * exact at every point"


def _nice(c) -> mpmath.mpf | Fraction:
    """A simple fraction (2, 1/2, 1/3, -3/4) when ``c`` is one, else ``c`` itself."""
    fraction = Fraction(float(c)).limit_denominator(1000)
    if abs(float(fraction) - float(c)) <= 1e-9 * abs(float(c)):
        return fraction
    return c


def _text(c) -> str:
    if isinstance(c, Fraction):
        return str(c)
    digits = 6  # ... or enough to tell the factor from 1 ("1.0000003", never "1.0")
    while digits < 17 and mpmath.nstr(c, digits) in ("1.0", "-1.0"):
        digits += 1
    return mpmath.nstr(c, digits)


def _swapped(k, h, t, allowed, ev) -> str:
    names = ev.prog.grads
    for j, name in enumerate(names):
        other = [row[0][j] for row in ev.truth]
        either = [max(a, b) for a, b in zip(allowed, ev.allowed[j])]  # tolerances of both
        if j != k and _fits(h, other, either) and not _fits(t, other, allowed):
            symbol = ev.prog.wrt[j]
            return f"swapped with {name}: it equals the partial with respect to {symbol}"
    return ""


def _fork(k, h, t, allowed, ev) -> str:
    """A term dropped at a fork of the staged program, or `=` where `+=` belongs."""
    prog, ref = ev.prog, ev.ref
    for backward, text in fork_variants(prog, str):
        values = [ref.backward_values(s, backward)[0][k] for s in ev.states]
        if _fits(h, values, allowed) and not _fits(t, values, allowed):
            return text
    return ""


def _confused(k, h, t, allowed, ev) -> str:
    """A commonly confused local derivative (tanh's for sigmoid's, at the input not the output)."""
    for backward, text in confusion_variants(ev.prog):
        values = [ev.ref.backward_values(s, backward)[0][k] for s in ev.states]
        if _fits(h, values, allowed) and not _fits(t, values, allowed):
            return text
    return ""


def fork_variants(prog, line_of):
    """Each way to lose one term at a fork, as (backward steps, explanation): a write dropped,
    or an accumulation turned into ``=`` so the earlier terms are lost. ``line_of(step)`` is
    how the explanation quotes a forward step."""
    writes: dict[str, int] = {}
    for g in prog.backward:
        writes[g.name] = writes.get(g.name, 0) + 1
    for m, g in enumerate(prog.backward):
        if writes[g.name] < 2:
            continue
        line, value = line_of(prog.step(g.source)), _value_of(prog, g.name)
        yield (_drop(prog.backward, m),
               f"missing a term at a fork: the path from {value} through `{line}`")
        if g.accumulate:
            overwrite = list(prog.backward)
            overwrite[m] = dataclasses.replace(g, accumulate=False)
            yield (overwrite, f"missing a term at a fork: `{g.name} = ...` where "
                              f"`{g.name} += ...` belongs (at `{line}`), so earlier terms are lost")


def _value_of(prog, grad: str) -> str:
    """The value whose gradient is ``grad`` (dx -> x, dxpy -> xpy)."""
    for i in prog.inputs:
        if i.grad == grad:
            return i.name
    return grad[1:]


def _drop(backward, m: int) -> list:
    """``backward`` without step ``m``; a later write to the same gradient becomes its first."""
    kept = list(backward[:m]) + list(backward[m + 1:])
    seen, fixed = set(), []
    for g in kept:
        if g.name not in seen and g.accumulate:
            g = dataclasses.replace(g, accumulate=False)
        seen.add(g.name)
        fixed.append(g)
    return fixed


def _symbolic(k, h, t, allowed, ev) -> str:
    """For a derivation on paper: a short ratio (1/x) or difference (a term), the simpler one."""
    found = []
    ratio = ev.symbolic(k, "ratio")
    if ratio is not None and ratio.free_symbols and sp.count_ops(ratio) <= 4:
        found.append((sp.count_ops(ratio), f"off by a factor of {ratio}: hand = exact * ({ratio})"))
    extra = ev.symbolic(k, "difference")  # hand - exact
    if extra is not None and extra != 0 and sp.count_ops(extra) <= 8:
        if extra.could_extract_minus_sign():
            text = f"missing a term: hand = exact - ({-extra})"
        else:
            text = f"an extra term: hand = exact + ({extra})"
        found.append((sp.count_ops(extra), text))
    return min(found)[1] if found else ""


def _region(k, h, t, allowed, ev) -> str:
    good = {i for i in range(len(h)) if abs(h[i] - t[i]) <= allowed[i]}
    bad = set(range(len(h))) - good
    # a point where both are ~0 (exp(-x**2) underflows) says nothing about the region
    good -= {i for i in good if abs(t[i]) <= allowed[i]}
    if not good or not bad:
        return ""
    for label, values in _signed_quantities(ev):
        for text, side in ((f"{label} < 0", lambda v: v < 0), (f"{label} > 0", lambda v: v > 0)):
            inside = {i for i, v in enumerate(values) if side(v)}
            if bad <= inside and not (good & inside):
                there = _factor(k, h, t, allowed, ev, only=sorted(bad))
                return f"wrong where {text}" + (f" (there: {there.split(':')[0]})" if there
                                                else "")
    return ""


def _signed_quantities(ev):
    """Candidate region boundaries with their values at the points: the arguments, the forward
    steps, and the comparisons the formula makes itself (Max/Min operands, Piecewise conditions,
    the arguments of Heaviside and sign in the backward program)."""
    prog, ref = ev.prog, ev.ref
    for arg in ref.args:
        yield arg.name, [p[arg] for p in ev.points]
    for step in prog.forward[:-1]:
        symbol = sp.Symbol(step.name, real=True)
        yield str(step).split(" = ", 1)[1], [state[0][symbol] for state in ev.states]
    for expr in _comparisons(prog):
        values = [evaluate_many([expr], state[0])[0] for state in ev.states]
        if all(v is not None for v in values):
            yield sp.sstr(expr), values


def _comparisons(prog) -> list:
    """Differences the formula compares with 0, in program order, without repeats."""
    found: dict[sp.Basic, None] = {}
    for step in prog.forward:
        for node in postorder(step.rhs):
            if isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
                found.setdefault(node.args[0] - node.args[1])
            elif isinstance(node, Relational):
                found.setdefault(node.lhs - node.rhs)
    for g in prog.backward:
        for node in postorder(g.local):
            if isinstance(node, (sp.Heaviside, sp.sign)):
                found.setdefault(node.args[0])
    return [e for e in found if e.free_symbols and not e.is_Symbol]


# The derivatives people confuse, per function: (what the hand code computes, as a function of
# the step's input u and output y; how the explanation names it). A wrong local derivative is
# found by putting each confusion in the backward step of a forward step y = f(u).
CONFUSIONS = {
    sigmoid: ((lambda u, y: 1 - y**2, "1 - {y}**2 (tanh's derivative) used for sigmoid's "
                                      "{y}*(1 - {y})"),
              (lambda u, y: u * (1 - u), "sigmoid's derivative taken at the input, {u}*(1 - {u}), "
                                         "not at the output {y}"),
              (lambda u, y: y, "sigmoid itself ({y}) used for its derivative {y}*(1 - {y})")),
    sp.tanh: ((lambda u, y: y * (1 - y), "{y}*(1 - {y}) (sigmoid's derivative) used for tanh's "
                                         "1 - {y}**2"),
              (lambda u, y: 1 - y, "1 - {y} used for tanh's derivative 1 - {y}**2 (a missing "
                                   "square)"),
              (lambda u, y: 1 - u**2, "tanh's derivative taken at the input, 1 - {u}**2, not at "
                                      "the output {y}")),
    relu: ((lambda u, y: sp.Heaviside(-u, 0), "the ReLU mask inverted: the gradient passes "
                                              "where {u} < 0, not where {u} > 0"),
           (lambda u, y: sp.Integer(1), "no ReLU mask: the gradient passes everywhere, not only "
                                        "where {u} > 0")),
    softplus: ((lambda u, y: sp.exp(u), "exp({u}) used for softplus's derivative sigmoid({u})"),
               (lambda u, y: sigmoid(y), "softplus's derivative taken at the output, "
                                         "sigmoid({y})")),
    sp.exp: ((lambda u, y: u, "{u} used for exp's derivative exp({u})"),),
    sp.log: ((lambda u, y: u, "{u} used for log's derivative 1/{u}"),
             (lambda u, y: y, "log({u}) used for its derivative 1/{u}")),
}


def confusion_variants(prog):
    """Each commonly confused local derivative, as (backward steps, explanation): the backward
    step of a forward step ``y = f(u)`` with f in ``CONFUSIONS`` computing the confusion."""
    for m, g in enumerate(prog.backward):
        step = prog.step(g.source)
        confusions = CONFUSIONS.get(type(step.rhs), ())
        if len(step.rhs.args) != 1 or not step.rhs.args[0].is_Symbol:
            continue
        u, y = step.rhs.args[0], sp.Symbol(step.name, real=True)
        if g.name[1:] != u.name:  # the step's gradient to its input, d<u>
            continue
        for local, text in confusions:
            wrong = local(u, y)
            if g.whole:
                wrong = sp.Symbol(g.upstream, real=True) * wrong
            backward = list(prog.backward)
            backward[m] = dataclasses.replace(g, local=wrong)
            said = text.format(u=u.name, y=step.name)
            yield backward, f"a wrong local derivative at `{step}`: {said}"


FIRST_MAX = {max_mask: first_max_mask, max_pool2d_dx: max_pool2d_first_dx}  # even -> first
KINK_VALUES = (sp.Integer(0), sp.Rational(1, 2), sp.Integer(1))  # Heaviside(0): the conventions


def kink_variants(prog):
    """The backward with the step function's value at 0 taken otherwise, and a tied maximum's
    gradient given to the first maximum, as (backward steps, explanation). At a kink (relu,
    |u|, max(u, 0) with u exactly 0) any value between the one-sided limits gives a valid
    subgradient; symdiff documents Heaviside(0) = 0 and an even split at a tie."""
    steps = [{n for n in postorder(g.local) if isinstance(n, sp.Heaviside) and len(n.args) == 2}
             for g in prog.backward]
    for value in KINK_VALUES:
        if all(n.args[1] == value for found in steps for n in found):
            continue  # no kink, or this is the documented convention
        backward = [dataclasses.replace(g, local=substitute(
            g.local, {n: sp.Heaviside(n.args[0], value) for n in found if n.args[1] != value}))
            for g, found in zip(prog.backward, steps)]
        yield backward, f"the step of relu, |u| or max at 0 taken as {value}"
    masks = [{n for n in postorder(g.local) if type(n) in FIRST_MAX} for g in prog.backward]
    if any(masks):  # a tie of a row's (a window's) maximum: all to the first, as argmax code
        yield ([dataclasses.replace(g, local=substitute(
            g.local, {n: FIRST_MAX[type(n)](*n.args) for n in found}))
            for g, found in zip(prog.backward, masks)],
            "all of a tied maximum's gradient to the first of the tied entries, where symdiff "
            "splits it evenly")
