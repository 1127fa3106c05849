"""Helpers that generated numpy-backend modules carry, as ordinary tested Python.

Each top-level def here is one helper: ``runtime.helper_source`` copies its text verbatim into
every generated module that calls it, so each must stand alone. Invariants: this module imports
only ``numpy as np`` (generated modules run without symdiff installed); erf, erfc, gamma,
loggamma and gelu import ``math`` inside their bodies, since numpy has no such functions.
Every helper works elementwise on arrays and on scalars, except the linear-algebra ones
(entry_grad, logdet, cholesky, cho_*), whose arguments are matrices; cho_solve and cho_inverse
import SciPy inside their bodies when it is installed, and use numpy alone when it is not.
The named constants are in ``runtime_math``.
"""

import numpy as np


def sigmoid(t):
    """The logistic function 1/(1 + exp(-t)), elementwise: where exp(-t) overflows
    to inf (t < -709) the result is exactly 0, as it should be, with no warning."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-t))


def relu(t):
    """max(t, 0) elementwise: the rectified linear unit."""
    return np.maximum(t, 0.0)


def softplus(t):
    """log(1 + exp(t)) elementwise, with no overflow."""
    return np.logaddexp(0.0, t)


def acot(t):
    """arctan(1/t) elementwise, and pi/2 at t = 0 and -0.0 (SymPy's acot(0); 1/-0.0 is -inf)."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(t == 0, np.pi / 2, np.arctan(1.0 / t))[()]


def sech(t):
    """1/cosh(t) elementwise with no overflow: 2e/(1 + e*e) with e = exp(-|t|)."""
    e = np.exp(-np.abs(t))
    return 2.0 * e / (1.0 + e * e)


def csch(t):
    """1/sinh(t) elementwise with no overflow: 2e/(1 - e*e) with e = exp(-|t|),
    signed as t (1 - e*e is -expm1(-2|t|), accurate near 0); inf at 0, as 1/0."""
    a = np.abs(t)
    return np.copysign(2.0 * np.exp(-a) / -np.expm1(-2.0 * a), t)


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...) elementwise, with no overflow: the largest term is
    factored out, so every exp is at most 1 (and the sum at least 1)."""
    top = terms[0]
    for t in terms[1:]:
        top = np.maximum(top, t)
    shift = np.where(np.isfinite(top), top, 0.0)
    return shift + np.log(sum(np.exp(t - shift) for t in terms))


def unbroadcast(grad, like, shape=()):
    """grad (broadcast to shape) summed down to the shape of like: the adjoint of
    broadcasting like up. A float array of like's shape is returned as it is."""
    target = np.shape(like)
    g = np.asarray(grad)
    if not np.issubdtype(g.dtype, np.floating):
        g = g.astype(float)
    full = np.broadcast_shapes(g.shape, target, shape)
    if g.shape != full:
        g = np.broadcast_to(g, full)
    if g.ndim > len(target):
        g = g.sum(axis=tuple(range(g.ndim - len(target))))
    axes = tuple(i for i, n in enumerate(target) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if not isinstance(like, np.ndarray):
        return float(g)
    return g if g.flags.writeable else np.array(g)


def in_blocks(fused, args, block=8192):
    """fused(*args) computed over blocks of rows, when every argument is an array of
    the same shape with more than block elements; otherwise in one call. The results
    are the same numbers (every step is elementwise), and a few dozen temporaries of
    block elements (64 KiB each: malloc serves them from its heap, not by mmap) stay
    in the CPU cache instead of streaming through memory."""
    arrays = [np.asarray(a) for a in args]
    shape = arrays[0].shape
    if not shape or any(a.shape != shape for a in arrays):
        return fused(*args)
    inner = int(np.prod(shape[1:]))
    rows = max(1, block // max(inner, 1))
    if shape[0] <= rows:
        return fused(*args)
    out, grads = None, None
    for start in range(0, shape[0], rows):
        value, partials = fused(*(a[start:start + rows] for a in arrays))
        if out is None:
            if np.shape(value) != (min(rows, shape[0]),) + shape[1:]:
                return fused(*args)  # the value does not have the arguments' shape
            out = np.empty(shape, dtype=np.asarray(value).dtype)
            grads = [np.empty(shape, dtype=np.asarray(g).dtype) for g in partials]
        out[start:start + rows] = value
        for whole, part in zip(grads, partials):
            whole[start:start + rows] = part
    return out, tuple(grads)


def asmatrix(a, name, shape=(None, None)):
    """a as a 2-D float array, with the sizes the formula fixes (None: any size)."""
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must be a {want} matrix (a 2-D array), got shape "
                         f"{a.shape}")
    return a


def jacobian_array(rows, *args):
    """rows[i][j] (numbers, or arrays that broadcast with args) as one new float array of
    shape (m, n) + the broadcast shape of args and entries: one Jacobian per point."""
    entries = [e for row in rows for e in row]
    shape = np.broadcast_shapes(*(np.shape(a) for a in args + tuple(entries)))
    dtype = np.result_type(float, *entries)
    jac = np.empty((len(rows), len(rows[0])) + shape, dtype=dtype)
    for i, row in enumerate(rows):
        for j, entry in enumerate(row):
            jac[i, j] = entry
    return jac


def asfloat(a):
    """a as a float array, or a NumPy float scalar (so 1/0 gives inf, as in NumPy); a complex
    one is refused (NumPy would drop its imaginary part with only a warning)."""
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise TypeError(f"a real number or array was expected, got the complex {a!r}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(float)
    return a[()]


def erf(t):
    """Elementwise math.erf: numpy has none, so math is imported here."""
    import math
    return np.vectorize(math.erf, otypes=[float])(t)


def erfc(t):
    """Elementwise math.erfc: numpy has none, so math is imported here."""
    import math
    return np.vectorize(math.erfc, otypes=[float])(t)


def gamma(t):
    """Elementwise math.gamma: numpy has none, so math is imported here. As numpy functions
    do, a pole gives nan and an overflow inf for its element (math.gamma raises)."""
    import math

    def one(u):
        try:
            return math.gamma(u)
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf
    return np.vectorize(one, otypes=[float])(t)


def loggamma(t):
    """Elementwise math.lgamma: numpy has none, so math is imported here. As numpy functions
    do, a pole gives nan for its element (math.lgamma raises)."""
    import math

    def one(u):
        try:
            return math.lgamma(u)
        except ValueError:
            return math.nan
    return np.vectorize(one, otypes=[float])(t)


def max_mask(a, amax, axis):
    """Where a attains its maximum amax along axis: 1/(number of ties); elsewhere 0."""
    hit = (a == amax).astype(float)
    return hit / hit.sum(axis=axis, keepdims=True)


def first_max_mask(a, amax, axis):
    """Where a first attains its maximum amax along axis: 1; elsewhere 0."""
    hit = a == amax
    return (hit & (np.cumsum(hit, axis=axis) == 1)).astype(float)


def entry_grad(value, i, j, shape):
    """Zeros of ``shape`` with ``value`` at ``(i, j)``: the gradient of the entry ``a[i, j]``."""
    out = np.zeros(shape)
    out[i, j] = value
    return out


def submatrix_grad(value, rows, cols, shape):
    """Zeros of ``shape`` with ``value`` at ``[rows[0]:rows[1], cols[0]:cols[1]]``: the gradient
    of the block ``a[r0:r1, c0:c1]``."""
    out = np.zeros(shape)
    out[rows[0]:rows[1], cols[0]:cols[1]] = value
    return out


def logdet(a):
    """log(det(a)) by np.linalg.slogdet (no overflow); nan where det(a) < 0, -inf where 0."""
    sign, value = np.linalg.slogdet(a)
    return value if sign > 0 else (np.nan if sign < 0 else -np.inf)


def cholesky(a):
    """The lower Cholesky factor of a, which the formula declares symmetric positive definite
    (symdiff.spd): a ValueError if a is not symmetric (the factor reads only one triangle, so
    going on would be a wrong answer), numpy's LinAlgError if it is not positive definite."""
    if np.any(np.abs(a - a.T) > 1e-12 * np.max(np.abs(a), initial=0.0)):
        raise ValueError("cholesky: the matrix declared spd (symmetric positive definite) is "
                         "not symmetric")
    return np.linalg.cholesky(a)


def cho_solve(c, b):
    """a**-1 @ b from the lower Cholesky factor c of a: two triangular solves (SciPy's
    cho_solve when SciPy is installed, else np.linalg.solve with c and c.T)."""
    try:
        from scipy.linalg import cho_solve as solve_factored
    except ImportError:
        return np.linalg.solve(c.T, np.linalg.solve(c, b))
    return solve_factored((c, True), b, check_finite=False)


def cho_logdet(c):
    """log(det(a)) from the lower Cholesky factor c of a: 2*sum(log(diag(c)))."""
    return 2.0 * np.sum(np.log(np.diagonal(c)))


def cho_inverse(c):
    """a**-1 from the lower Cholesky factor c of a (symmetric, as a is): SciPy's cho_solve
    of the identity when SciPy is installed, else inv(c).T @ inv(c)."""
    try:
        from scipy.linalg import cho_solve as solve_factored
    except ImportError:
        inv_c = np.linalg.inv(c)
        return inv_c.T @ inv_c
    return solve_factored((c, True), np.eye(c.shape[0]), check_finite=False)


def digamma(x):
    """psi(x) = d log(gamma(x))/dx elementwise (numpy has none): as the math version."""
    x = np.asarray(x, dtype=float)
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    acc = np.zeros_like(z)
    for _ in range(10):  # psi(z) = psi(z + 1) - 1/z, until z >= 10
        small = z < 10.0
        acc = acc - np.where(small, 1.0 / z, 0.0)
        z = np.where(small, z + 1.0, z)
    f = 1.0 / (z * z)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (
        1 / 132 - f * (691 / 32760 - f / 12))))))
    psi = acc + np.log(z) - 0.5 / z - series
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reflect, psi - np.pi / np.tan(np.pi * x), psi)


