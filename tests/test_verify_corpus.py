"""A corpus of hand-derived gradients for ``symdiff.verify``.

Every formula below comes with a gradient derived by hand and written in plain Python (``math``
only), the way a person writes a ``backward``: no ``sympy.diff`` and no symdiff output was used to
produce them. Next to each correct gradient sit a few *wrong* ones, each carrying one classic
mistake and the phrase ``verify`` must put in the diagnosis of the partial it breaks:

    sign flipped        -d                     factor of p/q    (p/q)*d
    swapped with d<v>   the other partial      missing a term   one path of a fork dropped
    wrong where v < 0   only wrong in a region zero             identically 0
    raised / nan / returned N partials: the hand code itself misbehaves

The tests check that

1. every correct gradient passes, at several seeds, with no false alarm (also via assert_gradient);
2. every wrong variant is caught, only in the partial it breaks, with the expected diagnosis;
3. the same for derivations given as lists of SymPy expressions and of strings;
4. the forward/backward pair convention (``forward=``), including the ``dx =`` for ``dx +=`` bug;
5. hand code that raises, returns the wrong count or NaN is reported, not crashed on;
6. assert_gradient raises an AssertionError carrying the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import sympy as sp

import symdiff

SEEDS = range(5)  # the correct gradients must pass at every one of these seeds

x, y, t = sp.symbols("x y t")
a, b, c = sp.symbols("a b c")
w, b0 = sp.symbols("w b")
x0, x1, w0, w1, w2 = sp.symbols("x0 x1 w0 w1 w2")
price, count, tax = sp.symbols("price count tax")


def sp_sigmoid(z):
    """The logistic function spelled out in SymPy, as it appears on paper."""
    return 1 / (1 + sp.exp(-z))


def sigmoid(z: float) -> float:
    """A hand-written sigmoid that does not overflow for large negative z."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# --------------------------------------------------------------------------------------------
# The staged example of SEEDS.md section 3, written by hand as forward/backward.
# --------------------------------------------------------------------------------------------
STAGED = (x + sp_sigmoid(y)) / (sp_sigmoid(x) + (x + y) ** 2)


def staged_forward(x, y):
    sigy = 1.0 / (1.0 + math.exp(-y))  # sigmoid in the numerator
    num = x + sigy  # numerator
    sigx = 1.0 / (1.0 + math.exp(-x))  # sigmoid in the denominator
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr  # denominator
    invden = 1.0 / den
    f = num * invden
    return f, (x, y, sigy, num, sigx, xpy, xpysqr, den, invden)


def staged_backward(dout, cache, overwrite=False):
    x, y, sigy, num, sigx, xpy, xpysqr, den, invden = cache
    # f = num * invden
    dnum = invden * dout
    dinvden = num * dout
    # invden = 1 / den
    dden = (-1.0 / den**2) * dinvden
    # den = sigx + xpysqr
    dsigx = (1) * dden
    dxpysqr = (1) * dden
    # xpysqr = xpy**2
    dxpy = (2 * xpy) * dxpysqr
    # xpy = x + y
    dx = (1) * dxpy
    dy = (1) * dxpy
    # sigx = sigmoid(x)
    if overwrite:
        dx = ((1 - sigx) * sigx) * dsigx  # BUG: = instead of +=
    else:
        dx += ((1 - sigx) * sigx) * dsigx  # notice += !!
    # num = x + sigy
    dx += (1) * dnum
    dsigy = (1) * dnum
    # sigy = sigmoid(y)
    dy += ((1 - sigy) * sigy) * dsigy
    return dx, dy


def staged_backward_overwrites(dout, cache):
    """The classic bug: one ``dx +=`` written as ``dx =`` (the x + y path into dx is lost)."""
    return staged_backward(dout, cache, overwrite=True)


def staged_grad(x, y):
    return staged_backward(1.0, staged_forward(x, y)[1])


def staged_grad_without_num_path(x, y):
    """Forgets the ``dx += dnum`` line: x feeds num, sigx and xpy; the num path is dropped."""
    _, (x, y, sigy, num, sigx, xpy, xpysqr, den, invden) = staged_forward(x, y)
    dnum = invden
    dden = -num / den**2
    dxpy = 2 * xpy * dden
    dx = dxpy + (1 - sigx) * sigx * dden
    dy = dxpy + (1 - sigy) * sigy * dnum
    return dx, dy


