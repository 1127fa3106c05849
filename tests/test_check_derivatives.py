"""check of the derivative functions beyond the gradient: Jacobian rows, jvp, hvp, hessian.

Each generated function is judged row by row against sympy.diff at 50 digits; a generated
function made wrong on purpose (transposed, a dropped cross term) must be caught and named.
"""

import types

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.ir import Program

x, y, z = sp.symbols("x y z", real=True)
VECTORS = [
    [x * y + sp.exp(x), sp.log(x**2 + 1) * y, symdiff.sigmoid(x - y)],
    [x * y * z, x + y + z],  # m = 2 < n = 3: the jacobian sweeps in reverse
    [sp.sin(x) * y, x / (1 + y**2)],
]


@pytest.mark.parametrize("exprs", VECTORS, ids=range(len(VECTORS)))
def test_vector_program_is_checked_row_by_row_with_jacobian_and_jvp(exprs):
    prog = symdiff.lower(exprs, wrt=sorted(set().union(*(e.free_symbols for e in exprs)),
                                           key=lambda s: s.name))
    report = symdiff.check(prog, samples=6)
    assert report.ok, str(report)
    assert [p.name for p in report.partials] == [
        f"d{out}/{g}" for out in prog.outputs for g in prog.grads]
    assert "jacobian, jvp of math, numpy" in str(report)


def _broken(monkeypatch, function, breaks):
    """Program.compile, with the generated ``function`` of a vector program replaced by
    breaks(original) (its rows' own programs are left right)."""
    original = Program.compile

    def compile_(self, backend="math", name=None, functions=None):
        module = original(self, backend, name, functions)
        if self.output_names and (functions is None or function in functions):
            spoiled = types.SimpleNamespace(**vars(module))
            setattr(spoiled, function, breaks(getattr(module, function)))
            return spoiled
        return module

    monkeypatch.setattr(Program, "compile", compile_)


def test_a_transposed_jacobian_is_caught_and_named(monkeypatch):
    prog = symdiff.lower([x * y, x + 2 * y], wrt=[x, y])

    def transposed(jacobian):
        def wrong(*args):
            values, jac = jacobian(*args)
            return values, tuple(zip(*jac)) if isinstance(jac, tuple) else jac.swapaxes(0, 1)
        return wrong

    _broken(monkeypatch, "jacobian", transposed)
    report = symdiff.check(prog, samples=4, prove=False)
    assert not report.ok
    wrong = {p.name for p in report.partials if not p.ok}
    assert wrong == {"dout0/dy", "dout1/dx"}  # the off-diagonal entries
    assert "jacobian code" in str(report)


def test_a_wrong_jvp_is_caught(monkeypatch):
    prog = symdiff.lower([x * y, sp.exp(y)], wrt=[x, y])

    def halved(jvp):
        def wrong(*args):
            values, tangents = jvp(*args)
            return values, (tangents[0] / 2, tangents[1])
        return wrong

    _broken(monkeypatch, "jvp", halved)
    report = symdiff.check(prog, samples=4, prove=False, backends=("math",))
    assert {p.name for p in report.partials if not p.ok} == {"dout0/dx", "dout0/dy"}
    assert "math jvp code" in str(report)


def test_functions_argument_is_validated():
    prog = symdiff.lower(x * y, wrt=[x, y])
    with pytest.raises(symdiff.ArgumentError, match="choose from jacobian, jvp, hvp, hessian"):
        symdiff.check(prog, functions=("hess",))
    vector = symdiff.lower([x * y, x], wrt=[x, y])
    with pytest.raises(symdiff.ArgumentError, match="second derivative of one output"):
        symdiff.check(vector, functions=("hvp",))
    matrix = symdiff.lower(sp.Trace(sp.MatrixSymbol("W", 2, 2)), wrt=["W"])
    with pytest.raises(symdiff.ArgumentError, match="scalar formulas"):
        symdiff.check(matrix, functions=("jacobian",))


def test_a_scalar_program_checks_its_jacobian_when_asked():
    report = symdiff.check(symdiff.lower(x * sp.sin(y), wrt=[x, y]), functions="jacobian",
                           samples=4)
    assert report.ok and [p.name for p in report.partials] == ["dx", "dy"]
    assert "the generated jacobian of math, numpy" in str(report)


