"""The torch and jax backends, run by their own libraries: gradient checkers (torch.autograd.
gradcheck, jax.test_util.check_grads), autograd and jit/vmap/grad composition, dtypes and
devices, a model that trains, and symdiff's check of every op row. Each library is optional:
its tests skip cleanly where it is not installed (the text of its modules is tested anyway, in
test_emit's goldens, which need neither)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import sympy as sp
from test_ops import NO_GRADIENT, ROWS, gate_args, variables

import symdiff
from symdiff import layers
from symdiff.errors import MissingToolError, UnsupportedFunctionError
from symdiff.ir import Program
from symdiff.ops import How
from symdiff.runtime import has_helper

STAGED = "(x + sigmoid(y))/(sigmoid(x) + (x + y)**2)"


def staged(backend: str):
    return symdiff.lower(STAGED, wrt=["x", "y"]).compile(backend)


def numpy_grads(x, y):
    """The numpy module's gradient of the staged example: the reference the frameworks meet."""
    return staged("numpy").value_and_grad(np.asarray(x), np.asarray(y))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def jax():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):  # float64, as the references
        yield jax


# ---------------------------------------------------------------- symdiff's check of every op


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("op", ROWS)
def test_check_runs_the_code_of_every_op(op, backend):
    pytest.importorskip(backend)
    if op.cls in NO_GRADIENT:
        return
    prog = symdiff.lower(op.cls(*gate_args(op)), wrt=variables(op))
    if op.printing(backend) is How.HELPER and not has_helper(op.cls.__name__, backend):
        with pytest.raises(UnsupportedFunctionError, match=f"no {backend}-backend"):
            prog.source(backend)
        return
    report = symdiff.check(prog, backends=(backend,), samples=8, prove=False)
    assert report.ok and report.backends == (backend,), str(report)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_check_finds_wrong_framework_code(backend, monkeypatch):
    """A `=` for `+=` in the torch (jax) module alone: check names it, so it runs that code."""
    pytest.importorskip(backend)
    prog = symdiff.lower(STAGED, wrt=["x", "y"])
    source = prog.source(backend).replace("dx = dx + dnum", "dx = dnum")
    wrong = types.ModuleType("wrong")
    exec(compile(source, "<wrong>", "exec"), wrong.__dict__)  # our own generated text
    monkeypatch.setattr(Program, "compile", lambda self, b, name=None: wrong)
    report = symdiff.check(prog, backends=(backend,), prove=False)
    assert not report.ok and [p.ok for p in report.partials] == [False, True]


def test_a_framework_not_installed_is_a_missing_tool(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    prog = symdiff.lower(STAGED, wrt=["x", "y"])
    with pytest.raises(MissingToolError, match=r"pip install 'symdiff\[torch\]'"):
        symdiff.check(prog, backends=("torch",))
    with pytest.raises(MissingToolError):
        prog.compile("torch")
    assert "class Function(torch.autograd.Function)" in prog.source("torch")  # text needs none


# ---------------------------------------------------------------- torch


def test_torch_function_passes_gradcheck(torch):
    m = staged("torch")
    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(6, dtype=torch.float64, generator=gen, requires_grad=True)
            for _ in range(2))
    assert torch.autograd.gradcheck(m.Function.apply, (x, y))
    # a broadcast argument: its gradient is summed to its shape
    b = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m.Function.apply, (x, b))


def test_torch_function_composes_with_autograd(torch):
    m = staged("torch")
    x = torch.linspace(-2, 2, 7, dtype=torch.float64, requires_grad=True)
    y = torch.linspace(1, 3, 7, dtype=torch.float64, requires_grad=True)
    (torch.sin(m.Function.apply(2 * x, y)) ** 2).sum().backward()
    value, (dx, dy) = numpy_grads(2 * x.detach().numpy(), y.detach().numpy())
    chain = np.sin(2 * value) * np.asarray(1.0)  # d sin(f)^2 / df = sin(2f)
    assert np.allclose(x.grad.numpy(), chain * 2 * dx, rtol=1e-13, atol=0)
    assert np.allclose(y.grad.numpy(), chain * dy, rtol=1e-13, atol=0)


def test_torch_backward_is_once_differentiable(torch):
    m = staged("torch")
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(m.Function.apply(x, x * 0 + 1.0).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):  # never a silently wrong second derivative
        g.sum().backward()


def test_torch_keeps_dtype_and_device_and_copies_nothing_to_the_host(torch):
    m = staged("torch")
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x, y = torch.ones(3, dtype=dtype), torch.full((3,), -2.0, dtype=dtype)
        value, grads = m.value_and_grad(x, y)
        assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
    # the meta device has no data: any .item(), .numpy() or host copy would raise
    x, y = torch.ones(4, 3, device="meta"), torch.ones(3, device="meta")
    value, (dx, dy) = m.value_and_grad(x, y)
    assert value.device.type == "meta" and dx.shape == (4, 3) and dy.shape == (3,)
    out, cache = m.forward(x, 2.0)  # a number joins the tensors' dtype and device
    assert all(t.device.type == "meta" for t in cache)


