"""Vector outputs, forward mode (jvp) and Jacobians, against independent references.

The reference Jacobian is SymPy's own ``Matrix.jacobian`` of the formulas, evaluated at 50
digits (nothing of symdiff's lowering); jvp and backward are checked against it as J @ v and
u @ J, and the generated values against central differences of themselves in floats.
"""

import math
import random

import mpmath
import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.tangent import count_ops, row_program, sweeps, tangents

x, y, z, w = sp.symbols("x y z w", real=True)

# (outputs, wrt, a box the random points are drawn from): both kinds of sweep (n <= m forward,
# n > m reverse), shared subexpressions, an output that is an input, a constant, an output read
# by another, branches and kinks (points drawn away from them), functions with their own rules.
CORPUS = [
    ([x * y, sp.sin(x * y), x, sp.exp(x) / (1 + y**2)], [x, y], (-2, 2)),
    ([x * y * sp.sin(z), x + y + z], [x, y, z], (-2, 2)),
    ([sp.log(1 + x**2) * sp.atan2(y, z), sp.tanh(x - z) * w, sp.sqrt(x**2 + y**2 + 1)],
     [x, y, z, w], (-3, 3)),
    ([sp.Piecewise((x * y, x > 0), (sp.cos(y), True)), sp.Max(x, y) * z, sp.Abs(x - z)],
     [x, y, z], (-2, 2)),
    ([1 / (1 + sp.exp(-x)), sp.Integer(3), y], [x, y], (-4, 4)),
    ([(x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2)], [x, y], (-2, 2)),
    ([sp.exp(x * y) - sp.exp(-x * y), sp.exp(x * y) + sp.exp(-x * y)], [x, y], (-1, 1)),
]
IDS = [f"f{k}" for k in range(len(CORPUS))]


def reference_jacobian(exprs, wrt, point):
    """SymPy's Jacobian of the formulas at 50 digits (an mpmath matrix)."""
    jac = sp.Matrix(exprs).jacobian(wrt)
    subs = {s: sp.Float(v, 50) for s, v in point.items()}
    return [[mpmath.mpf(str(sp.N(jac[i, j].subs(subs), 50))) for j in range(len(wrt))]
            for i in range(len(exprs))]


def points(exprs, wrt, box, count=6, seed=1):
    """Random points of the box, away from the kinks of Abs/Max/Piecewise (|x - z| > 0.05 ...)."""
    rng = random.Random(seed)
    found = []
    while len(found) < count:
        p = {s: rng.uniform(*box) for s in wrt}
        if all(abs(p[a] - p[b]) > 0.05 for a in wrt for b in wrt if a != b) and \
                all(abs(v) > 0.05 for v in p.values()):
            found.append(p)
    return found


def close(got, want, rel=1e-12):
    return abs(float(got) - float(want)) <= rel * max(1.0, abs(float(want)))


@pytest.mark.parametrize("exprs,wrt,box", CORPUS, ids=IDS)
@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_jacobian_matches_sympys_at_50_digits(exprs, wrt, box, backend):
    jac = symdiff.jacobian(exprs, wrt, backend=backend)
    for p in points(exprs, wrt, box):
        values, got = jac(*(p[s] for s in wrt))
        want = reference_jacobian(exprs, wrt, p)
        if backend == "numpy":
            assert isinstance(got, np.ndarray) and got.shape == (len(exprs), len(wrt))
        for i in range(len(exprs)):
            for j in range(len(wrt)):
                assert close(got[i][j], want[i][j]), (i, j, p)
        for v, e in zip(values, exprs):  # a list of one is a vector of one
            assert close(v, sp.N(e.subs(p), 30))


@pytest.mark.parametrize("exprs,wrt,box", CORPUS, ids=IDS)
@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_jvp_is_the_jacobian_times_the_tangent(exprs, wrt, box, backend):
    mod = symdiff.lower(exprs, wrt).compile(backend)
    rng = random.Random(7)
    for p in points(exprs, wrt, box, count=4):
        v = [rng.uniform(-1, 1) for _ in wrt]
        _, tangent = mod.jvp(*(p[s] for s in wrt), *v)
        want = reference_jacobian(exprs, wrt, p)
        for i in range(len(exprs)):
            jv = mpmath.fsum(want[i][j] * v[j] for j in range(len(wrt)))
            assert close(tangent[i], jv, rel=1e-11), (i, p)


