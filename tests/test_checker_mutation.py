"""Mutation of the checker: a wrong local-derivative rule, injected one at a time, is caught.

Each mutant replaces one entry of ``symdiff.rules.RULES`` (textbook mistakes: sin -> +sin,
exp -> 2*out, a power off by one, a sign flip, a swapped Mul partner, a dropped Add coefficient,
...). The program is lowered after patching (the mutant is counted when lowering calls it, so a
formula that never reaches the rule is a corpus gap, not a kill), and ``check`` must report the
affected partial not ok. Every registered rule has at least one mutant; all must be killed.
"""

import pytest
import sympy as sp

import symdiff
from symdiff.functions import expm1, hypot, log1p, logsumexp, relu, sigmoid, softplus
from symdiff.rules import RULES

x, y = sp.symbols("x y")
S = sp.S


def mutants():
    """(name, rule class, mutant rule, formula, wrt): one or more per registered rule."""
    add_keep = RULES[sp.Add]
    mul_keep = RULES[sp.Mul]
    pow_keep = RULES[sp.Pow]
    ext_max, ext_min = RULES[sp.Max], RULES[sp.Min]

    def pow_off_by_one(out, base, exp):
        if exp.is_Number:
            return exp * base ** exp, None  # exp - 1 forgotten
        return pow_keep(out, base, exp)

    def pow_general(out, base, exp):  # the general power x**3: exponent off by one
        if exp.is_Number and exp not in (-1, S.Half, -S.Half, 2):
            return exp * base ** (exp - 2), None
        return pow_keep(out, base, exp)

    def pow_variable_exponent(out, base, exp):  # d/dt b**t without the log
        dbase, dexp = pow_keep(out, base, exp)
        return dbase, (None if dexp is None else out)

    def branch(value, wrong):  # one branch of the Pow rule replaced
        def rule(out, base, exp):
            if exp == value:
                return wrong(out, base), None
            return pow_keep(out, base, exp)
        return rule

    def add_dropped(out, *terms):  # coefficient dropped: d(3*a + b)/da = 1
        return tuple(None if t.is_Number else S.One for t in terms)

    def mul_swapped(out, *factors):  # each factor gets its own value instead of its partner's
        parts = mul_keep(out, *factors)
        return tuple(None if p is None else f for p, f in zip(parts, factors))

    def max_swapped(out, a, b):
        return ext_max(out, b, a)

    def min_swapped(out, a, b):
        return ext_min(out, b, a)

    def one(out, a):  # a step function's derivative 1 instead of 0
        return (S.One,)

    return [
        ("add coefficient dropped", sp.Add, add_dropped, 3 * x + y, [x, y]),
        ("add sign flip", sp.Add, lambda out, *t: tuple(None if p is None else -p
                                                        for p in add_keep(out, *t)),
         x - 2 * y, [x, y]),
        ("mul swapped partner", sp.Mul, mul_swapped, x * y * sp.sin(x), [x, y]),
        ("mul sign flip", sp.Mul, lambda out, *f: tuple(None if p is None else -p
                                                        for p in mul_keep(out, *f)),
         x * y, [x, y]),
        ("pow off by one", sp.Pow, pow_off_by_one, x**3 + y**2, [x, y]),
        ("pow general exponent", sp.Pow, pow_general, x**3 * y, [x, y]),
        ("pow 1/x sign", sp.Pow, branch(-1, lambda out, b: out**2), 1 / x, [x]),
        ("pow sqrt factor", sp.Pow, branch(S.Half, lambda out, b: 1 / out), sp.sqrt(x), [x]),
        ("pow 1/sqrt sign", sp.Pow, branch(-S.Half, lambda out, b: out**3 / 2), 1 / sp.sqrt(x),
         [x]),
        ("pow square factor", sp.Pow, branch(2, lambda out, b: b), x**2, [x]),
        ("pow variable exponent log", sp.Pow, pow_variable_exponent, 2**x, [x]),
        ("exp -> 2*out", sp.exp, lambda out, a: (2 * out,), sp.exp(x), [x]),
        ("log -> 1/a**2", sp.log, lambda out, a: (1 / a**2,), sp.log(x), [x]),
        ("sin -> +sin", sp.sin, lambda out, a: (sp.sin(a),), sp.sin(x), [x]),
        ("cos -> +sin", sp.cos, lambda out, a: (sp.sin(a),), sp.cos(x), [x]),
        ("tan -> 1 - out**2", sp.tan, lambda out, a: (1 - out**2,), sp.tan(x), [x]),
        ("cot sign", sp.cot, lambda out, a: (1 + out**2,), sp.cot(x), [x]),
        ("sec -> out*cot", sp.sec, lambda out, a: (out * sp.cot(a),), sp.sec(x), [x]),
        ("csc sign", sp.csc, lambda out, a: (out * sp.cot(a),), sp.csc(x), [x]),
        ("asin sign", sp.asin, lambda out, a: (-1 / sp.sqrt(1 - a**2),), sp.asin(x), [x]),
        ("acos sign", sp.acos, lambda out, a: (1 / sp.sqrt(1 - a**2),), sp.acos(x), [x]),
        ("atan -> 1/(1 - a**2)", sp.atan, lambda out, a: (1 / (1 - a**2),), sp.atan(x), [x]),
        ("acot sign", sp.acot, lambda out, a: (1 / (1 + a**2),), sp.acot(x), [x]),
        ("asec square dropped", sp.asec, lambda out, a: (1 / (a * sp.sqrt(1 - 1 / a**2)),),
         sp.asec(x), [x]),
        ("acsc sign", sp.acsc, lambda out, a: (1 / (a**2 * sp.sqrt(1 - 1 / a**2)),),
         sp.acsc(x), [x]),
        ("sinh -> sinh", sp.sinh, lambda out, a: (sp.sinh(a),), sp.sinh(x), [x]),
        ("cosh -> cosh", sp.cosh, lambda out, a: (sp.cosh(a),), sp.cosh(x), [x]),
        ("tanh -> 1 + out**2", sp.tanh, lambda out, a: (1 + out**2,), sp.tanh(x), [x]),
        ("coth -> 1 + out**2", sp.coth, lambda out, a: (1 + out**2,), sp.coth(x), [x]),
        ("sech sign", sp.sech, lambda out, a: (out * sp.tanh(a),), sp.sech(x), [x]),
        ("csch sign", sp.csch, lambda out, a: (out * sp.coth(a),), sp.csch(x), [x]),
        ("asinh sign inside", sp.asinh, lambda out, a: (1 / sp.sqrt(a**2 - 1),),
         sp.asinh(x), [x]),
        ("acosh sign inside", sp.acosh, lambda out, a: (1 / sp.sqrt(a**2 + 1),),
         sp.acosh(x), [x]),
        ("atanh sign inside", sp.atanh, lambda out, a: (1 / (1 + a**2),), sp.atanh(x), [x]),
        ("acoth sign inside", sp.acoth, lambda out, a: (1 / (1 + a**2),), sp.acoth(x), [x]),
        ("asech sign", sp.asech, lambda out, a: (1 / (a * sp.sqrt(1 - a**2)),),
         sp.asech(x), [x]),
        ("acsch sign", sp.acsch, lambda out, a: (1 / (a**2 * sp.sqrt(1 + 1 / a**2)),),
         sp.acsch(x), [x]),
        ("erf factor 2 lost", sp.erf, lambda out, a: (sp.exp(-(a**2)) / sp.sqrt(sp.pi),),
         sp.erf(x), [x]),
        ("erfc sign", sp.erfc, lambda out, a: (2 * sp.exp(-(a**2)) / sp.sqrt(sp.pi),),
         sp.erfc(x), [x]),
        ("atan2 swapped", sp.atan2, lambda out, b, a: (-b / (a**2 + b**2), a / (a**2 + b**2)),
         sp.atan2(y, x), [x, y]),
        ("sigmoid -> out", sigmoid, lambda out, a: (out,), sigmoid(x), [x]),
        ("relu -> 1", relu, one, relu(x), [x]),
        ("softplus -> out", softplus, lambda out, a: (out,), softplus(x), [x]),
        ("abs -> 1", sp.Abs, one, sp.Abs(x), [x]),
        ("sign -> 1", sp.sign, one, sp.sign(x) * y + x, [x, y]),
        ("floor -> 1", sp.floor, one, sp.floor(x) + y, [x, y]),
        ("ceiling -> 1", sp.ceiling, one, sp.ceiling(x) + y, [x, y]),
        ("heaviside -> 1", sp.Heaviside, lambda out, a, *h: (S.One,) + (None,) * len(h),
         sp.Heaviside(x) + y, [x, y]),
        ("hypot -> a/out**2", hypot, lambda out, *a: tuple(t / out**2 for t in a),
         sp.sqrt(x**2 + y**2), [x, y]),
        ("logsumexp -> exp(a)", logsumexp, lambda out, *a: tuple(sp.exp(t) for t in a),
         sp.log(sp.exp(x) + sp.exp(y)), [x, y]),
        ("expm1 -> out", expm1, lambda out, a: (out,), sp.exp(x) - 1, [x]),
        ("log1p -> 1/a", log1p, lambda out, a: (1 / a,), sp.log(1 + x), [x]),
        ("sinc sign", sp.sinc, lambda out, a: ((out - sp.cos(a)) / a,), sp.sinc(x), [x]),
        ("max swapped", sp.Max, max_swapped, sp.Max(x, y), [x, y]),
        ("min swapped", sp.Min, min_swapped, sp.Min(x, y), [x, y]),
    ]