def test_torch_values_match_numpy(torch):
    m = staged("torch")
    x, y = np.linspace(-3, 3, 11), np.linspace(-1, 4, 11)[::-1].copy()
    value, grads = m.value_and_grad(torch.from_numpy(x), torch.from_numpy(y))
    want_value, want = numpy_grads(x, y)
    assert np.allclose(value.numpy(), want_value, rtol=1e-15, atol=0)
    assert all(np.allclose(g.numpy(), w, rtol=1e-14, atol=0) for g, w in zip(grads, want))


def test_torch_argument_outside_wrt(torch):
    m = symdiff.lower("x*y + z", wrt=["x"], args=["x", "y", "z"]).compile("torch")
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    m.Function.apply(x, 3.0, torch.zeros(2)).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    y = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="add it to wrt"):  # never a silent zero gradient
        m.Function.apply(x, y, 0.0).sum().backward()


def test_a_model_using_the_torch_function_trains(torch):
    """Fit a, b in f(a*u, b) to data made with a = 1.5, b = -0.5: the loss falls by 100x."""
    m = staged("torch")
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(64, dtype=torch.float64, generator=gen) * 2 - 1
    target = m.forward(1.5 * u, torch.tensor(-0.5, dtype=torch.float64))[0]
    a = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.05)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = ((m.Function.apply(a * u, b) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100


def test_torch_matrix_program(torch):
    prog = layers.program("affine")
    m, ref = prog.compile("torch"), prog.compile("numpy")
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(1, 2))]
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    assert torch.autograd.gradcheck(m.Function.apply, tuple(tensors))
    dout = rng.normal(size=(3, 2))
    got = m.backward(torch.tensor(dout), m.forward(*tensors)[1])
    want = ref.backward(dout, ref.forward(*args)[1])
    assert all(np.allclose(g.detach().numpy(), w, rtol=1e-14) for g, w in zip(got, want))


def test_torch_refuses_what_it_cannot_do():
    X = sp.MatrixSymbol("X", 3, 3)
    with pytest.raises(UnsupportedFunctionError, match="eye"):  # trace's gradient
        symdiff.lower(sp.Trace(X), wrt=[X]).source("torch")
    with pytest.raises(UnsupportedFunctionError, match="torch-backend implementation of besseli"):
        symdiff.lower(sp.besseli(1, sp.Symbol("x")), wrt=["x"]).source("torch")


# ---------------------------------------------------------------- jax


def test_jax_fn_passes_check_grads(jax):
    from jax.test_util import check_grads
    m = staged("jax")
    check_grads(m.fn, (3.0, -4.0), order=1, modes=["rev"])
    xs = jax.numpy.linspace(-2.0, 2.0, 5)
    check_grads(m.fn, (xs, xs[::-1] + 0.5), order=1, modes=["rev"])


def test_jax_fn_under_jit_vmap_and_grad(jax):
    m = staged("jax")
    xs, ys = np.linspace(-2, 2, 9), np.linspace(0.5, 3, 9)
    grad = jax.jit(jax.vmap(jax.grad(m.fn, argnums=(0, 1))))
    dx, dy = grad(jax.numpy.asarray(xs), jax.numpy.asarray(ys))
    _, (want_dx, want_dy) = numpy_grads(xs, ys)
    assert np.allclose(dx, want_dx, rtol=1e-14, atol=0)
    assert np.allclose(dy, want_dy, rtol=1e-14, atol=0)
    value, (gx, gy) = jax.jit(m.value_and_grad)(xs, ys)  # the module's own functions trace too
    assert np.allclose(gx, want_dx, rtol=1e-14, atol=0)
    # composes: the chain rule through fn
    outer = jax.grad(lambda a: jax.numpy.sin(m.fn(2 * a, 1.0)))(0.3)
    value, (d, _) = numpy_grads(0.6, 1.0)
    assert np.isclose(outer, np.cos(value) * 2 * d, rtol=1e-14)


def test_jax_matrix_program(jax):
    prog = layers.program("affine")
    m, ref = prog.compile("jax"), prog.compile("numpy")
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(1, 2))]
    from jax.test_util import check_grads
    check_grads(m.fn, tuple(args), order=1, modes=["rev"])
    loss = jax.jit(jax.grad(lambda *a: (m.fn(*a) ** 2).sum(), argnums=(0, 1, 2)))
    value, cache = ref.forward(*args)
    want = ref.backward(2 * value, cache)
    assert all(np.allclose(g, w, rtol=1e-13) for g, w in zip(loss(*args), want))