@pytest.mark.parametrize("exprs,wrt,box", CORPUS, ids=IDS)
@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_vector_backward_is_the_vector_jacobian_product(exprs, wrt, box, backend):
    prog = symdiff.lower(exprs, wrt)
    prog.validate()
    mod = prog.compile(backend)
    rng = random.Random(3)
    for p in points(exprs, wrt, box, count=4):
        u = [rng.uniform(-1, 1) for _ in exprs]
        _, cache = mod.forward(*(p[s] for s in wrt))
        grads = mod.backward(*u, cache)
        want = reference_jacobian(exprs, wrt, p)
        for j in range(len(wrt)):
            uj = mpmath.fsum(u[i] * want[i][j] for i in range(len(exprs)))
            assert close(grads[j], uj, rel=1e-11), (j, p)


@pytest.mark.parametrize("exprs,wrt,box", CORPUS[:4], ids=IDS[:4])
def test_jvp_agrees_with_central_differences_of_its_own_values(exprs, wrt, box):
    """Independent of SymPy: (f(p + h v) - f(p - h v)) / 2h from the generated values."""
    mod = symdiff.lower(exprs, wrt).compile("math")
    h = 1e-6
    for p in points(exprs, wrt, box, count=3, seed=5):
        base = [p[s] for s in wrt]
        v = [0.3 + 0.1 * k for k in range(len(wrt))]
        _, tangent = mod.jvp(*base, *v)
        plus, _ = mod.forward(*[b + h * d for b, d in zip(base, v)])
        minus, _ = mod.forward(*[b - h * d for b, d in zip(base, v)])
        for i in range(len(exprs)):
            fd = (plus[i] - minus[i]) / (2 * h)
            assert abs(tangent[i] - fd) <= 1e-6 * max(1.0, abs(fd))


def test_the_jacobian_chooses_the_cheaper_sweep_and_says_so():
    tall = symdiff.lower(CORPUS[0][0], CORPUS[0][1])  # m = 4 outputs, n = 2 wrt
    wide = symdiff.lower(CORPUS[1][0], CORPUS[1][1])  # m = 2, n = 3
    assert sweeps(tall) == "forward" and sweeps(wide) == "reverse"
    assert "by 2 forward (tangent) sweeps, one per wrt variable (n = 2 <= m = 4)" in \
        " ".join(tall.source("math", functions=("jacobian",)).split())
    assert "by 2 reverse sweeps, one per output (m = 2 < n = 3)" in \
        " ".join(wide.source("numpy", functions=("jacobian",)).split())


def test_outputs_share_their_common_steps():
    prog = symdiff.lower([sp.sin(x * y), sp.cos(x * y), x * y], [x, y])
    assert [s.name for s in prog.forward] == ["xy", "out0", "out1", "out2"]
    assert str(prog.step("out2").rhs) == "xy"  # an output that is an earlier value: a copy
    assert prog.outputs == ("out0", "out1", "out2")


def test_an_output_another_output_reads_gets_both_gradients():
    prog = symdiff.lower([x * y, sp.sin(x * y)], [x, y])
    src = prog.source("math")
    assert "def backward(dout0, dout1, cache):" in src
    assert "dout0 += dout1 * math.cos(out0)" in src
    _, cache = prog.compile("math").forward(2.0, 3.0)
    dx, dy = prog.compile("math").backward(0.0, 1.0, cache)
    assert dx == pytest.approx(3 * math.cos(6.0), rel=1e-15)


