"""The examples run, and they (and the public API) reproduce the worked numbers of SEEDS.md.

Each script in examples/ runs as a subprocess; its exit code must be 0 and the numbers it prints
are parsed from labelled lines (``label = number``) and compared with tolerance 1e-12. Separately,
every worked number is computed through ``symdiff.grad`` on both backends and compared with the
SEEDS value and with ``sympy.diff`` of the plain SymPy formula evaluated at 30 digits.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import symdiff

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TOL = 1e-12
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

# SEEDS section 2.
SIGMOID_SLOPE_AT_2 = 0.10499358540350662
NEURON_DY_DW = 0.19661193324148185
TWO_INPUT_F = 0.7310585786300049
TWO_INPUT_DX = (0.3932238664829637, -0.5898357997244456)
TWO_INPUT_DW = (-0.19661193324148185, -0.3932238664829637, 0.19661193324148185)


def close(got, expected, tol=TOL) -> bool:
    return abs(float(got) - float(expected)) <= tol * max(1.0, abs(float(expected)))


def elementary_sigmoid(t):
    return 1 / (1 + sp.exp(-t))


# -- running the examples -----------------------------------------------------------------------

_outputs: dict[str, str] = {}


def run_example(name: str) -> str:
    """stdout of ``python examples/<name>.py`` (run once per test session); fails on exit != 0."""
    if name not in _outputs:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
        command = [sys.executable, str(EXAMPLES / f"{name}.py")]
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, (
            f"{name}.py exited with {result.returncode}\n--- stdout ---\n{result.stdout[-3000:]}"
            f"\n--- stderr ---\n{result.stderr[-3000:]}")
        _outputs[name] = result.stdout
    return _outputs[name]


def printed(stdout: str, label: str) -> float:
    """The number on the one line that reads exactly ``<label> = <number>``."""
    pattern = rf"^{re.escape(label)} = ({NUMBER})$"
    found = re.findall(pattern, stdout, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one line '{label} = <number>', found {len(found)}"
    return float(found[0])


@pytest.mark.parametrize("name", ["staged_example", "apples", "sigmoid_neuron",
                                  "two_input_neuron", "verify_hand_gradient", "two_layer_net"])
def test_example_runs(name):
    assert run_example(name).strip()


def test_verify_example_shows_a_right_and_a_diagnosed_backward():
    out = run_example("verify_hand_gradient")
    assert out.count("verdict: RIGHT") == 1 and "verdict: WRONG in dx" in out
    assert "missing a term at a fork" in out and "sign flipped" in out


def test_two_layer_net_example_trains_with_every_optimizer():
    out = run_example("two_layer_net")
    initial = printed(out, "initial loss")
    for name in ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam"]:
        assert 0 <= printed(out, f"{name} final loss") < 0.5 * initial, name
    assert "dW1 = X.T @ dXW1" in out  # the staged backward, derived by symdiff


def test_apples_example_prints_worked_numbers():
    out = run_example("apples")
    expected = {"total": 220, "dprice": 2.2, "dcount": 110, "dtax": 200,
                "dcountprice": 1.1}  # the gradient of the intermediate price*count
    for label, value in expected.items():
        assert close(printed(out, label), value), label


def test_sigmoid_neuron_example_prints_worked_numbers():
    out = run_example("sigmoid_neuron")
    assert close(printed(out, "dsigmoid/dx at x=2"), SIGMOID_SLOPE_AT_2)
    assert close(printed(out, "numpy dsigmoid/dx at x=2"), SIGMOID_SLOPE_AT_2)
    assert close(printed(out, "dy/dw"), NEURON_DY_DW)
    assert close(printed(out, "numpy dy/dw at w=0.5"), NEURON_DY_DW)


def test_two_input_neuron_example_prints_worked_numbers():
    out = run_example("two_input_neuron")
    assert close(printed(out, "f"), TWO_INPUT_F)
    for label, value in zip(["dx0", "dx1", "dw0", "dw1", "dw2"], TWO_INPUT_DX + TWO_INPUT_DW,
                            strict=True):
        assert close(printed(out, label), value), label
    # The generated code uses the sigmoid gate recognised from 1/(1 + exp(-t)).
    assert "out = sigmoid(" in out
    assert "exp(" not in out.split("def forward", 1)[1]


def test_staged_example_prints_program_and_reference_gradient():
    out = run_example("staged_example")
    x, y = sp.symbols("x y")
    f = (x + elementary_sigmoid(y)) / (elementary_sigmoid(x) + (x + y) ** 2)
    point = {x: 3, y: -4}
    for label, reference in [("f", f), ("dx", sp.diff(f, x)), ("dy", sp.diff(f, y))]:
        rows = re.findall(rf"^{label}\s+({NUMBER})\s+({NUMBER})$", out, flags=re.MULTILINE)
        assert len(rows) == 1, label
        generated, from_sympy = map(float, rows[0])
        exact = reference.evalf(30, subs=point)
        assert close(generated, exact) and close(from_sympy, exact), label
    # SEEDS section 3: the eight forward steps and the accumulating backward pass.
    for line in ["sigy = sigmoid(y)", "sigx = sigmoid(x)", "xpysqr = xpy**2", "invden = 1/den",
                 "dden = dinvden * (-invden**2)", "dx += dsigx * (sigx*(1 - sigx))",
                 "dy += dsigy * (sigy*(1 - sigy))"]:
        assert re.search(rf"^\s+{re.escape(line)}$", out, flags=re.MULTILINE), line
    assert re.search(r"^verdict: OK$", out, flags=re.MULTILINE)


# -- the worked numbers through the public API --------------------------------------------------

def _cases():
    """(id, formula for symdiff, plain SymPy formula, wrt, args, point, value, gradients)."""
    price, count, tax, pc = sp.symbols("price count tax pc")
    x, w, b = sp.symbols("x w b")
    x0, x1, w0, w1, w2 = sp.symbols("x0 x1 w0 w1 w2")
    apples = price * count * tax
    dot = w0 * x0 + w1 * x1 + w2
    return [
        ("apples", apples, apples, [price, count, tax], None, ["100", "2", "1.1"],
         220, (2.2, 110, 200)),
        # total = (price*count) * tax seen from the intermediate pc = price*count = 200.
        ("apples-intermediate", pc * tax, pc * tax, [pc], [pc, tax], ["200", "1.1"],
         220, (1.1,)),
        ("sigmoid-at-2", symdiff.sigmoid(x), elementary_sigmoid(x), [x], None, ["2"],
         None, (SIGMOID_SLOPE_AT_2,)),
        ("sigmoid-at-2-spelled-out", elementary_sigmoid(x), elementary_sigmoid(x), [x], None,
         ["2"], None, (SIGMOID_SLOPE_AT_2,)),
        ("neuron", symdiff.sigmoid(w * x + b), elementary_sigmoid(w * x + b), [w], [x, w, b],
         ["1", "0.5", "0.5"], None, (NEURON_DY_DW,)),
        ("two-input-neuron", elementary_sigmoid(dot), elementary_sigmoid(dot),
         [x0, x1, w0, w1, w2], None, ["-1", "-2", "2", "-3", "-3"],
         TWO_INPUT_F, TWO_INPUT_DX + TWO_INPUT_DW),
        ("two-input-neuron-sigmoid", symdiff.sigmoid(dot), elementary_sigmoid(dot),
         [x0, x1, w0, w1, w2], None, ["-1", "-2", "2", "-3", "-3"],
         TWO_INPUT_F, TWO_INPUT_DX + TWO_INPUT_DW),
    ]


CASES = _cases()


@pytest.mark.parametrize("backend", ["math", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_worked_number_through_grad(case, backend):
    _, formula, plain, wrt, args, point, value, grads = case
    order = args if args is not None else wrt
    fn = symdiff.grad(formula, wrt=wrt, backend=backend, args=args)
    got_value, got_grads = fn(*(float(p) for p in point))
    assert len(got_grads) == len(grads)

    # The reference: sympy.diff of the plain formula at the exact point, to 30 digits.
    exact_point = {s: sp.Rational(p) for s, p in zip(order, point, strict=True)}
    references = [sp.diff(plain, s).evalf(30, subs=exact_point) for s in wrt]
    for got, seed, reference in zip(got_grads, grads, references, strict=True):
        assert close(seed, reference)  # the SEEDS number itself is right
        assert close(got, seed), (got, seed)
        assert close(got, reference), (got, reference)
    if value is not None:
        assert close(value, plain.evalf(30, subs=exact_point))
        assert close(got_value, value), (got_value, value)


def test_ridge_and_mvn_example_meets_the_closed_forms():
    """examples/ridge_and_mvn.py: gradient descent on the generated ridge gradient reaches the
    normal equations' solution; the MVN log density and its gradients equal the closed forms."""
    out = run_example("ridge_and_mvn")
    errors = [float(v) for v in re.findall(rf"max \|[^=]*= ({NUMBER})", out)]
    assert len(errors) == 4 and max(errors) < 1e-10, out
    value, closed = re.search(rf"log density = ({NUMBER}) \(closed form ({NUMBER})\)", out).groups()
    assert close(value, closed) and "check OK" in out