def _layer_arrays(prog, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"N": 3}
    return [rng.uniform(0.1, 0.9, size=tuple(int(n) if n.is_Integer else sizes.get(str(n), 4)
                                             for n in prog.shapes[a])) if prog.shapes[a] else 0.3
            for a in prog.args]


@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_every_standard_layer_in_torch(name, torch):
    """gradcheck of each layer's Function over its wrt arguments (the others, such as a
    target Y, are data: a tensor of them that requires grad is refused, as tested above)."""
    prog = layers.program(name)
    wrt = {i.name for i in prog.inputs if i.grad}
    tensors = [torch.tensor(a, dtype=torch.float64).requires_grad_(n in wrt)
               for n, a in zip(prog.args, _layer_arrays(prog))]
    assert torch.autograd.gradcheck(prog.compile("torch").Function.apply, tuple(tensors))


@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_every_standard_layer_in_jax(name, jax):
    """check_grads over each layer's wrt arguments; the cotangent of any other is nan."""
    from jax.test_util import check_grads
    prog = layers.program(name)
    fn, args = prog.compile("jax").fn, _layer_arrays(prog)
    wrt = [k for k, i in enumerate(prog.inputs) if i.grad]

    def over_wrt(*chosen):
        return fn(*[chosen[wrt.index(k)] if k in wrt else a for k, a in enumerate(args)])

    check_grads(over_wrt, tuple(args[k] for k in wrt), order=1, modes=["rev"])
    every = jax.grad(lambda *a: fn(*a).sum(), argnums=tuple(range(len(args))))(*args)
    assert all(np.isnan(every[k]).all() for k in range(len(args)) if k not in wrt)


def test_a_formula_a_framework_backend_cannot_write_is_refused_by_name():
    """symdiff.spd needs Cholesky helpers only numpy has: torch and jax say so (it was
    "no torch-backend helper named 'cho_inverse'")."""
    import sympy as sp

    import symdiff

    n = sp.Symbol("n", integer=True, positive=True)
    prog = symdiff.lower(sp.log(sp.Determinant(symdiff.spd(sp.MatrixSymbol("K", n, n)))),
                         wrt=[sp.MatrixSymbol("K", n, n)])
    for backend in ("torch", "jax"):
        with pytest.raises(symdiff.ArgumentError,
                           match=f"the {backend} backend cannot write this formula yet"):
            prog.source(backend)


def test_jax_jacobian_and_hessian_match_numpy(jax):
    """The jax backend's jacobian and hessian (its jacobian_array helper), at array points."""
    x, y = sp.symbols("x y", real=True)
    xs, ys = np.array([2.0, -1.0, 0.5]), 3.0
    for make, exprs in ((symdiff.jacobian, [x * y, sp.sin(x) + y]),
                        (symdiff.hessian, x**2 * y + sp.exp(x * y))):
        want = make(exprs, [x, y], backend="numpy")(xs, ys)
        with jax.enable_x64(True):
            got = make(exprs, [x, y], backend="jax")(xs, ys)
        np.testing.assert_allclose(np.asarray(got[-1]), want[-1], rtol=1e-13)
        assert np.asarray(got[-1]).shape == want[-1].shape


def test_torch_jacobian_and_hessian_are_tensors_matching_numpy(torch):
    """The torch backend's jacobian and hessian (its jacobian_array helper): one tensor, of
    the inputs' dtype, with numpy's values and shape; a float32 point stays float32."""
    x, y = sp.symbols("x y", real=True)
    xs, ys = np.array([2.0, -1.0, 0.5]), 3.0
    for make, exprs in ((symdiff.jacobian, [x * y, sp.sin(x) + y]),
                        (symdiff.hessian, x**2 * y + sp.exp(x * y)),
                        (symdiff.jacobian, [x + 2 * y, sp.Integer(3) * y])):
        want = make(exprs, [x, y], backend="numpy")(xs, ys)[-1]
        got = make(exprs, [x, y], backend="torch")(torch.tensor(xs), ys)[-1]
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-13)
        assert tuple(got.shape) == want.shape
        low = make(exprs, [x, y], backend="torch")(torch.tensor(xs, dtype=torch.float32), ys)
        assert low[-1].dtype == torch.float32


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_complex_argument_is_refused_not_cut_to_its_real_part(backend):
    pytest.importorskip(backend)
    x, y = sp.symbols("x y", real=True)
    module = symdiff.lower(x * y, wrt=[x, y]).compile(backend)
    with pytest.raises(TypeError, match="complex"):
        module.value_and_grad(np.array([1 + 2j]), 3.0)
