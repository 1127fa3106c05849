"""The array_api backend, run on the arrays of other libraries through their own namespace:
every op row by symdiff's check (NumPy arrays, against the 50-digit reference), Dask arrays
that stay lazy and chunked (computed, they match the numpy backend), torch tensors that stay
tensors (dtype and device), the matrix layers and their size checks, what it refuses, and its
NumPy-only fallback without array-api-compat. Each library is optional: its tests skip cleanly
where it is not installed."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest
import sympy as sp
from test_ops import NO_GRADIENT, ROWS, gate_args, variables

import symdiff
from symdiff import layers
from symdiff.backends import ARRAY_API_IMPORT
from symdiff.errors import UnsupportedFunctionError
from symdiff.ops import How
from symdiff.runtime import has_helper

STAGED = "(x + sigmoid(y))/(sigmoid(x) + (x + y)**2)"
RUNTIME = pathlib.Path(symdiff.__file__).with_name("runtime_array_api.py")


def staged(backend: str):
    return symdiff.lower(STAGED, wrt=["x", "y"]).compile(backend)


@pytest.fixture
def torch():
    pytest.importorskip("array_api_compat")
    return pytest.importorskip("torch")


@pytest.fixture
def da():
    pytest.importorskip("array_api_compat")
    return pytest.importorskip("dask.array")


@pytest.fixture
def never_computed():
    """A Dask scheduler that fails the test if anything is computed under it."""
    dask = pytest.importorskip("dask")

    def refuse(*args, **kwargs):
        raise AssertionError("a Dask array was computed")

    with dask.config.set(scheduler=refuse):
        yield


def close(got, want, rel=1e-12):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and np.allclose(got, want, rtol=rel, atol=rel)


# ---------------------------------------------------------------- the text


def test_the_import_line_is_the_runtime_modules_own():
    tree = ast.parse(RUNTIME.read_text(encoding="utf-8"))
    first = tree.body[1]  # after the docstring
    assert isinstance(first, ast.Try)
    assert ast.get_source_segment(RUNTIME.read_text(encoding="utf-8"), first) == ARRAY_API_IMPORT


def test_the_numpy_module_is_unchanged_and_the_array_api_module_binds_its_namespace():
    numpy_text, api_text = (symdiff.lower(STAGED, wrt=["x", "y"]).source(b)
                            for b in ("numpy", "array_api"))
    assert not re.search(r"\bxp\b|namespace", numpy_text)
    helpers = {node.name: ast.get_source_segment(api_text, node)
               for node in ast.parse(api_text).body if isinstance(node, ast.FunctionDef)}
    # NumPy only in namespace's fallback (and quiet's errstate): nothing else converts to it
    assert [n for n, text in helpers.items() if "np." in text] == ["namespace"]
    assert "    x, y = asarrays(x, y)\n" in api_text
    assert "def backward(dout, cache):\n" in api_text
    # a function that calls nothing of the namespace does not bind it
    plain = symdiff.lower("x*y", wrt=["x", "y"]).source("array_api")
    forward = plain[plain.index("def forward"):plain.index("def backward")]
    assert "xp = namespace" not in forward


# ---------------------------------------------------------------- every op, by check


@pytest.mark.parametrize("op", ROWS)
def test_check_runs_the_code_of_every_op(op):
    """On NumPy arrays (through array-api-compat where installed), against the reference."""
    if op.cls in NO_GRADIENT:
        return
    prog = symdiff.lower(op.cls(*gate_args(op)), wrt=variables(op))
    helper = "digamma" if op.cls is sp.polygamma else op.cls.__name__
    if op.printing("array_api") in (How.HELPER, How.OWN) and not has_helper(helper, "array_api") \
            and op.printing("numpy") is How.HELPER:
        with pytest.raises(UnsupportedFunctionError, match="no array_api-backend"):
            prog.source("array_api")
        return
    report = symdiff.check(prog, backends=("array_api",))
    assert report.ok, str(report)


@pytest.mark.parametrize("formula", [
    "Piecewise((log(x), x > 0), (y, True))*exp(y)", "Max(x, y) + Heaviside(x)",
    "atan2(y, x) + asin(x/(1 + x**2))", "Piecewise((1, x > y), (0, True)) + x*y",
    "sqrt(2)*x + sinc(x) + log(2)*y", "logsumexp(x, y, 2*x)",
])
def test_check_runs_combined_formulas(formula):
    prog = symdiff.lower(formula, wrt=["x", "y"])
    assert symdiff.check(prog, backends=("array_api",)).ok


# ---------------------------------------------------------------- Dask


def test_a_dask_array_stays_lazy_and_chunked(da, never_computed):
    x = da.linspace(-3.0, 3.0, 10_000, chunks=1_000)
    y = da.linspace(-1.0, 2.0, 10_000, chunks=1_000)
    value, (dx, dy) = staged("array_api").value_and_grad(x, y)
    for a in (value, dx, dy):
        assert isinstance(a, da.Array) and a.chunks == x.chunks
    out, cache = staged("array_api").forward(x, 2.0)  # a number joins the arrays
    assert all(isinstance(v, da.Array) for v in cache)
    assert isinstance(staged("array_api").backward(1.0, cache)[1], da.Array)


def test_dask_results_compute_to_the_numpy_backends(da):
    x, y = np.linspace(-3.0, 3.0, 10_000), np.linspace(2.0, -1.0, 10_000)
    want_value, want = staged("numpy").value_and_grad(x, y)
    value, grads = staged("array_api").value_and_grad(da.from_array(x, chunks=1_000),
                                                      da.from_array(y, chunks=1_000))
    assert close(value.compute(), want_value)
    assert all(close(g.compute(), w) for g, w in zip(grads, want))
    # a broadcast parameter: its gradient is a lazy sum over the chunks
    value, (dx, db) = staged("array_api").value_and_grad(da.from_array(x, chunks=1_000), 0.5)
    assert db.shape == () and close(db.compute(), staged("numpy").value_and_grad(x, 0.5)[1][1])


def test_derivative_functions_on_dask_match_numpy(da):
    """jvp, hvp, hessian and jacobian: computed, the numpy backend's values."""
    prog = symdiff.lower(STAGED, wrt=["x", "y"])
    functions = ("forward", "backward", "value_and_grad", "jvp", "jacobian", "hvp", "hessian")
    api, ref = prog.compile("array_api", functions=functions), prog.compile("numpy",
                                                                            functions=functions)
    x, y = np.linspace(-3.0, 3.0, 7), np.linspace(-1.0, 2.0, 7)
    for name, args in (("jvp", (x, y, 1.0, 0.5)), ("hvp", (x, y, 1.0, 0.5)),
                       ("hessian", (x, y)), ("jacobian", (x, y))):
        lazy = [da.from_array(a, chunks=3) if np.ndim(a) else a for a in args]
        got = np.asarray(da.compute(getattr(api, name)(*lazy)[-1])[0], dtype=float)
        assert close(got, np.asarray(getattr(ref, name)(*args)[-1])), name



