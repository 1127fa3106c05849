"""The scalar ops of symdiff, one row each: every fact about one function in one place.

A row (``Op``) says, for one SymPy function class:

* ``partials(out, *args)``: its local derivatives, one per argument (``None`` for a constant
  argument), reusing the gate's output ``out`` where that is cheaper (exp -> out, tanh ->
  1 - out**2); ``None`` for the whole field means SymPy's own ``fdiff`` (rules.py reads this);
* ``mp``: its value at the working precision of mpmath, over the reals (nan where undefined);
  ``None`` means SymPy's evalf (mpeval.py reads this);
* ``stem``: the stem of its step names (naming.py; default: the class name in lower case);
* ``total``: defined and finite for every finite real input, so a Piecewise may evaluate it
  outside the branch that uses it (lower.py);
* ``names``, ``arity``, ``build``: how a formula string spells it (spellings.py): the names, the
  fewest and most arguments (most None: any number), and the parse builder that makes the node
  ("apply": ``cls(*args)``; the others are named in spellings.py). A name given as
  ``(name, fewest, most)`` has its own arity;
* ``math``, ``numpy``: how each backend prints it (staged_printer.py, printers.py): the dotted
  callee SymPy's printers write (``"math.exp"``, ``"numpy.arctan"``; printed through
  ``_module_format``) or a ``How``: a runtime helper, the reciprocal form ``1/g(x)``, the inverse
  form ``g(1/x)``, or the printer's own ``_print_`` method. ``reciprocal``/``inverse`` name ``g``;
* ``torch``, ``jax``, ``array_api``: the same for those backends; ``None`` (most rows) means
  numpy's column, printed in the backend's own namespace (torch and jax.numpy have numpy's
  names; the array_api printer spells the standard's, ``xp.asin``; ``printing``).

Add, Mul, Pow and Piecewise are not rows: they are the structure every stage handles itself
(n-ary, rewritten forms by exponent, branches). Adding an elementwise function is one row here,
plus a runtime helper where math or numpy lacks it.

Non-smooth convention: at a kink a gate takes its minimum-norm subgradient. Abs and relu have
derivative 0 at 0; Max/Min against a constant give 0 at the tie; Max/Min of two variables split
the gradient equally (1/2 each) at a tie; sign, Heaviside, floor and ceiling have derivative 0
everywhere (their Dirac deltas are dropped).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import sympy as sp

from .functions import (
    SELU_ALPHA,
    SELU_SCALE,
    elu,
    expm1,
    gelu,
    hypot,
    log1p,
    logsumexp,
    mish,
    relu,
    selu,
    sigmoid,
    softplus,
    xlogy,
)

NAN = mpmath.mpf("nan")


class How(enum.Enum):
    """A way to print an op other than one call of a math/numpy function."""

    HELPER = "a call of the runtime helper of the op's own name"
    RECIPROCAL = "1/g(x), g the row's reciprocal"
    INVERSE = "g(1/x), g the row's inverse (SymPy's real branch)"
    OWN = "the printer's own _print_ method"


# The column a backend's printer reads where its own is None: torch, jax and array_api print
# numpy's forms, numba (which compiles the math backend's program) math's.
_FALLBACK = {"torch": "numpy", "jax": "numpy", "array_api": "numpy", "numba": "math"}


@dataclass(frozen=True)
class Op:
    """One scalar op: its SymPy class and every fact the stages need about it."""

    cls: type
    partials: Callable | None
    mp: Callable | None
    math: str | How
    numpy: str | How
    stem: str = ""
    total: bool = False
    names: tuple = ()
    arity: tuple[int, int | None] = (1, 1)
    build: str = "apply"
    reciprocal: type | None = None
    inverse: type | None = None
    torch: str | How | None = None
    jax: str | How | None = None
    numba: str | How | None = None
    array_api: str | How | None = None

    def __post_init__(self):
        if not self.stem:
            object.__setattr__(self, "stem", self.cls.__name__.lower())

    def printing(self, column: str) -> str | How:
        """How the backend whose printer reads ``column`` prints the op (see ``torch``)."""
        how = getattr(self, column)
        return getattr(self, _FALLBACK[column]) if how is None else how

    def spellings(self) -> list[tuple[str, int, int | None]]:
        """(name, fewest, most arguments) of every string spelling."""
        return [s if isinstance(s, tuple) else (s, *self.arity) for s in self.names]


# -- the 50-digit implementations that are not plain mpmath functions -------------------------


def _real_only(f, low=None, high=None, open_low=False, open_high=False):
    """``f`` on the part of the real line where its real value is defined."""

    def g(x):
        if low is not None and (x < low or (open_low and x == low)):
            return NAN
        if high is not None and (x > high or (open_high and x == high)):
            return NAN
        return f(x)

    return g


def _heaviside(x, h0=None):  # SymPy's Heaviside(x) is 1/2 at 0 unless told otherwise
    if x == 0:
        return mpmath.mpf(0.5) if h0 is None else h0
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)


def _softplus(x):
    return max(x, 0) + mpmath.log1p(mpmath.exp(-abs(x)))


def _logsumexp(*terms):  # mpmath has no overflow; the shift keeps the sum's digits all the same
    top = max(terms)
    return top + mpmath.log(mpmath.fsum(mpmath.exp(t - top) for t in terms))


def _selu(x):
    scale, alpha = (mpmath.mpf(c._mpf_) for c in (SELU_SCALE, SELU_ALPHA))
    return scale * (x if x > 0 else alpha * mpmath.expm1(x))


def _xlogy(x, y):  # 0 where x = 0, whatever y is; otherwise real only for y > 0
    if x == 0:
        return mpmath.mpf(0)
    return x * mpmath.log(y) if y > 0 else NAN


def _acot(x):  # SymPy's real convention: acot(0) = pi/2, otherwise atan(1/x)
    return mpmath.pi / 2 if x == 0 else mpmath.atan(1 / x)


# -- local derivatives that do not fit on a row ------------------------------------------------


def _extremum(larger: bool) -> Callable:
    """Max (larger=True) or Min: the gradient goes to the winner, split equally at a tie.

    At a tie the minimum-norm subgradient: 1/k to each of k tied variables, and 0 to all of them
    when a constant ties too (the constant's share, 0, is the smallest).
    """

    def rule_fn(out, *args):
        if len(args) == 2:
            return tuple(_wins(u, v, larger) for u, v in (args, args[::-1]))
        def reached(u):  # 1 where u is the extremum: u >= out, not u - out >= 0, so that a
            # compound constant (0.5 + acosh(E)) is computed as in the forward max(...) call
            return sp.Piecewise((1, u >= out if larger else u <= out), (0, True))
        variables = [a for a in args if not a.is_number]
        constants = [a for a in args if a.is_number]
        ties = sp.Add(*(reached(a) for a in variables))
        if not constants:
            return tuple(reached(a) / ties for a in args)
        # beats is 0 where a constant is the extremum: then every share is 0 (and ties + 1 > 0).
        beats = 1 - sp.Add(*(reached(c) for c in constants))
        return tuple(None if a.is_number else sp.Max(beats, 0) * reached(a) / (ties + 1 - beats)
                     for a in args)

    return rule_fn


def _wins(u, v, larger):
    """d max(u, v)/du (or min): 1 where u wins; at a tie 0 against a constant, 1/2 otherwise."""
    if u.is_Number:
        return None
    margin = u - v if larger else v - u
    return sp.Heaviside(margin, 0 if v.is_Number else sp.S.Half)


def _hypot_partials(out, x, y):
    return tuple(None if a.is_Number else a / out for a in (x, y))


def _lse_partials(out, *ts):
    return tuple(None if t.is_Number else sp.exp(t - out) for t in ts)


def _asec_like(sign):
    return lambda out, a: (sign / (a**2 * sp.sqrt(1 - 1 / a**2)),)


def _sinc_partials(out, a):
    """(cos(t) - sinc(t))/t, and its Taylor series where |t| < 1/4: the quotient cancels there
    (to 0/0 at 0); the series' first omitted term is below 1e-17 of the value."""
    t2, q = a**2, sp.Rational
    series = a * (-q(1, 3) + t2 * (q(1, 30) + t2 * (-q(1, 840) + t2 * (
        q(1, 45360) + t2 * (-q(1, 3991680) + t2 / 518918400)))))
    return (sp.Piecewise((series, sp.Abs(a) < sp.Rational(1, 4)), ((sp.cos(a) - out) / a, True)),)


H, R, INV, OWN = How.HELPER, How.RECIPROCAL, How.INVERSE, How.OWN

OPS: tuple[Op, ...] = (
    Op(sp.exp, lambda out, a: (out,), mpmath.exp, "math.exp", "numpy.exp",
       names=("exp",), build="exp"),
    Op(sp.log, lambda out, a: (1 / a,), _real_only(mpmath.log, low=0, open_low=True),
       "math.log", "numpy.log", names=(("log", 1, 2), "ln"), build="log"),
    # trigonometric
    Op(sp.sin, lambda out, a: (sp.cos(a),), mpmath.sin, "math.sin", "numpy.sin",
       total=True, names=("sin",)),
    Op(sp.cos, lambda out, a: (-sp.sin(a),), mpmath.cos, "math.cos", "numpy.cos",
       total=True, names=("cos",)),
    Op(sp.tan, lambda out, a: (1 + out**2,), mpmath.tan, "math.tan", "numpy.tan", names=("tan",)),
    Op(sp.cot, lambda out, a: (-1 - out**2,), mpmath.cot, R, R, names=("cot",),
       reciprocal=sp.tan),
    Op(sp.sec, lambda out, a: (out * sp.tan(a),), mpmath.sec, R, R, names=("sec",),
       reciprocal=sp.cos),
    Op(sp.csc, lambda out, a: (-out * sp.cot(a),), mpmath.csc, R, R, names=("csc",),
       reciprocal=sp.sin),
    Op(sp.asin, lambda out, a: (1 / sp.sqrt(1 - a**2),), _real_only(mpmath.asin, -1, 1),
       "math.asin", "numpy.arcsin", names=("asin", "arcsin"), array_api="numpy.asin"),
    Op(sp.acos, lambda out, a: (-1 / sp.sqrt(1 - a**2),), _real_only(mpmath.acos, -1, 1),
       "math.acos", "numpy.arccos", names=("acos", "arccos"), array_api="numpy.acos"),
    Op(sp.atan, lambda out, a: (1 / (1 + a**2),), mpmath.atan, "math.atan", "numpy.arctan",
       total=True, names=("atan", "arctan"), array_api="numpy.atan"),
    # atan(1/t): 1/0 raises in math, and numpy's 1/-0.0 is -inf, where acot is pi/2
    Op(sp.acot, lambda out, a: (-1 / (1 + a**2),), _acot, H, H, names=("acot",),
       inverse=sp.atan),
    Op(sp.asec, _asec_like(1), None, INV, INV, names=("asec",), inverse=sp.acos),
    Op(sp.acsc, _asec_like(-1), None, INV, INV, names=("acsc",), inverse=sp.asin),
    # SymPy's atan2(0, x < 0) is pi: the printers add 0.0 to y (see _print_atan2)
    Op(sp.atan2, lambda out, y, x: (x / (x**2 + y**2), -y / (x**2 + y**2)), mpmath.atan2,
       OWN, OWN, total=True, names=("atan2", "arctan2"), arity=(2, 2)),
    # hyperbolic
    Op(sp.sinh, lambda out, a: (sp.cosh(a),), mpmath.sinh, "math.sinh", "numpy.sinh",
       names=("sinh",)),
    Op(sp.cosh, lambda out, a: (sp.sinh(a),), mpmath.cosh, "math.cosh", "numpy.cosh",
       names=("cosh",)),
    Op(sp.tanh, lambda out, a: (1 - out**2,), mpmath.tanh, "math.tanh", "numpy.tanh",
       total=True, names=("tanh",)),
    Op(sp.coth, lambda out, a: (1 - out**2,), mpmath.coth, R, R, names=("coth",),
       reciprocal=sp.tanh),
    # helpers: 1/cosh(t) and 1/sinh(t) overflow in cosh and sinh for |t| > 710 where they are
    # tiny (the reciprocal still sets how they are parenthesized)
    Op(sp.sech, lambda out, a: (-out * sp.tanh(a),), mpmath.sech, H, H, names=("sech",),
       reciprocal=sp.cosh),
    Op(sp.csch, lambda out, a: (-out * sp.coth(a),), mpmath.csch, H, H, names=("csch",),
       reciprocal=sp.sinh),
    # a**2 overflows past 1.3e154, where these partials are ~1/|a|: hypot, sqrt(a - 1)*...
    Op(sp.asinh, lambda out, a: (1 / hypot(1, a),), mpmath.asinh, "math.asinh",
       "numpy.arcsinh", total=True, names=("asinh", "arcsinh"),
       array_api="numpy.asinh"),
    Op(sp.acosh, lambda out, a: (1 / (sp.sqrt(a - 1) * sp.sqrt(a + 1)),),
       _real_only(mpmath.acosh, low=1), "math.acosh", "numpy.arccosh", names=("acosh", "arccosh"),
       array_api="numpy.acosh"),
    Op(sp.atanh, lambda out, a: (1 / (1 - a**2),), _real_only(mpmath.atanh, -1, 1, True, True),
       "math.atanh", "numpy.arctanh", names=("atanh", "arctanh"),
       array_api="numpy.atanh"),
    Op(sp.acoth, lambda out, a: (1 / (1 - a**2),), None, INV, INV, names=("acoth",),
       inverse=sp.atanh),
    Op(sp.asech, lambda out, a: (-1 / (a * sp.sqrt(1 - a**2)),), None, INV, INV,
       names=("asech",), inverse=sp.acosh),
    Op(sp.acsch, lambda out, a: (-1 / (sp.Abs(a) * hypot(1, a)),), None, INV, INV,
       names=("acsch",), inverse=sp.asinh),  # 1/a**2 overflows below 1e-154 (~ -1/|a|)
    # special functions (numpy has no erf, erfc, gamma or lgamma: helpers)
    Op(sp.erf, lambda out, a: (2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi),), mpmath.erf,
       "math.erf", H, total=True, names=("erf",), torch="torch.erf", jax=H),
    Op(sp.erfc, lambda out, a: (-2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi),), mpmath.erfc,
       "math.erfc", H, total=True, names=("erfc",), torch="torch.erfc", jax=H),
    Op(sp.gamma, None, mpmath.gamma, "math.gamma", H, names=("gamma",), build="gamma"),
    Op(sp.loggamma, None, _real_only(mpmath.loggamma, low=0, open_low=True), "math.lgamma", H,
       names=("loggamma", "lgamma"), build="gamma", torch="torch.lgamma", jax=H),
    # polygamma(0, x) only (digamma, a helper): the printers refuse other orders
    Op(sp.polygamma, None, mpmath.polygamma, OWN, OWN, arity=(2, 2)),
    Op(sp.besseli, None, mpmath.besseli, H, H, names=("besseli",), arity=(2, 2)),
    # piecewise linear and piecewise constant
    Op(sp.Abs, lambda out, a: (sp.sign(a),), abs, "abs", "numpy.abs", stem="abs", total=True,
       names=("abs", "Abs")),
    Op(sp.sign, lambda out, a: (sp.S.Zero,), mpmath.sign, OWN, "numpy.sign", stem="sgn",
       total=True, names=("sign", "sgn")),
    Op(sp.Heaviside, lambda out, a, *h0: (sp.S.Zero,) + (None,) * len(h0), _heaviside, OWN, OWN,
       stem="step", total=True, names=("Heaviside", "heaviside"), arity=(1, 2)),
    Op(sp.floor, lambda out, a: (sp.S.Zero,), mpmath.floor, OWN, "numpy.floor", stem="flr",
       total=True, names=("floor",)),
    Op(sp.ceiling, lambda out, a: (sp.S.Zero,), mpmath.ceil, OWN, "numpy.ceil", stem="ceil",
       total=True, names=("ceiling", "ceil")),
    Op(sp.Max, _extremum(larger=True), max, "max", OWN, stem="max", total=True, numba=OWN,
       names=("max", "Max"), arity=(2, None), build="lattice"),
    Op(sp.Min, _extremum(larger=False), min, "min", OWN, stem="min", total=True, numba=OWN,
       names=("min", "Min"), arity=(2, None), build="lattice"),
    # symdiff's own functions (functions.py)
    Op(sigmoid, lambda out, a: (out * (1 - out),), lambda x: 1 / (1 + mpmath.exp(-x)), H, H,
       stem="sig", total=True, names=("sigmoid",), torch="torch.sigmoid", jax="jax.nn.sigmoid"),
    Op(relu, lambda out, a: (sp.Heaviside(a, 0),), lambda x: max(x, 0), H, H, total=True,
       names=("relu",), torch="torch.relu", jax="jax.nn.relu"),
    Op(softplus, lambda out, a: (sigmoid(a),), _softplus, H, H, stem="splus", total=True,
       names=("softplus",)),
    # the stable gates (stable.py); a string builds their plain form, which canonicalize turns
    # into the gate. expm1' is exp(t), not out + 1: that is 0 for t < -37.
    Op(log1p, lambda out, a: (1 / (1 + a),), _real_only(mpmath.log1p, low=-1, open_low=True),
       "math.log1p", "numpy.log1p", names=("log1p",), build="log1p"),
    Op(expm1, lambda out, a: (sp.exp(a),), mpmath.expm1, "math.expm1", "numpy.expm1",
       names=("expm1",), build="expm1"),
    # torch.hypot refuses a number (hypot(1, a) in asinh'): a torch helper
    Op(hypot, _hypot_partials, mpmath.hypot, "math.hypot", "numpy.hypot", names=("hypot",),
       arity=(2, 2), build="hypot", torch=H),
    Op(logsumexp, _lse_partials, _logsumexp, H, H, stem="lse", arity=(1, None),
       names=("logsumexp", ("logaddexp", 2, 2))),
    # activations and xlogy (functions.py): their derivative is their fdiff, in one place there
    Op(gelu, None, lambda x: x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2, H, H, total=True,
       names=("gelu",)),
    Op(elu, None, lambda x: x if x > 0 else mpmath.expm1(x), H, H, total=True, names=("elu",)),
    Op(selu, None, _selu, H, H, total=True, names=("selu",)),
    Op(mish, None, lambda x: x * mpmath.tanh(_softplus(x)), H, H, total=True, names=("mish",)),
    Op(xlogy, None, _xlogy, H, H, names=("xlogy",), arity=(2, 2)),
    # SymPy's sinc, sin(t)/t (numpy's np.sinc is sin(pi*t)/(pi*t)): a helper in both backends
    Op(sp.sinc, _sinc_partials, mpmath.sinc, H, H, total=True, names=("sinc",)),
)

BY_CLASS: dict[type, Op] = {op.cls: op for op in OPS}


def row(cls: type) -> Op:
    """The row of ``cls`` or of the nearest base class that has one (KeyError if none)."""
    for base in cls.__mro__:
        if base in BY_CLASS:
            return BY_CLASS[base]
    raise KeyError(cls)
