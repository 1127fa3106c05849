"""Lowering: the staged example's exact steps, DAG sharing, gate recognition, naming, depth."""

import pytest
import sympy as sp

import symdiff
from symdiff import sigmoid, softplus


def names(prog):
    return [s.name for s in prog.forward]


def test_staged_example_forward_steps_are_the_hand_written_ones(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    prog.validate()
    assert names(prog) == ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden", "out"]
    assert [str(s) for s in prog.forward] == [
        "sigy = sigmoid(y)", "num = x + sigy", "sigx = sigmoid(x)", "xpy = x + y",
        "xpysqr = xpy**2", "den = sigx + xpysqr", "invden = 1/den", "out = num*invden"]


def test_staged_example_backward_names_and_accumulation(staged, golden):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    grads = [g.name for g in prog.backward]
    assert set(grads) == {"dnum", "dinvden", "dden", "dsigx", "dxpysqr", "dxpy", "dsigy", "dx",
                          "dy"}
    writes = {n: [g.accumulate for g in prog.backward if g.name == n] for n in set(grads)}
    assert writes["dx"] == [False, True, True] and writes["dy"] == [False, True]
    assert all(w == [False] for n, w in writes.items() if n not in ("dx", "dy"))
    golden("staged_listing.txt", str(prog) + "\n")


def test_local_derivatives_reuse_forward_values(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    local = {(g.name, g.source): str(g.local) for g in prog.backward}
    assert local[("dden", "invden")] == "-invden**2"  # 1/x gate: -out**2
    assert local[("dx", "sigx")] == "sigx*(1 - sigx)"  # sigmoid gate: out*(1 - out)
    e = symdiff.lower(sp.exp(x) * y, wrt=[x])
    assert [str(g.local) for g in e.backward if g.name == "dx"] == ["expx"]


def test_repeated_subexpression_is_computed_once():
    x, y = sp.symbols("x y")
    s = sp.sin(x * y)
    prog = symdiff.lower(s**2 + s * x + sp.exp(s), wrt=[x, y])
    assert sum(1 for st in prog.forward if st.op == "sin") == 1
    assert sum(1 for st in prog.forward if st.op == "mul" and str(st.rhs) == "x*y") == 1
    assert [g.name for g in prog.backward].count("dsinxy") == 3  # fork: = then +=


def test_sigmoid_and_softplus_patterns_become_one_gate():
    x, y = sp.symbols("x y")
    prog = symdiff.lower(1 / (1 + sp.exp(-(x * y))), wrt=[x])
    assert [s.op for s in prog.forward] == ["mul", "sigmoid"]
    assert str(prog.forward[-1]) == "out = sigmoid(xy)"
    prog = symdiff.lower(sp.log(1 + sp.exp(x - y)), wrt=[x])
    assert prog.forward[-1].rhs.func is softplus
    prog = symdiff.lower(sigmoid(x) + softplus(y), wrt=[x, y])
    assert {s.op for s in prog.forward} >= {"sigmoid", "softplus"}


def test_quotient_names_num_den_and_grouped_denominator():
    a, b, c = sp.symbols("a b c")
    assert names(symdiff.lower((a + b) / (a - c), wrt=[a])) == ["num", "den", "invden", "out"]
    assert names(symdiff.lower(a / (b * c), wrt=[a])) == ["bc", "invbc", "out"]


def test_products_are_binary_and_keep_the_intermediate():
    price, count, tax = sp.symbols("price count tax")
    prog = symdiff.lower(price * count * tax, wrt=[price, count, tax])
    assert len(prog.forward) == 2 and prog.forward[0].op == "mul"


def test_affine_sum_of_products_is_named_dot():
    w0, w1, w2, x0, x1 = sp.symbols("w0 w1 w2 x0 x1")
    prog = symdiff.lower(sigmoid(w0 * x0 + w1 * x1 + w2), wrt=[w0])
    assert "dot" in names(prog)


@pytest.mark.parametrize("user", ["dx", "num", "lambda", "out", "dout", "sigy", "xpy", "np",
                                  "math", "cache", "forward", "sum", "sigmoid", "dnum"])
def test_user_symbol_names_never_collide(staged, user):
    expr, x, y = staged
    u = sp.Symbol(user)
    prog = symdiff.lower(expr * u, wrt=[x, y, u])
    prog.validate()
    mod = prog.compile("math")
    value, grads = mod.value_and_grad(0.3, -0.7, 1.5)
    exact = [sp.diff(expr * u, v).subs({x: 0.3, y: -0.7, u: 1.5}) for v in (x, y, u)]
    assert grads == pytest.approx([float(e) for e in exact], rel=1e-12)


def test_awkward_symbol_names_are_sanitized():
    syms = sp.symbols("α x' lambda", real=True) + (sp.Symbol("a b"), sp.Symbol("2x"))
    expr = sum(s**2 for s in syms)
    prog = symdiff.lower(expr, wrt=list(syms))
    prog.validate()
    assert prog.args == ("alpha", "x", "lambda_", "a_b", "v2x")
    _, grads = prog.compile("math").value_and_grad(1.0, 2.0, 3.0, 4.0, 5.0)
    assert grads == (2.0, 4.0, 6.0, 8.0, 10.0)


def test_deep_chain_lowers_without_recursion():
    """Three times deeper than Python's recursion limit: every walk must be iterative."""
    x, y = sp.symbols("x y")
    e, depth = x, 3_000
    for _ in range(depth):  # x_{k+1} = x_k*sin(x_k) + y*cos(x_k), built without evaluation
        e = sp.Add(sp.Mul(e, sp.sin(e, evaluate=False), evaluate=False),
                   sp.Mul(y, sp.cos(e, evaluate=False), evaluate=False), evaluate=False)
    prog = symdiff.lower(e, wrt=[x, y])
    assert len(prog.forward) == 5 * depth  # sin, mul, cos, mul, add per level
    assert repr(prog).startswith(f"<Program out = f(x, y): {5 * depth} forward steps")
    value, (dx, dy) = prog.compile("math").value_and_grad(0.1, 0.2)
    assert all(v == v for v in (value, dx, dy))  # numbers, not NaN: no crash


def test_piecewise_guards_only_unsafe_branches():
    x = sp.Symbol("x")
    prog = symdiff.lower(sp.Piecewise((x**2, x < 1), (2 * x - 1, True)), wrt=[x])
    assert [s.op for s in prog.forward] == ["pow", "add", "piecewise"]  # safe branches staged
    prog = symdiff.lower(sp.Piecewise((sp.log(x), x > 0), (0, True)), wrt=[x])
    assert [s.op for s in prog.forward] == ["piecewise"]  # log(x) stays inside its branch
    mod = prog.compile("math")
    assert mod.value_and_grad(-2.0) == (0.0, (0.0,))  # the untaken log branch is never run


def test_constants_fold_into_the_gate():
    x = sp.Symbol("x")
    prog = symdiff.lower(sp.sqrt(2) * x + sp.pi, wrt=[x])
    assert all(not s.rhs.is_number for s in prog.forward)
    assert symdiff.check(prog).ok


def test_symbol_and_constant_formulas():
    x, z = sp.symbols("x z")
    prog = symdiff.lower(x, wrt=[x, z])
    assert names(prog) == ["out"] and prog.compile().value_and_grad(3.0, 1.0) == (3.0, (1.0, 0.0))
    prog = symdiff.lower(sp.Integer(5), wrt=[x])
    assert prog.compile().value_and_grad(3.0) == (5, (0.0,))


def test_same_input_gives_byte_identical_output(staged):
    expr, x, y = staged
    first = symdiff.lower(expr, wrt=[x, y]).source("numpy")
    assert all(symdiff.lower(expr, wrt=[x, y]).source("numpy") == first for _ in range(3))
