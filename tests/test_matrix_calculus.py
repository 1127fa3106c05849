"""Matrix calculus as people write it: Trace, entries, vectors, Determinant, Inverse.

Oracles (none is symdiff's own conversion):
- the closed forms of *The Matrix Cookbook* (K. B. Petersen, M. S. Pedersen, 2012), sections
  2.1 (determinants), 2.2 (inverses), 2.4 (first- and second-order forms), 2.5 (traces) and the
  Frobenius norm, each written below in NumPy and evaluated on random well-conditioned matrices
  (symmetric positive definite where the identity needs it), against the generated gradient;
- ``symdiff.check``: sympy.diff of the formula expanded entry by entry at small concrete sizes
  (SymPy's own Trace, det, adjugate inverse and index sums), and central differences.
Formulas use symbolic sizes: with numeric ones SymPy may expand and invert symbolically.
"""

import numpy as np
import pytest
import sympy as sp

import symdiff

n, m = sp.symbols("n m", integer=True, positive=True)
X, A, B, C, D = (sp.MatrixSymbol(s, n, n) for s in "XABCD")
R = sp.MatrixSymbol("R", n, m)  # a rectangular matrix (n > m at the test sizes)
a, b, c, d, x, s_ = (sp.MatrixSymbol(s, n, 1) for s in ("a", "b", "c", "dv", "x", "s"))
SIZES = {"n": 4, "m": 3}
RNG = np.random.default_rng(2012)
inv, det, T = np.linalg.inv, np.linalg.det, np.transpose


def _data(prog, spd=(), wellcond=(), sizes=SIZES):
    """Random arguments by code name: normal entries; ``wellcond`` ones are I*n + noise; ``spd``
    ones are symmetric positive definite."""
    values = {}
    for i in prog.inputs:
        shape = _concrete(i.symbol.shape, sizes)
        v = RNG.normal(size=shape)
        if i.name in spd:
            v = v @ v.T + shape[0] * np.eye(shape[0])
        elif i.name in wellcond:
            v = 0.5 * v + shape[0] * np.eye(shape[0])
        values[i.name] = v
    return values


def _concrete(shape, sizes=SIZES):
    return tuple(int(sp.sympify(k).subs({n: sizes["n"], m: sizes["m"]})) for k in shape)


def _eye(v):  # the n x n identity at the sizes of the data
    return np.eye(v["X"].shape[0])


def _pinv_t(r):  # (R^+)^T for a full-column-rank R
    return r @ inv(r.T @ r)


