"""Helpers that generated array_api-backend modules carry, as ordinary tested Python.

Each top-level def here is one helper: ``runtime.helper_source`` copies its text verbatim into
every generated module that calls it (with the helpers it calls itself, ``runtime.helper_needs``),
so each stands alone but for those. Invariants: the only import at the top is the optional
``array_api_compat`` (``ARRAY_API.imports`` in backends.py is this module's first statement,
verbatim); every helper finds the namespace of its arguments with ``namespace`` and calls only
that namespace's functions of the Array API standard, so a Dask array stays lazy and chunked, a
torch or CuPy array on its device, and nothing is converted to NumPy. ``quiet`` and ``namespace``
import NumPy inside their bodies, for NumPy's own arrays. The named constants are in
``runtime_math``.
"""

try:
    from array_api_compat import array_namespace
except ImportError:  # NumPy arrays and numbers only: namespace() refuses any other array
    array_namespace = None


def namespace(*values):
    """The Array API namespace of the arrays among values (a tuple or list is searched, a
    Python number skipped): array-api-compat's, which wraps NumPy, CuPy, PyTorch, Dask and JAX
    arrays; NumPy's if there is no array. Without array-api-compat only NumPy arrays are
    accepted (NumPy 2 has the standard's names): any other is a TypeError, never a copy."""
    arrays, stack = [], list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(v)
        elif not isinstance(v, (bool, int, float, complex)):
            arrays.append(v)
    if array_namespace is not None and arrays:
        return array_namespace(*arrays)
    import numpy as np
    if array_namespace is not None:  # numbers only
        return array_namespace(np.zeros(()))
    others = sorted({type(a).__name__ for a in arrays if not isinstance(a, (np.ndarray,
                                                                              np.generic))})
    if others:
        raise TypeError(f"{others[0]} arrays need array-api-compat (pip install "
                        "array-api-compat); without it the array_api code takes NumPy arrays")
    if not hasattr(np, "atan2"):
        raise TypeError("without array-api-compat the array_api code needs NumPy 2")
    return np


def asarrays(*args):
    """The arguments as floating arrays of their one namespace. A floating array is kept as it
    is; an integer or boolean array, or a number, becomes an array of the floating dtype the
    floating arrays given promote to (the namespace's default one if there are none), on the
    first array's device."""
    xp = namespace(*args)
    arrays = [a for a in args if not isinstance(a, (bool, int, float, complex))]
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    if floats:
        dtype = xp.result_type(*floats)
    else:
        dtype = xp.__array_namespace_info__().default_dtypes()["real floating"]
    where = getattr(arrays[0], "device", None) if arrays else None
    out = []
    for a in args:
        if isinstance(a, (bool, int, float, complex)):
            a = xp.asarray(float(a), dtype=dtype, device=where)
        elif not xp.isdtype(a.dtype, "real floating"):
            a = xp.astype(a, dtype)
        out.append(a)
    return tuple(out)


def jacobian_array(rows, *args):
    """rows[i][j] (numbers, or arrays that broadcast with args) as one new array of shape
    (m, n) + the broadcast shape of args and entries (one Jacobian per point), by xp.stack in
    the arrays' namespace (Dask stays lazy, torch on its device), of the floating dtype the
    arrays promote to (the namespace's default one if there are none)."""
    xp = namespace(*args, rows)
    arrays = [a for a in args + tuple(e for row in rows for e in row)
              if not isinstance(a, (bool, int, float, complex))]
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    if floats:
        dtype = xp.result_type(*floats)
    else:
        dtype = xp.__array_namespace_info__().default_dtypes()["real floating"]
    shape = []
    for dims in (tuple(a.shape) for a in arrays):
        shape = [1] * (len(dims) - len(shape)) + shape
        for i, n in enumerate(dims, len(shape) - len(dims)):
            shape[i] = n if shape[i] == 1 else shape[i]
    where = getattr(arrays[0], "device", None) if arrays else None

    def entry(e):
        if isinstance(e, (bool, int, float, complex)):
            e = xp.asarray(float(e), dtype=dtype, device=where)
        elif e.dtype != dtype:
            e = xp.astype(e, dtype)
        return xp.broadcast_to(e, tuple(shape))
    return xp.stack([xp.stack([entry(e) for e in row]) for row in rows])