@pytest.mark.parametrize("library", ["numpy", "torch", "dask"])
@pytest.mark.parametrize("formula, wrt", [(STAGED, ["x", "y"]),
                                          ("x*y, sin(x) + y, exp(x - y)", ["x", "y"]),
                                          ("x*exp(y)", ["x", "y"])])
def test_jacobian_and_hessian_are_arrays_of_the_inputs_library(library, formula, wrt):
    """One array each, (m, n) or (n, n) plus the points' shape, of the inputs' own library
    (lazy on Dask), equal to the numpy backend's arrays; a number argument broadcasts."""
    prog = symdiff.lower([sp.sympify(f) for f in formula.split(", ")] if "," in formula
                         else formula, wrt=wrt)
    functions = ("jacobian",) + (("hessian",) if not prog.output_names else ())
    api, ref = (prog.compile(b, functions=functions) for b in ("array_api", "numpy"))
    x, y = np.linspace(-2.0, 2.0, 6), np.linspace(-1.0, 1.5, 6)[::-1].copy()
    kind = {"numpy": np.ndarray}
    for args in ((x, y), (x, 0.5)):
        given = _library_arrays(library, args)
        if library != "numpy":
            kind[library] = type(given[0])
        for name in functions:
            got, want = getattr(api, name)(*given)[-1], getattr(ref, name)(*args)[-1]
            assert isinstance(got, kind[library]) and tuple(got.shape) == want.shape, name
            if library == "dask":
                got = got.compute()
            assert close(np.asarray(got), want), (name, args)


