"""Every row of the op table (ops.py), driven by the table: parse, print, evaluate, differentiate.

For each row: each string spelling parses to the op (the same value at a few points); the op
prints in both backends, the way its row says; the compiled value and gradient of the op agree
with SymPy (``evalf`` at 500 digits of the plain SymPy form and of its ``sympy.diff``); the
row's 50-digit implementation agrees with SymPy too, and a total op is finite everywhere; the row's
local partials agree with ``sympy.diff``. A new row is tested by adding it (and, where its domain
is not the whole line, a line in ``POINTS``).
"""

import mpmath
import pytest
import sympy as sp

from symdiff import lower
from symdiff.backends import BACKENDS, BUNDLED
from symdiff.errors import UnsupportedFunctionError
from symdiff.functions import elu, gelu, mish, selu, to_elementary, xlogy
from symdiff.mpeval import values_at
from symdiff.ops import OPS, How
from symdiff.parse import parse
from symdiff.printers import make_printer, print_expr
from symdiff.rules import RULES, derivative
from symdiff.runtime import has_helper, helper_source
from symdiff.spellings import FUNCTION_NAMES
from symdiff.staged_printer import check_supported

x, y = sp.symbols("x y", real=True)
DIGITS = 50
WORK = 500  # digits of the reference
REL = 1e-11  # float code against the 50-digit value (helpers are series, a few ulps each)

# Arguments of the ops whose first argument is an order (a constant) or that read (y, x).
ARGS = {sp.polygamma: (0, x), sp.besseli: (2, x), sp.atan2: (y, x)}
# Points inside the domain, where the domain is not the whole line (one value per variable).
POINTS = {
    sp.log: [(0.3,), (1.6,), (7.0,)],
    sp.asin: [(0.3,), (-0.7,), (0.95,)], sp.acos: [(0.3,), (-0.7,), (0.95,)],
    sp.atanh: [(0.3,), (-0.7,), (0.95,)], sp.asech: [(0.3,), (0.7,), (0.95,)],
    sp.asec: [(1.3,), (-2.5,), (4.0,)], sp.acsc: [(1.3,), (-2.5,), (4.0,)],
    sp.acoth: [(1.3,), (-2.5,), (4.0,)], sp.acosh: [(1.3,), (2.5,), (9.0,)],
    sp.loggamma: [(0.3,), (1.6,), (7.5,)], sp.polygamma: [(0.3,), (1.6,), (7.5,)],
    xlogy: [(0.3, 0.8), (-0.7, 1.9), (1.6, 0.4), (-2.0, 1e-300)],
    # far out, where a naive formula loses its digits (1 + erf cancels, exp overflows)
    gelu: [(0.3,), (-0.7,), (1.6,), (-8.0,), (-25.0,), (30.0,)],
    elu: [(0.3,), (-0.7,), (1.6,), (-1e-9,), (-40.0,), (800.0,)],
    selu: [(0.3,), (-0.7,), (1.6,), (-1e-9,), (-40.0,), (800.0,)],
    mish: [(0.3,), (-0.7,), (1.6,), (-30.0,), (-800.0,), (800.0,)],
    sp.sinc: [(0.3,), (-0.7,), (1.6,), (1e-3,), (-0.2,), (0.26,), (30.0,)],
}
# Ops whose derivative no backend prints: their value is compiled and checked, their gradient
# is refused.
NO_GRADIENT = {sp.polygamma: "trigamma, polygamma(1, x), has no helper"}
# Rules that are float-accurate approximations, not identities: sinc' is a Taylor series near 0.
RULE_REL = {sp.sinc: 1e-16}
ONE = [(0.3,), (-0.7,), (1.6,)]
TWO = [(0.3, 0.8), (-0.7, 1.9), (1.6, -0.4)]
ROWS = [pytest.param(op, id=op.cls.__name__) for op in OPS]


def gate_args(op) -> tuple:
    if op.cls in ARGS:
        return ARGS[op.cls]
    return (x,) if op.arity[0] == 1 and op.arity[1] is not None else (x, y)


def variables(op) -> list[sp.Symbol]:
    return [a for a in gate_args(op) if isinstance(a, sp.Symbol)]


def points(op) -> list[dict]:
    chosen = POINTS.get(op.cls, ONE if len(variables(op)) == 1 else TWO)
    return [dict(zip(variables(op), p)) for p in chosen]


def reference(expr: sp.Expr, point: dict) -> mpmath.mpf:
    """The plain SymPy form of ``expr`` (no symdiff function) at ``point``, by SymPy's evalf at
    ``WORK`` digits: enough for every cancellation at these points (exp(-800) + 1)."""
    env = {s: sp.Rational(v) for s, v in point.items()}  # the doubles, exactly
    value = to_elementary(expr).xreplace(env).evalf(WORK)
    assert value.is_real and value.is_finite, f"{expr} is {value} at {point}"
    with mpmath.workdps(WORK):
        return value._to_mpmath(mpmath.mp.prec)


