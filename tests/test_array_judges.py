"""check and verify of matrix programs honour every argument, as they do for scalar programs.

Before issue 12 the array judge was a second system: ``check(matrix_prog, points=...)`` refused
points, domain and backends, ``verify`` judged float32 hand code with a float64 tolerance, and
given arrays were reported as "random arrays". Oracles here: the arrays the judges report they
used, hand code written out with NumPy, and a corrupted program the judges must refuse.
"""

import dataclasses

import numpy as np
import pytest
import sympy as sp

import symdiff
import symdiff.sampling

N, D, M = sp.symbols("N D M", integer=True, positive=True)
X = sp.MatrixSymbol("X", N, D)
W = sp.MatrixSymbol("W", D, M)
b = sp.MatrixSymbol("b", 1, M)
RNG = np.random.default_rng(11)


def affine():
    return X * W + symdiff.rows(b, N)


def affine_prog():
    return symdiff.lower(affine(), wrt=[X, W, b])


def forward(x, w, bias):
    return x @ w + bias, (x, w)


def backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def test_check_uses_the_given_arrays_and_their_sizes():
    x, w, bias = RNG.normal(size=(7, 2)), RNG.normal(size=(2, 3)), RNG.normal(size=(1, 3))
    report = symdiff.check(affine_prog(), points=[{"X": x, "W": w, "b": bias}], samples=1)
    assert report.ok, str(report)
    assert len(report.points) == 2
    np.testing.assert_array_equal(np.array(report.points[0]["X"]), x)
    assert "sizes of the arrays given" in report.oracle


def test_check_samples_sizes_and_domain_are_honoured():
    report = symdiff.check(affine_prog(), samples=3, sizes={"N": 7}, domain={"X": (2.0, 3.0)})
    assert report.ok and len(report.points) == 3
    for p in report.points:
        x = np.array(p["X"])
        assert x.shape == (7, 3)  # N given, D the default 3 (3, 2, 4 in name order D, M, N)
        assert np.all((x >= 2.0) & (x <= 3.0))


def test_check_backends_of_a_matrix_program():
    assert symdiff.check(affine_prog(), backends=()).backends == ()  # the 50-digit program alone
    assert symdiff.check(affine_prog(), backends="numpy").backends == ("numpy",)
    with pytest.raises(symdiff.ArgumentError, match="the math backend has no arrays"):
        symdiff.check(affine_prog(), backends=("math",))