def test_torch_jacobian_keeps_dtype_and_device(torch):
    m = symdiff.lower(STAGED, wrt=["x", "y"]).compile("array_api",
                                                     functions=("jacobian", "hessian"))
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float32)
    for name in ("jacobian", "hessian"):
        got = getattr(m, name)(x, 0.5)[-1]
        assert got.dtype == torch.float32 and got.shape[-1] == 5, name
        meta = getattr(m, name)(torch.ones(4, device="meta"), 2.0)[-1]
        assert meta.device.type == "meta" and meta.shape[-1] == 4, name


# ---------------------------------------------------------------- torch


def test_torch_tensors_stay_tensors(torch):
    m = staged("array_api")
    for dtype in (torch.float32, torch.float64):
        x, y = torch.ones(3, dtype=dtype), torch.full((3,), -2.0, dtype=dtype)
        value, grads = m.value_and_grad(x, y)
        assert isinstance(value, torch.Tensor) and value.dtype == dtype
        assert all(isinstance(g, torch.Tensor) and g.dtype == dtype for g in grads)
    # the meta device has no data: any host copy would raise
    x, y = torch.ones(4, 3, device="meta"), torch.ones(3, device="meta")
    value, (dx, dy) = m.value_and_grad(x, y)
    assert value.device.type == "meta" and dx.shape == (4, 3) and dy.shape == (3,)
    out, cache = m.forward(x, 2.0)  # a number joins the tensors' dtype and device
    assert all(t.device.type == "meta" for t in cache)


def test_torch_values_match_numpy(torch):
    x, y = np.linspace(-3, 3, 11), np.linspace(-1, 4, 11)[::-1].copy()
    value, grads = staged("array_api").value_and_grad(torch.from_numpy(x), torch.from_numpy(y))
    want_value, want = staged("numpy").value_and_grad(x, y)
    assert close(value.numpy(), want_value)
    assert all(close(g.numpy(), w) for g, w in zip(grads, want))


# ---------------------------------------------------------------- matrix programs


def _layer_arrays(prog, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"N": 3}
    return [rng.uniform(0.1, 0.9, size=tuple(int(n) if n.is_Integer else sizes.get(str(n), 4)
                                             for n in prog.shapes[a])) if prog.shapes[a] else 0.3
            for a in prog.args]


def _library_arrays(library, args):
    if library == "numpy":
        return list(args)
    if library == "torch":
        torch = pytest.importorskip("torch")
        return [torch.from_numpy(np.asarray(a)) if np.ndim(a) else a for a in args]
    da = pytest.importorskip("dask.array")
    return [da.from_array(a, chunks=2) if np.ndim(a) else a for a in args]


@pytest.mark.parametrize("library", ["numpy", "torch", "dask"])
@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_every_standard_layer_matches_numpy(name, library):
    pytest.importorskip("array_api_compat")
    prog = layers.program(name)
    args = _layer_arrays(prog)
    ref, m = prog.compile("numpy"), prog.compile("array_api")
    want_value, want = ref.value_and_grad(*args)
    value, grads = m.value_and_grad(*_library_arrays(library, args))
    assert type(value).__module__.split(".")[0] == library  # numpy, torch, dask
    assert close(np.asarray(value), want_value)
    assert all(close(np.asarray(g), w) for g, w in zip(grads, want))


