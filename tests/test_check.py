"""check(): proves correct programs, catches broken ones and names the wrong partial."""

import dataclasses
import importlib

import pytest
import sympy as sp

import symdiff

reference_module = importlib.import_module("symdiff.reference")


def broken(prog, index, **change):
    """prog with backward step ``index`` changed (a deliberately wrong program)."""
    backward = list(prog.backward)
    backward[index] = dataclasses.replace(backward[index], **change)
    return dataclasses.replace(prog, backward=tuple(backward), _cache={})


def test_staged_example_is_proved_and_numerically_exact(staged):
    expr, x, y = staged
    report = symdiff.check(symdiff.lower(expr, wrt=[x, y]))
    assert report.ok and bool(report)
    assert [p.name for p in report.partials] == ["dx", "dy"]
    assert all(p.proved for p in report.partials)
    assert all(p.max_rel_error < 1e-14 for p in report.partials)
    assert len(report.points) == 20 and "verdict: OK" in str(report)


def test_wrong_local_derivative_is_caught_and_named(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    k = next(i for i, g in enumerate(prog.backward) if g.name == "dsigy")
    report = symdiff.check(broken(prog, k, local=2 * prog.backward[k].local + 1))
    assert not report.ok
    bad = {p.name: p for p in report.partials}
    assert not bad["dy"].ok and bad["dx"].ok  # dsigy feeds only dy
    assert bad["dy"].worst_point and "reference" in bad["dy"].message
    assert "verdict: MISMATCH in dy" in str(report)


def test_overwrite_instead_of_accumulate_is_caught(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    k = max(i for i, g in enumerate(prog.backward) if g.name == "dx" and g.accumulate)
    wrong = broken(prog, k, accumulate=False)  # the classic `dx = ...` for `dx += ...`
    report = symdiff.check(wrong)
    assert [p.name for p in report.partials if not p.ok] == ["dx"]


def test_user_points_are_checked_first():
    x = sp.Symbol("x")
    report = symdiff.check(symdiff.lower(sp.log(x) * x, wrt=[x]), points=[{x: 2.0}, {"x": 0.5}])
    assert report.points[:2] == [{"x": 2.0}, {"x": 0.5}]


def test_points_outside_the_domain_are_skipped():
    x = sp.Symbol("x")
    report = symdiff.check(symdiff.lower(sp.sqrt(x), wrt=[x]), points=[{x: -1.0}], samples=3)
    assert report.ok and all(p["x"] > 0 for p in report.points)
    assert "1 given point(s) skipped" in str(report) and "x=-1" in str(report)  # never silently


def test_formula_without_a_domain_is_not_ok():
    x = sp.Symbol("x")
    report = symdiff.check(symdiff.lower(sp.sqrt(-x**2 - 1), wrt=[x]), samples=2)
    assert not report.ok and "no point" in str(report)


def test_bad_points_are_argument_errors():
    x = sp.Symbol("x")
    prog = symdiff.lower(x**2, wrt=[x])
    for bad in [[{"z": 1.0}], [{}], [3.0], [{"x": "abc"}]]:
        with pytest.raises(symdiff.ArgumentError):
            symdiff.check(prog, points=bad)


def test_large_formula_uses_the_finite_difference_reference(monkeypatch):
    x, y = sp.symbols("x y")
    monkeypatch.setattr(reference_module, "DIFF_MAX_TREE", 5)
    report = symdiff.check(symdiff.lower(sp.sin(x * y) * sp.exp(x) + y**3, wrt=[x, y]))
    assert report.ok and "central difference" in report.oracle


def test_finite_difference_reference_catches_a_wrong_program(monkeypatch, staged):
    expr, x, y = staged
    monkeypatch.setattr(reference_module, "DIFF_MAX_TREE", 5)
    prog = symdiff.lower(expr, wrt=[x, y])
    k = next(i for i, g in enumerate(prog.backward) if g.name == "dsigx")
    assert not symdiff.check(broken(prog, k, local=sp.Integer(2))).ok


def test_saturated_sigmoid_is_no_false_alarm():
    x = sp.Symbol("x")
    prog = symdiff.lower(1 / (1 + sp.exp(-x)), wrt=[x])
    assert symdiff.check(prog, points=[{x: 40.0}, {x: 120.0}, {x: -700.0}, {x: 1000.0}]).ok


@pytest.mark.parametrize("backends", [("math",), ("numpy",), ()])
def test_backends_can_be_chosen(staged, backends):
    expr, x, y = staged
    report = symdiff.check(symdiff.lower(expr, wrt=[x, y]), backends=backends, samples=4)
    assert report.ok and report.backends == backends


def test_wrong_emitted_text_is_caught(monkeypatch, staged):
    """The float comparison tests the generated code itself, not only the program."""
    from symdiff import emit

    expr, x, y = staged
    original = emit.module_source

    def corrupt(prog, backend="math", name=None):
        return original(prog, backend, name).replace("dy += dsigy", "dy -= dsigy")

    monkeypatch.setattr(emit, "module_source", corrupt)
    report = symdiff.check(symdiff.lower(expr, wrt=[x, y]), backends=("math",))
    assert not report.ok and "math code" in str(report)


def many_variables(n=12):
    xs = sp.symbols(f"x0:{n}")
    return xs, sum(sp.sin(xs[i] * xs[i + 1]) + xs[i] ** 2 for i in range(n - 1))


def test_many_variables_sample_partials_and_check_all_along_directions(monkeypatch):
    monkeypatch.setattr(reference_module, "DIFF_MAX_TREE", 5)  # force the difference oracle
    xs, expr = many_variables()
    report = symdiff.check(symdiff.lower(expr, wrt=list(xs)))
    assert report.ok and len(report.points) == 5  # fewer points for a large formula
    sampled = [p for p in report.partials if not p.along_directions]
    assert len(sampled) == reference_module.FD_ALL and "random directions" in report.notes[0]


def test_a_wrong_partial_outside_the_sample_is_found_by_bisection(monkeypatch):
    monkeypatch.setattr(reference_module, "DIFF_MAX_TREE", 5)
    xs, expr = many_variables()
    prog = symdiff.lower(expr, wrt=list(xs))
    sampled = reference_module.Reference(prog).sampled_partials(0)
    victim = next(k for k in range(len(xs)) if k not in sampled)
    name = prog.grads[victim]
    k = max(i for i, g in enumerate(prog.backward) if g.name == name)
    report = symdiff.check(broken(prog, k, local=3 * prog.backward[k].local))
    wrong = [p.name for p in report.partials if not p.ok]
    assert wrong == [name] and "isolated by bisection" in report.partials[victim].message


def test_long_sums_compile_and_read():
    xs = sp.symbols("x0:3000")
    prog = symdiff.lower(sp.Add(*(x**2 for x in xs)), wrt=list(xs[:2]))  # one Add: sum() is n**2
    src = prog.source("math")
    assert "math.fsum((" in src and max(len(line) for line in src.splitlines()) <= 100
    value, grads = prog.compile("math").value_and_grad(*([1.0] * 3000))
    assert value == 3000.0 and grads == (2.0, 2.0)
    value, _ = prog.compile("numpy").value_and_grad(*([1.0] * 3000))
    assert value == 3000.0


def test_points_beyond_the_float_range_are_outside_the_domain():
    # exp(exp(x)) is finite in mpmath at x = 10 but overflows every float: no false alarm there
    x = sp.Symbol("x")
    report = symdiff.check(symdiff.lower(sp.exp(sp.exp(x)), wrt=[x]), samples=40)
    assert report.ok, str(report)
    assert all(float(p["x"]) < 6.6 for p in report.points)  # exp(exp(6.6)) > 1e300