def unbroadcast(grad, like, shape=()):
    """grad (broadcast to shape) summed down to the shape of the array like: the adjoint of
    broadcasting like up. A number is a gradient of like's dtype and device; the result is
    never a broadcast view of another array (a fresh one is made)."""
    xp = namespace(grad, like)
    if isinstance(grad, (bool, int, float)):
        grad = xp.full_like(like, grad)
    full = [1] * max(grad.ndim, like.ndim, len(shape))
    for dims in (grad.shape, like.shape, shape):
        for i, n in enumerate(dims, len(full) - len(dims)):
            full[i] = n if full[i] == 1 else full[i]
    full = tuple(full)
    expanded = tuple(grad.shape) != full
    if expanded:
        grad = xp.broadcast_to(grad, full)
    if grad.ndim > like.ndim:
        grad = xp.sum(grad, axis=tuple(range(grad.ndim - like.ndim)))
        expanded = False
    axes = tuple(i for i, n in enumerate(like.shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
        expanded = False
    return xp.asarray(grad, copy=True) if expanded else grad


def quiet(xp):
    """The block a line with a where runs under: NumPy's errstate(all="ignore") for NumPy's
    namespaces (every branch is evaluated, and an untaken one must not warn); nothing for the
    others (torch and CuPy do not warn; Dask computes later, chunk by chunk)."""
    import contextlib
    name = getattr(xp, "__name__", "")
    if name in ("numpy", "array_api_compat.numpy"):
        import numpy as np
        return np.errstate(all="ignore")
    return contextlib.nullcontext()



def quietly(step, xp, *args):
    """step(xp, *args), an elementwise line with a where, under quiet(xp): every branch is
    evaluated, and an untaken one must not warn. Dask computes later, so for Dask arrays the
    step runs in each chunk's task (map_blocks), under the quiet of the chunks' namespace; a
    branch that is taken still gives its inf or nan, as NumPy's."""
    if not any(type(a).__module__.split(".")[0] == "dask" for a in args):
        with quiet(xp):
            return step(xp, *args)
    import dask.array

    def chunk(*blocks):
        inner = namespace(*blocks)
        with quiet(inner):
            return step(inner, *blocks)
    floats = [a.dtype for a in args if not isinstance(a, (bool, int, float, complex))]
    return dask.array.map_blocks(chunk, *args, dtype=xp.result_type(*floats))

def sigmoid(t):
    """The logistic function 1/(1 + exp(-t)), elementwise, with no overflow: exp(-|t|) is at
    most 1, and the two forms are exact on their halves."""
    xp = namespace(t)
    e = xp.exp(-xp.abs(t))
    return xp.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(t):
    """max(t, 0) elementwise: the rectified linear unit."""
    xp = namespace(t)
    return xp.maximum(t, 0.0)


def softplus(t):
    """log(1 + exp(t)) elementwise, with no overflow."""
    xp = namespace(t)
    return xp.logaddexp(0.0, t)


def acot(t):
    """arctan(1/t) elementwise, and pi/2 at t = 0 and -0.0 (SymPy's acot(0); 1/-0.0 is -inf)."""
    xp = namespace(t)
    zero = t == 0
    return xp.where(zero, xp.pi / 2, xp.atan(1.0 / xp.where(zero, 1.0, t)))


def sech(t):
    """1/cosh(t) elementwise with no overflow: 2e/(1 + e*e) with e = exp(-|t|)."""
    xp = namespace(t)
    e = xp.exp(-xp.abs(t))
    return 2.0 * e / (1.0 + e * e)


def csch(t):
    """1/sinh(t) elementwise with no overflow: 2e/(1 - e*e) with e = exp(-|t|),
    signed as t (1 - e*e is -expm1(-2|t|), accurate near 0); inf at 0, as 1/0."""
    xp = namespace(t)
    a = xp.abs(t)
    return xp.copysign(2.0 * xp.exp(-a) / -xp.expm1(-2.0 * a), t)


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...) elementwise, with no overflow: the largest term is
    factored out, so every exp is at most 1 (and the sum at least 1)."""
    xp = namespace(*terms)
    top = terms[0]
    for t in terms[1:]:
        top = xp.maximum(top, t)
    shift = xp.where(xp.isfinite(top), top, 0.0)
    return shift + xp.log(sum(xp.exp(t - shift) for t in terms))


def heaviside(t, h0):
    """1 where t > 0, h0 where t == 0, 0 where t < 0, elementwise (the standard has none)."""
    xp = namespace(t)
    return xp.where(t > 0, 1.0, xp.where(t == 0, h0, xp.zeros_like(t)))


def elu(t):
    """t for t > 0, exp(t) - 1 otherwise (alpha = 1), elementwise, with no overflow."""
    xp = namespace(t)
    return xp.where(t > 0, t, xp.expm1(xp.minimum(t, 0.0)))


def selu(t):
    """SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise, elementwise, with no overflow."""
    xp = namespace(t)
    negative = 1.6732632423543772 * xp.expm1(xp.minimum(t, 0.0))
    return 1.0507009873554805 * xp.where(t > 0, t, negative)


def mish(t):
    """t*tanh(softplus(t)) elementwise, with no overflow."""
    xp = namespace(t)
    return t * xp.tanh(xp.logaddexp(0.0, t))


def xlogy(x, y):
    """x*log(y) elementwise, and 0 where x = 0 whatever y is; nan where y < 0 otherwise."""
    xp = namespace(x, y)
    zero = x == 0
    return xp.where(zero, 0.0, x * xp.log(xp.where(zero, 1.0, y)))


def sinc(t):
    """sin(t)/t elementwise, and 1 at 0: SymPy's sinc (numpy's np.sinc is sin(pi*t)/(pi*t))."""
    xp = namespace(t)
    zero = t == 0
    return xp.where(zero, 1.0, xp.sin(t) / xp.where(zero, 1.0, t))


def digamma(x):
    """psi(x) = d log(gamma(x))/dx elementwise (the standard has none): as the numpy version,
    the recurrence up to 10 and the asymptotic series, reflected below 1/2."""
    xp = namespace(x)
    reflect = x < 0.5
    z = xp.where(reflect, 1.0 - x, x)
    acc = xp.zeros_like(z)
    for _ in range(10):  # psi(z) = psi(z + 1) - 1/z, until z >= 10
        small = z < 10.0
        acc = acc - xp.where(small, 1.0 / z, 0.0)
        z = xp.where(small, z + 1.0, z)
    f = 1.0 / (z * z)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (
        1 / 132 - f * (691 / 32760 - f / 12))))))
    psi = acc + xp.log(z) - 0.5 / z - series
    with quiet(xp):
        return xp.where(reflect, psi - xp.pi / xp.tan(xp.pi * x), psi)


def asmatrix(a, name, shape=(None, None)):
    """a (an array) checked to be 2-D, with the sizes the formula fixes (None: any size)."""
    if a.ndim != 2 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must be a {want} matrix (a 2-D array), got shape "
                         f"{tuple(a.shape)}")
    return a


def max_mask(a, amax, axis):
    """Where a attains its maximum amax along axis: 1/(number of ties); elsewhere 0."""
    xp = namespace(a, amax)
    hit = xp.astype(a == amax, a.dtype)
    return hit / xp.sum(hit, axis=axis, keepdims=True)


def first_max_mask(a, amax, axis):
    """Where a first attains its maximum amax along axis: 1; elsewhere 0."""
    xp = namespace(a, amax)
    hit = xp.astype(a == amax, a.dtype)
    return xp.where(xp.cumulative_sum(hit, axis=axis) == 1, hit, 0.0)


def entry_grad(value, i, j, shape):
    """Zeros of ``shape`` with ``value`` at ``(i, j)``: the gradient of the entry ``a[i, j]``
    (a one-hot mask times value, so an immutable or lazy array needs no item assignment)."""
    xp = namespace(value)
    value = xp.asarray(value)
    rows = xp.reshape(xp.arange(shape[0], device=getattr(value, "device", None)), (-1, 1))
    cols = xp.reshape(xp.arange(shape[1], device=getattr(value, "device", None)), (1, -1))
    return xp.where((rows == i) & (cols == j), value, xp.zeros((), dtype=value.dtype))


def submatrix_grad(value, rows, cols, shape):
    """Zeros of ``shape`` with ``value`` at ``[rows[0]:rows[1], cols[0]:cols[1]]``: the gradient
    of the block ``a[r0:r1, c0:c1]`` (the block padded with zeros: no item assignment)."""
    xp = namespace(value)
    value = xp.broadcast_to(xp.asarray(value), (rows[1] - rows[0], cols[1] - cols[0]))
    zero = xp.zeros((), dtype=value.dtype)

    def zeros(r, c):
        return xp.broadcast_to(zero, (r, c))
    middle = xp.concat([zeros(value.shape[0], cols[0]), value,
                        zeros(value.shape[0], shape[1] - cols[1])], axis=1)
    return xp.concat([zeros(rows[0], shape[1]), middle, zeros(shape[0] - rows[1], shape[1])],
                     axis=0)


def logdet(a):
    """log(det(a)) by slogdet (no overflow); nan where det(a) < 0, -inf where 0."""
    xp = namespace(a)
    sign, value = xp.linalg.slogdet(a)
    return xp.where(sign > 0, value, xp.where(sign < 0, xp.nan, -xp.inf))


def cholesky(a):
    """The lower Cholesky factor of a, which the formula declares symmetric positive definite
    (symdiff.spd): a ValueError if a is not symmetric (the factor reads only one triangle, so
    going on would be a wrong answer; a lazy array is computed for this one test)."""
    xp = namespace(a)
    if bool(xp.any(xp.abs(a - a.T) > 1e-12 * xp.max(xp.abs(a)))):
        raise ValueError("cholesky: the matrix declared spd (symmetric positive definite) is "
                         "not symmetric")
    return xp.linalg.cholesky(a)


def cho_solve(c, b):
    """a**-1 @ b from the lower Cholesky factor c of a: two solves, with c and c.T."""
    xp = namespace(c, b)
    return xp.linalg.solve(c.T, xp.linalg.solve(c, b))


def cho_logdet(c):
    """log(det(a)) from the lower Cholesky factor c of a: 2*sum(log(diag(c)))."""
    xp = namespace(c)
    return 2.0 * xp.sum(xp.log(xp.linalg.diagonal(c)))


def cho_inverse(c):
    """a**-1 from the lower Cholesky factor c of a (symmetric, as a is): inv(c).T @ inv(c)."""
    xp = namespace(c)
    inv_c = xp.linalg.inv(c)
    return inv_c.T @ inv_c