def test_the_matrix_size_checks_keep_working(da):
    """The declared sizes (b is one row), 2-D arrays, and a derived size (W of 4*H columns,
    read once H is known): a ValueError naming the argument, for NumPy and Dask arrays."""
    prog = layers.program("affine")
    m = prog.compile("array_api")
    X, W, b = _layer_arrays(prog)
    for library in ("numpy", "dask"):
        with pytest.raises(ValueError, match="b must be a 1 x n matrix"):
            m.value_and_grad(*_library_arrays(library, [X, W, np.ones((2, W.shape[1]))]))
        with pytest.raises(ValueError, match="X must be a n x n matrix"):
            m.value_and_grad(*_library_arrays(library, [np.ones(3), W, b]))
    H = sp.Symbol("H", integer=True, positive=True)
    A, V = sp.MatrixSymbol("A", 3, H), sp.MatrixSymbol("V", 3, 4 * H)
    packed = symdiff.lower(sp.Trace(A.T * V[:, 0:H]), wrt=[A, V]).compile("array_api")
    value, _ = packed.value_and_grad(np.ones((3, 2)), np.ones((3, 8)))
    assert float(value) == 6.0
    for arrays in ([np.ones((3, 2)), np.ones((3, 7))],
                   _library_arrays("dask", [np.ones((3, 2)), np.ones((3, 7))])):
        with pytest.raises(ValueError, match="V must have 4[*]H entries in axis 1, not 7"):
            packed.value_and_grad(*arrays)


# ---------------------------------------------------------------- refusals and the fallback


def test_what_it_cannot_write_is_refused_by_name():
    x = sp.Symbol("x")
    for formula in (sp.erf(x), sp.gamma(x), sp.besseli(1, x)):
        with pytest.raises(UnsupportedFunctionError, match="no array_api-backend"):
            symdiff.lower(formula, wrt=[x]).source("array_api")
    X = sp.MatrixSymbol("X", 3, 3)
    with pytest.raises(UnsupportedFunctionError, match="eye"):  # trace's gradient
        symdiff.lower(sp.Trace(X), wrt=[X]).source("array_api")


def test_without_array_api_compat_numpy_arrays_only():
    m = staged("array_api")
    m.array_namespace = None  # what the module's import gives without array-api-compat
    x, y = np.linspace(-3, 3, 11), np.linspace(-1, 4, 11)
    value, grads = m.value_and_grad(x, y)
    want_value, want = staged("numpy").value_and_grad(x, y)
    assert type(value) is np.ndarray and close(value, want_value)
    assert all(close(g, w) for g, w in zip(grads, want))

    class Foreign:  # any array of another library
        shape, ndim, dtype = (3,), 1, np.dtype(float)

    with pytest.raises(TypeError, match="pip install array-api-compat"):
        m.value_and_grad(Foreign(), 1.0)


def test_dask_untaken_branches_do_not_warn_at_compute(da):
    """A where line's untaken branch (log(0) and 1/0 in one chunk) is silent when Dask computes
    it later, as the numpy backend's errstate makes it; the values are numpy's."""
    import warnings
    prog = symdiff.lower("Piecewise((log(x), x > 0), (x, True))*y", wrt=["x", "y"])
    functions = ("value_and_grad", "jvp", "hessian")
    api, ref = (prog.compile(b, functions=functions) for b in ("array_api", "numpy"))
    x, y = np.array([1.0, 2.0, 0.0, -1.0, 3.0, 0.5]), np.linspace(0.5, 2.0, 6)
    lazy = (da.from_array(x, chunks=2), da.from_array(y, chunks=2))
    for name, extra in (("value_and_grad", ()), ("jvp", (1.0, 0.5)), ("hessian", ())):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            want = getattr(ref, name)(x, y, *extra)
            got = da.compute(getattr(api, name)(*lazy, *extra))[0]
        assert all(close(g, w) for g, w in zip(np.broadcast_arrays(*_flat(got)),
                                                np.broadcast_arrays(*_flat(want)))), name


def test_dask_taken_log0_warns_as_numpy(da):
    """A log(0) that is the answer (-inf) warns in both backends: NumPy's own warning, at the
    numpy call and at Dask's compute."""
    api, ref = (symdiff.lower("log(x)", wrt=["x"]).compile(b) for b in ("array_api", "numpy"))
    x = np.array([1.0, 0.0, 2.0, 3.0])
    with pytest.warns(RuntimeWarning):
        want = ref.value_and_grad(x)
    lazy = api.value_and_grad(da.from_array(x, chunks=2))
    with pytest.warns(RuntimeWarning):
        got = da.compute(lazy)[0]
    assert close(got[0], want[0]) and close(got[1][0], want[1][0])


def _flat(result):
    out = []
    for r in result if isinstance(result, (tuple, list)) else (result,):
        out += _flat(r) if isinstance(r, (tuple, list)) else [np.asarray(r, dtype=float)]
    return out
