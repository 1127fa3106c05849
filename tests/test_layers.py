"""symdiff.layers: every layer's generated backward is right, and the combined module stands alone.

Each layer's generated backward is compared with
- central finite differences of its generated forward (float64, N=5, D=3, M=4, C=4),
- SymPy's derivative of the formula written out entry by entry (N=3, D=2, M=2, C=3), an
  independent route: no staging, no matrix calculus, just ``sp.diff`` of explicit scalars,
and the batch-norm backward with the long hand derivation (the classic staged one).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import layers

FD_DIMS = {"N": 5, "D": 3, "M": 4, "C": 4}
EXPLICIT_DIMS = {"N": 3, "D": 2, "M": 2, "C": 3}
EPS = 1e-5


def dims_of(formula, sizes):
    """{dimension symbol: size} for the symbolic dimensions of the formula's arguments."""
    return {d: sizes[d.name] for a in formula.args if a.is_Matrix for d in a.shape if d.is_Symbol}


def shape_of(arg, dims):
    return tuple(int(d.subs(dims)) for d in arg.shape) if arg.is_Matrix else ()


def make_inputs(name, formula, sizes, rng):
    """Random float64 arguments; one-hot labels for softmax, entries away from relu's kink."""
    dims = dims_of(formula, sizes)
    inputs = []
    for arg in formula.args:
        shape = shape_of(arg, dims)
        if not shape:
            inputs.append(EPS)
        elif name == "softmax_cross_entropy" and arg.name == "Y":
            inputs.append(np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])])
        else:
            value = rng.normal(size=shape)
            inputs.append(np.where(np.abs(value) < 0.05, 0.5, value))
    return inputs


def wrt_positions(formula):
    return [formula.args.index(w) for w in formula.wrt]


@pytest.fixture(scope="module")
def compiled():
    return {name: layers.program(name).compile("numpy") for name in layers.LAYERS}


# -- the generated backward: finite differences and shapes --------------------------------------

@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_backward_matches_central_differences(name, compiled):
    rng = np.random.default_rng(sum(map(ord, name)))
    formula, mod = layers.LAYERS[name](), compiled[name]
    inputs = make_inputs(name, formula, FD_DIMS, rng)
    out, cache = mod.forward(*inputs)
    dout = rng.normal(size=np.shape(out))
    grads = mod.backward(dout, cache)

    def loss(values):
        return float(np.sum(dout * mod.forward(*values)[0]))

    h = 1e-5
    assert len(grads) == len(formula.wrt)
    for grad, k in zip(grads, wrt_positions(formula), strict=True):
        assert grad.shape == inputs[k].shape  # a gradient has its argument's shape
        numeric = np.zeros_like(inputs[k])
        for index in np.ndindex(inputs[k].shape):
            plus, minus = list(inputs), list(inputs)
            plus[k], minus[k] = inputs[k].copy(), inputs[k].copy()
            plus[k][index] += h
            minus[k][index] -= h
            numeric[index] = (loss(plus) - loss(minus)) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        assert np.max(np.abs(grad - numeric)) <= 1e-6 * scale, (name, formula.args[k])


@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_gradient_shapes_are_argument_shapes_for_other_batch_sizes(name, compiled):
    formula, mod = layers.LAYERS[name](), compiled[name]
    for n in (1, 7):
        inputs = make_inputs(name, formula, {**FD_DIMS, "N": n}, np.random.default_rng(n))
        _, grads = mod.value_and_grad(*inputs)
        for grad, k in zip(grads, wrt_positions(formula), strict=True):
            assert np.shape(grad) == np.shape(inputs[k])
            assert np.all(np.isfinite(grad))


# -- the generated backward against SymPy on explicit entries -----------------------------------

def plain_sympy(expr):
    """symdiff's relu and sigmoid written in plain SymPy, so SymPy differentiates on its own."""
    expr = expr.replace(symdiff.relu, lambda t: sp.Max(t, 0))
    return expr.replace(symdiff.sigmoid, lambda t: 1 / (1 + sp.exp(-t)))


def explicit(formula, dims):
    """The formula at concrete dims, entry by entry over real scalar symbols.

    Returns (entries, symbols): ``entries`` is a SymPy Matrix of the output (1 x 1 for a loss),
    ``symbols[k]`` the array of scalar symbols standing for argument k's entries.
    """
    expr = formula.expr.subs(dims)
    if expr.is_Matrix:
        expr = expr.as_explicit()
    else:  # a scalar: sums are traces of 1 x 1 products
        expr = sp.Matrix([[expr.replace(lambda n: isinstance(n, sp.Trace),
                                        lambda n: n.arg.as_explicit().trace())]])
    replace, symbols = {}, []
    for arg in formula.args:
        if not arg.is_Matrix:
            symbols.append(np.array(arg))
            continue
        concrete = arg.subs(dims)
        entries = np.empty(shape_of(arg, dims), dtype=object)
        for i, j in np.ndindex(entries.shape):
            entries[i, j] = sp.Symbol(f"{arg.name}_{i}_{j}", real=True)
            replace[concrete[i, j]] = entries[i, j]
        symbols.append(entries)
    return plain_sympy(expr.xreplace(replace)), symbols


