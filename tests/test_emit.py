"""Generated modules: golden text, imports, self-containedness, shapes and edge semantics."""

import ast
import subprocess
import sys
import traceback
import warnings

import numpy as np
import pytest
import sympy as sp

import symdiff


@pytest.mark.parametrize("backend", ["math", "numpy", "torch", "jax", "array_api"])
def test_staged_example_module_matches_golden(staged, golden, backend):
    expr, x, y = staged
    golden(f"staged_{backend}.py", symdiff.lower(expr, wrt=[x, y]).source(backend))


def test_staged_example_backward_reads_like_the_hand_written_code(staged):
    expr, x, y = staged
    src = symdiff.lower(expr, wrt=[x, y]).source("math")
    for line in ["dden = dinvden * (-invden*invden)", "dx += dsigx * (sigx*(1 - sigx))",
                 "dx += dnum", "dy += dsigy * (sigy*(1 - sigy))", "# backprop invden = 1.0/den"]:
        assert line in src


def imports(source):
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module)
    return found


@pytest.mark.parametrize("backend,allowed", [("math", {"math"}), ("numpy", {"numpy", "math"})])
def test_modules_import_only_math_or_numpy(staged, backend, allowed):
    expr, x, y = staged
    extra = sp.erf(x) * sp.Abs(y)  # numpy's erf helper imports math inside its body
    src = symdiff.lower(expr + extra, wrt=[x, y]).source(backend)
    assert imports(src) <= allowed and "symdiff" not in imports(src)


def test_math_module_runs_with_the_standard_library_only(staged, tmp_path):
    expr, x, y = staged
    path = tmp_path / "staged_grad.py"
    path.write_text(symdiff.lower(expr, wrt=[x, y]).source("math"))
    code = ("import sys; sys.path.insert(0, '.'); import staged_grad\n"
            "print(repr(staged_grad.value_and_grad(3.0, -4.0)[1][0]))")
    # -I -S: no site-packages at all, so neither symdiff nor numpy nor sympy can be imported
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    want = sp.diff(expr, x).subs({x: 3, y: -4}).evalf(30)
    assert float(out) == pytest.approx(float(want), rel=1e-13)


def test_numpy_module_runs_without_symdiff(staged, tmp_path):
    expr, x, y = staged
    path = tmp_path / "staged_np.py"
    path.write_text(symdiff.lower(expr, wrt=[x, y]).source("numpy"))
    code = ("import sys; sys.modules['symdiff'] = None; sys.modules['sympy'] = None\n"
            "import numpy as np, staged_np\n"
            "print(staged_np.value_and_grad(np.array([3.0, 1.0]), -4.0)[1][1])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    want = sum(sp.diff(expr, y).subs({x: v, y: -4}).evalf(30) for v in (3, 1))
    assert float(out) == pytest.approx(float(want), rel=1e-13)


def test_numpy_gradients_have_their_arguments_shapes():
    x, y, b = sp.symbols("x y b")
    mod = symdiff.lower(sp.sin(x) * y + b, wrt=[x, y, b]).compile("numpy")
    xs, ys = np.linspace(-1, 1, 3).reshape(3, 1), np.linspace(0, 2, 4).reshape(1, 4)
    value, (dx, dy, db) = mod.value_and_grad(xs, ys, 0.5)
    assert value.shape == (3, 4) and dx.shape == (3, 1) and dy.shape == (1, 4)
    assert type(db) is float and db == 12.0  # a float argument gets a float gradient: the sum
    np.testing.assert_allclose(dx[:, 0], np.cos(xs[:, 0]) * ys.sum(), rtol=1e-14)
    np.testing.assert_allclose(dy[0], np.sin(xs).sum() * np.ones(4), rtol=1e-14)


def test_numpy_backward_takes_an_upstream_gradient_of_the_output_shape():
    x, y = sp.symbols("x y")
    mod = symdiff.lower(x * y, wrt=[x, y]).compile("numpy")
    out, cache = mod.forward(np.arange(3.0), 2.0)
    dx, dy = mod.backward(np.array([1.0, 10.0, 100.0]), cache)
    np.testing.assert_array_equal(dx, [2.0, 20.0, 200.0])
    assert dy == 0 * 1 + 1 * 10 + 2 * 100


def test_numpy_accumulation_does_not_alias_gradients():
    x, y = sp.symbols("x y")
    # dx and dy both start as dxpy; an in-place += on dx would also change dy
    mod = symdiff.lower((x + y) ** 2 + sp.sin(x), wrt=[x, y]).compile("numpy")
    xs, ys = np.array([0.3, 1.2]), np.array([-0.5, 2.0])
    _, (dx, dy) = mod.value_and_grad(xs, ys)
    np.testing.assert_allclose(dy, 2 * (xs + ys), rtol=1e-15)
    np.testing.assert_allclose(dx, 2 * (xs + ys) + np.cos(xs), rtol=1e-15)


@pytest.mark.parametrize("formula", ["x + y", "x*y", "x", "x + 2*y", "x - y"])
def test_returned_numpy_gradients_are_fresh_arrays(formula):
    # dx = dout, dy = dout (x + y) or dx = y (x*y): the caller must get arrays of its own
    prog = symdiff.lower(formula, wrt=["x", "y"], allow_unused=True)
    mod = prog.compile("numpy")
    xs, ys = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    keep_x, keep_y = xs.copy(), ys.copy()
    _, (dx, dy) = mod.value_and_grad(xs, ys)
    dout = np.array([1.0, 1.0])
    bx, by = mod.backward(dout, mod.forward(xs, ys)[1])
    arrays = [dx, dy, bx, by, xs, ys, dout]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b), formula
    dx += 100.0
    bx += 100.0
    np.testing.assert_array_equal(xs, keep_x)
    np.testing.assert_array_equal(ys, keep_y)
    np.testing.assert_array_equal(dout, [1.0, 1.0])


