"""The public API: what lower/grad accept, their defaults, and their errors."""

import math

import pytest
import sympy as sp

import symdiff
from symdiff import ArgumentError, SymdiffError, UnsupportedFunctionError


def test_args_default_to_wrt_then_the_rest_by_name():
    a, b, c, d = sp.symbols("a b c d")
    prog = symdiff.lower(a * b + c * d, wrt=[d, b])
    assert prog.args == ("d", "b", "a", "c") and prog.grads == ("dd", "db")


def test_explicit_args_order_and_extra_parameters():
    a, b, z = sp.symbols("a b z")
    prog = symdiff.lower(a * b, wrt=[a], args=[b, z, a])
    assert prog.args == ("b", "z", "a")
    assert prog.compile().value_and_grad(3.0, 0.0, 2.0) == (6.0, (3.0,))


def test_wrt_by_name_and_plain_or_real_symbols():
    x = sp.Symbol("x")
    xr = sp.Symbol("x", real=True)
    for wrt in (["x"], [x], [xr], "x"):
        value, (dx,) = symdiff.grad(sp.Abs(x) * x, wrt=wrt)(-2.0)
        assert (value, dx) == (-4.0, 4.0)  # d(|x| x)/dx = 2|x|: real, not re/im


def test_grad_shortcut_for_both_backends():
    x, y = sp.symbols("x y")
    assert symdiff.grad(x * y, wrt=[x, y])(2.0, 3.0) == (6.0, (3.0, 2.0))
    value, (dx, dy) = symdiff.grad(x * y, wrt=[x, y], backend="numpy")(2.0, 3.0)
    assert (value, dx, dy) == (6.0, 3.0, 2.0)


def test_python_numbers_are_formulas():
    x = sp.Symbol("x")
    assert symdiff.lower(3, wrt=[x]).compile().value_and_grad(1.0) == (3, (0.0,))
    assert symdiff.lower(2.5, wrt=["x"], allow_unused=True).compile().value_and_grad(1.0)[0] == 2.5


@pytest.mark.parametrize("wrt,message", [
    ([], "empty"), (["x", "x"], "twice"), ([sp.Integer(2)], "Symbols or names"),
    ([sp.Symbol("x") + 1], "Symbols or names"), (42, "list"), ([""], "empty name"),
])
def test_bad_wrt(wrt, message):
    with pytest.raises(ArgumentError, match=message):
        symdiff.lower(sp.Symbol("x") ** 2, wrt=wrt)


def test_bad_args():
    x, y = sp.symbols("x y")
    with pytest.raises(ArgumentError, match="missing: y"):
        symdiff.lower(x * y, wrt=[x], args=[x])
    with pytest.raises(ArgumentError, match="twice"):
        symdiff.lower(x * y, wrt=[x], args=[x, y, x])
    with pytest.raises(ArgumentError, match="wrt names .z., which is not a variable"):
        symdiff.lower(x * y, wrt=[x, "z"], args=[x, y])


@pytest.mark.parametrize("expr", [sp.Symbol("x") > 1, sp.Matrix([1, 2]), [1, 2], None, True,
                                  sp.Eq(sp.Symbol("x"), 1)])
def test_non_scalar_formulas_are_argument_errors(expr):
    with pytest.raises(ArgumentError):
        symdiff.lower(expr, wrt=["x"])


@pytest.mark.parametrize("expr", [
    sp.Function("f")(sp.Symbol("x")), sp.I * sp.Symbol("x"),
    sp.Integral(sp.Symbol("x") ** 2, sp.Symbol("x")),
    sp.Derivative(sp.sin(sp.Symbol("x") * sp.Symbol("y")), sp.Symbol("y")),
])
def test_unsupported_nodes_are_named(expr):
    with pytest.raises(UnsupportedFunctionError) as info:
        symdiff.lower(expr, wrt=["x"])
    assert str(info.value)  # names the node


def test_function_without_emitter_fails_at_source_time():
    x = sp.Symbol("x")
    prog = symdiff.lower(sp.LambertW(x), wrt=[x])  # differentiable: SymPy's fdiff
    with pytest.raises(UnsupportedFunctionError, match="LambertW"):
        prog.source("math")


def test_noncommutative_symbol_is_rejected():
    a = sp.Symbol("a", commutative=False)
    with pytest.raises(ArgumentError, match="non-commutative"):
        symdiff.lower(a * 2, wrt=[a])


def test_every_error_is_a_symdiff_error():
    for cls in (ArgumentError, UnsupportedFunctionError, symdiff.ParseError,
                symdiff.NonDifferentiableError, symdiff.InputTooLargeError):
        assert issubclass(cls, SymdiffError)


def test_evaluate_gives_every_value_and_gradient(staged):
    expr, x, y = staged
    values = symdiff.lower(expr, wrt=[x, y]).evaluate({x: 3, "y": -4})
    assert {"sigy", "num", "invden", "out", "dnum", "dden", "dx", "dy"} <= set(values)
    want = sp.diff(expr, x).subs({x: 3, y: -4}).evalf(30)
    assert values["dx"] == pytest.approx(float(want), rel=1e-15)
    with pytest.raises(ArgumentError, match="no value for y"):
        symdiff.lower(expr, wrt=[x, y]).evaluate({x: 3})


def test_a_matrix_formula_takes_names_in_wrt_and_args():
    # The name of a MatrixSymbol resolved to it, then was made a real Symbol anyway (an eager
    # default of dict.get): "symbol 'W' is non-commutative".
    w, v = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("v", 2, 1)
    formula = sp.Trace(w.T * w) + (v.T * w * v)[0, 0]
    by_name = symdiff.lower(formula, wrt=["W"], args=["v", "W"])
    by_symbol = symdiff.lower(formula, wrt=[w], args=[v, w])
    assert by_name.args == by_symbol.args == ("v", "W")
    assert by_name.source("numpy") == by_symbol.source("numpy")


def test_a_dict_names_the_outputs_and_its_bad_names_are_refused():
    x, y = sp.symbols("x y")
    prog = symdiff.lower({"u": x * y, "v": sp.sin(x) + x * y}, [x, y])
    assert prog.outputs == ("u", "v") and "def backward(du, dv, cache):" in prog.source("math")
    values, J = prog.compile("math").jacobian(2.0, 3.0)
    assert values == (6.0, 6.0 + math.sin(2.0)) and J == ((3.0, 2.0), (3.0 + math.cos(2.0), 2.0))
    for bad, message in [({"x": x * y}, "output name 'x' is taken"),
                         ({"dx": x, "v": y}, "output name 'dx' is taken"),
                         ({"1a": x}, "must be a Python identifier"), ({}, "is empty")]:
        with pytest.raises(symdiff.ArgumentError, match=message):
            symdiff.lower(bad, [x, y])