def besseli(nu, x):
    """I_nu(x) elementwise (numpy has only i0): the power series, as the math version, one
    term for all elements at a time; nan where it is not real (x < 0, nu not an integer)."""
    import math
    nu, x = np.broadcast_arrays(np.asarray(nu, dtype=float), np.asarray(x, dtype=float))
    integer = nu == np.round(nu)
    nu = np.where(integer, np.abs(nu), nu)
    half = 0.5 * x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lgam = np.vectorize(math.lgamma, otypes=[float])(nu + 1.0)
        term = np.exp(nu * np.log(np.abs(half)) - lgam)
        term = np.where((x < 0) & integer & (nu % 2 == 1), -term, term)
        term = np.where(x == 0, np.where(nu == 0, 1.0, 0.0), term)
        term = np.where((x < 0) & ~integer, np.nan, term)
        total, k, q = term.copy(), 0, half * half
        while np.any(np.abs(term) > 1e-17 * np.abs(total)):
            k += 1
            term = term * q / (k * (k + nu))
            total = total + term
    return total[()]


def gelu(t):
    """t*Phi(t) elementwise, the exact (erf) GELU: Phi(t) = erfc(-t/sqrt(2))/2 (no cancellation
    for t << 0); numpy has no erfc, so math is imported here."""
    import math
    return 0.5 * t * np.vectorize(math.erfc, otypes=[float])(-0.7071067811865476 * t)


def elu(t):
    """t for t > 0, exp(t) - 1 otherwise (alpha = 1), elementwise, with no overflow."""
    return np.where(t > 0, t, np.expm1(np.minimum(t, 0.0)))[()]


def selu(t):
    """SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise, elementwise, with no overflow."""
    negative = 1.6732632423543772 * np.expm1(np.minimum(t, 0.0))
    return (1.0507009873554805 * np.where(t > 0, t, negative))[()]


def mish(t):
    """t*tanh(softplus(t)) elementwise, with no overflow."""
    return t * np.tanh(np.logaddexp(0.0, t))


def xlogy(x, y):
    """x*log(y) elementwise, and 0 where x = 0 whatever y is; nan where y < 0 otherwise."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))[()]


def sinc(t):
    """sin(t)/t elementwise, and 1 at 0: SymPy's sinc (numpy's np.sinc is sin(pi*t)/(pi*t),
    and np.sinc(t/pi) rounds t/pi, which moves the zeros at multiples of pi)."""
    t = np.asarray(t, dtype=float)
    return np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t))[()]
