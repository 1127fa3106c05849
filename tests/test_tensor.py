"""N-D layer helpers (symdiff.tensor): conv2d, max/avg pooling, dropout, flatten, apply.

Every generated backward is compared with three oracles that share nothing with tensor_ops or
runtime_tensor:
- SymPy's derivative of the formula written out entry by entry at tiny sizes
  (``array_reference``: each helper's ``explicit`` is a plain sum of products of entries, a Max
  of a window), at 50 digits;
- central finite differences of the generated forward;
- torch.nn.functional autograd in float64 (skipped without torch).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy.tensor.array.expressions import ArraySymbol

import symdiff
from symdiff import layers, runtime, tensor
from symdiff.array_reference import finite_differences, reference_at
from symdiff.errors import ArgumentError, SymdiffError, UnsupportedFunctionError
from symdiff.runtime import has_helper
from symdiff.tensor_ops import TENSOR_GATES, max_pool2d_first_dx

N, C, H, W = sp.symbols("N C H W", integer=True, positive=True)
TINY = {N: 2, C: 1, H: 4, W: 3}  # sympy.diff of every entry: seconds


def _x(channels=C):
    return ArraySymbol("X", (N, channels, H, W))


def _conv(stride, padding, bias=True):
    x, wt = _x(), ArraySymbol("Wt", (2, C, 3, 2))
    b = ArraySymbol("b", (2,)) if bias else None
    return tensor.conv2d(x, wt, b, stride=stride, padding=padding), [x, wt] + ([b] if bias else [])


def _relu_pool(kind, size, stride):
    x = _x()
    pool = tensor.max_pool2d if kind == "max" else tensor.avg_pool2d
    return pool(tensor.apply(lambda t: sp.Max(t, 0), x), size, stride), [x]


def _dropout():
    x, m = _x(), ArraySymbol("M", (N, C, H, W))
    return tensor.dropout(x, m, sp.Rational(1, 4)), [x, m]


def _flatten_affine():
    x, w = _x(), sp.MatrixSymbol("V", C * H * W, 2)
    return tensor.flatten(x) * w, [x, w]


CASES = {
    "conv s1 p0": lambda: _conv(1, 0),
    "conv s2 p1": lambda: _conv(2, 1),
    "conv s3 p2 no bias": lambda: _conv(3, 2, bias=False),
    "maxpool 2/2": lambda: _relu_pool("max", 2, 2),
    "maxpool 2/1 overlapping": lambda: _relu_pool("max", 2, 1),
    "avgpool 2/1": lambda: _relu_pool("avg", 2, 1),
    "dropout": _dropout,
    "flatten affine": _flatten_affine,
}


def _inputs(args, sizes, rng):
    values = []
    for a in args:
        shape = tuple(int(sp.sympify(n).subs(sizes)) for n in a.shape)
        if str(a.name) == "M":
            values.append((rng.random(shape) > 0.25).astype(float))
        else:
            values.append(rng.normal(size=shape))
    return values


def _generated(name, sizes=TINY, seed=0):
    expr, args = CASES[name]()
    wrt = [a for a in args if str(a.name) != "M"]
    prog = symdiff.lower(expr, wrt=wrt, args=args)
    prog.validate()
    module = prog.compile("numpy")
    rng = np.random.default_rng(seed)
    values = _inputs(args, sizes, rng)
    out, cache = module.forward(*values)
    dout = rng.normal(size=np.shape(out))
    return prog, module, values, dout, module.backward(dout, cache)


@pytest.mark.parametrize("name", CASES)
def test_gradient_is_sympy_diff_of_the_entries(name):
    prog, _, values, dout, grads = _generated(name)
    ref = reference_at(prog, TINY)
    assert ref.oracle.startswith("sympy.diff")
    exact = ref.gradient({i.name: v for i, v in zip(prog.inputs, values)}, dout)
    for got, want in zip(grads, exact):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_gradient_is_finite_differences(name):
    sizes = {N: 3, C: 2, H: 7, W: 6}
    prog, module, values, dout, grads = _generated(name, sizes, seed=1)
    for got, want in zip(grads, finite_differences(module, prog, values, dout)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


TORCH_CASES = [("conv", 1, 1), ("conv", 2, 0), ("conv", 2, 2), ("max", 2, 2), ("max", 3, 2),
               ("max", 2, 3), ("avg", 3, 2), ("avg", 2, 3)]  # stride 3 > size 2: gaps


@pytest.mark.parametrize("kind, a, b", TORCH_CASES)
def test_against_torch_autograd(kind, a, b):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = ArraySymbol("X", (N, 3, H, W))
    rng = np.random.default_rng(2)
    xv = rng.normal(size=(4, 3, 9, 8))
    if kind == "conv":
        wt, bias = ArraySymbol("Wt", (5, 3, 3, 3)), ArraySymbol("b", (5,))
        expr, args = tensor.conv2d(x, wt, bias, stride=a, padding=b), [x, wt, bias]
        values = [xv, rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)]

        def reference(tx, tw, tb):
            return functional.conv2d(tx, tw, tb, stride=a, padding=b)
    else:
        pool = tensor.max_pool2d if kind == "max" else tensor.avg_pool2d
        expr, args, values = pool(x, a, b), [x], [xv]

        def reference(tx):
            f = functional.max_pool2d if kind == "max" else functional.avg_pool2d
            return f(tx, a, b)
    module = symdiff.lower(expr, wrt=args).compile("numpy")
    out, cache = module.forward(*values)
    dout = rng.normal(size=out.shape)
    grads = module.backward(dout, cache)
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    tout = reference(*tensors)
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, t in zip(grads, tensors):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_splits_the_gradient_between_ties():
    """A window whose four entries are equal sends a quarter of its gradient to each (as
    amax's max_mask does); a window with one maximum sends all of it there."""
    x = ArraySymbol("X", (1, 1, 2, 4))
    module = symdiff.lower(tensor.max_pool2d(x, 2), wrt=[x]).compile("numpy")
    xv = np.array([[[[1.0, 1.0, 0.0, 5.0], [1.0, 1.0, 2.0, -1.0]]]])
    out, cache = module.forward(xv)
    assert out.tolist() == [[[[1.0, 5.0]]]]
    (dx,) = module.backward(np.array([[[[8.0, 3.0]]]]), cache)
    assert dx.tolist() == [[[[2.0, 2.0, 0.0, 3.0], [2.0, 2.0, 0.0, 0.0]]]]


def test_one_module_serves_every_size_and_checks_axes():
    expr, args = _conv(1, 1)
    module = symdiff.lower(expr, wrt=args).compile("numpy")
    for n, h, w in ((1, 3, 3), (2, 6, 4)):
        out, _ = module.forward(np.ones((n, 2, h, w)), np.ones((2, 2, 3, 2)), np.zeros(2))
        assert out.shape == (n, 2, h, w + 1)  # padding 1: H + 2 - 3 + 1, W + 2 - 2 + 1
    with pytest.raises(ValueError, match="Wt must be a 2 x n x 3 x 2 array"):
        module.forward(np.ones((1, 2, 3, 3)), np.ones((2, 2, 3)), np.zeros(2))


def test_generated_code_uses_windows_and_offsets_only():
    """The forward reads windows (sliding_window_view) and the backward loops over kernel
    offsets only: no Python loop over N, H or W in the module."""
    expr, args = _conv(2, 1)
    source = symdiff.lower(expr, wrt=args).source("numpy")
    assert "sliding_window_view" in source and "einsum" in source
    loops = [line.strip() for line in source.splitlines() if line.strip().startswith("for ")]
    assert loops and all(line in ("for p in range(kh):", "for q in range(kw):") for line in loops)


def test_every_gate_has_a_numpy_helper_and_only_numpy():
    for gate in TENSOR_GATES:
        assert has_helper(gate.__name__, "numpy")
        assert not has_helper(gate.__name__, "torch")
    expr, args = _conv(1, 0)
    with pytest.raises(SymdiffError, match="torch backend cannot write"):
        symdiff.lower(expr, wrt=args).source("torch")


def test_program_evaluates_at_50_digits_like_the_reference():
    prog, _, values, dout, _ = _generated("conv s2 p1")
    point = {i.name: v for i, v in zip(prog.inputs, values)}
    exact = reference_at(prog, TINY).gradient(point, dout)
    got = prog.evaluate(point, dout=dout)
    for g, want in zip(prog.grads, exact):
        np.testing.assert_allclose(np.asarray(got[g], dtype=float), want, rtol=1e-14)


X4 = ArraySymbol("X", (N, C, H, W))
W4 = ArraySymbol("Wt", (3, C, 3, 3))


@pytest.mark.parametrize("build, word", [
    (lambda: tensor.conv2d(X4, W4, dilation=2), "dilation"),
    (lambda: tensor.conv2d(X4, W4, groups=2), "groups"),
    (lambda: tensor.conv2d(X4, W4, stride=(1, 2)), "stride"),
    (lambda: tensor.conv2d(X4, W4, padding=sp.Symbol("P")), "padding"),
    (lambda: tensor.max_pool2d(X4, 2, padding=1), "padding"),
    (lambda: tensor.max_pool2d(X4, 2, ceil_mode=True), "ceil_mode"),
    (lambda: tensor.conv2d(X4, ArraySymbol("V", (3, 4, 3, 3))), "channels"),
    (lambda: tensor.conv2d(X4, W4, ArraySymbol("b", (4,))), "bias"),
    (lambda: tensor.conv2d(ArraySymbol("X", (2, 3, 2, 2)), ArraySymbol("V", (1, 3, 3, 3))),
     "does not fit"),
    (lambda: tensor.dropout(X4, ArraySymbol("M", (N, C, H, 2)), 0.5), "mask"),
    (lambda: tensor.dropout(X4, ArraySymbol("M", (N, C, H, W)), 1), "p must"),
    (lambda: tensor.flatten(sp.MatrixSymbol("A", 2, 3)), "N-D array"),
])
def test_unsupported_options_are_refused(build, word):
    with pytest.raises((ArgumentError, UnsupportedFunctionError), match=word):
        build()


@pytest.mark.parametrize("build, word", [
    (lambda: sp.exp(X4), "apply"),
    (lambda: X4 * ArraySymbol("M", (N, C, H, W)), "apply"),
    (lambda: X4[0, 0, 1, 1] * 2, "index notation"),
    (lambda: sp.Sum(X4[0, 0, sp.Symbol("i"), 0], (sp.Symbol("i"), 0, 2)), "index notation"),
])
def test_unsupported_formulas_are_refused(build, word):
    with pytest.raises(UnsupportedFunctionError, match=word):
        symdiff.lower(build(), wrt=[X4])


@pytest.mark.parametrize("name, options, kinds", [
    ("conv2d", {"stride": 2, "padding": 1}, None), ("max_pool2d", {"size": 2, "stride": 1}, None),
    ("avg_pool2d", {"size": 2}, None), ("dropout", {"p": 0.5}, {"M": "mask"}),
    ("flatten", {}, None)])
def test_check_of_image_layers(name, options, kinds):
    """symdiff.check expands an N-D formula entry by entry at small sizes where its windows
    fit, and judges the 50-digit program and the NumPy code."""
    report = symdiff.check(layers.program(name, **options), kinds=kinds)
    assert report.ok, report


def test_check_catches_a_wrong_helper(monkeypatch):
    """conv2d_dx with the stride ignored in the backward (a typical bug) fails check."""
    helpers = runtime._HELPERS["numpy"]
    wrong = helpers["conv2d_dx"].replace("p:p + stride * oh:stride", "p:p + oh")
    monkeypatch.setitem(helpers, "conv2d_dx", wrong)
    report = symdiff.check(layers.program("conv2d", stride=2), sizes={
        "N": 2, "C": 1, "F": 1, "H": 5, "W": 4, "KH": 2, "KW": 2})
    assert not report.ok and [p.ok for p in report.partials] == [False, True, True]


def test_check_refuses_sizes_where_the_kernel_does_not_fit():
    with pytest.raises(ArgumentError, match="does not fit"):
        symdiff.check(layers.program("conv2d"), sizes={"H": 2, "KH": 4})


def test_two_convolutions_with_dropout_and_sums_against_torch():
    """conv(tanh(conv(X - 2Y)) * M / (1 - p), stride 2) then avg-pool, p a scalar argument:
    an N-D formula written with sums of arrays, matched against torch autograd."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, y = ArraySymbol("X", (N, 2, 6, 6)), ArraySymbol("Y", (N, 2, 6, 6))
    k1, k2 = ArraySymbol("K1", (3, 2, 3, 3)), ArraySymbol("K2", (4, 3, 2, 2))
    m, p = ArraySymbol("M", (N, 3, 6, 6)), sp.Symbol("p")
    h = tensor.dropout(tensor.apply(sp.tanh, tensor.conv2d(x - 2 * y, k1, padding=1)), m, p)
    expr = tensor.avg_pool2d(tensor.conv2d(h, k2, stride=2), 2, 1)
    module = symdiff.lower(expr, wrt=[x, y, k1, k2], args=[x, y, k1, k2, m, p]).compile("numpy")
    rng = np.random.default_rng(7)
    values = [rng.normal(size=s) for s in ((3, 2, 6, 6), (3, 2, 6, 6), (3, 2, 3, 3),
                                           (4, 3, 2, 2))]
    mask = (rng.random((3, 3, 6, 6)) > 0.3).astype(float)
    out, cache = module.forward(*values, mask, 0.3)
    dout = rng.normal(size=out.shape)
    grads = module.backward(dout, cache)
    t = [torch.tensor(v, requires_grad=True) for v in values]
    th = torch.tanh(functional.conv2d(t[0] - 2 * t[1], t[2], padding=1)) * torch.tensor(mask)
    tout = functional.avg_pool2d(functional.conv2d(th / 0.7, t[3], stride=2), 2, 1)
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, t):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec, shapes", [
    ("nchw,fc->nfhw", [(N, 2, 3, 2), (3, 2)]),
    ("ij,jk,kl->il", [(N, 3), (3, 2), (2, 4)]),
    ("nc,nc->", [(N, 3), (N, 3)]),
    ("ijk,kj->ik", [(2, N, 3), (3, N)]),
])
def test_einsum_gradients_are_einsums_and_check(spec, shapes):
    """Each input's gradient is one einsum of the upstream gradient and the other inputs; the
    value is NumPy's einsum's, the gradients pass check (sympy.diff of the entries)."""
    arrays = [ArraySymbol(name, shape) for name, shape in zip("ABC", shapes)]
    prog = symdiff.lower(tensor.einsum(spec, *arrays), wrt=arrays)
    prog.validate()
    assert all("einsum(" in str(g.local) for g in prog.backward)
    rng = np.random.default_rng(8)
    values = [rng.normal(size=tuple(int(sp.sympify(n).subs(N, 4)) for n in s)) for s in shapes]
    out, _ = prog.compile("numpy").forward(*values)
    np.testing.assert_allclose(out, np.einsum(spec, *values), rtol=1e-13)
    report = symdiff.check(prog)
    assert report.ok, report


@pytest.mark.parametrize("spec, shapes, word", [
    ("ij,jk", [(2, 3), (3, 4)], "output explicitly"),
    ("ii->i", [(3, 3)], "no diagonals"),
    ("ij->i", [(2, 3)], "another input"),
    ("ij,jk->ik", [(2, 3), (4, 5)], "sizes"),
    ("ij,jk,kl->il", [(2, 3), (3, 4)], "3 inputs")])
def test_einsum_refusals(spec, shapes, word):
    arrays = [ArraySymbol(name, shape) for name, shape in zip("ABC", shapes)]
    with pytest.raises(SymdiffError, match=word):
        tensor.einsum(spec, *arrays)


def test_first_maximum_helper_is_torch_rule_at_ties():
    """runtime_tensor.max_pool2d_first_dx (verify's other subgradient at a tie) is PyTorch's
    max_pool2d gradient on images full of ties."""
    torch = pytest.importorskip("torch")
    from symdiff import runtime_tensor

    x = np.round(np.random.default_rng(9).normal(size=(2, 3, 6, 7)))  # many equal entries
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 3, 2)
    dout = np.random.default_rng(10).normal(size=tout.shape)
    (tout * torch.tensor(dout)).sum().backward()
    got = runtime_tensor.max_pool2d_first_dx(dout, x, tout.detach().numpy(), 3, 2)
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-15)
    interpreted = max_pool2d_first_dx.apply(dout, x, tout.detach().numpy(), 3, 2)
    np.testing.assert_allclose(interpreted.astype(float), tx.grad.numpy(), rtol=1e-15)