# -- verify: hand Jacobians and Hessians ---------------------------------------------------------

F = x**2 * y + sp.sin(x * y)


def _hessian(x, y, cross=None, lower_cross=None):
    """The exact Hessian of F, with its (x, y) or (y, x) entry replaced when given."""
    import math
    c, s = math.cos(x * y), math.sin(x * y)
    h_xy = 2 * x + c - x * y * s
    return [[2 * y - y * y * s, h_xy if cross is None else cross],
            [h_xy if lower_cross is None else lower_cross, -x * x * s]]


def test_a_right_hessian_is_right():
    report = symdiff.verify(F, [x, y], _hessian, order=2, samples=8)
    assert report.ok, str(report)
    assert [p.name for p in report.partials] == ["d2out/dxdx", "d2out/dxdy", "d2out/dydx",
                                                 "d2out/dydy"]


def test_a_missing_cross_term_and_the_asymmetry_are_named():
    report = symdiff.verify(F, [x, y], lambda x, y: _hessian(x, y, cross=0.0), order=2,
                            samples=8)
    assert report.verdict() == "WRONG in d2out/dxdy"
    text = str(report)
    assert "a cross term is missing: the hand Hessian's (x, y) entry is 0" in text
    assert "not symmetric" in text and "(y, x) is the right one" in text


def test_an_asymmetric_hessian_says_which_entry_is_right():
    def wrong(x, y):  # the (y, x) entry drops the -x y sin(x y) term
        import math
        return _hessian(x, y, lower_cross=2 * x + math.cos(x * y))
    report = symdiff.verify(F, [x, y], wrong, order=2, samples=8)
    assert report.verdict() == "WRONG in d2out/dydx"
    assert "(x, y) is the right one" in str(report)


def test_a_transposed_jacobian_is_named():
    exprs = [x**2 * y, x * y]
    right = symdiff.verify(exprs, [x, y], lambda x, y: [[2 * x * y, x * x], [y, x]], samples=8)
    assert right.ok, str(right)
    report = symdiff.verify(exprs, [x, y], lambda x, y: [[2 * x * y, y], [x * x, x]], samples=8)
    assert report.verdict() == "WRONG in dout0/dy, dout1/dx"
    assert "the hand Jacobian is transposed" in str(report)
    assert all(p.diagnosis == "the Jacobian is transposed (see below)"
               for p in report.partials if not p.ok)


def test_a_jacobian_with_a_wrong_entry_is_not_called_transposed():
    report = symdiff.verify([x**2 * y, x * y], [x, y],
                            lambda x, y: [[2 * x * y, x * x], [y, 2 * x]], samples=8)
    assert report.verdict() == "WRONG in dout1/dy"
    assert "transposed" not in str(report) and "a factor of 2" in str(report)


def test_hand_matrix_of_the_wrong_size_is_reported():
    report = symdiff.verify([x * y, x], [x, y], lambda x, y: [[y, x]], samples=4)
    assert not report.ok and "the hand Jacobian has 1 rows; it must have 2" in str(report)
    with pytest.raises(symdiff.ArgumentError, match="order must be 1"):
        symdiff.verify(F, [x, y], _hessian, order=3)
    with pytest.raises(symdiff.ArgumentError, match="Hessian of one output"):
        symdiff.verify([x, y], [x, y], _hessian, order=2)


def test_a_row_with_no_point_in_its_domain_is_not_checked_not_a_mismatch():
    # acos(atan2(-pi, min(phi, x, y))) has no real point: atan2 < -1 there.
    exprs = [x * y, sp.acos(sp.atan2(-sp.pi, sp.Min(sp.GoldenRatio, x, y)))]
    report = symdiff.check(symdiff.lower(exprs, wrt=[x, y]), samples=4)
    assert report.verdict() == "NOT CHECKED: dout1/dx, dout1/dy"


def test_the_jacobian_is_not_judged_where_another_output_overflows():
    # erfc(gamma(x y))**-2 overflows floats near x y = 0.015 (gamma ~ 66, erfc ~ 1e-1900): the
    # math jacobian raises there, rightly, while row 0 is judged at that point.
    exprs = [sp.atanh(sp.Max(y, sp.tan(y))), sp.erfc(sp.gamma(x * y))**(-2)]
    report = symdiff.check(symdiff.lower(exprs, wrt=[x, y]), samples=6)
    assert report.ok, str(report)


