"""SymPy functions symdiff adds for formulas people write in machine learning.

``sigmoid``, ``relu`` and ``softplus`` are ordinary SymPy functions: they print by name, evaluate
numerically at any precision, and differentiate (``fdiff``). ``to_elementary`` rewrites them into
plain SymPy (``1/(1 + exp(-t))``, ``Max(0, t)``, ``log(1 + exp(t))``) so an oracle built on
``sympy.diff`` never depends on the derivatives defined here.
"""

from __future__ import annotations

import mpmath
import sympy as sp
from sympy.core.function import ArgumentIndexError


class _Elementwise(sp.Function):
    """A real function of one real argument with an elementary rewrite."""

    nargs = 1

    @classmethod
    def eval(cls, t):
        if t.is_Float:
            return cls._value(t)
        return None

    def _eval_is_real(self):
        return self.args[0].is_real or None

    def _eval_evalf(self, prec):
        t = self.args[0]._eval_evalf(prec)
        if t is None or not t.is_Number:
            return None
        return self._value(sp.Float(t, precision=prec))

    @classmethod
    def _value(cls, t):
        # Float arithmetic in SymPy keeps the precision of t, so the rewrite evaluates exactly.
        return cls.elementary(t)

    @staticmethod
    def elementary(t):
        raise NotImplementedError


class sigmoid(_Elementwise):
    """The logistic function 1/(1 + exp(-t)); derivative sigmoid(t)*(1 - sigmoid(t))."""

    @classmethod
    def eval(cls, t):
        if t.is_zero:
            return sp.S.Half
        return super().eval(t)

    @staticmethod
    def elementary(t):
        return 1 / (1 + sp.exp(-t))

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return self * (1 - self)


class relu(_Elementwise):
    """max(0, t); derivative Heaviside(t, 0): zero at the kink (the minimum-norm subgradient)."""

    @classmethod
    def eval(cls, t):
        if t.is_number and t.is_extended_real:
            return sp.Max(0, t)
        if t.is_nonnegative:
            return t
        if t.is_nonpositive:
            return sp.S.Zero
        return None

    @staticmethod
    def elementary(t):
        return sp.Max(0, t)

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sp.Heaviside(self.args[0], 0)

    def _eval_is_nonnegative(self):
        return self.args[0].is_real or None


class softplus(_Elementwise):
    """log(1 + exp(t)), computed without overflow; derivative sigmoid(t)."""

    @staticmethod
    def elementary(t):
        return sp.log(1 + sp.exp(t))

    @classmethod
    def _value(cls, t):
        # max(t, 0) + log1p(exp(-|t|)): log(1 + exp(t)) rounds 1 + tiny to 1 for t << 0.
        with mpmath.workprec(t._prec):
            m = t._to_mpmath(t._prec)
            value = max(m, 0) + mpmath.log1p(mpmath.exp(-abs(m)))
        return sp.Float(value, precision=t._prec)

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sigmoid(self.args[0])

    def _eval_is_positive(self):
        return self.args[0].is_real or None


CUSTOM_FUNCTIONS = (sigmoid, relu, softplus)


def to_elementary(expr: sp.Basic) -> sp.Basic:
    """Rewrite symdiff's own functions into plain SymPy, walking the DAG once per node.

    >>> x = sp.Symbol("x", real=True)
    >>> to_elementary(sigmoid(x) + relu(x))
    Max(0, x) + 1/(1 + exp(-x))
    """
    from .dag import rebuild

    def swap(node, args):
        if isinstance(node, _Elementwise):
            return type(node).elementary(*args)
        return None

    return rebuild(expr, swap)
