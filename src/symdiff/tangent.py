"""The forward (tangent) pass: tangent lines from forward steps, first step first.

The mirror image of ``reverse``. For each forward step whose value depends on a seeded value,
one tangent line sums, over the step's operands that carry a tangent, the operand's tangent
times the local derivative (``rules.local_partials``, the very locals the reverse pass reads,
with forward values reused by ``reverse.reuse``): ``sinx_t = x_t * cosx``. Operands without a
tangent add nothing, nor does a local derivative of zero; a step none of whose operands carries
one has no tangent (it is zero), and a tangent no output reads is dropped.

Names: a value's tangent is its name plus one suffix, the same for the whole program (``sigy``
-> ``sigy_t``; ``_t2``, ``_t3``, ... only when some tangent would meet a name already taken).
Seeds: each wrt argument's own tangent (``jvp``), or one argument's unit tangent folded away
(a forward sweep of the Jacobian: ``xy = x*y`` gives ``xy_t = y``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from .dag import gate_key
from .ir import GradStep, Program, Step, grad_text
from .naming import RESERVED
from .reverse import reuse, reverse
from .rules import compound_partial, local_partials

SUFFIX = "_t"


@dataclass(frozen=True)
class Tangent:
    """One tangent line: ``name = sum of upstream * local``, for forward step ``source``.

    Each term is ``(local, upstream)``: the local derivative of ``source`` with respect to an
    operand (over forward names) and that operand's tangent name, or None for a unit seed
    (the term is the local derivative itself).
    """

    name: str
    source: str
    terms: tuple[tuple[sp.Expr, str | None], ...]
    accumulate: bool = False  # a tangent of a backward line that accumulates: name += terms

    def __str__(self) -> str:
        return f"{self.name} = {tangent_text(self, lambda e: sp.sstr(e, order='none'))}"


def tangent_text(t: Tangent, print_expr) -> str:
    """The right-hand side of a tangent line: ``x_t * cosx + y_t``, a unit seed folded."""
    parts = []
    for local, upstream in t.terms:
        if upstream is None:
            text = _seeded(local, print_expr)
        else:  # the backward line's text: one formatting of upstream * local
            text = grad_text(GradStep(t.name, upstream, local, False, t.source), print_expr)
        if parts and text.startswith("-"):
            parts.append(f"- {text[1:]}")
        else:
            parts.append(f"+ {text}" if parts else text)
    return " ".join(parts)


def _seeded(local: sp.Expr, print_expr) -> str:
    """A local derivative times a unit tangent: a number prints as a float (``1.0``, ``-2.0``),
    a conditional expression in parentheses (it is one term of a sum)."""
    if local.is_Number:
        return repr(float(local))
    text = print_expr(local)
    return f"({text})" if isinstance(local, sp.Piecewise) else text


def tangents(forward, seeds: dict[str, str | None], outputs, suffix: str = SUFFIX
             ) -> list[Tangent]:
    """Tangent lines of ``forward`` from ``seeds`` (value name -> its tangent name, or None for
    a unit seed), keeping those the tangents of ``outputs`` read."""
    tangent_of = dict(seeds)
    staged = {gate_key(s.rhs): s.value for s in forward if s.op != "copy"}
    lines: list[Tangent] = []
    for step in forward:
        if not any(s.name in tangent_of for s in step.rhs.free_symbols):
            continue
        terms = tuple((reuse(local, staged), tangent_of[o.name])
                      for o, local in local_partials(step.rhs, step.value) if o.name in tangent_of)
        if terms:
            tangent_of[step.name] = step.name + suffix
            lines.append(Tangent(step.name + suffix, step.name, terms))
    return live_tangents(lines, {o + suffix for o in outputs})


def backward_tangents(prog: Program, tangent_of: dict[str, str | None], suffix: str
                      ) -> list[Tangent]:
    """Tangent lines of the backward lines, dout = 1 (forward over reverse: the tangent of
    the gradient along the seeded direction is the Hessian times it). ``tangent_of`` maps the
    forward values (and wrt arguments) that carry a tangent to its name, None for a unit seed.

    A backward line ``name (+)= upstream * local`` reads complete gradients and forward
    values only, so its tangent sums, over those that carry a tangent, the line's derivative
    with respect to it (``rules.compound_partial``, real and with the staged kink convention)
    times their tangent; an accumulation's tangent accumulates (the tangent is linear). The
    tangents the gradients' tangents do not read are dropped."""
    tangent_of = dict(tangent_of)
    staged = {gate_key(st.rhs): st.value for st in prog.forward if st.op != "copy"}
    seed = sp.Symbol(f"d{prog.output}", real=True)
    lines: list[Tangent] = []
    for g in prog.backward:
        terms = [(local, tangent_of[name])
                 for name, local in _line_partials(g, seed, staged, tangent_of)]
        if not terms:
            continue
        before = g.name in tangent_of
        tangent_of[g.name] = g.name + suffix
        lines.append(Tangent(g.name + suffix, g.source, tuple(terms), g.accumulate and before))
    return lines


def _line_partials(g, seed: sp.Symbol, staged: dict, wanted) -> list[tuple[str, sp.Expr]]:
    """(name, d line / d name) of backward line ``g`` (dout = 1) for each name in ``wanted``
    it reads, in name order, the zeros left out. ``upstream * local`` is linear in the
    upstream gradient, which ``local`` (over forward names) never reads: only ``local`` is
    differentiated."""
    if g.whole:
        rhs = g.rhs.xreplace({seed: sp.S.One})
        parts = {x.name: compound_partial(rhs, x, rhs) for x in rhs.free_symbols
                 if x.name in wanted}
    else:
        upstream = sp.S.One if g.upstream == seed.name else sp.Symbol(g.upstream, real=True)
        parts = {x.name: upstream * compound_partial(g.local, x, g.local)
                 for x in g.local.free_symbols if x.name in wanted}
        if upstream != 1 and g.upstream in wanted:
            parts[g.upstream] = g.local
    return [(name, reuse(parts[name], staged)) for name in sorted(parts) if parts[name] != 0]