@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_backward_matches_sympy_on_explicit_entries(name, compiled):
    rng = np.random.default_rng(100 + sum(map(ord, name)))
    formula, mod = layers.LAYERS[name](), compiled[name]
    dims = dims_of(formula, EXPLICIT_DIMS)
    inputs = make_inputs(name, formula, EXPLICIT_DIMS, rng)
    out, cache = mod.forward(*inputs)
    dout = rng.normal(size=np.shape(out))
    grads = mod.backward(dout, cache)

    entries, symbols = explicit(formula, dims)
    assert entries.shape == (np.shape(out) or (1, 1))
    upstream = np.reshape(dout, entries.shape)
    loss = sum(float(upstream[i, j]) * entries[i, j] for i, j in np.ndindex(entries.shape))
    point = {s: sp.Float(float(v), 30) for block, value in zip(symbols, inputs)
             for s, v in zip(np.ravel(block), np.ravel(value)) if isinstance(s, sp.Symbol)}

    def at_point(e):  # the float64 point exactly, evaluated at 30 digits
        return float(e.xreplace(point).evalf(30))

    for grad, k in zip(grads, wrt_positions(formula), strict=True):
        exact = [at_point(sp.diff(loss, s)) for s in symbols[k].ravel()]
        reference = np.reshape(np.array(exact), grad.shape)
        scale = max(1.0, float(np.max(np.abs(reference))))
        assert np.max(np.abs(grad - reference)) <= 1e-10 * scale, (name, formula.args[k])
    value, exact_value = float(np.sum(upstream * np.reshape(out, entries.shape))), at_point(loss)
    assert abs(value - exact_value) <= 1e-10 * max(1.0, abs(exact_value))


@pytest.mark.parametrize("name", list(layers.LAYERS))
def test_symdiff_check_accepts_every_layer(name):
    report = symdiff.check(layers.program(name))
    assert report.ok, str(report)


# -- batch norm: the generated backward equals the long hand derivation -------------------------

def batchnorm_forward_by_hand(x, gamma, beta, eps):
    """Batch norm forward in small named steps (training mode), as written by hand."""
    n = x.shape[0]
    mu = 1.0 / n * np.sum(x, axis=0)             # step 1: mean of each column
    xmu = x - mu                                 # step 2: centred batch
    sq = xmu**2                                  # step 3
    var = 1.0 / n * np.sum(sq, axis=0)           # step 4: (biased) variance
    sqrtvar = np.sqrt(var + eps)                 # step 5
    ivar = 1.0 / sqrtvar                         # step 6
    xhat = xmu * ivar                            # step 7: normalised batch
    gammax = gamma * xhat                        # step 8
    out = gammax + beta                          # step 9
    return out, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)


def batchnorm_backward_by_hand(dout, cache):
    """The long backward through mean and variance: steps 9 to 1 in reverse."""
    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    n, d = dout.shape
    dbeta = np.sum(dout, axis=0)                 # step 9
    dgammax = dout
    dgamma = np.sum(dgammax * xhat, axis=0)      # step 8
    dxhat = dgammax * gamma
    divar = np.sum(dxhat * xmu, axis=0)          # step 7
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / (sqrtvar**2) * divar       # step 6
    dvar = 0.5 * 1.0 / np.sqrt(var + eps) * dsqrtvar  # step 5
    dsq = 1.0 / n * np.ones((n, d)) * dvar       # step 4
    dxmu2 = 2 * xmu * dsq                        # step 3
    dx1 = dxmu1 + dxmu2                          # step 2: x feeds xmu and mu
    dmu = -1 * np.sum(dxmu1 + dxmu2, axis=0)
    dx2 = 1.0 / n * np.ones((n, d)) * dmu        # step 1
    dx = dx1 + dx2
    return dx, dgamma, dbeta


