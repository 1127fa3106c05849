"""The Hessian's sparsity pattern, read off the staged program, and a colouring of its columns.

Pattern: H = sum over forward steps v of dv * J_opsᵀ (d²g_v / d ops²) J_ops, where J_ops has
nonzeros only in the wrt variables each operand depends on. So entry (i, j) can be nonzero only
if some step has a nonzero second derivative with respect to two of its operands a and b (or one
twice) with i among a's variables and j among b's: a sum adds nothing, a product of a and b adds
deps(a) x deps(b), a nonlinear function of a adds deps(a) x deps(a). The pattern is a superset
of the true one (a second derivative that is zero only at some points still counts), never a
subset: an entry left out is zero everywhere.

Colouring (Curtis, Powell & Reid, 1974): columns of one colour share no row of the pattern, so
one Hessian-vector product with the sum of their unit vectors gives every one of their entries
at once; a greedy distance-2 colouring in column order (3 colours for a tridiagonal Hessian).
"""

from __future__ import annotations

import itertools

import sympy as sp

from .ir import Program
from .tangent import wrt_args


def hessian_pattern(prog: Program) -> list[frozenset[int]]:
    """For each wrt variable i (wrt order), the columns j where H[i, j] may be nonzero."""
    depends = {a: frozenset({k}) for k, a in enumerate(wrt_args(prog))}
    rows: list[set[int]] = [set() for _ in depends]
    for step in prog.forward:
        operands = sorted((s for s in step.rhs.free_symbols if depends.get(s.name)),
                          key=lambda s: s.name)
        if not operands:
            continue
        depends[step.name] = frozenset().union(*(depends[s.name] for s in operands))
        if isinstance(step.rhs, sp.Add) or len(depends[step.name]) == 0:
            continue  # linear: no second derivative
        for a, b in itertools.combinations_with_replacement(operands, 2):
            if _couples(step.rhs, a, b):
                for i in depends[a.name]:
                    rows[i] |= depends[b.name]
                for j in depends[b.name]:
                    rows[j] |= depends[a.name]
    return [frozenset(r) for r in rows]


def _couples(rhs: sp.Expr, a: sp.Symbol, b: sp.Symbol) -> bool:
    """Whether d² rhs / da db is not identically zero (a product of distinct symbols and a
    power of one are read off; anything else is differentiated)."""
    if isinstance(rhs, sp.Mul) and all(f.is_Symbol or f.is_number for f in rhs.args):
        return a != b  # x*y*c: linear in each factor
    if isinstance(rhs, sp.Pow) and rhs.base.is_Symbol and rhs.exp.is_number:
        return rhs.exp not in (0, 1)
    return sp.diff(rhs, a, b) != 0


def colouring(pattern: list[frozenset[int]]) -> list[int]:
    """A colour per column such that no two columns of one colour have a row in common."""
    colour = [-1] * len(pattern)
    for j, rows in enumerate(pattern):
        taken = {colour[k] for i in rows for k in pattern[i] if k != j}
        colour[j] = next(c for c in itertools.count() if c not in taken)
    return colour
