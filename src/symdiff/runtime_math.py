"""Helpers that generated math-backend modules carry, as ordinary tested Python.

Each top-level def and assignment here is one helper: ``runtime.helper_source`` copies its text
verbatim into every generated module that calls it, so each must stand alone. Invariants: this
module imports only ``math`` (generated modules run without symdiff installed), and a helper uses
nothing but ``math`` and itself. The named constants at the end are plain floats, the same for
every backend; the numpy backend takes them from here too.
"""

import math


def sigmoid(t):
    """The logistic function 1/(1 + exp(-t)), with no OverflowError for any t: below
    -708, exp(-t) would overflow, and 1 + exp(t) is 1 in floats, so it is exp(t)."""
    return 1.0 / (1.0 + math.exp(-t)) if t >= -708.0 else math.exp(t)


def relu(t):
    """max(t, 0): the rectified linear unit."""
    return t if t > 0 else 0.0


def softplus(t):
    """log(1 + exp(t)), with no OverflowError for any t."""
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


def sech(t):
    """1/cosh(t) with no OverflowError: 2e/(1 + e*e) with e = exp(-|t|) <= 1."""
    e = math.exp(-abs(t))
    return 2.0 * e / (1.0 + e * e)


def csch(t):
    """1/sinh(t) with no OverflowError: 2e/(1 - e*e) with e = exp(-|t|), signed as t
    (1 - e*e is -expm1(-2|t|), accurate near 0); csch(0) divides by zero."""
    e = math.exp(-abs(t))
    return math.copysign(2.0 * e / -math.expm1(-2.0 * abs(t)), t)


def undefined():
    """Raise where the formula is undefined (math functions raise ValueError too)."""
    raise ValueError("math domain error: the formula is undefined at this point")


def acot(t):
    """atan(1/t), and pi/2 at t = 0 (SymPy's acot(0))."""
    return math.atan(1.0 / t) if t else math.pi / 2


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...), with no OverflowError: the largest term is
    factored out, so every exp is at most 1 (and the sum at least 1)."""
    top = max(terms)
    if math.isinf(top):
        return top
    return top + math.log(math.fsum([math.exp(t - top) for t in terms]))


def digamma(x):
    """psi(x) = d log(gamma(x))/dx: reflection, recurrence to x >= 10, asymptotic series.

    Absolute error about 1e-16 (relative error grows only next to the root at 1.4616).
    """
    if x < 0.5:
        return digamma(1.0 - x) - math.pi / math.tan(math.pi * x)
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (
        1 / 132 - f * (691 / 32760 - f / 12))))))
    return acc + math.log(x) - 0.5 / x - series


# named constants (sympy.EulerGamma, ...): math has none of them; each is its value
# rounded to the nearest double.
EULER_GAMMA = 0.5772156649015329  # sympy.EulerGamma: the Euler-Mascheroni constant
CATALAN = 0.915965594177219  # sympy.Catalan: Catalan's constant
GOLDEN_RATIO = 1.618033988749895  # sympy.GoldenRatio: the golden ratio, (1 + sqrt(5))/2
TRIBONACCI = 1.8392867552141612  # sympy.TribonacciConstant: the real root of t**3 = t**2 + t + 1


def besseli(nu, x):
    """The modified Bessel function I_nu(x) for a real order nu (nu >= 0, or an integer:
    I_-n = I_n) and real x (x >= 0 unless nu is an integer): its power series, whose terms
    all have one sign, so it is accurate to a few ulps wherever the value is a float."""
    if nu == int(nu):
        nu = abs(nu)
    elif x < 0 or nu < 0:
        raise ValueError("math domain error: besseli of a negative argument or order")
    if x == 0:
        return 1.0 if nu == 0 else 0.0
    half = 0.5 * x
    term = math.exp(nu * math.log(abs(half)) - math.lgamma(nu + 1.0))
    if x < 0 and int(nu) % 2:
        term = -term
    total, k, q = term, 0, half * half
    while abs(term) > 1e-17 * abs(total):
        k += 1
        term *= q / (k * (k + nu))
        total += term
    return total


def gelu(t):
    """t*Phi(t), the exact (erf) GELU: Phi(t) = erfc(-t/sqrt(2))/2, which keeps its digits
    for t << 0 where 1 + erf(t/sqrt(2)) cancels."""
    return 0.5 * t * math.erfc(-0.7071067811865476 * t)


def elu(t):
    """t for t > 0, exp(t) - 1 otherwise (alpha = 1), with expm1 near 0."""
    return t if t > 0 else math.expm1(t)


def selu(t):
    """SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise (Klambauer et al.'s constants)."""
    return 1.0507009873554805 * (t if t > 0 else 1.6732632423543772 * math.expm1(t))


def mish(t):
    """t*tanh(softplus(t)), softplus computed with no OverflowError."""
    return t * math.tanh(max(t, 0.0) + math.log1p(math.exp(-abs(t))))


def xlogy(x, y):
    """x*log(y), and 0 where x = 0 whatever y is; ValueError for y <= 0 otherwise (as log)."""
    return 0.0 if x == 0 else x * math.log(y)


def sinc(t):
    """sin(t)/t, and 1 at 0 (SymPy's sinc, not numpy's sin(pi*t)/(pi*t))."""
    return math.sin(t) / t if t != 0 else 1.0