def test_jvp_has_one_tangent_line_per_step_under_its_forward_line(staged):
    expr, x_, y_ = staged
    src = symdiff.lower(expr, [x_, y_]).source("math", functions=("jvp",))
    body = src[src.index("def jvp"):]
    assert "def jvp(x, y, x_t, y_t):" in body
    lines = [ln.strip() for ln in body.splitlines()]
    for k, line in enumerate(lines):
        if line.startswith("# tangent "):
            forward_line = line.removeprefix("# tangent ")
            name = forward_line.split(" = ")[0]
            assert forward_line in lines[:k]  # the forward line it came from
            assert lines[k + 1].startswith(f"{name}_t = ")
    assert "sigy_t = y_t * (sigy*(1 - sigy))" in lines
    assert lines[-1] == "return out, out_t"


def test_tangent_names_step_aside_for_a_user_symbol():
    x_t = sp.Symbol("x_t")
    prog = symdiff.lower(x * x_t + sp.sin(x), [x, x_t])
    src = prog.source("math", functions=("jvp",))
    assert "def jvp(x, x_t, x_t2, x_t_t2):" in src
    _, tangent = prog.compile("math", functions=("jvp",)).jvp(0.5, 2.0, 1.0, 0.0)
    assert tangent == pytest.approx(2.0 + math.cos(0.5), rel=1e-15)


def test_numpy_jacobian_has_one_jacobian_per_point():
    jac = symdiff.jacobian([x * y, x + y**2, sp.sin(x)], [x, y], backend="numpy")
    xs = np.array([0.5, 1.0, 2.0])
    _, J = jac(xs, 3.0)
    assert J.shape == (3, 2, 3)
    for k, xv in enumerate(xs):
        assert np.allclose(J[:, :, k], [[3.0, xv], [1.0, 6.0], [np.cos(xv), 0.0]], rtol=1e-15)


def test_numpy_jvp_returns_no_alias_of_a_tangent_argument():
    mod = symdiff.lower([x, x * y], [x, y]).compile("numpy", functions=("jvp",))
    xt = np.array([1.0, 2.0])
    _, (t0, _) = mod.jvp(np.array([1.0, 2.0]), 3.0, xt, 0.0)
    t0[0] = 99.0
    assert xt[0] == 1.0


def test_a_scalar_formula_has_jvp_and_a_one_row_jacobian():
    f = x**2 * sp.exp(y)
    value, tangent = symdiff.jvp(f, [x, y])(1.5, 0.5, 1.0, 2.0)
    want = sp.diff(f, x).subs({x: 1.5, y: 0.5}) + 2 * sp.diff(f, y).subs({x: 1.5, y: 0.5})
    assert tangent == pytest.approx(float(want), rel=1e-14)
    _, J = symdiff.jacobian(f, [x, y], backend="numpy")(1.5, 0.5)
    assert J.shape == (1, 2)
    _, J = symdiff.jacobian(f, [x, y])(1.5, 0.5)
    assert len(J) == 1 and len(J[0]) == 2


def test_an_output_that_depends_on_no_wrt_variable_has_zero_derivatives():
    values, J = symdiff.jacobian([sp.Integer(3), x * z], [x, y])(2.0, 5.0, 4.0)
    assert values == (3, 8.0) and J == ((0.0, 0.0), (4.0, 0.0))
    _, tangent = symdiff.jvp([z, x], [x], backend="numpy")(2.0, 4.0, 1.0)
    assert tangent[0] == 0.0 and tangent[1] == 1.0


def test_the_default_module_of_a_scalar_formula_is_unchanged(staged, golden):
    expr, x_, y_ = staged
    prog = symdiff.lower(expr, [x_, y_])
    golden("staged_math.py", prog.source("math", functions=("forward", "backward",
                                                            "value_and_grad")))
    assert "def jvp" not in prog.source("math")


def test_functions_chooses_what_the_module_defines():
    prog = symdiff.lower([x * y, x + y], [x, y])
    src = prog.source("math", functions=("jacobian", "jvp"))
    assert "def jvp(" in src and "def jacobian(" in src and "def forward(" not in src
    assert "def forward(" in prog.source("math") and "def value_and_grad" not in prog.source()
    named = prog.source("math", name="f", functions=("jvp",))
    assert "def f_jvp(x, y, x_t, y_t):" in named and "f_jvp(x, y, x_t, y_t) ->" in named