def close(got, want, rel=REL) -> bool:
    """Relative agreement, or ``got`` is the double nearest ``want`` (0 where it underflows)."""
    with mpmath.workdps(DIGITS):
        return abs(got - want) <= rel * abs(want) or got == float(want)


@pytest.mark.parametrize("op", ROWS)
def test_every_spelling_parses_to_the_op(op):
    for name, low, high in op.spellings():
        assert name in FUNCTION_NAMES
        fits = low <= len(gate_args(op)) and (high is None or len(gate_args(op)) <= high)
        args = gate_args(op) if fits else gate_args(op)[:low]
        parsed = parse(f"{name}({', '.join(str(a) for a in args)})")
        want = op.cls(*args)
        for point in points(op):
            with mpmath.workdps(DIGITS):
                got, expected = values_at([parsed, want], point)
            assert close(got, expected, 1e-40), (name, point, got, expected)


@pytest.mark.parametrize("op", ROWS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_prints_as_its_row_says(op, backend):
    gate = op.cls(*gate_args(op), evaluate=False)
    check_supported(gate, backend)
    how = op.printing(backend)
    if how is How.HELPER and not has_helper(op.cls.__name__, backend):  # torch has no besseli
        with pytest.raises(UnsupportedFunctionError, match=f"no {backend}-backend"):
            print_expr(gate, backend)
        return
    text, helpers = print_expr(gate, backend)
    if how is How.HELPER:
        assert text.startswith(f"{op.cls.__name__}(") and op.cls.__name__ in helpers
    elif isinstance(how, str):
        prefix = how.replace("numpy.", f"{make_printer(backend).module}.")
        assert text.startswith(prefix + "(")
    for name in helpers:
        assert helper_source(name, backend).startswith(f"def {name}(")


@pytest.mark.parametrize("op", ROWS)
@pytest.mark.parametrize("backend", BUNDLED)  # torch and jax: tests/test_frameworks.py
def test_compiled_value_and_gradient_match_sympy(op, backend):
    gate = op.cls(*gate_args(op))
    wrt = variables(op)
    if op.cls in NO_GRADIENT:
        with pytest.raises(UnsupportedFunctionError):
            lower(gate, wrt=wrt).compile(backend)
        wrt = []
    z = sp.Symbol("z", real=True)  # absent from the gate: its gradient is 0
    value_and_grad = lower(gate, wrt=[*wrt, z], args=[*variables(op), z]).compile(backend)
    parts = [derivative(to_elementary(gate), s) for s in wrt]
    for point in points(op):
        value, grads = value_and_grad.value_and_grad(*(point[s] for s in variables(op)), 0.5)
        assert close(float(value), reference(gate, point)), (point, value)
        assert grads[-1] == 0
        for s, got, part in zip(wrt, grads, parts):
            assert close(float(got), reference(part, point)), (s, point, got, part)


@pytest.mark.parametrize("op", ROWS)
def test_the_50_digit_implementation_matches_sympy(op):
    gate = op.cls(*gate_args(op))
    for point in points(op):
        with mpmath.workdps(DIGITS):
            (got,) = values_at([gate], point)
            assert close(got, reference(gate, point), 1e-40), (point, got)
    if op.total:  # finite at every finite real input, far out and at the kinks too
        for v in (-1e3, -1.0, 0.0, 1.0, 1e3):
            env = {s: v if k == 0 else -v / 2 for k, s in enumerate(variables(op))}
            (value,) = values_at([gate], env)
            assert mpmath.isfinite(value), (env, value)


@pytest.mark.parametrize("op", ROWS)
def test_the_rule_matches_sympy_diff(op):
    if op.partials is None:
        assert op.cls not in RULES  # SymPy's fdiff: the compiled-gradient test covers it
        return
    assert RULES[op.cls] is op.partials
    args = gate_args(op)
    gate = op.cls(*args)
    parts = op.partials(gate, *args)
    assert len(parts) == len(args)
    for arg, part in zip(args, parts):
        if not isinstance(arg, sp.Symbol):
            assert part is None
            continue
        want = derivative(to_elementary(gate), arg)
        for point in points(op):
            with mpmath.workdps(DIGITS):
                got = reference(part, point)
                want_value = reference(want, point)
                assert close(got, want_value, RULE_REL.get(op.cls, 1e-40)), (arg, point, got)


def test_rows_are_one_per_class_and_name():
    classes = [op.cls for op in OPS]
    names = [name for op in OPS for name, _, _ in op.spellings()]
    assert len(set(classes)) == len(classes)
    assert len(set(names)) == len(names)
    assert all(op.stem.replace("{}", "").isidentifier() for op in OPS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_printed_by_the_printers_own_method_has_one(backend):
    ours = [c for c in type(make_printer(backend)).__mro__ if c.__module__.startswith("symdiff.")]
    for op in OPS:
        if op.printing(backend) is How.OWN:
            assert any(f"_print_{op.cls.__name__}" in vars(c) for c in ours), op.cls.__name__
