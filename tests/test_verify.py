"""verify(): argument handling, report text, and the verify command (the corpus of hand
gradients and their wrong variants is in test_verify_corpus.py)."""

import math

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff import cli

x, y = sp.symbols("x y")


def test_report_reads_well_for_a_right_and_a_wrong_gradient():
    right = symdiff.verify(x * sp.exp(y), [x, y], lambda x, y: (math.exp(y), x * math.exp(y)))
    assert right.ok and bool(right) and "verdict: RIGHT" in str(right)
    assert all(p.max_rel_error < 1e-13 and p.diagnosis == "" for p in right.partials)
    wrong = symdiff.verify(x * sp.exp(y), [x, y], lambda x, y: (math.exp(y), math.exp(y)))
    text = str(wrong)
    assert not wrong.ok and "verdict: WRONG in dy" in text and "worst at" in text
    assert wrong.partials[1].worst_point.keys() == {"x", "y"}


def test_value_and_grad_results_and_numpy_numbers_are_accepted():
    def value_and_grad(x):
        return np.float64(x**3), (np.float64(3 * x**2),)

    assert symdiff.verify(x**3, [x], value_and_grad).ok
    assert symdiff.verify(x**3, [x], lambda x: 3 * x**2).ok  # one partial, not a tuple


def test_extra_arguments_follow_the_args_order():
    a = sp.Symbol("a")
    # args default: wrt (x), then the other symbols by name (a)
    assert symdiff.verify(a * x**2, [x], lambda x, a: (2 * a * x,)).ok
    assert symdiff.verify(a * x**2, [x], lambda a, x: (2 * a * x,), args=[a, x]).ok


def test_user_points_come_first():
    report = symdiff.verify(sp.log(x), [x], lambda x: (1 / x,), points=[{x: 0.25}], samples=3)
    assert report.points[0] == {"x": 0.25} and len(report.points) == 4


@pytest.mark.parametrize("grad,message", [
    ("y*cos(x)", "callable, or a list"), (["1", "2", "3"], "3 expressions for 2"),
    (["z", "1"], "uses z"), ([[1], "1"], "not an expression"),
])
def test_bad_derivations_are_argument_errors(grad, message):
    with pytest.raises(symdiff.ArgumentError, match=message):
        symdiff.verify(x * y, [x, y], grad)


def test_forward_needs_a_callable_pair():
    with pytest.raises(symdiff.ArgumentError, match="forward"):
        symdiff.verify(x * y, [x, y], ["y", "x"], forward=lambda x, y: (x * y, None))


def test_a_wrong_derivation_is_evaluated_exactly_and_diagnosed():
    report = symdiff.verify(sp.sin(x) * y, [x, y], ["2*y*cos(x)", "sin(x)"])
    assert [p.ok for p in report.partials] == [False, True]
    assert "factor of 2" in report.partials[0].diagnosis
    assert report.partials[1].proved  # the right partial is proved on its own


def test_a_derivation_with_a_non_constant_mistake_is_described_symbolically():
    ratio = symdiff.verify(x * sp.sin(x * y), [x, y], ["sin(x*y) + x*y*cos(x*y)", "x*cos(x*y)"])
    assert "factor of 1/x" in ratio.partials[1].diagnosis
    extra = symdiff.verify(x * sp.sin(y), [x, y], ["sin(y) + y", "x*cos(y)"])
    assert "an extra term: hand = exact + (y)" in extra.partials[0].diagnosis


def test_assert_gradient_for_pytest():
    assert symdiff.assert_gradient(x * y, [x, y], lambda x, y: (y, x)).ok
    with pytest.raises(AssertionError, match="sign flipped"):
        symdiff.assert_gradient(x * y, [x, y], lambda x, y: (y, -x))


def write(tmp_path, text):
    path = tmp_path / "grads.py"
    path.write_text(text)
    return str(path)