def test_untaken_piecewise_branch_never_leaks_nan_or_warnings():
    x = sp.Symbol("x")
    for expr, grad_at_zero in [(sp.Piecewise((sp.log(x), x > 0), (0, True)), 0.0),
                               (sp.Piecewise((sp.sqrt(x), x > 0), (x, True)), 1.0)]:
        prog = symdiff.lower(expr, wrt=[x])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, (dx,) = prog.compile("numpy").value_and_grad(np.array([-1.0, 0.0, 4.0]))
            assert prog.compile("math").value_and_grad(0.0)[1] == (grad_at_zero,)
        assert np.all(np.isfinite(dx)) and dx[1] == grad_at_zero


def test_wrt_symbol_not_in_formula_gets_zero_gradient():
    x, z = sp.symbols("x z")
    prog = symdiff.lower(sp.sin(x), wrt=[x, z])
    assert prog.compile("math").value_and_grad(0.0, 5.0) == (0.0, (1.0, 0.0))
    _, (dx, dz) = prog.compile("numpy").value_and_grad(np.zeros(3), np.ones((2, 1)))
    assert dz.shape == (2, 1) and not dz.any()


def test_name_prefixes_the_functions():
    x = sp.Symbol("x")
    prog = symdiff.lower(x**2, wrt=[x])
    mod = prog.compile("numpy", name="square")
    assert mod.square_value_and_grad(3.0) == (9.0, (6.0,))
    assert hasattr(mod, "square_forward") and hasattr(mod, "square_backward")
    with pytest.raises(symdiff.ArgumentError):
        prog.source("math", name="not an identifier")


def test_unknown_backend_is_an_argument_error():
    x = sp.Symbol("x")
    with pytest.raises(symdiff.ArgumentError, match="backend"):
        symdiff.lower(x, wrt=[x]).source("tensorflow")  # torch and jax are backends now


def test_unused_math_import_is_left_out():
    a, b = sp.symbols("a b")
    src = symdiff.lower(a * b, wrt=[a]).source("math")
    assert "import math" not in src


def test_tracebacks_point_into_the_generated_lines():
    x = sp.Symbol("x")
    mod = symdiff.lower(sp.log(x), wrt=[x]).compile("math")
    with pytest.raises(ValueError) as info:
        mod.value_and_grad(-1.0)
    text = "".join(traceback.format_exception(info.value))
    assert "out = math.log(x)" in text and "<symdiff-" in text


@pytest.mark.parametrize("formula, shapes, dtype", [
    ("(x + sigmoid(y))/(sigmoid(x) + (x + y)**2)", [(40_000,), (40_000,)], float),
    ("x*sin(y) + log(1 + x**2)", [(300, 200), (300, 200)], float),  # 2-D: blocks of rows
    ("x*sin(y)", [(40_000,), ()], float),  # a broadcast argument: one call
    ("3 + y - y", [(40_000,), (40_000,)], float),  # the value is a scalar: one call
    ("x*exp(-y)", [(40_000,), (40_000,)], np.float32),  # float32 stays float32
    ("x*y + x", [(40_000,), (40_000,)], np.int64),  # integers become floats
])
def test_value_and_grad_in_blocks_gives_the_same_numbers(formula, shapes, dtype):
    mod = symdiff.lower(formula, wrt=["x", "y"], allow_unused=True).compile("numpy")
    rng = np.random.default_rng(3)
    args = [(rng.uniform(0.5, 2.0, size=s) * 10).astype(dtype) if s else 0.7 for s in shapes]
    value, grads = mod.value_and_grad(*args)
    whole_value, whole_grads = mod.value_and_grad_block(*args)
    np.testing.assert_array_equal(value, whole_value)
    assert np.asarray(value).dtype == np.asarray(whole_value).dtype
    for g, w in zip(grads, whole_grads):
        np.testing.assert_array_equal(g, w)
        assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype


@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_a_large_program_value_and_grad_calls_forward_and_backward(backend):
    xs = sp.symbols("x0:300")
    f = sp.Add(*(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(299)))
    prog = symdiff.lower(f, wrt=list(xs))
    assert len(prog.forward) + len(prog.backward) > symdiff.emit.FUSE_LIMIT
    mod = prog.compile(backend)
    assert "value_and_grad_block" not in mod.__source__
    point = [0.1 * (i % 7) - 0.3 for i in range(300)]
    value, grads = mod.value_and_grad(*point)
    at = {x: sp.Float(p, 30) for x, p in zip(xs, point)}  # xreplace: subs takes ~10 s here
    exact = [float(sp.diff(f, v).xreplace(at)) for v in xs[:5]]
    assert value == pytest.approx(float(f.xreplace(at)), rel=1e-12)
    assert [float(g) for g in grads[:5]] == pytest.approx(exact, rel=1e-12)
