"""Helpers that generated torch-backend modules carry, as ordinary tested Python.

Each top-level def here is one helper: ``runtime.helper_source`` copies its text verbatim into
every generated module that calls it, so each must stand alone. Invariants: this module imports
only ``torch`` (generated modules run without symdiff installed); every helper works
elementwise on tensors of any shape, device and float dtype and never copies one to the host;
where torch's own function refuses a Python number (``torch.hypot(1.0, t)``), the helper takes
one. The named constants are in ``runtime_math``.
"""

import torch


def astensors(*args):
    """The arguments as floating tensors on one device. A float tensor is kept as it is; a
    number or an integer tensor becomes a tensor of the float dtype the float tensors given
    promote to (torch's default dtype if there are none), on the first tensor's device."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    floats = [a.dtype for a in tensors if a.is_floating_point()]
    dtype = floats[0] if floats else torch.get_default_dtype()
    for other in floats[1:]:
        dtype = torch.promote_types(dtype, other)
    device = tensors[0].device if tensors else None
    return tuple(a if isinstance(a, torch.Tensor) and a.is_floating_point()
                 else torch.as_tensor(a, dtype=dtype, device=device) for a in args)


def jacobian_array(rows, *args):
    """rows[i][j] (numbers, or tensors that broadcast with args) as one new tensor of shape
    (m, n) + the broadcast shape of args and entries (one Jacobian per point), of the float
    dtype the tensors promote to (torch's default if there are none), on their device."""
    entries = [e for row in rows for e in row]
    tensors = [a for a in args + tuple(entries) if isinstance(a, torch.Tensor)]
    floats = [a.dtype for a in tensors if a.is_floating_point()]
    dtype = floats[0] if floats else torch.get_default_dtype()
    for other in floats[1:]:
        dtype = torch.promote_types(dtype, other)
    device = tensors[0].device if tensors else None
    shape = torch.broadcast_shapes(*(a.shape for a in tensors))
    flat = torch.stack([torch.as_tensor(e, dtype=dtype, device=device).broadcast_to(shape)
                        for e in entries])
    return flat.reshape((len(rows), len(rows[0])) + tuple(shape))


def asmatrix(a, name, shape=(None, None)):
    """a (a tensor) checked to be 2-D, with the sizes the formula fixes (None: any size)."""
    if a.dim() != 2 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must be a {want} matrix (a 2-D tensor), got shape "
                         f"{tuple(a.shape)}")
    return a


def unbroadcast(grad, like, shape=()):
    """grad (broadcast to shape) summed down to the shape of the tensor like: the adjoint of
    broadcasting like up. A number is a gradient of like's dtype and device."""
    if not isinstance(grad, torch.Tensor):
        grad = torch.full_like(like, grad)
    full = torch.broadcast_shapes(grad.shape, like.shape, shape)
    expanded = grad.shape != full
    if expanded:
        grad = grad.expand(full)
    if grad.dim() > like.dim():
        grad = grad.sum(dim=tuple(range(grad.dim() - like.dim())))
    dims = tuple(i for i, n in enumerate(like.shape) if n == 1 and grad.shape[i] != 1)
    if dims:
        grad = grad.sum(dim=dims, keepdim=True)
    return grad.contiguous() if expanded else grad  # never an expanded view of one value


def needed(ctx, *grads):
    """Function.backward's result, one gradient per input: None where none is needed (a
    number, a tensor that does not require grad). An input that needs a gradient the formula
    does not compute (None: an argument outside wrt) is an error, never a silent zero."""
    for k, (g, need) in enumerate(zip(grads, ctx.needs_input_grad)):
        if need and g is None:
            raise RuntimeError(f"input {k} requires grad, but the formula was not "
                               "differentiated with respect to it (add it to wrt)")
    return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))


def save(ctx, cache):
    """ctx.save_for_backward for the tensors of cache; its numbers (a matrix program's
    dimensions, and steps computed from them alone) are kept on ctx."""
    ctx.save_for_backward(*(v for v in cache if isinstance(v, torch.Tensor)))
    ctx.numbers = [None if isinstance(v, torch.Tensor) else v for v in cache]


def saved(ctx):
    """The cache that save(ctx, cache) kept, in its order."""
    tensors = iter(ctx.saved_tensors)
    return tuple(next(tensors) if v is None else v for v in ctx.numbers)


def atan2(y, x):
    """torch.atan2, also for a number as either argument (torch's takes two tensors)."""
    if not isinstance(y, torch.Tensor):
        y = torch.full_like(x, y)
    if not isinstance(x, torch.Tensor):
        x = torch.full_like(y, x)
    return torch.atan2(y, x)


def hypot(a, b):
    """sqrt(a*a + b*b) with no overflow, also for a number as either argument."""
    if not isinstance(a, torch.Tensor):
        a = torch.full_like(b, a)
    if not isinstance(b, torch.Tensor):
        b = torch.full_like(a, b)
    return torch.hypot(a, b)


def heaviside(t, h0):
    """1 where t > 0, h0 where t == 0, 0 where t < 0 (torch.heaviside takes h0 as a tensor)."""
    return torch.heaviside(t, torch.as_tensor(h0, dtype=t.dtype, device=t.device))


