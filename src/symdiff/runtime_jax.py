"""Helpers that generated jax-backend modules carry, as ordinary tested Python.

Each top-level def here is one helper: ``runtime.helper_source`` copies its text verbatim into
every generated module that calls it, so each must stand alone. Invariants: this module imports
only ``jax.numpy as jnp`` (generated modules run without symdiff installed); every
helper is a pure function of its arguments, elementwise over arrays, with no Python branch on
a value, so it runs under ``jit``, ``vmap`` and ``grad``; the special functions import
``jax.scipy.special`` inside their bodies. The named constants are in ``runtime_math``.
"""

import jax.numpy as jnp


def asfloat(a):
    """a as a jax array of a floating dtype (an integer one becomes jax's default float); a
    complex one is refused (its imaginary part would be dropped)."""
    a = jnp.asarray(a)
    if jnp.iscomplexobj(a):
        raise TypeError(f"a real number or array was expected, got the complex {a!r}")
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(float)


def jacobian_array(rows, *args):
    """rows[i][j] (numbers, or arrays that broadcast with args) as one new float array of
    shape (m, n) + the broadcast shape of args and entries: one Jacobian per point."""
    entries = [jnp.asarray(e) for row in rows for e in row]
    shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in args), *(e.shape for e in entries))
    dtype = jnp.result_type(float, *entries)
    flat = jnp.stack([jnp.broadcast_to(e.astype(dtype), shape) for e in entries])
    return flat.reshape((len(rows), len(rows[0])) + shape)


def asmatrix(a, name, shape=(None, None)):
    """a as a 2-D float array, with the sizes the formula fixes (None: any size)."""
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(float)
    if a.ndim != 2 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must be a {want} matrix (a 2-D array), got shape "
                         f"{a.shape}")
    return a


def unbroadcast(grad, like, shape=()):
    """grad (broadcast to shape) summed down to the shape of like: the adjoint of
    broadcasting like up (shapes are static, so this traces under jit and vmap)."""
    target = jnp.shape(like)
    g = jnp.asarray(grad, dtype=jnp.result_type(like, grad))
    full = jnp.broadcast_shapes(g.shape, target, shape)
    g = jnp.broadcast_to(g, full)
    if g.ndim > len(target):
        g = g.sum(axis=tuple(range(g.ndim - len(target))))
    axes = tuple(i for i, n in enumerate(target) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def acot(t):
    """arctan(1/t) elementwise, and pi/2 at t = 0 and -0.0 (SymPy's acot(0); 1/-0.0 is -inf)."""
    return jnp.where(t == 0, jnp.pi / 2, jnp.arctan(1.0 / jnp.where(t == 0, 1.0, t)))


def sech(t):
    """1/cosh(t) elementwise with no overflow: 2e/(1 + e*e) with e = exp(-|t|)."""
    e = jnp.exp(-jnp.abs(t))
    return 2.0 * e / (1.0 + e * e)


def csch(t):
    """1/sinh(t) elementwise with no overflow: 2e/(1 - e*e) with e = exp(-|t|),
    signed as t (1 - e*e is -expm1(-2|t|), accurate near 0); inf at 0, as 1/0."""
    a = jnp.abs(t)
    return jnp.copysign(2.0 * jnp.exp(-a) / -jnp.expm1(-2.0 * a), t)


def softplus(t):
    """log(1 + exp(t)) elementwise, with no overflow."""
    return jnp.logaddexp(t, 0.0)


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...) elementwise, with no overflow: the largest term is
    factored out, so every exp is at most 1 (and the sum at least 1)."""
    top = terms[0]
    for t in terms[1:]:
        top = jnp.maximum(top, t)
    shift = jnp.where(jnp.isfinite(top), top, 0.0)
    return shift + jnp.log(sum(jnp.exp(t - shift) for t in terms))


def erf(t):
    """The error function elementwise (jax.scipy.special.erf)."""
    import jax.scipy.special
    return jax.scipy.special.erf(t)


def erfc(t):
    """1 - erf(t) elementwise, with no cancellation for large t (jax.scipy.special.erfc)."""
    import jax.scipy.special
    return jax.scipy.special.erfc(t)


def gamma(t):
    """Gamma(t) elementwise, signed for t < 0; nan at the poles (0, -1, -2, ...)."""
    import jax.scipy.special
    t = jnp.asarray(t)
    value = jax.scipy.special.gamma(t)
    return jnp.where((t <= 0) & (t == jnp.floor(t)), jnp.nan, value)


def loggamma(t):
    """log|Gamma(t)| elementwise (jax.scipy.special.gammaln)."""
    import jax.scipy.special
    return jax.scipy.special.gammaln(t)


def digamma(x):
    """psi(x) = d log(gamma(x))/dx elementwise (jax.scipy.special.digamma)."""
    import jax.scipy.special
    return jax.scipy.special.digamma(x)


def gelu(t):
    """t*Phi(t) elementwise, the exact (erf) GELU: Phi(t) = erfc(-t/sqrt(2))/2 (no cancellation
    for t << 0)."""
    import jax.scipy.special
    return 0.5 * t * jax.scipy.special.erfc(-0.7071067811865476 * t)


def elu(t):
    """t for t > 0, exp(t) - 1 otherwise (alpha = 1), elementwise, with no overflow."""
    return jnp.where(t > 0, t, jnp.expm1(jnp.minimum(t, 0.0)))


def selu(t):
    """SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise, elementwise, with no overflow."""
    negative = 1.6732632423543772 * jnp.expm1(jnp.minimum(t, 0.0))
    return 1.0507009873554805 * jnp.where(t > 0, t, negative)


def mish(t):
    """t*tanh(softplus(t)) elementwise, with no overflow."""
    return t * jnp.tanh(jnp.logaddexp(t, 0.0))


def xlogy(x, y):
    """x*log(y) elementwise, and 0 where x = 0 whatever y is; nan where y < 0 otherwise."""
    return jnp.where(x == 0, 0.0, x * jnp.log(jnp.where(x == 0, 1.0, y)))


def sinc(t):
    """sin(t)/t elementwise, and 1 at 0: SymPy's sinc (jnp.sinc is sin(pi*t)/(pi*t))."""
    return jnp.where(t == 0, 1.0, jnp.sin(t) / jnp.where(t == 0, 1.0, t))


def max_mask(a, amax, axis):
    """Where a attains its maximum amax along axis: 1/(number of ties); elsewhere 0."""
    hit = (a == amax).astype(a.dtype)
    return hit / hit.sum(axis=axis, keepdims=True)


def entry_grad(value, i, j, shape):
    """Zeros of ``shape`` with ``value`` at ``(i, j)``: the gradient of the entry ``a[i, j]``."""
    value = jnp.asarray(value)
    return jnp.zeros(shape, dtype=value.dtype).at[i, j].set(value)


def submatrix_grad(value, rows, cols, shape):
    """Zeros of ``shape`` with ``value`` at ``[rows[0]:rows[1], cols[0]:cols[1]]``: the gradient
    of the block ``a[r0:r1, c0:c1]``."""
    value = jnp.asarray(value)
    return jnp.zeros(shape, dtype=value.dtype).at[rows[0]:rows[1], cols[0]:cols[1]].set(value)


def logdet(a):
    """log(det(a)) by jnp.linalg.slogdet (no overflow); nan where det(a) < 0, -inf where 0."""
    sign, value = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, value, jnp.where(sign < 0, jnp.nan, -jnp.inf))