MUTANTS = mutants()
KILLS: list[str] = []


def test_every_registered_rule_has_a_mutant():
    assert set(RULES) <= {m[1] for m in MUTANTS}


@pytest.mark.parametrize("name, cls, mutant, formula, wrt", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_check_kills_the_mutant(monkeypatch, name, cls, mutant, formula, wrt):
    calls = []

    def counted(*args):
        calls.append(1)
        return mutant(*args)

    monkeypatch.setitem(RULES, cls, counted)
    prog = symdiff.lower(formula, wrt=wrt)  # after patching: the mutant builds the backward
    assert calls, f"corpus gap: lowering {formula} never used the {cls.__name__} rule"
    report = symdiff.check(prog, samples=8, backends=("math",), prove=False)
    assert not report.ok, f"mutant {name!r} survived:\n{report}"
    assert any(not p.ok and p.worst_point for p in report.partials), str(report)
    KILLS.append(name)


def test_mutation_score_is_recorded(capsys):
    # runs after the parametrised tests in file order; alone it checks nothing was killed twice
    assert len(KILLS) == len(set(KILLS))
    if KILLS:
        with capsys.disabled():
            print(f"\nchecker mutation: {len(KILLS)} of {len(MUTANTS)} mutants killed, "
                  f"{len(RULES)} registered rules")