def acot(t):
    """arctan(1/t) elementwise, and pi/2 at t = 0 and -0.0 (SymPy's acot(0); 1/-0.0 is -inf)."""
    return torch.where(t == 0, torch.pi / 2, torch.atan(1.0 / t))


def sech(t):
    """1/cosh(t) elementwise with no overflow: 2e/(1 + e*e) with e = exp(-|t|)."""
    e = torch.exp(-torch.abs(t))
    return 2.0 * e / (1.0 + e * e)


def csch(t):
    """1/sinh(t) elementwise with no overflow: 2e/(1 - e*e) with e = exp(-|t|),
    signed as t (1 - e*e is -expm1(-2|t|), accurate near 0); inf at 0, as 1/0."""
    a = torch.abs(t)
    return torch.copysign(2.0 * torch.exp(-a) / -torch.expm1(-2.0 * a), t)


def softplus(t):
    """log(1 + exp(t)) elementwise, with no overflow (torch's nn.functional.softplus returns
    t itself above a threshold of 20, off by exp(-20))."""
    return torch.logaddexp(t, torch.zeros_like(t))


def logsumexp(*terms):
    """log(exp(t0) + exp(t1) + ...) elementwise, with no overflow: the largest term is
    factored out, so every exp is at most 1 (and the sum at least 1)."""
    like = next(t for t in terms if isinstance(t, torch.Tensor))
    terms = [t if isinstance(t, torch.Tensor) else torch.full_like(like, t) for t in terms]
    top = terms[0]
    for t in terms[1:]:
        top = torch.maximum(top, t)
    shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return shift + torch.log(sum(torch.exp(t - shift) for t in terms))


def gamma(t):
    """Gamma(t) elementwise (torch has only log|Gamma|): exp(lgamma(t)), negative where
    floor(t) is odd and t < 0, nan at the poles (0, -1, -2, ...), as numpy's helper."""
    negative = (t < 0) & (torch.remainder(torch.floor(t), 2) == 1)
    value = torch.where(negative, -torch.exp(torch.lgamma(t)), torch.exp(torch.lgamma(t)))
    return torch.where((t <= 0) & (t == torch.floor(t)), torch.nan, value)


def digamma(x):
    """psi(x) = d log(gamma(x))/dx elementwise."""
    return torch.special.digamma(x)


def gelu(t):
    """t*Phi(t) elementwise, the exact (erf) GELU: Phi(t) = erfc(-t/sqrt(2))/2 (no cancellation
    for t << 0)."""
    return 0.5 * t * torch.erfc(-0.7071067811865476 * t)


def elu(t):
    """t for t > 0, exp(t) - 1 otherwise (alpha = 1), elementwise, with no overflow."""
    return torch.where(t > 0, t, torch.expm1(torch.clamp(t, max=0.0)))


def selu(t):
    """SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise, elementwise, with no overflow."""
    negative = 1.6732632423543772 * torch.expm1(torch.clamp(t, max=0.0))
    return 1.0507009873554805 * torch.where(t > 0, t, negative)


def mish(t):
    """t*tanh(softplus(t)) elementwise, with no overflow."""
    return t * torch.tanh(torch.logaddexp(t, torch.zeros_like(t)))


def xlogy(x, y):
    """x*log(y) elementwise, and 0 where x = 0 whatever y is; nan where y < 0 otherwise."""
    if not isinstance(x, torch.Tensor):
        x = torch.full_like(y, x)
    if not isinstance(y, torch.Tensor):
        y = torch.full_like(x, y)
    return torch.where(x == 0, 0.0, x * torch.log(torch.where(x == 0, 1.0, y)))


def sinc(t):
    """sin(t)/t elementwise, and 1 at 0: SymPy's sinc (torch.sinc is sin(pi*t)/(pi*t))."""
    return torch.where(t == 0, 1.0, torch.sin(t) / torch.where(t == 0, 1.0, t))


def max_mask(a, amax, axis):
    """Where a attains its maximum amax along axis: 1/(number of ties); elsewhere 0."""
    hit = (a == amax).to(a.dtype)
    return hit / hit.sum(dim=axis, keepdim=True)


def entry_grad(value, i, j, shape):
    """Zeros of ``shape`` with ``value`` at ``(i, j)``: the gradient of the entry ``a[i, j]``."""
    value = torch.as_tensor(value)
    out = torch.zeros(shape, dtype=value.dtype, device=value.device)
    out[i, j] = value
    return out


def submatrix_grad(value, rows, cols, shape):
    """Zeros of ``shape`` with ``value`` at ``[rows[0]:rows[1], cols[0]:cols[1]]``: the gradient
    of the block ``a[r0:r1, c0:c1]``."""
    value = torch.as_tensor(value)
    out = torch.zeros(shape, dtype=value.dtype, device=value.device)
    out[rows[0]:rows[1], cols[0]:cols[1]] = value
    return out


def logdet(a):
    """log(det(a)) by torch.linalg.slogdet (no overflow); nan where det(a) < 0, -inf where 0."""
    sign, value = torch.linalg.slogdet(a)
    return torch.where(sign > 0, value, torch.where(sign < 0, torch.nan, -torch.inf))