# (name, formula, variable, closed form of the gradient over the data v, SPD args, cond. args)
COOKBOOK = [
    # 2.5 traces
    ("tr(X)", lambda: sp.Trace(X), X, lambda v: _eye(v), (), ()),
    ("tr(XA)", lambda: sp.Trace(X * A), X, lambda v: v["A"].T, (), ()),
    ("tr(AXB)", lambda: sp.Trace(A * X * B), X, lambda v: v["A"].T @ v["B"].T, (), ()),
    ("tr(AX'B)", lambda: sp.Trace(A * X.T * B), X, lambda v: v["B"] @ v["A"], (), ()),
    ("tr(X'A)", lambda: sp.Trace(X.T * A), X, lambda v: v["A"], (), ()),
    ("tr(AX')", lambda: sp.Trace(A * X.T), X, lambda v: v["A"], (), ()),
    ("tr(X^2)", lambda: sp.Trace(X * X), X, lambda v: 2 * v["X"].T, (), ()),
    ("tr(X^2 B)", lambda: sp.Trace(X * X * B), X,
     lambda v: (v["X"] @ v["B"] + v["B"] @ v["X"]).T, (), ()),
    ("tr(X'BX)", lambda: sp.Trace(X.T * B * X), X,
     lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], (), ()),
    ("tr(BXX')", lambda: sp.Trace(B * X * X.T), X,
     lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], (), ()),
    ("tr(XX'B)", lambda: sp.Trace(X * X.T * B), X,
     lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], (), ()),
    ("tr(XBX')", lambda: sp.Trace(X * B * X.T), X,
     lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], (), ()),
    ("tr(BX'X)", lambda: sp.Trace(B * X.T * X), X,
     lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], (), ()),
    ("tr(X'XB)", lambda: sp.Trace(X.T * X * B), X,
     lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], (), ()),
    ("tr(AXBX)", lambda: sp.Trace(A * X * B * X), X,
     lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T, (), ()),
    ("tr(X'X)", lambda: sp.Trace(X.T * X), X, lambda v: 2 * v["X"], (), ()),
    ("tr(B'X'CXB)", lambda: sp.Trace(B.T * X.T * C * X * B), X,
     lambda v: (v["C"].T + v["C"]) @ v["X"] @ v["B"] @ v["B"].T, (), ()),
    ("tr(X'BXC)", lambda: sp.Trace(X.T * B * X * C), X,
     lambda v: v["B"] @ v["X"] @ v["C"] + v["B"].T @ v["X"] @ v["C"].T, (), ()),
    ("tr(AXBX'C)", lambda: sp.Trace(A * X * B * X.T * C), X,
     lambda v: v["A"].T @ v["C"].T @ v["X"] @ v["B"].T + v["C"] @ v["A"] @ v["X"] @ v["B"],
     (), ()),
    ("tr((AXB+C)(AXB+C)')", lambda: sp.Trace((A * X * B + C) * (A * X * B + C).T), X,
     lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] @ v["B"] + v["C"]) @ v["B"].T, (), ()),
    ("tr(X^3)", lambda: sp.Trace(X**3), X, lambda v: 3 * (v["X"] @ v["X"]).T, (), ()),
    ("tr(AX^3)", lambda: sp.Trace(A * X**3), X,
     lambda v: sum(np.linalg.matrix_power(v["X"], r) @ v["A"]
                   @ np.linalg.matrix_power(v["X"], 2 - r) for r in range(3)).T, (), ()),
    ("tr(AX^-1B)", lambda: sp.Trace(A * X.I * B), X,
     lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T, (), ("X",)),
    ("tr(X^-1)", lambda: sp.Trace(X.I), X, lambda v: -(inv(v["X"]) @ inv(v["X"])).T,
     (), ("X",)),
    ("tr(A+2X)", lambda: sp.Trace(A + 2 * X), X, lambda v: 2 * _eye(v), (), ()),
    # 2.1 determinants
    ("det(X)", lambda: sp.Determinant(X), X, lambda v: det(v["X"]) * inv(v["X"]).T,
     (), ("X",)),
    ("det(AXB)", lambda: sp.Determinant(A * X * B), X,
     lambda v: det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T, (), ("A", "X", "B")),
    ("ln det(X)", lambda: sp.log(sp.Determinant(X)), X, lambda v: inv(v["X"]).T, ("X",), ()),
    ("ln det(R'R)", lambda: sp.log(sp.Determinant(R.T * R)), R,
     lambda v: 2 * _pinv_t(v["R"]), (), ()),
    ("det(X^2)", lambda: sp.Determinant(X**2), X,
     lambda v: 2 * det(v["X"] @ v["X"]) * inv(v["X"]).T, (), ("X",)),
    ("det(X^-1)", lambda: sp.Determinant(X.I), X,
     lambda v: -det(inv(v["X"])) * inv(v["X"]).T, (), ("X",)),
    # 2.2 inverses
    ("a'X^-1b", lambda: a.T * X.I * b, X,
     lambda v: -inv(v["X"]).T @ v["a"] @ v["b"].T @ inv(v["X"]).T, (), ("X",)),
    ("x'S^-1x", lambda: x.T * A.I * x, x, lambda v: 2 * inv(v["A"]) @ v["x"], ("A",), ()),
    # 2.4.1 first order
    ("x'a", lambda: x.T * a, x, lambda v: v["a"], (), ()),
    ("a'x", lambda: a.T * x, x, lambda v: v["a"], (), ()),
    ("a'Xb", lambda: a.T * X * b, X, lambda v: v["a"] @ v["b"].T, (), ()),
    ("a'X'b", lambda: a.T * X.T * b, X, lambda v: v["b"] @ v["a"].T, (), ()),
    ("a'Xa", lambda: a.T * X * a, X, lambda v: v["a"] @ v["a"].T, (), ()),
    ("X_12", lambda: X[1, 2], X, lambda v: _eye(v)[:, [1]] @ _eye(v)[[2], :], (), ()),
    ("(XA)_02", lambda: (X * A)[0, 2], X,
     lambda v: _eye(v)[:, [0]] @ v["A"][:, [2]].T, (), ()),
    # 2.4.2 second order
    ("b'X'Xc", lambda: b.T * X.T * X * c, X,
     lambda v: v["X"] @ (v["b"] @ v["c"].T + v["c"] @ v["b"].T), (), ()),
    ("(Bx+b)'C(Dx+d)", lambda: (B * x + b).T * C * (D * x + d), x,
     lambda v: v["B"].T @ v["C"] @ (v["D"] @ v["x"] + v["dv"])
     + v["D"].T @ v["C"].T @ (v["B"] @ v["x"] + v["b"]), (), ()),
    ("x'Bx", lambda: x.T * B * x, x, lambda v: (v["B"] + v["B"].T) @ v["x"], (), ()),
    ("b'X'DXc", lambda: b.T * X.T * D * X * c, X,
     lambda v: v["D"].T @ v["X"] @ v["b"] @ v["c"].T + v["D"] @ v["X"] @ v["c"] @ v["b"].T,
     (), ()),
    ("(Xb+c)'D(Xb+c)", lambda: (X * b + c).T * D * (X * b + c), X,
     lambda v: (v["D"] + v["D"].T) @ (v["X"] @ v["b"] + v["c"]) @ v["b"].T, (), ()),
    ("(x-As)'W(x-As) by s", lambda: (x - A * s_).T * B * (x - A * s_), s_,
     lambda v: -2 * v["A"].T @ v["B"] @ (v["x"] - v["A"] @ v["s"]), ("B",), ()),
    ("(u'Av)[0,0]", lambda: (a.T * A * b)[0, 0], A, lambda v: v["a"] @ v["b"].T, (), ()),
    # norms
    ("||X||_F^2", lambda: sp.Trace(X.T * X), X, lambda v: 2 * v["X"], (), ()),
    ("||R||_F", lambda: sp.sqrt(sp.Trace(R.T * R)), R,
     lambda v: v["R"] / np.linalg.norm(v["R"]), (), ()),
    ("||x-a||_2", lambda: sp.sqrt(((x - a).T * (x - a))[0, 0]), x,
     lambda v: (v["x"] - v["a"]) / np.linalg.norm(v["x"] - v["a"]), (), ()),
]
IDS = [row[0] for row in COOKBOOK]