def test_verify_command(tmp_path, capsys):
    path = write(tmp_path, "import math\n"
                 "def good(x, y):\n    return y * math.cos(x * y), x * math.cos(x * y)\n"
                 "def bad(x, y):\n    return x * math.cos(x * y), y * math.cos(x * y)\n"
                 "def forward(x, y):\n    return math.sin(x * y), (x, y)\n"
                 "def backward(dout, cache):\n    x, y = cache\n"
                 "    return dout * y * math.cos(x * y), dout * x * math.cos(x * y)\n")
    assert cli.main(["verify", "sin(x*y)", "--grad", f"{path}:good"]) == 0
    assert cli.main(["verify", "sin(x*y)", "--grad", f"{path}:bad"]) == 1
    assert "swapped with dy" in capsys.readouterr().out
    assert cli.main(["verify", "sin(x*y)", "--grad", f"{path}:backward",
                     "--forward", f"{path}:forward"]) == 0


@pytest.mark.parametrize("spec,fragment", [
    ("missing.py:f", "no such file"), ("{path}:nothere", "no function 'nothere'"),
    ("{path}", "FILE.py:FUNCTION"), ("{broken}:f", "failed to load"),
])
def test_verify_command_bad_input_exits_2(tmp_path, capsys, spec, fragment):
    path = write(tmp_path, "def f(x):\n    return (1.0,)\n")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    status = cli.main(["verify", "x", "--grad", spec.format(path=path, broken=broken)])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and err.count("\n") == 1


def test_backward_that_ignores_dout_is_caught():
    def forward(x, y):
        return x * y, (x, y)

    def backward(dout, cache):  # forgets to multiply by the upstream gradient
        x, y = cache
        return y, x

    report = symdiff.verify(x * y, [x, y], backward, forward=forward)
    assert not report.ok and "does not scale with dout" in report.partials[0].diagnosis
    assert symdiff.verify(x * y, [x, y], lambda d, c: (d * c[1], d * c[0]), forward=forward).ok


def test_swapped_partials_of_very_different_sizes():
    a, b = sp.symbols("a b")
    lse = sp.log(sp.exp(a) + sp.exp(b))

    def swapped(a, b):
        m = max(a, b)
        ea, eb = math.exp(a - m), math.exp(b - m)
        return eb / (ea + eb), ea / (ea + eb)

    report = symdiff.verify(lse, [a, b], swapped, points=[{a: 1.5, b: 49.0}], samples=10)
    assert "swapped with db" in report.partials[0].diagnosis


# -- the sampling domain and hand code that raises at some points ---------------------------------

def _textbook_sigmoid(u, v):
    s = 1 / (1 + math.exp(-u))  # math.exp overflows for u < -709
    return s * (1 - s) * v, s


def _textbook_sigmoid_wrong_dv(u, v):
    s = 1 / (1 + math.exp(-u))
    return s * (1 - s) * v, 2 * s


SIGMOID_UV = "sigmoid(u)*v"
WIDE = {"u": (-800, 800)}


def test_hand_code_raising_is_reported_per_point_and_not_as_wrong_partials():
    report = symdiff.verify(SIGMOID_UV, ["u", "v"], _textbook_sigmoid, domain=WIDE, seed=3)
    overflowed = [p for p in report.points if p["u"] < -709]
    assert overflowed and len(report.raised) == len(overflowed), str(report)
    assert all("OverflowError" in why for _, why in report.raised)
    assert all(p.ok for p in report.partials), str(report)  # right wherever it ran
    assert not report.ok and report.verdict().startswith("RAISED")
    assert f"OverflowError: math range error at {len(overflowed)} of 40 points, e.g. u=" \
        in str(report)


def test_a_wrong_partial_is_not_hidden_by_hand_code_raising_elsewhere():
    report = symdiff.verify(SIGMOID_UV, ["u", "v"], _textbook_sigmoid_wrong_dv, domain=WIDE,
                            seed=3)
    by_name = {p.name: p for p in report.partials}
    assert by_name["du"].ok and not by_name["dv"].ok
    assert "factor of 2" in by_name["dv"].diagnosis
    assert report.raised and "WRONG in dv" in report.verdict()


def test_a_domain_where_the_hand_code_runs_gives_a_clean_verdict():
    report = symdiff.verify(SIGMOID_UV, ["u", "v"], _textbook_sigmoid, domain={"u": (-5, 5)})
    assert report.ok and not report.raised and all(-5 <= p["u"] <= 5 for p in report.points)


