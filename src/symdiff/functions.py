"""SymPy functions symdiff adds for formulas people write in machine learning.

``sigmoid``, ``relu``, ``softplus`` and ``logsumexp`` are ordinary SymPy functions: they print by
name, evaluate numerically at any precision, and differentiate (``fdiff``). The stable gates
``log1p``, ``expm1`` and ``hypot`` are SymPy's own (``sympy.codegen.cfunctions``), re-exported
here. ``to_elementary`` rewrites all of them into plain SymPy (``1/(1 + exp(-t))``, ``Max(0, t)``,
``log(1 + exp(t))``, ``log(exp(a) + exp(b))``, ``log(1 + t)``, ``sqrt(x**2 + y**2)``, ...) so an
oracle built on ``sympy.diff`` never depends on the derivatives defined here.
"""

from __future__ import annotations

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import expm1, hypot, log1p
from sympy.core.function import ArgumentIndexError

from .dag import rebuild


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


class logsumexp(sp.Function):
    """log(exp(t0) + exp(t1) + ...), computed with the largest term factored out (no overflow);
    derivative in t_i: exp(t_i - logsumexp(t0, t1, ...)), the softmax weight of t_i."""

    @classmethod
    def eval(cls, *args):
        if len(args) == 1:
            return args[0]
        if args and all(a.is_Float for a in args):
            return cls._value(args)
        return None

    @staticmethod
    def elementary(*args):
        return sp.log(sp.Add(*(sp.exp(a) for a in args)))

    @classmethod
    def _value(cls, args):
        prec = max(a._prec for a in args)
        with mpmath.workprec(prec):
            terms = [a._to_mpmath(prec) for a in args]
            top = max(terms)
            value = top + mpmath.log(mpmath.fsum(mpmath.exp(t - top) for t in terms))
        return sp.Float(value, precision=prec)

    def _eval_evalf(self, prec):
        args = [a._eval_evalf(prec) for a in self.args]
        if any(a is None or not a.is_Number for a in args):
            return None
        return self._value([sp.Float(a, precision=prec) for a in args])

    def fdiff(self, argindex=1):
        if not 1 <= argindex <= len(self.args):
            raise ArgumentIndexError(self, argindex)
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_is_real(self):
        return all(a.is_real for a in self.args) or None


CUSTOM_FUNCTIONS = (sigmoid, relu, softplus, logsumexp)
STABLE_GATES = (softplus, logsumexp, log1p, expm1, hypot)  # what stable.py rewrites into

# Plain SymPy for each function above: the oracle's view (sympy.diff never sees our fdiff).
ELEMENTARY = {
    **{f: f.elementary for f in CUSTOM_FUNCTIONS},
    log1p: lambda t: sp.log(1 + t),
    expm1: lambda t: sp.exp(t) - 1,
    hypot: lambda x, y: sp.sqrt(x**2 + y**2),
}


def to_elementary(expr: sp.Basic) -> sp.Basic:
    """Rewrite symdiff's own functions into plain SymPy, walking the DAG once per node.

    >>> x = sp.Symbol("x", real=True)
    >>> to_elementary(sigmoid(x) + relu(x))
    Max(0, x) + 1/(1 + exp(-x))
    """
    def swap(node, args):
        elementary = ELEMENTARY.get(type(node))
        return None if elementary is None else elementary(*args)

    return rebuild(expr, swap)