def second_tangents(prog: Program, seeds: dict[str, str | None], suffix: str, grads
                    ) -> tuple[list[Tangent], list[Tangent]]:
    """The forward tangents and the backward tangents that the tangents of ``grads`` read
    (forward over reverse along ``seeds``)."""
    ahead = tangents(prog.forward, seeds, [s.name for s in prog.forward], suffix)
    behind = backward_tangents(prog, dict(seeds) | {t.source: t.name for t in ahead}, suffix)
    live = {id(t) for t in live_tangents(ahead + behind, {g + suffix for g in grads})}
    return [t for t in ahead if id(t) in live], [t for t in behind if id(t) in live]


def live_tangents(lines: list[Tangent], wanted) -> list[Tangent]:
    """The tangent lines that the tangents ``wanted`` read, in order."""
    live, kept = set(wanted), []
    for t in reversed(lines):
        if t.name in live:
            kept.append(t)
            live.update(up for _, up in t.terms if up is not None)
    return kept[::-1]


def taken_names(prog: Program) -> set[str]:
    """Every name a module of ``prog`` uses: reserved ones, arguments, steps and gradients."""
    names = set(RESERVED) | set(prog.args) | {d[0] for d in prog.dims}
    names |= {s.name for s in prog.forward} | {"d" + s.name for s in prog.forward}
    return names | {i.grad for i in prog.inputs if i.grad}


def suffix_for(prog: Program) -> str:
    """The tangent suffix of ``prog``: ``_t``, or ``_t2``, ... when a tangent would clash."""
    taken = taken_names(prog)
    values = list(prog.args) + [s.name for s in prog.forward] + [g.name for g in prog.backward]
    k = 1
    while True:
        suffix = SUFFIX if k == 1 else f"{SUFFIX}{k}"
        if not any(v + suffix in taken for v in values):
            return suffix
        k += 1


def wrt_args(prog: Program) -> list[str]:
    """The code names of the wrt arguments, in wrt order."""
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    return [arg_of[g] for g in prog.grads]


def row_program(prog: Program, k: int, backward=reverse) -> Program:
    """Output ``k`` of a vector program as a program of its own formula: the forward steps it
    depends on and their reverse pass seeded by its gradient alone (one reverse sweep of the
    Jacobian, line for line; ``symdiff.check`` of it checks that sweep). ``backward(forward,
    grad_names)`` is the reverse pass (a matrix program's passes its shapes)."""
    end = next(i for i, s in enumerate(prog.forward) if s.name == prog.outputs[k]) + 1
    needed = {prog.outputs[k]}  # the steps output k depends on, not every earlier step
    for step in reversed(prog.forward[:end]):
        if step.name in needed:
            needed.update(str(a) for a in step.rhs.free_symbols)
    forward: tuple[Step, ...] = tuple(s for s in prog.forward[:end] if s.name in needed)
    grads = {i.name: i.grad for i in prog.inputs if i.grad}
    expr = prog.expr.args[k] if prog.output_names else prog.expr
    return replace(prog, expr=expr, forward=forward, backward=tuple(backward(list(forward), grads)),
                   text="" if prog.output_names else prog.text, output_names=(), _cache={})


def sweeps(prog: Program) -> str:
    """``"forward"`` when the Jacobian takes fewer (or as many) tangent sweeps, one per wrt
    variable, than reverse sweeps, one per output; else ``"reverse"``."""
    return "forward" if len(prog.wrt) <= len(prog.outputs) else "reverse"


def count_ops(prog: Program) -> dict[str, int]:
    """Operation counts, as ``Program.count_ops`` counts them: ``gradient`` (forward plus
    backward), ``jvp`` (forward plus one tangent line per step), ``jacobian`` (forward plus
    its sweeps) and, for one output, ``hvp`` (the gradient plus the tangents of both passes).
    A tangent term costs its local derivative, one multiplication unless the local
    is 1 or -1 (or the tangent a folded unit seed), and one addition or subtraction after the
    first."""
    base = prog.count_ops()
    suffix = suffix_for(prog)
    jvp = tangents(prog.forward, {a: a + suffix for a in wrt_args(prog)}, prog.outputs, suffix)
    if sweeps(prog) == "forward":
        sweep = sum(_tangent_ops(t) for a in wrt_args(prog)
                    for t in tangents(prog.forward, {a: None}, prog.outputs, suffix))
    else:
        sweep = sum(row_program(prog, k).count_ops()["backward"]
                    for k in range(len(prog.outputs)))
    counts = {"forward": base["forward"], "gradient": base["forward"] + base["backward"],
              "jvp": base["forward"] + sum(_tangent_ops(t) for t in jvp),
              "jacobian": base["forward"] + sweep}
    if not prog.output_names:  # hvp: the gradient, then one tangent sweep over both passes
        ahead, behind = second_tangents(prog, {a: a + suffix for a in wrt_args(prog)}, suffix,
                                        prog.grads)
        counts["hvp"] = counts["gradient"] + sum(_tangent_ops(t) + t.accumulate
                                                 for t in ahead + behind)
    return counts


def _tangent_ops(t: Tangent) -> int:
    ops = len(t.terms) - 1
    for local, upstream in t.terms:
        ops += int(sp.count_ops(local)) + (upstream is not None and local not in (1, -1))
    return ops