def test_the_table_is_large():
    assert len(COOKBOOK) >= 40


@pytest.mark.parametrize("row", COOKBOOK, ids=IDS)
def test_cookbook_identity(row):
    name, make, var, closed, spd, wellcond = row
    prog = symdiff.lower(make(), wrt=[var])
    prog.validate()
    values = _data(prog, spd, wellcond)
    value, (grad,) = prog.compile("numpy").value_and_grad(*(values[k] for k in prog.args))
    assert np.ndim(value) == 0, name  # a 1 x 1 output is a scalar
    expected = closed(values)
    assert grad.shape == expected.shape == _concrete(var.shape)
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-11 * np.abs(expected).max())


@pytest.mark.parametrize("row", COOKBOOK, ids=IDS)
def test_cookbook_closed_form_verifies_and_its_transpose_does_not(row):
    """verify, with the Cookbook's right-hand side as the hand gradient, at 3 x 2 sizes (n > m:
    R'R invertible): OK; verify first checks symdiff's own gradient against sympy.diff of the
    formula entry by entry and central differences at those sizes. The closed form transposed
    is refused wherever it is not symmetric there."""
    name, make, var, closed, spd, wellcond = row
    prog = symdiff.lower(make(), wrt=[var])
    point = _data(prog, spd, wellcond, sizes={"n": 3, "m": 2})
    args = [i.symbol for i in prog.inputs]
    names = [i.name for i in prog.inputs]

    def hand(*arrays):
        return (closed(dict(zip(names, arrays))),)

    given = [{i.symbol: point[i.name] for i in prog.inputs}]
    report = symdiff.verify(make(), [var], hand, args=args, points=given)
    assert report.ok, str(report)
    expected = hand(*(point[k] for k in names))[0]
    if expected.shape[0] == expected.shape[1] > 1 and not np.allclose(expected, expected.T):
        wrong = symdiff.verify(make(), [var], lambda *a: (hand(*a)[0].T,), args=args,
                               points=given)
        assert not wrong.ok, name


