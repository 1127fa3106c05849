"""The command line: gen/show/check, exit statuses, and one-line errors (never a traceback)."""

import math
import os
import subprocess
import sys

import pytest

from symdiff import cli
from symdiff.rules import RULES

STAGED = "(x + 1/(1 + exp(-y))) / (1/(1 + exp(-x)) + (x + y)**2)"


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_gen_prints_the_staged_module(capsys, golden):
    status, out, err = run(capsys, "gen", STAGED, "--wrt", "x,y")
    assert status == 0 and err == ""
    golden("staged_math.py", out)  # the same text as the Python API writes


def test_gen_numpy_to_a_file(capsys, tmp_path):
    target = tmp_path / "grad.py"
    status, out, _ = run(capsys, "gen", "x*sin(y)", "--wrt", "x,y", "--backend", "numpy",
                         "--name", "layer", "-o", str(target))
    assert status == 0 and out == ""
    text = target.read_text()
    assert "import numpy as np" in text and "def layer_backward(dout, cache):" in text


def test_show_prints_the_listing(capsys):
    status, out, _ = run(capsys, "show", STAGED)  # --wrt defaults to every symbol
    assert status == 0 and "wrt: dx, dy" in out and "dx += dnum" in out


def test_check_passes(capsys):
    status, out, _ = run(capsys, "check", "x*log(y) + relu(x - y)", "--samples", "5")
    assert status == 0 and "verdict: OK" in out


def test_check_mismatch_exits_1(capsys, monkeypatch):
    import sympy as sp

    monkeypatch.setitem(RULES, sp.sin, lambda out, a: (sp.sin(a),))  # a deliberately wrong rule
    status, out, _ = run(capsys, "check", "sin(x)*y", "--wrt", "x,y")
    assert status == 1 and "MISMATCH in dx" in out


@pytest.mark.parametrize("argv,fragment", [
    (["gen", "foo(x)", "--wrt", "x"], "unknown function 'foo'"),
    (["gen", "__import__('os').system('ls')"], "column 1"),
    (["gen", "x +", "--wrt", "x"], "column"),
    (["gen", "x", "--wrt", "x,,y"], "empty name"),
    (["gen", "x", "--backend", "tensorflow"], "invalid choice"),
    (["gen"], "required"),
    (["frobnicate", "x"], "invalid choice"),
    (["gen", "3"], "no symbols"),
    (["gen", "x", "--args", "y"], "args names 'y', which is not a variable"),
    (["check", "x", "--samples", "0"], "at least 1"),
    (["gen", "x", "-o", "/nonexistent/dir/out.py"], "No such file"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("symdiff: error: ") and fragment in err
    assert "Traceback" not in err


def test_formula_from_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("x**2\n"))
    status, out, _ = run(capsys, "show", "-")
    assert status == 0 and "out = x**2" in out


def test_console_script_runs_as_a_module(tmp_path):
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "symdiff", "gen", "x*y", "--wrt", "x"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and "def backward(dout, cache):" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "symdiff", "gen", "x.real"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


HAND = '''import math
def grad(u, v):
    s = 1 / (1 + math.exp(-u))
    return s * (1 - s) * v, s
'''


def test_verify_and_check_take_a_domain(capsys, tmp_path):
    path = tmp_path / "hand.py"
    path.write_text(HAND)
    status, out, err = run(capsys, "verify", "sigmoid(u)*v", "--grad", f"{path}:grad",
                           "--domain", "u=-800:800", "--seed", "3")
    assert status == 1 and "RAISED at" in out and "OverflowError" in out and err == ""
    status, out, _ = run(capsys, "verify", "sigmoid(u)*v", "--grad", f"{path}:grad",
                         "--domain", "u=-5:5,v=0:1")
    assert status == 0 and "verdict: RIGHT" in out
    status, out, _ = run(capsys, "check", "sin(u)*v", "--domain", "u=-1e-3:2e-3", "--samples", "3")
    assert status == 0 and "verdict: OK" in out


@pytest.mark.parametrize("domain, phrase", [
    ("u=5", "name=LO:HI"), ("u=a:b", "is not LO:HI"), ("w=0:1", "not a variable"),
    ("u=1:0", "lo < hi"),
])
def test_bad_domain_is_one_line_exit_2(capsys, domain, phrase):
    status, out, err = run(capsys, "check", "u*v", "--domain", domain)
    assert status == 2 and phrase in err and err.count("\n") == 1 and out == ""


@pytest.mark.parametrize("formula", ["cot(x)", "x**(x**x)", "EulerGamma*x + Catalan"])
def test_formulas_that_crashed_check_now_pass(capsys, formula):
    status, out, err = run(capsys, "check", formula, "--samples", "4")
    assert status == 0 and "verdict: OK" in out and err == ""


def test_a_failure_inside_check_exits_2_with_one_line(capsys, monkeypatch):
    import symdiff.reference as reference

    def explode(self, point):
        raise KeyError("boom")

    monkeypatch.setattr(reference.Reference, "program_gradient", explode)
    status, out, err = run(capsys, "check", "x**2")
    assert status == 2 and "check failed: KeyError" in err and err.count("\n") == 1


def test_gen_writes_the_second_order_functions_asked_for(capsys):
    status, out, _ = run(capsys, "gen", "x*sin(x*y)", "--wrt", "x,y", "--hvp", "--hessian")
    assert status == 0
    for name in ("forward", "backward", "value_and_grad", "hvp", "hessian"):
        assert f"\ndef {name}(" in out
    namespace: dict = {}
    exec(compile(out, "<gen>", "exec"), namespace)  # the module the user gets, run
    _, _, hv = namespace["hvp"](1.0, 2.0, 1.0, 0.0)
    _, _, hess = namespace["hessian"](1.0, 2.0)
    exact = 4 * math.cos(2.0) - 4 * math.sin(2.0)  # d2/dx2 of x sin(xy) at (1, 2)
    assert hv[0] == pytest.approx(exact, rel=1e-13) and hess[0][0] == pytest.approx(exact)
    assert "def jvp(" not in out and "def jacobian(" not in out
