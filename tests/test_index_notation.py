"""Index notation over N-D arrays (symdiff.index_notation): Sums of array entries lowered to
whole-array window / einsum / reduce / broadcast steps.

Oracles that share nothing with index_notation: symdiff.conv2d and avg_pool2d (their own
gates), NumPy evaluation of the same formula, SymPy's derivative of the entries written out
(``array_reference``, 50 digits), central finite differences, torch autograd (skipped without).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from sympy.tensor.array.expressions import ArraySymbol

import symdiff
from symdiff.array_reference import finite_differences, reference_at
from symdiff.errors import UnsupportedFunctionError

N, C, H, W, F, KH, KW = 2, 2, 5, 5, 3, 2, 2
n, f, i, j, c, p, q, k = sp.symbols("n f i j c p q k", integer=True)
X = ArraySymbol("X", (N, C, H, W))
Wt = ArraySymbol("Wt", (F, C, KH, KW))
b = ArraySymbol("b", (F,))


def _conv(s):
    oh, ow = (H - KH) // s + 1, (W - KW) // s + 1
    body = sp.Sum(Wt[f, c, p, q] * X[n, c, s * i + p, s * j + q],
                  (c, 0, C - 1), (p, 0, KH - 1), (q, 0, KW - 1)) + b[f]
    return symdiff.index_array((n, f, i, j), body, shape=(N, F, oh, ow))


def _run(expr, args, seed=0):
    prog = symdiff.lower(expr, wrt=args)
    prog.validate()
    module = prog.compile("numpy")
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=tuple(int(d) for d in a.shape)) for a in args]
    out, cache = module.forward(*values)
    dout = rng.normal(size=np.shape(out))
    return prog, module, values, out, dout, module.backward(dout, cache)


def _oracles(prog, module, values, dout, grads):
    """sympy.diff of the written-out entries and central finite differences."""
    exact = reference_at(prog, {}).gradient({x.name: v for x, v in zip(prog.inputs, values)},
                                            dout)
    for got, want in zip(grads, exact):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, finite_differences(module, prog, values, dout)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _loops(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if re.match(r"\s*for ", line)]


@pytest.mark.parametrize("s", [1, 2])
def test_conv_in_index_notation_is_conv2d(s):
    prog, module, values, out, dout, grads = _run(_conv(s), [X, Wt, b])
    _, _, _, want, _, want_grads = _run(symdiff.conv2d(X, Wt, b, stride=s), [X, Wt, b])
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)
    for got, ref in zip(grads, want_grads):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    _oracles(prog, module, values, dout, grads)
    source = prog.source("numpy")
    assert "sliding_window_view" in source and "einsum" in source
    assert _loops(source) == ["for t in range(k):"]  # the kernel offsets only: not N, H, W


@pytest.mark.parametrize("s", [1, 2])
def test_conv_in_index_notation_against_torch(s):
    torch = pytest.importorskip("torch")
    _, _, values, out, dout, grads = _run(_conv(s), [X, Wt, b], seed=3)
    t = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    tout = torch.nn.functional.conv2d(t[0], t[1], t[2], stride=s)
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, tv in zip(grads, t):
        np.testing.assert_allclose(got, tv.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_check_of_the_index_notation_conv():
    assert symdiff.check(symdiff.lower(_conv(2), wrt=[X, Wt, b])).ok


def test_nested_sum_loss_with_both_spellings():
    """loss = sum of squares of the conv, written as a nested Sum; ArraySymbol entries and
    IndexedBase(..., shape=) entries give the same program, gradients against the oracles."""
    def loss(x, wt, bias):
        conv = sp.Sum(wt[f, c, p, q] * x[n, c, i + p, j + q], (c, 0, C - 1), (p, 0, KH - 1),
                      (q, 0, KW - 1)) + bias[f]
        limits = [(n, 0, N - 1), (f, 0, F - 1), (i, 0, H - KH), (j, 0, W - KW)]
        return sp.Sum(sp.tanh(conv) ** 2, *limits)
    indexed = loss(*(sp.IndexedBase(str(a.name), shape=a.shape) for a in (X, Wt, b)))
    loss = loss(X, Wt, b)
    assert indexed.has(sp.Indexed)
    prog, module, values, out, dout, grads = _run(loss, [X, Wt, b])
    _, _, _, out2, _, grads2 = _run(indexed, [X, Wt, b])
    y = _run(symdiff.conv2d(X, Wt, b), [X, Wt, b])[3]
    np.testing.assert_allclose(out, np.sum(np.tanh(y) ** 2), rtol=1e-13)
    np.testing.assert_allclose(out2, out, rtol=1e-15)
    for g, g2 in zip(grads, grads2):
        np.testing.assert_allclose(g, g2, rtol=1e-15)
    for got, want in zip(grads, finite_differences(module, prog, values, dout)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


A, B = ArraySymbol("A", (3, 4)), ArraySymbol("B", (4, 2))
x, y, M = ArraySymbol("x", (3, 4)), ArraySymbol("y", (3, 5)), ArraySymbol("M", (4, 5))
S, w = ArraySymbol("S", (2, 9)), ArraySymbol("w", (3,))
CASES = {
    "matrix product": (lambda: symdiff.index_array(
        (i, k), sp.Sum(A[i, j] * B[j, k], (j, 0, 3))), [A, B],
        lambda a, bb: a @ bb),
    "batched bilinear": (lambda: symdiff.index_array(
        (n,), sp.Sum(x[n, i] * M[i, j] * y[n, j], (i, 0, 3), (j, 0, 4))), [x, M, y],
        lambda a, m, bb: np.einsum("ni,ij,nj->n", a, m, bb)),
    "1-D conv, stride 2, offset 1": (lambda: symdiff.index_array(
        (n, i), sp.Sum(S[n, 2 * i + p + 1] * w[p], (p, 0, 2)), shape=(2, 3)), [S, w],
        lambda s, ww: np.stack([[s[m, 2 * o + 1:2 * o + 4] @ ww for o in range(3)]
                                for m in range(2)])),
    "average pool 2/2": (lambda: symdiff.index_array(
        (n, c, i, j), sp.Sum(X[n, c, 2 * i + p, 2 * j + q], (p, 0, 1), (q, 0, 1)) / 4,
        shape=(N, C, 2, 2)), [X], None),
    "shifted range and exp": (lambda: symdiff.index_array(
        (i,), sp.exp(sp.Sum(A[i, j], (j, 1, 3)))), [A],
        lambda a: np.exp(a[:, 1:].sum(axis=1))),
}


@pytest.mark.parametrize("name", CASES)
def test_index_formulas_against_numpy_and_sympy_diff(name):
    build, args, numpy_value = CASES[name]
    prog, module, values, out, dout, grads = _run(build(), args)
    if numpy_value is None:
        want = _run(symdiff.avg_pool2d(X, 2), [X])
        np.testing.assert_allclose(out, want[3], rtol=1e-13)
        np.testing.assert_allclose(grads[0], _pool_grad(dout), rtol=1e-13)
    else:
        np.testing.assert_allclose(out, numpy_value(*values), rtol=1e-12, atol=1e-13)
    _oracles(prog, module, values, dout, grads)
    assert not _loops(prog.source("numpy"))[1:]


def _pool_grad(dout):
    module = symdiff.lower(symdiff.avg_pool2d(X, 2), wrt=[X]).compile("numpy")
    _, cache = module.forward(np.zeros(X.shape))
    return module.backward(dout, cache)[0]


V = ArraySymbol("V", (4, 4))
REFUSED = [
    (lambda: symdiff.index_array((i,), sp.Sum(S[0, i + p] * w[p], (p, 0, 2)), shape=(9,)),
     "constant index 0"),
    (lambda: symdiff.index_array((i,), sp.Sum(S[n, i + p] * w[p], (p, 0, 2)), shape=(8,)),
     "free index n"),
    (lambda: symdiff.index_array((n, i), sp.Sum(S[n, i + p] * w[p], (p, 0, 2)), shape=(2, 8)),
     r"read outside the array: i \+ p runs 0 .. 9"),
    (lambda: symdiff.index_array((i,), V[i, i]), "repeated index"),
    (lambda: symdiff.index_array((i,), w[i ** 2], shape=(2,)), r"the index i\*\*2"),
    (lambda: symdiff.index_array((i,), w[i * j], shape=(2,)), r"the index i\*j"),
    (lambda: symdiff.lower(sp.Sum(sp.Sum(w[i], (i, 0, 2)) * w[i], (i, 0, 2)), wrt=[w]),
     "the index i bound twice"),
    (lambda: symdiff.lower(sp.Sum(V[i, j], (j, 0, 3)), wrt=[V]), "free index i"),
    (lambda: symdiff.lower(sp.Sum(S[n, 2 * j] * S[n, j], (n, 0, 1), (j, 0, 5)), wrt=[S]),
     r"read outside the array: 2\*j runs 0 .. 10"),
]


@pytest.mark.parametrize("build, message", REFUSED)
def test_refusals_name_the_construct(build, message):
    with pytest.raises(UnsupportedFunctionError, match=message):
        build()