# --------------------------------------------------------------------------------------------
# Hand gradients of the rest of the corpus.
# --------------------------------------------------------------------------------------------
def neuron_grad(w, x, b):
    # y = sigmoid(z), z = w*x + b;  dy/dz = s*(1 - s)
    s = sigmoid(w * x + b)
    dz = s * (1 - s)
    return dz * x, dz * w, dz


def neuron2_grad(x0, x1, w0, w1, w2):
    # f = sigmoid(w0*x0 + w1*x1 + w2)
    s = sigmoid(w0 * x0 + w1 * x1 + w2)
    dz = (1 - s) * s
    return w0 * dz, w1 * dz, x0 * dz, x1 * dz, dz


def softplus_grad(x):
    # d/dx log(1 + e^x) = e^x / (1 + e^x) = sigmoid(x)
    return (sigmoid(x),)


def lse_grad(a, b, c):
    # d/da log(e^a + e^b + e^c) = e^a / (e^a + e^b + e^c): the softmax, computed shifted by max
    m = max(a, b, c)
    ea, eb, ec = math.exp(a - m), math.exp(b - m), math.exp(c - m)
    s = ea + eb + ec
    return ea / s, eb / s, ec / s


HUBER = sp.Piecewise(((y - t) ** 2 / 2, sp.Abs(y - t) <= 1), (sp.Abs(y - t) - sp.S.Half, True))


def huber_grad(y, t):
    # r = y - t; d/dr = r inside |r| <= 1, sign(r) outside; dr/dy = 1, dr/dt = -1
    r = y - t
    dr = r if abs(r) <= 1 else math.copysign(1.0, r)
    return dr, -dr


def relu_times_y_grad(x, y):
    # Max(0, x)*y: the max gate routes the gradient to x only where x > 0
    return (y if x > 0 else 0.0), max(0.0, x)


def tanh_xy_grad(x, y):
    th = math.tanh(x * y)
    dz = 1 - th**2
    return y * dz, x * dz


def x_gauss_grad(x):
    # x * exp(-x**2): product rule, x is used twice
    e = math.exp(-(x**2))
    return (e + x * (-2 * x) * e,)


RATIONAL = (x**2 - y) / (1 + x**2 + y**2)


def rational_grad(x, y):
    # quotient rule: (N' D - N D') / D**2
    n = x**2 - y
    d = 1 + x**2 + y**2
    return (2 * x * d - n * 2 * x) / d**2, (-1 * d - n * 2 * y) / d**2


def norm_grad(x, y):
    r = math.sqrt(x * x + y * y)
    return x / r, y / r


def atan2_grad(x, y):
    r2 = x * x + y * y
    return -y / r2, x / r2


def fork_product_grad(x, y):
    # x*y + x**2*sin(y): x and y each feed both terms
    return y + 2 * x * math.sin(y), x + x**2 * math.cos(y)


def log1p_sq_grad(x):
    return (2 * x / (1 + x * x),)


def max_sq_grad(x, y):
    # Max(x, y)**2: d = 2*m routed to the larger input
    m = max(x, y)
    return (2 * m if x > y else 0.0), (2 * m if y > x else 0.0)


def swish_grad(x):
    # x * sigmoid(x): x is used twice
    s = sigmoid(x)
    return (s + x * s * (1 - s),)


def apples_grad(price, count, tax):
    return count * tax, price * tax, price * count


def sin_xy_grad(x, y):
    return y * math.cos(x * y), x * math.cos(x * y)


# --------------------------------------------------------------------------------------------
# The table.
# --------------------------------------------------------------------------------------------
Phrase = str  # a plain phrase, or "re:<pattern>" for the few where the wording may vary


@dataclass
class Mutant:
    id: str
    grad: Callable
    expect: dict[str, Phrase]  # wrong partial name -> phrase its diagnosis must contain


@dataclass
class Case:
    id: str
    expr: sp.Expr
    wrt: list
    grad: Callable
    mutants: list[Mutant] = field(default_factory=list)


def _sw(g, i, j):
    """Swap partials i and j of g's result."""

    def swapped(*args):
        out = list(g(*args))
        out[i], out[j] = out[j], out[i]
        return tuple(out)

    return swapped


