"""Rewrites of a user's matrix expression before it is converted (``lower_matrix``).

SymPy distributes a transpose over sums and products as it builds them: ``(X*W - Y).T`` is
stored as ``-Y.T + W.T*X.T``, so the residual of a least-squares loss would be computed twice
(``X @ W`` and ``W.T @ X.T``) and ``Trace(R.T*R)`` could not be read as ``sum(R*R)``.
``fold_transposes`` folds such transposes back: a sum of transposed terms is the transpose of
the sum, a product of transposed factors the transpose of the reversed product. The result is
the same matrix; shared subexpressions stay shared (the rebuilt ``X*W - Y`` is SymPy's own node).
"""

from __future__ import annotations

import sympy as sp

from .dag import rebuild


def fold_transposes(expr: sp.Basic) -> sp.Basic:
    """``expr`` with distributed transposes folded back (``-Y.T + W.T*X.T`` -> ``(X*W - Y).T``).

    >>> n = sp.Symbol("n", integer=True, positive=True)
    >>> X, W, Y = (sp.MatrixSymbol(s, n, n) for s in "XWY")
    >>> fold_transposes((X*W - Y).T) == sp.Transpose(X*W - Y)
    True
    """
    def swap(node, args):
        if isinstance(node, sp.Lambda):
            return None
        if isinstance(node, sp.MatAdd) and all(_untransposed(a) is not None for a in args):
            return sp.Transpose(sp.MatAdd(*(_untransposed(a) for a in args)).doit())
        if isinstance(node, sp.MatMul):
            inner = _untransposed(node.func(*args))
            if inner is not None and len([a for a in args if a.is_Matrix]) > 1:
                return sp.Transpose(inner)
        return None

    return rebuild(expr, swap, stop=lambda n: isinstance(n, sp.Lambda))


def _untransposed(term):
    """``t`` for a term that is ``t.T`` (``c*A.T*B.T`` is ``(c*B*A).T``), else None."""
    if isinstance(term, sp.Transpose):
        return term.arg
    if not isinstance(term, sp.MatMul):
        return None
    scalars = [a for a in term.args if not a.is_Matrix]
    matrices = [a for a in term.args if a.is_Matrix]
    if not matrices or not all(isinstance(m, sp.Transpose) for m in matrices):
        return None
    return sp.MatMul(*scalars, *(m.arg for m in reversed(matrices))).doit()
