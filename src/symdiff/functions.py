"""SymPy functions symdiff adds for formulas people write in machine learning.

``sigmoid``, ``relu``, ``softplus``, ``logsumexp`` and the activations ``gelu``, ``elu``, ``selu``,
``mish`` (and ``xlogy``) are ordinary SymPy functions: they print by
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


# SELU's constants to 50 digits, from their closed forms in Klambauer et al. (2017), with
# e1 = erfc(1/sqrt(2)): alpha = -sqrt(2/pi)/(e1*exp(1/2) - 1), scale = (1 - e1*sqrt(e))*sqrt(2*pi)
# *(2*erfc(sqrt(2))*e**2 + pi*e1**2*e - 2*(2 + pi)*e1*sqrt(e) + pi + 2)**(-1/2).
SELU_ALPHA = sp.Float("1.6732632423543772848170429916716520384611553482812", 50)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946063519589812043764", 50)


class gelu(_Elementwise):
    """The Gaussian error linear unit t*Phi(t) = t*(1 + erf(t/sqrt(2)))/2, in its exact (erf)
    form; derivative Phi(t) + t*phi(t), with Phi(t) = erfc(-t/sqrt(2))/2 (no cancellation)."""

    @staticmethod
    def elementary(t):
        return t * (1 + sp.erf(t / sp.sqrt(2))) / 2

    @classmethod
    def _value(cls, t):
        return t * sp.erfc(-t / sp.sqrt(2), evaluate=False) / 2  # 1 + erf(t/sqrt(2)) cancels

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        t = self.args[0]
        # Phi(t) as erfc(-t/sqrt(2))/2, kept unevaluated: SymPy would write 2 - erfc(t/sqrt(2)),
        # which cancels for t << 0
        phi = sp.erfc(-t / sp.sqrt(2), evaluate=False) / 2
        return phi + t * sp.exp(-t**2 / 2) / sp.sqrt(2 * sp.pi)


class elu(_Elementwise):
    """The exponential linear unit (alpha = 1): t for t > 0, exp(t) - 1 otherwise; derivative
    exp(min(t, 0)) (continuous: 1 on both sides of 0)."""

    @staticmethod
    def elementary(t):
        return sp.Piecewise((t, t > 0), (sp.exp(t) - 1, True))

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sp.exp(sp.Min(self.args[0], 0))


class selu(_Elementwise):
    """The scaled exponential linear unit: SELU_SCALE*t for t > 0, SELU_SCALE*SELU_ALPHA*
    (exp(t) - 1) otherwise; derivative SELU_SCALE at the kink (the minimum-norm subgradient)."""

    @staticmethod
    def elementary(t):
        return SELU_SCALE * sp.Piecewise((t, t > 0), (SELU_ALPHA * (sp.exp(t) - 1), True))

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        t = self.args[0]
        # exp(min(t, 0)): the branch not taken is evaluated too (numpy), and must not overflow
        return sp.Piecewise((SELU_SCALE, t >= 0),
                            (SELU_SCALE * SELU_ALPHA * sp.exp(sp.Min(t, 0)), True))


class mish(_Elementwise):
    """t*tanh(softplus(t)) (Misra 2019); derivative tanh(s) + t*sech(s)**2*sigmoid(t),
    s = softplus(t)."""

    @staticmethod
    def elementary(t):
        return t * sp.tanh(sp.log(1 + sp.exp(t)))

    @classmethod
    def _value(cls, t):
        return t * sp.tanh(softplus(t))

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        t = self.args[0]
        return sp.tanh(softplus(t)) + t * sp.sech(softplus(t))**2 * sigmoid(t)


class xlogy(sp.Function):
    """x*log(y), and 0 where x = 0 whatever y is (as scipy.special.xlogy); derivatives log(y)
    and x/y."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_zero:
            return sp.S.Zero
        if x.is_Float and y.is_Float and y.is_positive:
            return x * sp.log(y)
        return None

    @staticmethod
    def elementary(x, y):
        return sp.Piecewise((0, sp.Eq(x, 0)), (x * sp.log(y), True))

    def _eval_evalf(self, prec):
        x, y = self.args
        return sp.S.Zero if x.is_zero else (x * sp.log(y))._eval_evalf(prec)

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return sp.log(y)
        if argindex == 2:
            return x / y
        raise ArgumentIndexError(self, argindex)

    def _eval_is_real(self):
        x, y = self.args
        return (x.is_real and y.is_positive) or None


CUSTOM_FUNCTIONS = (sigmoid, relu, softplus, logsumexp, gelu, elu, selu, mish, xlogy)
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