@pytest.mark.parametrize("functions,message", [
    (("backward",), "backward needs forward"),
    (("laplacian",), "which no module defines"),
    ((), "functions is empty"),
    ("jvp", "a tuple of names"),
])
def test_functions_that_cannot_be_written_are_refused(functions, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        symdiff.lower(x * y, [x, y]).source("math", functions=functions)


def test_a_vector_program_has_no_value_and_grad_and_no_single_output():
    prog = symdiff.lower([x * y, x + y], [x, y])
    with pytest.raises(symdiff.ArgumentError, match="value_and_grad is the gradient of one"):
        prog.source("math", functions=("forward", "value_and_grad"))
    with pytest.raises(symdiff.VectorOutputError, match="2 outputs"):
        prog.output  # noqa: B018
    with pytest.raises(symdiff.VectorOutputError):
        prog.evaluate({x: 1, y: 2})


@pytest.mark.parametrize("outputs,message", [
    (sp.Matrix([[x, y], [y, x]]), "one row or one column"),
    ([x, [y, x]], "output 1 is list"),
])
def test_unsupported_vectors_are_refused(outputs, message):
    with pytest.raises(symdiff.VectorOutputError, match=message):
        symdiff.lower(outputs, [x, y] if "Trace" not in str(outputs) else [x])


def test_a_matrix_formula_has_no_forward_mode_yet():
    X = sp.MatrixSymbol("X", 2, 2)
    prog = symdiff.lower(sp.Trace(X.T * X), [X])
    with pytest.raises(symdiff.UnsupportedFunctionError, match="jvp of a matrix formula"):
        prog.source("numpy", functions=("jvp",))


def test_a_row_matrix_and_a_tuple_are_vectors_too():
    for outputs in (sp.Matrix([[x * y, x]]), sp.Tuple(x * y, x), (x * y, x)):
        _, J = symdiff.jacobian(outputs, [x, y])(2.0, 3.0)
        assert J == ((3.0, 2.0), (1.0, 0.0))


def test_tangent_pass_drops_tangents_no_output_reads():
    prog = symdiff.lower(sp.floor(sp.sin(x)) + y, [x, y])
    lines = tangents(prog.forward, {"x": "x_t", "y": "y_t"}, prog.outputs)
    assert [t.source for t in lines] == ["out"]  # sin(x) feeds only floor: derivative 0
    assert str(lines[0]) == "out_t = y_t"


def test_op_counts_of_jvp_and_jacobian_stay_within_their_bounds():
    for exprs, wrt, _ in CORPUS:
        counts = count_ops(symdiff.lower(exprs, wrt))
        assert counts["jvp"] <= 3 * counts["gradient"] + 1
        assert counts["jacobian"] <= min(len(exprs), len(wrt)) * counts["gradient"]


@pytest.mark.parametrize("exprs,wrt,box", [CORPUS[k] for k in (0, 1, 3)], ids=["f0", "f1", "f3"])
def test_check_passes_every_row_program_of_a_vector_program(exprs, wrt, box):
    """Row k's program is the reverse sweep the Jacobian writes for row k, line for line; check
    judges it (50-digit program and both backends' code) against sympy.diff of output k."""
    prog = symdiff.lower(exprs, wrt)
    for k in range(len(exprs)):
        row = row_program(prog, k)
        row.validate()
        assert row.expr == exprs[k]
        report = symdiff.check(row, samples=5, domain=dict.fromkeys(wrt, box))
        assert report.ok, str(report)


def test_check_and_verify_judge_a_vector_program_row_by_row():
    # (They refused it until derivative_rows; tests/test_check_derivatives.py has the rest.)
    prog = symdiff.lower([x * y, sp.sin(x)], [x, y])
    assert symdiff.check(prog, samples=4).ok
    report = symdiff.verify([x * y, sp.sin(x)], [x, y], lambda a, b: ((b, a), (a, 0.0)),
                            samples=4)
    assert report.verdict() == "WRONG in dout1/dx"