# -- what the generated code computes, and how --------------------------------------------------


def _source(expr, wrt):
    return symdiff.lower(expr, wrt=wrt).source("numpy", name="f")


def test_trace_of_a_gram_product_forms_no_matrix_product():
    text = _source(sp.Trace(A.T * A), [A])
    assert "np.sum(A" in text and "@" not in text and "np.trace" not in text


def test_an_inverse_that_is_only_multiplied_is_a_solve():
    for expr in (x.T * A.I * x, (x - a).T * A.I * (x - a), sp.Trace(X.I * A)):
        text = _source(expr, [A] if A in expr.free_symbols and X not in expr.free_symbols
                       else [X])
        assert "np.linalg.solve(" in text and "np.linalg.inv(" not in text, text


def test_an_inverse_power_is_repeated_solves():
    prog = symdiff.lower(x.T * X**-2 * x, wrt=[X])
    solves = [s for s in prog.forward if "solve" in str(s.rhs)]
    assert len(solves) == 2 and "np.linalg.inv(" not in prog.source("numpy")


def test_log_det_goes_through_slogdet_and_is_nan_for_a_negative_determinant():
    prog = symdiff.lower(sp.log(sp.Determinant(X)), wrt=[X])
    assert "np.linalg.slogdet(" in prog.source("numpy")
    mod = prog.compile("numpy")
    big = 1e100 * np.eye(5)  # det overflows to inf; its log is 500 log 10
    value, (grad,) = mod.value_and_grad(big)
    assert value == pytest.approx(500 * np.log(10)) and np.allclose(grad, 1e-100 * np.eye(5))
    assert np.isnan(mod.value_and_grad(np.diag([1.0, -1.0]))[0])


def test_a_1x1_output_is_a_scalar_and_an_entry_of_a_product_works():
    u, v = sp.MatrixSymbol("u", n, 1), sp.MatrixSymbol("v", n, 1)
    for expr in (u.T * A * v, (u.T * A * v)[0, 0]):
        mod = symdiff.lower(expr, wrt=[u, A, v]).compile("numpy")
        uu, aa, vv = RNG.normal(size=(3, 1)), RNG.normal(size=(3, 3)), RNG.normal(size=(3, 1))
        value, (du, da, dv) = mod.value_and_grad(uu, aa, vv)
        assert np.ndim(value) == 0 and value == pytest.approx((uu.T @ aa @ vv).item())
        np.testing.assert_allclose(du, aa @ vv, rtol=1e-13)
        np.testing.assert_allclose(da, uu @ vv.T, rtol=1e-13)
        np.testing.assert_allclose(dv, aa.T @ uu, rtol=1e-13)


@pytest.mark.parametrize("expr, message", [
    (lambda: X[n - 1, 0], "needs numeric indices"),
    (lambda: sp.Sum(X[sp.Symbol("i", integer=True), 0]**3,
                    (sp.Symbol("i", integer=True), 0, n - 1)), "write the matrix product"),
    (lambda: symdiff.sum(sp.MatPow(X, sp.S.Half)), "nonzero integer exponent"),
    (lambda: sp.exp(X), "symdiff.apply"),
])
def test_what_is_still_refused_says_what_to_write(expr, message):
    with pytest.raises(symdiff.SymdiffError, match=message):
        symdiff.lower(expr(), wrt=[X])


# -- verify names the typical matrix-calculus mistakes (issue 14) --------------------------------
# Each hand gradient is the textbook result with one mistake; the right one beside it is RIGHT.
inv_t = lambda m: inv(m).T  # noqa: E731


def _verdict(expr, wrt, args, grad, **options):
    report = symdiff.verify(expr, wrt, grad, args=args, **options)
    return report.ok, report.partials[0].diagnosis