# -- vector programs with matrix outputs ---------------------------------------------------------

N, D, H = sp.symbols("N D H", integer=True, positive=True)


def _lstm_cell():
    """An LSTM cell's (h_next, c_next) over separate gate weights (Hochreiter & Schmidhuber)."""
    xs, hs, cs = (sp.MatrixSymbol(n, N, k) for n, k in (("x", D), ("h", H), ("c", H)))
    gate = {g: xs * sp.MatrixSymbol(f"Wx{g}", D, H) + hs * sp.MatrixSymbol(f"Wh{g}", H, H)
            for g in "ifog"}
    i, f, o = (symdiff.apply(symdiff.sigmoid, gate[g]) for g in "ifo")
    g = symdiff.apply(sp.tanh, gate["g"])
    c_next = sp.HadamardProduct(f, cs) + sp.HadamardProduct(i, g)
    h_next = sp.HadamardProduct(o, symdiff.apply(sp.tanh, c_next))
    return sp.Tuple(h_next, c_next), [xs, hs, cs] + [sp.MatrixSymbol(f"W{s}{g}", *shape)
                                                    for g in "ifog" for s, shape in
                                                    (("x", (D, H)), ("h", (H, H)))]


def test_an_lstm_cell_has_one_backward_for_both_outputs_and_checks():
    outputs, wrt = _lstm_cell()
    prog = symdiff.lower(outputs, wrt=wrt)
    assert prog.outputs == ("out0", "out1")
    assert "def backward(dout0, dout1, cache):" in prog.source("numpy")
    report = symdiff.check(prog, samples=1)
    assert report.ok, str(report)
    assert len(report.partials) == 2 * len(wrt)


def test_named_outputs_name_the_lstm_backward_arguments():
    (h_next, c_next), wrt = _lstm_cell()
    named = symdiff.lower({"h_next": h_next, "c_next": c_next}, wrt=wrt)
    assert named.outputs == ("h_next", "c_next")
    assert "def backward(dh_next, dc_next, cache):" in named.source("numpy")
    plain = symdiff.lower(sp.Tuple(h_next, c_next), wrt=wrt).compile("numpy")
    rng = np.random.default_rng(0)
    sizes = {"x": (3, 2), "h": (3, 4), "c": (3, 4), "Wx": (2, 4), "Wh": (4, 4)}
    arrays = [rng.normal(size=sizes[next(k for k in ("Wx", "Wh", "x", "h", "c")
                                         if a.startswith(k))]) for a in named.args]
    module = named.compile("numpy")
    (h, c), cache = module.forward(*arrays)
    dh, dc = rng.normal(size=h.shape), rng.normal(size=c.shape)
    for got, want in zip(module.backward(dh, dc, cache),
                         plain.backward(dh, dc, plain.forward(*arrays)[1])):
        np.testing.assert_array_equal(got, want)  # the checked program, only renamed


def test_a_wrong_vector_backward_of_matrices_is_caught(monkeypatch):
    a = sp.MatrixSymbol("A", N, D)
    prog = symdiff.lower(sp.Tuple(a * 2, symdiff.apply(sp.exp, a)), wrt=[a])

    def dropped(backward):  # forgets the second output's upstream gradient
        return lambda dout0, dout1, cache: backward(dout0, 0 * dout1, cache)

    _broken(monkeypatch, "backward", dropped)
    report = symdiff.check(prog, samples=1)
    assert {p.name for p in report.partials if not p.ok} == {"dout1/dA"}
    assert "numpy code of all outputs" in str(report)


def test_a_wrong_vector_backward_of_scalars_is_caught(monkeypatch):
    prog = symdiff.lower([x * y, sp.exp(x)], wrt=[x, y])

    def swapped(backward):
        return lambda dout0, dout1, cache: backward(dout1, dout0, cache)

    _broken(monkeypatch, "backward", swapped)
    report = symdiff.check(prog, samples=4, prove=False, backends=("math",))
    assert not report.ok and "math backward code" in str(report)
