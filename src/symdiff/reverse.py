"""The reverse pass: backward steps from forward steps, last step first.

For each forward step whose value depends on a wrt symbol, one block multiplies the step's upstream
gradient by the local derivative of each operand (``rules.local_partials``). The first write of a
gradient is ``=``; every later write, at a fork, is ``+=``. Operands that do not depend on a wrt
symbol get no gradient, and a local derivative of zero writes nothing. A local derivative never
recomputes what the forward pass has: a subexpression equal to a forward step's right-hand side
is that step's name (``d sin(x)/dx`` is ``cosx`` when ``cosx = cos(x)`` was staged).
"""

from __future__ import annotations

import sympy as sp

from .dag import gate_key, rebuild
from .ir import GradStep, Step
from .rules import local_partials


def reverse(forward: list[Step], grad_names: dict[str, str], terms=None,
            outputs: tuple[str, ...] = ()) -> list[GradStep]:
    """Backward steps for ``forward``; ``grad_names`` maps each wrt argument to its gradient name.

    Forward step ``s`` has gradient ``d`` + ``s``; the output's gradient is the upstream ``dout``
    (``outputs``, when given, are the steps whose gradients are upstream inputs: ``dout0``, ...;
    an output that another output reads also receives ``+=`` terms from it).
    ``terms(step, upstream_symbol)``, when given, returns ``(operand, whole term)`` pairs
    instead of local derivatives (matrix programs: ``dX = dXW @ W.T``).
    """
    needs = set(grad_names)
    for step in forward:  # steps are small: SymPy's own (cached) free_symbols is cheap here
        if any(s.name in needs for s in step.rhs.free_symbols):
            needs.add(step.name)
    grad_of = dict(grad_names)
    grad_of.update((s.name, "d" + s.name) for s in forward)
    written = {grad_of[o] for o in outputs or (forward[-1].name,)}
    staged = {gate_key(s.rhs): s.value for s in forward if s.op != "copy"}
    backward: list[GradStep] = []
    for step in reversed(forward):
        upstream = grad_of[step.name]
        if step.name not in needs or upstream not in written:
            continue
        if terms is None:
            pairs = [(o, reuse(local, staged))
                     for o, local in local_partials(step.rhs, step.value)]
        else:
            pairs = terms(step, sp.Symbol(upstream, real=True))
        for operand, local in pairs:
            if not operand.is_Symbol or operand.name not in needs:  # a constant matrix
                continue
            target = grad_of[operand.name]
            backward.append(GradStep(target, upstream, local, target in written, step.name,
                                     whole=terms is not None))
            written.add(target)
    return _without_dead(backward, set(grad_names.values()))


def reuse(local: sp.Expr, staged: dict) -> sp.Expr:
    """``local`` with every subexpression that a forward step computed replaced by its name."""
    if local.is_Atom:
        return local
    if all(a.is_Atom for a in local.args):  # the common small case: one node to look up
        return staged.get(gate_key(local), local)

    def swap(node, args):
        if node.is_Atom:
            return None
        new = node.func(*args) if any(a is not b for a, b in zip(args, node.args)) else node
        return staged.get(gate_key(new), new)

    return rebuild(local, swap)


def _without_dead(backward: list[GradStep], returned: set[str]) -> list[GradStep]:
    """Drop gradients nothing reads (e.g. into a sign or floor gate, whose derivative is 0)."""
    live, kept = set(returned), []
    for g in reversed(backward):
        if g.name in live:
            kept.append(g)
            live.add(g.upstream)
    kept.reverse()
    return kept