@pytest.mark.parametrize("expr, args, wrong, right, named", [
    (lambda: sp.log(sp.Determinant(X)), [X], lambda x_: (inv(x_),), lambda x_: (inv_t(x_),),
     "X⁻¹ written where X⁻ᵀ belongs"),
    (lambda: sp.Trace(A * X.I * B), [X, A, B],
     lambda x_, a_, b_: (-inv(x_) @ a_.T @ b_.T @ inv(x_),),
     lambda x_, a_, b_: (-inv_t(x_) @ a_.T @ b_.T @ inv_t(x_),), "X⁻¹ written where X⁻ᵀ belongs"),
    (lambda: sp.Trace(A * X.T.I * B), [X, A, B],  # also X⁻ᵀ: -X⁻ᵀ B A X⁻ᵀ
     lambda x_, a_, b_: (-inv(x_) @ b_ @ a_ @ inv(x_),),
     lambda x_, a_, b_: (-inv_t(x_) @ b_ @ a_ @ inv_t(x_),), "X⁻¹ written where X⁻ᵀ belongs"),
    (lambda: sp.Trace(X.I * A * X * B), [X, A, B],  # X twice: which way round is not claimed
     lambda x_, a_, b_: (-inv(x_) @ b_.T @ x_.T @ a_.T @ inv(x_) + a_.T @ inv(x_) @ b_.T,),
     lambda x_, a_, b_: (-inv_t(x_) @ b_.T @ x_.T @ a_.T @ inv_t(x_) + a_.T @ inv_t(x_) @ b_.T,),
     "the inverse of X is transposed"),
    (lambda: x.T * A * x, [x, A], lambda x_, a_: (2 * a_ @ x_,),
     lambda x_, a_: ((a_ + a_.T) @ x_,), "misses the symmetrisation A + Aᵀ"),
    (lambda: x.T * A * x, [x, A], lambda x_, a_: (2 * a_.T @ x_,),
     lambda x_, a_: ((a_ + a_.T) @ x_,), "right only for a symmetric A"),
    (lambda: sp.Trace(X.T * A * X), [X, A], lambda x_, a_: (2 * a_ @ x_,),
     lambda x_, a_: ((a_ + a_.T) @ x_,), "misses the symmetrisation A + Aᵀ"),
    (lambda: sp.Determinant(X), [X], lambda x_: (inv_t(x_),),
     lambda x_: (det(x_) * inv_t(x_),), "missing the factor det(X)"),
])
def test_verify_names_the_matrix_calculus_mistake(expr, args, wrong, right, named):
    ok, text = _verdict(expr(), [args[0]], args, wrong)
    assert not ok and named in text, text
    ok, text = _verdict(expr(), [args[0]], args, right)
    assert ok, text


def test_a_missing_det_factor_in_a_backward_pair_says_it_is_the_log_det_gradient():
    def forward(x_):
        return det(x_), x_

    ok, text = _verdict(sp.Determinant(X), [X], [X], lambda dout, x_: (dout * inv_t(x_),),
                        forward=forward)
    assert not ok and "missing the factor det(X)" in text and "log det(X)" in text, text
    assert _verdict(sp.Determinant(X), [X], [X],
                    lambda dout, x_: (dout * det(x_) * inv_t(x_),), forward=forward)[0]


def test_a_transposed_gradient_is_not_called_a_missing_symmetrisation():
    ok, text = _verdict(sp.Trace(X * A), [X], [X, A], lambda x_, a_: (a_,))  # A where Aᵀ belongs
    assert not ok and "symmetrisation" not in text and "transpose" in text, text


def test_check_at_sizes_where_a_factored_matrix_is_singular_says_so_not_crashes():
    """R of 2 x 3: R'R (3 x 3, rank 2) is singular; float code still gives numbers, the
    50-digit reference divides by zero. The set is skipped with a note, never a crash or OK."""
    report = symdiff.check(symdiff.lower(sp.log(sp.Determinant(R.T * R)), wrt=[R]),
                           sizes={"n": 2, "m": 3})
    assert not report.ok and any("singular" in note for note in report.notes), str(report)