def _scale(g, i, k):
    """Multiply partial i of g's result by k."""

    def scaled(*args):
        out = list(g(*args))
        out[i] = k * out[i]
        return tuple(out)

    return scaled


def _replace(g, i, fn):
    """Replace partial i of g's result by fn(*args)."""

    def replaced(*args):
        out = list(g(*args))
        out[i] = fn(*args)
        return tuple(out)

    return replaced


# The region bug for Huber (r = y - t < 0) and Max (x < y): the formula's expression for the
# boundary may be printed in either orientation, so accept the usual spellings.
R_RNEG = r"re:wrong where (y - t|-t \+ y) < 0|wrong where (t - y|-y \+ t) > 0"
R_XLTY = r"re:wrong where (x - y|-y \+ x) < 0|wrong where (y - x|-x \+ y) > 0|wrong where x < y"

CASES = [
    Case("staged", STAGED, [x, y], staged_grad, [
        Mutant("dx_missing_num_path", staged_grad_without_num_path, {"dx": "missing a term"}),
        Mutant("dy_sign", _scale(staged_grad, 1, -1), {"dy": "sign flipped"}),
        Mutant("swapped", _sw(staged_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dx_times_2", _scale(staged_grad, 0, 2), {"dx": "factor of 2"}),
    ]),
    Case("sigmoid_neuron", sp_sigmoid(w * x + b0), [w, x, b0], neuron_grad, [
        Mutant("swapped_w_x", _sw(neuron_grad, 0, 1),
               {"dw": "swapped with dx", "dx": "swapped with dw"}),
        Mutant("db_sign", _scale(neuron_grad, 2, -1), {"db": "sign flipped"}),
        Mutant("dw_half", _scale(neuron_grad, 0, 0.5), {"dw": "factor of 1/2"}),
    ]),
    Case("neuron_2_inputs", sp_sigmoid(w0 * x0 + w1 * x1 + w2), [x0, x1, w0, w1, w2],
         neuron2_grad, [
        Mutant("swapped_x0_w0", _sw(neuron2_grad, 0, 2),
               {"dx0": "swapped with dw0", "dw0": "swapped with dx0"}),
        Mutant("dw2_sign", _scale(neuron2_grad, 4, -1), {"dw2": "sign flipped"}),
        Mutant("dx1_half", _scale(neuron2_grad, 1, 0.5), {"dx1": "factor of 1/2"}),
    ]),
    Case("softplus", sp.log(1 + sp.exp(x)), [x], softplus_grad, [
        Mutant("sign", _scale(softplus_grad, 0, -1), {"dx": "sign flipped"}),
        Mutant("times_2", _scale(softplus_grad, 0, 2), {"dx": "factor of 2"}),
        # "stable" rewrite gone wrong: sigmoid(|x|) is right only for x >= 0
        Mutant("abs_region", lambda x: (1 / (1 + math.exp(-abs(x))),), {"dx": "wrong where x < 0"}),
        Mutant("zero", lambda x: (0.0,), {"dx": "zero"}),
    ]),
    Case("logsumexp", sp.log(sp.exp(a) + sp.exp(b) + sp.exp(c)), [a, b, c], lse_grad, [
        Mutant("swapped_a_b", _sw(lse_grad, 0, 1),
               {"da": "swapped with db", "db": "swapped with da"}),
        Mutant("da_over_3", _scale(lse_grad, 0, 1 / 3), {"da": "factor of 1/3"}),
        Mutant("dc_sign", _scale(lse_grad, 2, -1), {"dc": "sign flipped"}),
    ]),
    Case("huber", HUBER, [y, t], huber_grad, [
        # |r| instead of r in the quadratic zone and 1 instead of sign(r) outside: wrong for r < 0
        Mutant("abs_region", _replace(huber_grad, 0, lambda y, t: min(abs(y - t), 1.0)),
               {"dy": R_RNEG}),
        Mutant("dt_times_2", _scale(huber_grad, 1, 2), {"dt": "factor of 2"}),
        Mutant("dy_half", _scale(huber_grad, 0, 0.5), {"dy": "factor of 1/2"}),
    ]),
    Case("relu_times_y", sp.Max(0, x) * y, [x, y], relu_times_y_grad, [
        # the ReLU mask forgotten: y passed through also where x < 0
        Mutant("mask_forgotten", _replace(relu_times_y_grad, 0, lambda x, y: y),
               {"dx": "wrong where x < 0"}),
        Mutant("dy_sign", _scale(relu_times_y_grad, 1, -1), {"dy": "sign flipped"}),
        Mutant("swapped", _sw(relu_times_y_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
    ]),
    Case("tanh_xy", sp.tanh(x * y), [x, y], tanh_xy_grad, [
        Mutant("swapped", _sw(tanh_xy_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dx_sign", _scale(tanh_xy_grad, 0, -1), {"dx": "sign flipped"}),
        Mutant("dy_times_2", _scale(tanh_xy_grad, 1, 2), {"dy": "factor of 2"}),
    ]),
    Case("x_exp_minus_x2", x * sp.exp(-(x**2)), [x], x_gauss_grad, [
        # product rule: only the derivative of exp(-x**2) kept, the "d(x) * exp" term dropped
        Mutant("missing_term", lambda x: (-2 * x * x * math.exp(-(x**2)),),
               {"dx": "missing a term"}),
        Mutant("sign", _scale(x_gauss_grad, 0, -1), {"dx": "sign flipped"}),
        Mutant("abs_region", lambda x: ((1 - 2 * x * abs(x)) * math.exp(-(x**2)),),
               {"dx": "wrong where x < 0"}),
    ]),
    Case("rational", RATIONAL, [x, y], rational_grad, [
        # quotient rule with the derivative of the denominator forgotten: d/dx is N'/D
        Mutant("dx_missing_term",
               _replace(rational_grad, 0, lambda x, y: 2 * x / (1 + x**2 + y**2)),
               {"dx": "missing a term"}),
        Mutant("dy_sign", _scale(rational_grad, 1, -1), {"dy": "sign flipped"}),
        Mutant("swapped", _sw(rational_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dx_times_2", _scale(rational_grad, 0, 2), {"dx": "factor of 2"}),
    ]),
    Case("norm", sp.sqrt(x**2 + y**2), [x, y], norm_grad, [
        Mutant("swapped", _sw(norm_grad, 0, 1), {"dx": "swapped with dy", "dy": "swapped with dx"}),
        # 1/(2 sqrt(u)) written, the inner 2x forgotten as x: half the gradient
        Mutant("dx_half", _scale(norm_grad, 0, 0.5), {"dx": "factor of 1/2"}),
        Mutant("dy_abs", _replace(norm_grad, 1, lambda x, y: abs(y) / math.hypot(x, y)),
               {"dy": "wrong where y < 0"}),
        Mutant("dx_sign", _scale(norm_grad, 0, -1), {"dx": "sign flipped"}),
    ]),
    Case("atan2", sp.atan2(y, x), [x, y], atan2_grad, [
        Mutant("dx_sign", _scale(atan2_grad, 0, -1), {"dx": "sign flipped"}),
        Mutant("swapped", _sw(atan2_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dy_times_2", _scale(atan2_grad, 1, 2), {"dy": "factor of 2"}),
    ]),
    Case("fork_product", x * y + x**2 * sp.sin(y), [x, y], fork_product_grad, [
        Mutant("dx_missing_term", _replace(fork_product_grad, 0, lambda x, y: y),
               {"dx": "missing a term"}),
        Mutant("dy_missing_term", _replace(fork_product_grad, 1, lambda x, y: x**2 * math.cos(y)),
               {"dy": "missing a term"}),
        Mutant("swapped", _sw(fork_product_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dy_sign", _scale(fork_product_grad, 1, -1), {"dy": "sign flipped"}),
    ]),
    Case("log_1_plus_x2", sp.log(1 + x**2), [x], log1p_sq_grad, [
        Mutant("abs_region", lambda x: (2 * abs(x) / (1 + x * x),), {"dx": "wrong where x < 0"}),
        Mutant("half", _scale(log1p_sq_grad, 0, 0.5), {"dx": "factor of 1/2"}),
        Mutant("sign", _scale(log1p_sq_grad, 0, -1), {"dx": "sign flipped"}),
    ]),
    Case("max_squared", sp.Max(x, y) ** 2, [x, y], max_sq_grad, [
        # the max gate's routing forgotten for x: 2x even where y is the larger input
        Mutant("dx_not_routed", _replace(max_sq_grad, 0, lambda x, y: 2 * x), {"dx": R_XLTY}),
        Mutant("swapped", _sw(max_sq_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dy_times_2", _scale(max_sq_grad, 1, 2), {"dy": "factor of 2"}),
    ]),
    Case("swish", x * sp_sigmoid(x), [x], swish_grad, [
        # x feeds the product and the sigmoid: the direct path (the "s" term) dropped
        Mutant("missing_term", lambda x: (x * sigmoid(x) * (1 - sigmoid(x)),),
               {"dx": "missing a term"}),
        Mutant("sign", _scale(swish_grad, 0, -1), {"dx": "sign flipped"}),
        Mutant("times_3", _scale(swish_grad, 0, 3), {"dx": "factor of 3"}),
    ]),
    Case("apples", price * count * tax, [price, count, tax], apples_grad, [
        Mutant("swapped_price_count", _sw(apples_grad, 0, 1),
               {"dprice": "swapped with dcount", "dcount": "swapped with dprice"}),
        Mutant("dtax_sign", _scale(apples_grad, 2, -1), {"dtax": "sign flipped"}),
        Mutant("dcount_times_2", _scale(apples_grad, 1, 2), {"dcount": "factor of 2"}),
    ]),
    Case("sin_xy", sp.sin(x * y), [x, y], sin_xy_grad, [
        Mutant("swapped", _sw(sin_xy_grad, 0, 1),
               {"dx": "swapped with dy", "dy": "swapped with dx"}),
        Mutant("dy_zero", _replace(sin_xy_grad, 1, lambda x, y: 0.0), {"dy": "zero"}),
        Mutant("dx_sign", _scale(sin_xy_grad, 0, -1), {"dx": "sign flipped"}),
    ]),
]

MUTANTS = [(case, m) for case in CASES for m in case.mutants]


# --------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------
def _names(wrt) -> list[str]:
    return ["d" + str(s) for s in wrt]


def _matches(diagnosis: str, phrase: Phrase) -> bool:
    text = diagnosis.lower()
    if phrase.startswith("re:"):
        return re.search(phrase[3:], text) is not None
    return phrase in text


def _explain(rep) -> str:
    lines = [str(rep), "--- partials ---"]
    for p in rep.partials:
        lines.append(f"{p.name}: ok={p.ok} diagnosis={p.diagnosis!r} worst_point={p.worst_point} "
                     f"max_abs={p.max_abs_error} max_rel={p.max_rel_error}")
    return "\n".join(lines)


def _check_verdict(rep, wrt, expect: dict[str, Phrase]) -> None:
    """``expect``: wrong partial name -> phrase. All other partials must be ok."""
    why = _explain(rep)
    assert [p.name for p in rep.partials] == _names(wrt), why
    assert rep.ok is (not expect), why
    for p in rep.partials:
        if p.name in expect:
            assert not p.ok, why
            assert _matches(p.diagnosis, expect[p.name]), \
                f"{p.name}: diagnosis {p.diagnosis!r} lacks {expect[p.name]!r}\n{why}"
            assert p.worst_point is not None, why
        else:
            assert p.ok, f"false alarm on {p.name}\n{why}"
            assert p.diagnosis == "", why
    text = str(rep).lower()
    for name in expect:
        assert name in text, why


# --------------------------------------------------------------------------------------------
# 0. The table itself: the hand gradients agree with SEEDS.md's worked numbers.
# --------------------------------------------------------------------------------------------
def test_hand_gradients_reproduce_seeds_numbers():
    """Sanity of the corpus, independent of verify: SEEDS.md section 2 numbers."""
    assert neuron_grad(0.5, 1.0, 0.5)[0] == pytest.approx(0.19661193324148185, rel=1e-14)
    g = neuron2_grad(-1.0, -2.0, 2.0, -3.0, -3.0)
    assert g[:2] == pytest.approx((0.3932238664829637, -0.5898357997244456), rel=1e-14)
    assert g[2:] == pytest.approx((-0.19661193324148185, -0.3932238664829637,
                                   0.19661193324148185), rel=1e-14)
    assert apples_grad(100, 2, 1.1) == pytest.approx((2.2, 110, 200))
    # forward/backward pair and the flat hand gradient agree
    assert staged_grad(3.0, -4.0) == staged_backward(1.0, staged_forward(3.0, -4.0)[1])


def test_corpus_size():
    assert len(CASES) >= 15
    assert all(len(c.mutants) >= 3 for c in CASES)
    assert len(MUTANTS) >= 50


# --------------------------------------------------------------------------------------------
# 1. Correct hand gradients: no false alarm, at several seeds.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_correct_gradient_passes_at_every_seed(case):
    for seed in SEEDS:
        rep = symdiff.verify(case.expr, wrt=case.wrt, grad=case.grad, seed=seed)
        _check_verdict(rep, case.wrt, {})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_correct_gradient_passes_assert_gradient(case):
    symdiff.assert_gradient(case.expr, case.wrt, case.grad)


# --------------------------------------------------------------------------------------------
# 2. Wrong hand gradients: caught, in the right partial, with the right diagnosis.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, mutant", MUTANTS, ids=[f"{c.id}-{m.id}" for c, m in MUTANTS])
def test_wrong_gradient_is_diagnosed(case, mutant):
    rep = symdiff.verify(case.expr, wrt=case.wrt, grad=mutant.grad, seed=0)
    _check_verdict(rep, case.wrt, mutant.expect)


REGION_MUTANTS = [(c, m) for c, m in MUTANTS
                  if any("wrong where" in phrase for phrase in m.expect.values())]


@pytest.mark.parametrize("case, mutant", REGION_MUTANTS,
                         ids=[f"{c.id}-{m.id}" for c, m in REGION_MUTANTS])
def test_region_diagnosis_is_stable_across_seeds(case, mutant):
    """A bug confined to a region is named as that region whatever points are drawn (seed 0 is
    test_wrong_gradient_is_diagnosed)."""
    for seed in SEEDS[1:]:
        rep = symdiff.verify(case.expr, wrt=case.wrt, grad=mutant.grad, seed=seed)
        try:
            _check_verdict(rep, case.wrt, mutant.expect)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from None


def test_arguments_order_with_a_symbol_not_in_wrt():
    """Default args: wrt in the given order, then the other free symbols sorted by name."""
    expr = sp.sin(x * y) + t * x
    rep = symdiff.verify(expr, wrt=[y], grad=lambda y, t, x: (x * math.cos(x * y),), seed=0)
    _check_verdict(rep, [y], {})
    rep = symdiff.verify(expr, wrt=[y, x], args=[x, y, t],
                         grad=lambda x, y, t: (x * math.cos(x * y), y * math.cos(x * y) + t),
                         seed=0)
    _check_verdict(rep, [y, x], {})


def test_given_points_and_sample_count():
    """SEEDS.md section 2: the 2-input neuron at w = (2, -3, -3), x = (-1, -2)."""
    seeds_point = {x0: -1.0, x1: -2.0, w0: 2.0, w1: -3.0, w2: -3.0}
    rep = symdiff.verify(sp_sigmoid(w0 * x0 + w1 * x1 + w2), wrt=[x0, x1, w0, w1, w2],
                         grad=neuron2_grad, points=[seeds_point], samples=3, seed=0)
    _check_verdict(rep, [x0, x1, w0, w1, w2], {})
    assert len(rep.points) == 4, _explain(rep)
    assert rep.points[0] == {"x0": -1.0, "x1": -2.0, "w0": 2.0, "w1": -3.0, "w2": -3.0}
    # a gradient wrong only at the given point (a hard-coded special case) is caught there
    def special_cased(*args):
        return (0.0,) * 5 if args == (-1.0, -2.0, 2.0, -3.0, -3.0) else neuron2_grad(*args)

    rep = symdiff.verify(sp_sigmoid(w0 * x0 + w1 * x1 + w2), wrt=[x0, x1, w0, w1, w2],
                         grad=special_cased, points=[seeds_point], samples=3, seed=0)
    assert not rep.ok and all(not p.ok for p in rep.partials), _explain(rep)
    assert rep.partials[0].worst_point == rep.points[0], _explain(rep)


# --------------------------------------------------------------------------------------------
# 3. Derivations on paper: lists of SymPy expressions or strings.
# --------------------------------------------------------------------------------------------
_N = "(x + 1/(1 + exp(-y)))"
_D = "(1/(1 + exp(-x)) + (x + y)**2)"
_SX = "(1/(1 + exp(-x)))"
_SY = "(1/(1 + exp(-y)))"

DERIVATIONS = [
    # id, expr, wrt, derivation, wrong partials -> phrase, partials that must be proved
    ("sin_xy_strings", sp.sin(x * y), [x, y], ["y*cos(x*y)", "x*cos(x*y)"], {}, ["dx", "dy"]),
    ("sin_xy_strings_dy_sign", sp.sin(x * y), [x, y], ["y*cos(x*y)", "-x*cos(x*y)"],
     {"dy": "sign flipped"}, ["dx"]),
    ("fork_sympy", x * y + x**2 * sp.sin(y), [x, y],
     [y + 2 * x * sp.sin(y), x + x**2 * sp.cos(y)], {}, ["dx", "dy"]),
    ("fork_sympy_dx_missing", x * y + x**2 * sp.sin(y), [x, y],
     [y, x + x**2 * sp.cos(y)], {"dx": "missing a term"}, ["dy"]),
    ("tanh_xy_strings", sp.tanh(x * y), [x, y], ["y*(1 - tanh(x*y)**2)", "x/cosh(x*y)**2"],
     {}, ["dx", "dy"]),
    ("norm_strings_swapped", sp.sqrt(x**2 + y**2), [x, y],
     ["y/sqrt(x**2 + y**2)", "x/sqrt(x**2 + y**2)"],
     {"dx": "swapped with dy", "dy": "swapped with dx"}, []),
    ("log1p_sympy_half", sp.log(1 + x**2), [x], [x / (1 + x**2)], {"dx": "factor of 1/2"}, []),
    # the staged example by the quotient rule, on paper
    ("staged_strings", STAGED, [x, y],
     [f"({_D} - {_N}*({_SX}*(1 - {_SX}) + 2*(x + y)))/{_D}**2",
      f"({_SY}*(1 - {_SY})*{_D} - {_N}*2*(x + y))/{_D}**2"], {}, []),
    # ... with the (x + y)**2 path into dx forgotten
    ("staged_strings_dx_missing", STAGED, [x, y],
     [f"({_D} - {_N}*{_SX}*(1 - {_SX}))/{_D}**2",
      f"({_SY}*(1 - {_SY})*{_D} - {_N}*2*(x + y))/{_D}**2"], {"dx": "missing a term"}, []),
]


@pytest.mark.parametrize("case_id, expr, wrt, derivation, expect, proved", DERIVATIONS,
                         ids=[d[0] for d in DERIVATIONS])
def test_derivation_on_paper(case_id, expr, wrt, derivation, expect, proved):
    rep = symdiff.verify(expr, wrt=wrt, grad=derivation, seed=0)
    _check_verdict(rep, wrt, expect)
    why = _explain(rep)
    for p in rep.partials:
        if p.name in proved:
            assert p.proved is True, f"{p.name} should be proved symbolically\n{why}"
        if p.name in expect:
            assert p.proved is False, why


# --------------------------------------------------------------------------------------------
# 4. forward(*args) -> (value, cache) with backward(dout, cache) -> partials.
# --------------------------------------------------------------------------------------------
def test_forward_backward_pair_passes():
    for seed in SEEDS:
        rep = symdiff.verify(STAGED, wrt=[x, y], grad=staged_backward, forward=staged_forward,
                             seed=seed)
        _check_verdict(rep, [x, y], {})
    symdiff.assert_gradient(STAGED, [x, y], staged_backward, forward=staged_forward)


def test_forward_backward_pair_overwrite_bug_is_missing_a_term():
    rep = symdiff.verify(STAGED, wrt=[x, y], grad=staged_backward_overwrites,
                         forward=staged_forward, seed=0)
    _check_verdict(rep, [x, y], {"dx": "missing a term"})


def test_forward_backward_pair_factor_bug():
    def backward_double(dout, cache):
        dx, dy = staged_backward(dout, cache)
        return 2 * dx, dy

    rep = symdiff.verify(STAGED, wrt=[x, y], grad=backward_double, forward=staged_forward, seed=0)
    _check_verdict(rep, [x, y], {"dx": "factor of 2"})


# --------------------------------------------------------------------------------------------
# 5. Hand code that misbehaves: reported, not crashed on.
# --------------------------------------------------------------------------------------------
def _raises_everywhere(x, y):
    return 1 / 0, x


def _raises_for_negative_x(x, y):
    # log(x) sneaks in: math.log raises ValueError for x < 0
    return y * math.cos(x * y) + 0 * math.log(x), x * math.cos(x * y)


def _three_partials(x, y):
    return y * math.cos(x * y), x * math.cos(x * y), 0.0


def _one_partial(x, y):
    return (y * math.cos(x * y),)


def _nan_for_negative_x(x, y):
    dx = y * math.cos(x * y) if x >= 0 else math.nan
    return dx, x * math.cos(x * y)


def _nan_everywhere_in_dy(x, y):
    return y * math.cos(x * y), math.nan


MISBEHAVING = [
    ("raises_everywhere", _raises_everywhere, ["raised", "zerodivisionerror"], None),
    ("three_partials", _three_partials, ["returned 3 partials"], None),
    ("one_partial", _one_partial, ["returned 1 partial"], None),
    ("nan_for_negative_x", _nan_for_negative_x, ["nan"], {"dx": "nan"}),
    ("nan_everywhere_in_dy", _nan_everywhere_in_dy, ["nan"], {"dy": "nan"}),
]


@pytest.mark.parametrize("case_id, grad, phrases, expect", MISBEHAVING,
                         ids=[m[0] for m in MISBEHAVING])
def test_misbehaving_hand_code_is_reported(case_id, grad, phrases, expect):
    rep = symdiff.verify(sp.sin(x * y), wrt=[x, y], grad=grad, seed=0)
    why = _explain(rep)
    assert rep.ok is False, why
    assert len(rep.partials) == 2, why
    text = str(rep).lower()
    for phrase in phrases:
        assert phrase in text, f"report lacks {phrase!r}\n{why}"
    # the phrase appears in the diagnosis of at least one (wrong) partial
    assert any(phrases[0] in p.diagnosis.lower() and not p.ok for p in rep.partials), why
    if expect is not None:  # NaN in one partial: that partial is named, the other is ok
        _check_verdict(rep, [x, y], expect)


def test_hand_code_raising_at_some_points_is_counted_and_judged_elsewhere():
    rep = symdiff.verify(sp.sin(x * y), wrt=[x, y], grad=_raises_for_negative_x, seed=0)
    why = _explain(rep)
    negative = [p for p in rep.points if p["x"] < 0]
    assert rep.ok is False and len(rep.raised) == len(negative) > 0, why
    assert all(pt["x"] < 0 and "ValueError" in msg for pt, msg in rep.raised), why
    assert all(p.ok for p in rep.partials), why  # right wherever it ran
    text = str(rep)
    assert f"raised ValueError: math domain error at {len(negative)} of 40 points" in text, why
    assert "verdict: RAISED" in text, why


def test_misbehaving_hand_code_fails_assert_gradient_cleanly():
    for grad in (_raises_everywhere, _three_partials, _nan_for_negative_x):
        with pytest.raises(AssertionError):
            symdiff.assert_gradient(sp.sin(x * y), [x, y], grad)


# --------------------------------------------------------------------------------------------
# 6. assert_gradient for users' pytest.
# --------------------------------------------------------------------------------------------
def test_assert_gradient_message_is_the_report():
    wrong = _replace(fork_product_grad, 0, lambda x, y: y)
    expr = x * y + x**2 * sp.sin(y)
    with pytest.raises(AssertionError) as info:
        symdiff.assert_gradient(expr, [x, y], wrong)
    message = str(info.value)
    rep = symdiff.verify(expr, wrt=[x, y], grad=wrong)
    assert not rep.ok
    assert str(rep) in message, f"message:\n{message}\nreport:\n{rep}"
    assert "dx" in message and "missing a term" in message.lower()


def test_assert_gradient_message_for_forward_backward_bug():
    with pytest.raises(AssertionError) as info:
        symdiff.assert_gradient(STAGED, [x, y], staged_backward_overwrites, forward=staged_forward)
    assert "missing a term" in str(info.value).lower()
    assert "dx" in str(info.value)


def test_assert_gradient_returns_quietly_for_a_string_derivation():
    symdiff.assert_gradient(sp.sin(x * y), [x, y], ["y*cos(x*y)", "x*cos(x*y)"])