@pytest.mark.parametrize("options, message", [
    ({"sizes": {"K": 3}}, "not a dimension"),
    ({"sizes": {"N": 0}}, "positive integer"),
    ({"domain": {"V": (0, 1)}}, "not a variable"),
    ({"domain": {"X": (1, 0)}}, "lo < hi"),
    ({"points": [{"X": np.zeros(3)}]}, "2-D array"),
])
def test_bad_options_for_a_matrix_check_are_named(options, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        symdiff.check(affine_prog(), **options)


def test_sizes_are_refused_for_a_scalar_formula():
    x = sp.Symbol("x")
    with pytest.raises(symdiff.ArgumentError, match="sizes= is for the arrays"):
        symdiff.check(symdiff.lower(x**2, wrt=[x]), sizes={"N": 3})


def test_check_finds_a_wrong_staged_program_at_50_digits():
    prog = affine_prog()
    steps = list(prog.backward)
    k = next(i for i, g in enumerate(steps) if g.name == "dX")
    steps[k] = dataclasses.replace(steps[k], local=3 * steps[k].local)
    broken = dataclasses.replace(prog, backward=tuple(steps), _cache={})
    report = symdiff.check(broken, backends=())
    assert not report.partials[0].ok and report.partials[1].ok
    assert report.partials[0].message.startswith("program at 50 digits")


def test_verify_samples_are_not_capped():
    report = symdiff.verify(affine(), [X, W, b], backward, forward=forward, samples=11)
    assert report.ok and len(report.points) == 11


def test_verify_reports_given_arrays_as_given():
    x = RNG.normal(size=(5, 2))
    report = symdiff.verify(affine(), [X, W, b], backward, forward=forward,
                            points=[{"X": x}], samples=2)
    assert report.ok and report.sampled == "sets of arrays (1 given, 2 random)"


def test_verify_draws_from_the_domain():
    seen = []

    def hand(dout, cache):
        seen.append(cache[0])
        return backward(dout, cache)

    report = symdiff.verify(affine(), [X, W, b], hand, forward=forward, samples=3,
                            domain={"X": (5.0, 6.0)})
    assert report.ok and len(seen) == 5  # 3 trials, the first again at dout / 2 and at dout
    assert all(np.all((x >= 5.0) & (x <= 6.0)) for x in seen)


def _float32(dout, cache):
    x, w = (a.astype(np.float32) for a in cache)
    d = dout.astype(np.float32)
    return d @ w.T, x.T @ d, d.sum(axis=0, keepdims=True)


def test_float32_hand_code_is_judged_as_float32():
    report = symdiff.verify(affine(), [X, W, b], _float32, forward=forward)
    assert report.ok, str(report)
    assert max(p.max_rel_error for p in report.partials) > 1e-9  # float32 noise was there


def test_float32_hand_code_with_a_bug_is_still_wrong():
    def hand(dout, cache):
        dx, dw, db = _float32(dout, cache)
        return dx, dw * np.float32(1.001), db

    report = symdiff.verify(affine(), [X, W, b], hand, forward=forward)
    assert [p.ok for p in report.partials] == [True, False, True]
    assert "off by a factor of 1.001" in report.partials[1].diagnosis


def test_float64_hand_code_keeps_the_float64_tolerance():
    def hand(dout, cache):  # a relative error of 1e-7 is a float32 effect, not float64's
        dx, dw, db = backward(dout, cache)
        return dx, dw * (1 + 1e-7), db

    report = symdiff.verify(affine(), [X, W, b], hand, forward=forward)
    assert not report.partials[1].ok and report.partials[0].ok


# -- diagnoses of array code (issue 13): each names the mistake it was written with -------------

S = sp.MatrixSymbol("S", N, D)
V = sp.MatrixSymbol("V", N, D)


def sig(x):
    return 1 / (1 + np.exp(-x))


def _diagnosis(expr, wrt, grad, **options):
    report = symdiff.verify(expr, wrt, grad, **options)
    assert not report.ok
    return report.partials[0].diagnosis


@pytest.mark.parametrize("backward, named", [
    (lambda dout, s: (dout * (1 - sig(s) ** 2),), "1 - out**2 (tanh's derivative) used for"),
    (lambda dout, s: (dout * s * (1 - s),), "taken at the input, S*(1 - S)"),
    (lambda dout, s: (sig(s) * (1 - sig(s)),), "does not scale with dout"),
])
def test_a_wrong_sigmoid_backward_is_named(backward, named):
    formula = symdiff.apply(symdiff.sigmoid, S)
    assert named in _diagnosis(formula, [S], backward, forward=lambda s: (sig(s), s))


def test_tanh_and_relu_confusions_are_named():
    t = symdiff.apply(sp.tanh, S)
    assert "a missing square" in _diagnosis(
        t, [S], lambda dout, s: (dout * (1 - np.tanh(s)),), forward=lambda s: (np.tanh(s), s))
    r = symdiff.apply(symdiff.relu, S)
    assert "the ReLU mask inverted" in _diagnosis(
        r, [S], lambda dout, s: (dout * (s < 0),), forward=lambda s: (np.maximum(s, 0), s))


def test_entries_wrong_on_one_side_are_named():
    loss = symdiff.sum(symdiff.hadamard(symdiff.apply(symdiff.relu, S), V))
    text = _diagnosis(loss, [S], lambda s, v: (v * (s > 0) + 3 * v * (s < 0),), args=[S, V])
    assert text.startswith("wrong exactly where S < 0")


def test_a_factor_of_two_dimensions_is_named():
    loss = symdiff.sum(symdiff.hadamard(S, S)) / (N * D)
    assert "a missing 1/(D*N)" in _diagnosis(loss, [S], lambda s: (2 * s,))


def test_batch_norm_without_its_mean_and_variance_paths_is_two_missing_fork_terms():
    bn = symdiff.layers._formula("batchnorm")

    def forward_bn(x, g, beta, e):
        inv = 1 / np.sqrt(x.var(0, keepdims=True) + e)
        xh = (x - x.mean(0, keepdims=True)) * inv
        return g * xh + beta, (xh, g, inv)

    def naive(dout, cache):  # the textbook mistake: dx as if mean and variance were constants
        xh, g, inv = cache
        return dout * g * inv, (dout * xh).sum(0, keepdims=True), dout.sum(0, keepdims=True)

    text = _diagnosis(bn.expr, bn.wrt, naive, args=bn.args, forward=forward_bn)
    assert text.startswith("missing two terms at forks"), text


# -- conventions and the forward's value (issue 13) ----------------------------------------------


def test_a_1d_bias_gradient_is_right_and_the_report_says_which_convention():
    def textbook(dout, cache):  # CS231n: db = np.sum(dout, axis=0), shape (M,)
        x, w = cache
        return dout @ w.T, x.T @ dout, np.sum(dout, axis=0)

    report = symdiff.verify(affine(), [X, W, b], textbook, forward=forward)
    assert report.ok, str(report)
    assert any("the 1-D bias convention, accepted" in n for n in report.notes)


def test_a_missing_batch_sum_names_both_conventions():
    def hand(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, dout

    text = symdiff.verify(affine(), [X, W, b], hand, forward=forward).partials[2].diagnosis
    assert "misses the sum over the batch axis" in text and ".sum(axis=0) for a 1-D bias" in text


def test_a_wrong_forward_value_is_wrong_even_with_a_right_backward():
    def wrong_forward(x, w, bias):
        return x @ w, (x, w)  # forgot the bias; the cache (and so the backward) is right

    report = symdiff.verify(affine(), [X, W, b], backward, forward=wrong_forward)
    assert not report.ok and all(p.ok for p in report.partials)
    assert report.value is not None and not report.value.ok
    assert "forward returns a wrong value" in str(report)
    assert symdiff.verify(affine(), [X, W, b], backward, forward=forward).value.ok


def test_another_valid_subgradient_at_a_kink_is_noted_not_wrong():
    x = np.array([[0.0, 1.5, -2.0], [0.0, -0.5, 0.25]])  # two entries exactly at relu's kink
    relu = symdiff.apply(symdiff.relu, S)

    def ge(dout, s):  # relu'(0) = 1: also a valid subgradient
        return (dout * (s >= 0),)

    options = {"forward": lambda s: (np.maximum(s, 0), s), "points": [{"S": x}], "samples": 2}
    report = symdiff.verify(relu, [S], ge, **options)
    assert report.ok, str(report)
    assert any("another valid subgradient" in n and "taken as 1" in n for n in report.notes)
    strict = symdiff.verify(relu, [S], ge, strict=True, **options)
    assert not strict.ok
    wrong = symdiff.verify(relu, [S], lambda dout, s: (dout * (s >= 0) * 2,), **options)
    assert not wrong.ok  # not a subgradient: wrong everywhere it is nonzero


def test_argmin_for_argmax_is_named():
    loss = symdiff.sum(symdiff.amax(S, 1))

    def hand(s):
        grad = np.zeros_like(s)
        grad[np.arange(len(s)), s.argmin(axis=1)] = 1.0  # argmin where argmax belongs
        return (grad,)

    assert "argmin where argmax belongs" in _diagnosis(loss, [S], hand)


# -- the difference oracle of large matrix formulas ----------------------------------------------


def _rnn(steps):
    H = sp.Symbol("H", integer=True, positive=True)
    xs = [sp.MatrixSymbol(f"X{t}", N, D) for t in range(steps)]
    Wx, Wh, h = sp.MatrixSymbol("Wx", D, H), sp.MatrixSymbol("Wh", H, H), sp.MatrixSymbol("h", N, H)
    for x in xs:
        h = symdiff.apply(sp.tanh, x * Wx + h * Wh)
    return symdiff.sum(h), [Wx, Wh], xs + [sp.MatrixSymbol("h", N, H), Wx, Wh]


def test_the_difference_oracle_agrees_with_sympy_diff(monkeypatch):
    from symdiff import array_reference
    from symdiff.sampling import check_sizes

    loss, wrt, args = _rnn(2)
    prog = symdiff.lower(loss, wrt=wrt, args=args)
    sizes = check_sizes(prog)
    exact = array_reference.ExplicitReference(prog, sizes)
    monkeypatch.setattr(array_reference, "DIFF_MAX_TREE", 0)
    differenced = array_reference.ExplicitReference(prog, sizes)
    assert exact.oracle.startswith("sympy.diff") and differenced.oracle.startswith("central")
    values = dict(zip(prog.args, symdiff.sampling.random_arguments(
        prog, sizes, np.random.default_rng(4))))
    for a, d in zip(exact.gradient(values, 1.0), differenced.gradient(values, 1.0)):
        np.testing.assert_allclose(d, a, rtol=1e-14, atol=1e-15)


def test_a_large_recurrence_is_checked_by_differences_and_a_bug_is_caught(monkeypatch):
    from symdiff import array_reference

    monkeypatch.setattr(array_reference, "DIFF_MAX_TREE", 0)
    loss, wrt, args = _rnn(3)
    prog = symdiff.lower(loss, wrt=wrt, args=args)
    report = symdiff.check(prog)
    assert report.ok and report.oracle.startswith("central differences of the explicit"), \
        str(report)
    steps = list(prog.backward)
    k = max(i for i, g in enumerate(steps) if g.name == "dWh")
    steps[k] = dataclasses.replace(steps[k], local=2 * steps[k].local)
    assert not symdiff.check(dataclasses.replace(prog, backward=tuple(steps), _cache={})).ok


def _near_singular(rng, smallest=1e-12):
    u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    return u @ np.diag([1, 1e-4, 1e-8, smallest]) @ v.T


def test_an_ill_conditioned_point_judges_hand_code_by_the_float_noise_there():
    """d sum(A^-1 * B)/dA = -A^-T B A^-T at cond(A) = 1e12: symdiff's own float code and a
    hand version by solves differ by 2e-6 of the largest entry there, both within float noise
    of the 50-digit program (it was a false alarm: 'close but not right')."""
    n = sp.Symbol("n", integer=True, positive=True)
    a, bb = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, n)
    formula = symdiff.sum(symdiff.hadamard(a.I, bb))
    rng = np.random.default_rng(0)
    points = [{"A": _near_singular(rng)} for _ in range(3)]

    def by_solves(x, y):
        return (-np.linalg.solve(x, np.linalg.solve(x.T, y).T).T,)

    report = symdiff.verify(formula, [a], by_solves, args=[a, bb], points=points)
    assert report.ok and any("ill-conditioned" in n for n in report.notes), str(report)
    wrong = symdiff.verify(formula, [a], lambda x, y: (1.001 * by_solves(x, y)[0],),
                           args=[a, bb], points=points)
    assert not wrong.ok


def test_a_tie_given_to_its_first_maximum_is_another_valid_subgradient():
    x = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, -1.0]])  # a tie in every row
    loss = symdiff.sum(symdiff.amax(S, 1))

    def argmax_code(s):  # all to np.argmax's (first) maximum
        grad = np.zeros_like(s)
        grad[np.arange(len(s)), s.argmax(axis=1)] = 1.0
        return (grad,)

    report = symdiff.verify(loss, [S], argmax_code, points=[{"S": x}], samples=2)
    assert report.ok and any("first of the tied entries" in n for n in report.notes), str(report)
    assert not symdiff.verify(loss, [S], argmax_code, points=[{"S": x}], samples=2,
                              strict=True).ok


def test_wrt_in_another_order_than_the_arguments():
    """wrt=[W, X] with args=[X, W, b]: the partials come in wrt order. check compared dW with
    the reference's dX (a false alarm), and the 1-D bias convention read the wrong partial."""
    prog = symdiff.lower(affine(), wrt=[W, X], args=[X, W, b])
    assert symdiff.check(prog).ok
    right = symdiff.verify(affine(), [b, W], lambda dout, c: (dout.sum(0), c[0].T @ dout),
                           args=[X, W, b], forward=forward)
    assert right.ok, str(right)
    wrong = symdiff.verify(affine(), [b, W], lambda dout, c: (dout.sum(0), c[0].T @ dout * 2),
                           args=[X, W, b], forward=forward)
    assert [p.ok for p in wrong.partials] == [True, False]
    assert [p.name for p in wrong.partials] == ["db", "dW"]