def test_batchnorm_backward_equals_the_hand_derivation(compiled):
    rng = np.random.default_rng(7)
    mod = compiled["batchnorm"]
    for n, d in [(5, 3), (32, 8), (2, 1)]:
        x = rng.normal(2.0, 3.0, size=(n, d))
        gamma, beta = rng.normal(size=d), rng.normal(size=d)
        dout = rng.normal(size=(n, d))
        out, cache = mod.forward(x, gamma[None, :], beta[None, :], EPS)
        dx, dgamma, dbeta = mod.backward(dout, cache)
        hand_out, hand_cache = batchnorm_forward_by_hand(x, gamma, beta, EPS)
        hand_dx, hand_dgamma, hand_dbeta = batchnorm_backward_by_hand(dout, hand_cache)
        np.testing.assert_allclose(out, hand_out, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, hand_dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dgamma, hand_dgamma[None, :], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dbeta, hand_dbeta[None, :], rtol=1e-10, atol=1e-12)
        # and the compact closed form of the same derivative
        xhat, ivar = hand_cache[0], hand_cache[3]
        compact = gamma * ivar / n * (n * dout - dout.sum(axis=0)
                                      - xhat * np.sum(dout * xhat, axis=0))
        np.testing.assert_allclose(dx, compact, rtol=1e-10, atol=1e-12)


def test_softmax_cross_entropy_gradient_is_softmax_minus_labels_over_n(compiled):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(6, 4)) * 50  # large scores: the row maximum keeps exp finite
    y = np.eye(4)[rng.integers(0, 4, size=6)]
    loss, (dz,) = compiled["softmax_cross_entropy"].value_and_grad(z, y)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dz, (p - y) / 6, rtol=1e-10, atol=1e-14)
    assert np.isfinite(loss)


# -- the combined module ------------------------------------------------------------------------

def test_module_source_has_each_part_once():
    source = layers.module_source()
    assert source.count("import numpy as np") == 1
    assert source.count('"""Standard layers') == 1
    for helper in ["asfloat", "max_mask", "relu", "sigmoid"]:
        assert source.count(f"\ndef {helper}(") == 1, helper
    for name in layers.LAYERS:
        for function in ["forward", "backward", "value_and_grad"]:
            assert source.count(f"\ndef {name}_{function}(") == 1
    assert "symdiff" not in source.split('"""', 2)[2]  # the code never imports symdiff
    compile(source, "layers_gen.py", "exec")


def test_module_source_of_some_layers():
    source = layers.module_source(["affine", "relu"])
    assert "def affine_backward(" in source and "def relu_forward(" in source
    assert "sigmoid" not in source and "batchnorm" not in source
    with pytest.raises(symdiff.ArgumentError, match="unknown layer"):
        layers.module_source(["affine", "conv"])


def test_combined_module_runs_standalone_with_only_numpy(tmp_path, compiled):
    (tmp_path / "layers_gen.py").write_text(layers.module_source(), encoding="utf-8")
    rng = np.random.default_rng(11)
    cases = {}
    for name in layers.LAYERS:
        formula = layers.LAYERS[name]()
        inputs = make_inputs(name, formula, FD_DIMS, rng)
        out, _ = compiled[name].forward(*inputs)
        cases[name] = (inputs, rng.normal(size=np.shape(out)))
    arrays = {f"{name}_in{k}": np.asarray(v) for name, (inputs, _) in cases.items()
              for k, v in enumerate(inputs)}
    arrays.update({f"{name}_dout": np.asarray(d) for name, (_, d) in cases.items()})
    np.savez(tmp_path / "inputs.npz", **arrays)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import layers_gen
        assert not any(m.split(".")[0] in ("symdiff", "sympy") for m in sys.modules)
        data = np.load("inputs.npz")
        results = {{}}
        for name in {list(layers.LAYERS)!r}:
            k, inputs = 0, []
            while f"{{name}}_in{{k}}" in data:
                inputs.append(data[f"{{name}}_in{{k}}"])
                k += 1
            out, cache = getattr(layers_gen, name + "_forward")(*inputs)
            grads = getattr(layers_gen, name + "_backward")(data[name + "_dout"], cache)
            value, ones_grads = getattr(layers_gen, name + "_value_and_grad")(*inputs)
            assert np.array_equal(value, out) and len(ones_grads) == len(grads)
            results[name + "_out"] = out
            for k, g in enumerate(grads):
                results[f"{{name}}_grad{{k}}"] = g
        np.savez("results.npz", **results)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    results = np.load(tmp_path / "results.npz")
    for name, (inputs, dout) in cases.items():
        out, cache = compiled[name].forward(*inputs)
        np.testing.assert_array_equal(results[name + "_out"], out)
        for k, grad in enumerate(compiled[name].backward(dout, cache)):
            np.testing.assert_array_equal(results[f"{name}_grad{k}"], grad)