def test_hand_code_raising_everywhere_fails_every_partial():
    def always(u, v):
        raise ZeroDivisionError("nope")

    report = symdiff.verify(SIGMOID_UV, ["u", "v"], always, samples=5)
    assert not report.ok and len(report.raised) == 5
    assert all(not p.ok and "at every point" in p.diagnosis for p in report.partials)


# -- derivations with float constants --------------------------------------------------------------

def test_sympy_diff_of_a_float_formula_is_right_but_not_claimed_proved():
    # SymPy folds 3*0.1 to 0.30000000000000004 at 53 bits; the reference holds 3 times the
    # double 0.1 exactly; the derivation is right up to its constants' rounding
    x, y = sp.symbols("x y")
    e = 0.1 * x**3 - 2.5 * x * y + 3.7 * y**2 - 0.01
    report = symdiff.verify(e, [x, y], [sp.diff(e, x), sp.diff(e, y)])
    assert report.ok, str(report)
    assert not report.partials[0].proved  # 0.30000000000000004 is not exactly 3 * 0.1
    ackley = -20 * sp.exp(-0.2 * sp.sqrt(0.5 * (x**2 + y**2)))
    assert symdiff.verify(ackley, [x, y], [sp.diff(ackley, v) for v in (x, y)]).ok


def test_a_decimal_derivation_is_right_and_a_near_miss_is_still_wrong():
    assert symdiff.verify("0.1*x**3", ["x"], ["0.3*x**2"]).ok
    report = symdiff.verify("0.1*x**3", ["x"], ["0.3000001*x**2"])
    assert not report.ok and "factor" in report.partials[0].diagnosis


def test_a_factor_near_one_is_printed_with_the_digits_that_show_it():
    report = symdiff.verify("0.1*x**3", ["x"], ["0.3000001*x**2"])
    assert "factor of 1.0000003" in report.partials[0].diagnosis, str(report)


def test_points_where_the_50_digit_program_is_not_finite_are_skipped_with_a_note():
    # 1 - tanh(x)**2 is 0 at 50 digits for |x| > 58: no tolerance can be built there
    x = sp.Symbol("x")
    e = sp.asin(sp.tanh(x))
    report = symdiff.verify(e, [x], [sp.diff(e, x)], points=[{x: -61.8}, {x: 0.5}], samples=3)
    assert report.ok and "1 sampled points skipped" in str(report), str(report)
    wrong = symdiff.verify(e, [x], [2 * sp.diff(e, x)], points=[{x: -61.8}], samples=3)
    assert not wrong.ok


def test_hand_code_that_loses_digits_is_called_inaccurate_not_patternless():
    def hand(x):  # d/dx log(1 + exp(3x)) with the cancellation of 1 + tiny in floats
        return 3 * math.exp(3 * x) / (1 + math.exp(3 * x)) * (1 + 1e-6 * (x < -9))

    report = symdiff.verify("log(1 + exp(3*x))", ["x"], hand, points=[{"x": -10.0}], samples=4)
    assert not report.ok and report.partials[0].diagnosis.startswith("inaccurate in floats")


def test_a_wrong_forward_value_is_wrong_for_a_scalar_formula_too():
    x, y = sp.symbols("x y")

    def forward(x, y):
        return x * y, (x, y)  # the formula is x*y + 1

    def backward(dout, cache):
        x, y = cache
        return dout * y, dout * x

    report = symdiff.verify(x * y + 1, [x, y], backward, forward=forward)
    assert not report.ok and all(p.ok for p in report.partials)
    assert "forward returns a wrong value" in str(report)
    right = symdiff.verify(x * y + 1, [x, y], backward,
                           forward=lambda x, y: (x * y + 1, (x, y)))
    assert right.ok and right.value.ok


def test_another_valid_subgradient_at_a_kink_is_noted_for_a_scalar_formula():
    x, y = sp.symbols("x y")
    expr = symdiff.relu(x) * y

    def hand(x, y):  # relu'(0) = 1
        return (y * (x >= 0), max(x, 0.0))

    report = symdiff.verify(expr, [x, y], hand, points=[{x: 0.0, y: 2.0}], samples=5)
    assert report.ok, str(report)
    assert any("another valid subgradient" in n for n in report.notes)
    assert not symdiff.verify(expr, [x, y], hand, points=[{x: 0.0, y: 2.0}], samples=5,
                              strict=True).ok
