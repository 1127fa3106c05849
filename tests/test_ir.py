"""The IR: ``validate`` names what is wrong with a Program; the hand-offs to later stages."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import symdiff
from symdiff import emit, graph, interpret, ir, page, printers
from symdiff.errors import ArgumentError, InvalidProgramError, MissingStageError, SymdiffError
from symdiff.ir import GradStep, Step

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def prog():
    x, y = sp.symbols("x y")
    prog = symdiff.lower(x * y + sp.sin(x), wrt=[x, y])  # xy = x*y, sinx = sin(x), out = ...
    prog.validate()
    return prog


def broken(prog, **fields):
    return dataclasses.replace(prog, _cache={}, **fields)


def real(name):
    return sp.Symbol(name, real=True)


def test_invalid_program_error_is_a_symdiff_error():
    assert issubclass(InvalidProgramError, SymdiffError)
    assert not issubclass(InvalidProgramError, AssertionError)  # not a disabled-by--O assert


def test_a_step_reading_an_undefined_name(prog):
    forward = (Step("xy", real("x") * real("z"), "Mul"),) + prog.forward[1:]
    with pytest.raises(InvalidProgramError, match="forward step xy reads z before it is defined"):
        broken(prog, forward=forward).validate()


def test_a_step_reading_a_later_step(prog):
    forward = (Step("xy", real("x") * real("sinx"), "Mul"),) + prog.forward[1:]
    with pytest.raises(InvalidProgramError, match="xy reads sinx before it is defined"):
        broken(prog, forward=forward).validate()


def test_a_duplicate_name(prog):
    forward = (prog.forward[0], Step("xy", sp.sin(real("x")), "sin")) + prog.forward[2:]
    with pytest.raises(InvalidProgramError, match="the name dxy is assigned twice"):
        broken(prog, forward=forward).validate()


def test_a_step_named_like_an_argument(prog):
    forward = (Step("x", real("x") * real("y"), "Mul"),) + prog.forward[1:]
    with pytest.raises(InvalidProgramError, match="the name dx is assigned twice"):
        broken(prog, forward=forward).validate()


def test_a_name_that_is_not_an_identifier(prog):
    forward = prog.forward[:-1] + (dataclasses.replace(prog.forward[-1], name="lambda"),)
    with pytest.raises(InvalidProgramError, match="'lambda' is not a Python identifier"):
        broken(prog, forward=forward).validate()


def test_swapped_accumulation(prog):
    backward = tuple(dataclasses.replace(g, accumulate=not g.accumulate) if g.name == "dx" else g
                     for g in prog.backward)
    with pytest.raises(InvalidProgramError, match="dx writes with .* where .* belongs"):
        broken(prog, backward=backward).validate()


def test_an_upstream_gradient_read_before_it_is_written(prog):
    backward = tuple(reversed(prog.backward))
    with pytest.raises(InvalidProgramError, match="reads d(xy|sinx) before it is written"):
        broken(prog, backward=backward).validate()


def test_a_backward_step_of_no_forward_step(prog):
    extra = GradStep("dx", "dnope", sp.Integer(1), True, "nope")
    with pytest.raises(InvalidProgramError, match="backpropagates nope, which is not a forward"):
        broken(prog, backward=prog.backward + (extra,)).validate()


def test_a_local_derivative_over_an_unknown_name(prog):
    backward = tuple(dataclasses.replace(g, local=real("ghost")) if g.name == "dy" else g
                     for g in prog.backward)
    with pytest.raises(InvalidProgramError, match="dy reads ghost, which the forward pass"):
        broken(prog, backward=backward).validate()


def test_validate_raises_under_python_O():
    # validate() raises, it does not assert: python -O, which strips asserts, changes nothing.
    code = ("import dataclasses, sympy as sp, symdiff\n"
            "from symdiff.ir import Step\n"
            "x = sp.Symbol('x')\n"
            "prog = symdiff.lower(sp.sin(x), wrt=[x])\n"
            "bad = dataclasses.replace(prog, _cache={}, forward=(Step('sinx', "
            "sp.sin(sp.Symbol('z', real=True)), 'sin'), *prog.forward[1:]))\n"
            "try:\n    bad.validate()\n"
            "except symdiff.InvalidProgramError as e:\n    print('raised', e)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("raised forward step sinx reads z before it is defined")


# -- hand-offs ---------------------------------------------------------------------------------


def test_every_hand_off_is_registered_to_its_stage():
    assert {name: ir.service(name) for name in ir.HANDOFFS} == {
        "source": emit.module_source, "compile": emit.compile_module,
        "evaluate": interpret.program_values, "to_dot": graph.to_dot, "to_svg": graph.to_svg,
        "to_html": page.to_html, "make_printer": printers.make_printer,
        "default_backend": emit.default_backend}


def test_the_hand_offs_work_whatever_module_is_imported_first():
    # Python runs symdiff/__init__.py (which imports handoffs) before any submodule.
    code = ("import sympy as sp\nfrom symdiff.ir import Program\nfrom symdiff.api import lower\n"
            "x = sp.Symbol('x')\nprint(lower(x**2, wrt=[x]).compile('math').value_and_grad(3.0))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stdout.strip() == "(9.0, (6.0,))", done.stderr


def test_an_unregistered_hand_off_is_a_clear_symdiff_error(prog, monkeypatch):
    monkeypatch.setattr(ir, "_services", {})
    calls = {"source": lambda: prog.source("numpy"), "compile": lambda: prog.compile("math"),
             "evaluate": lambda: prog.evaluate({"x": 1, "y": 2}), "to_dot": prog.to_dot,
             "to_svg": prog.to_svg, "_repr_html_": prog._repr_html_}
    for method, call in calls.items():
        with pytest.raises(MissingStageError, match="is not registered") as info:
            call()
        assert "symdiff.handoffs" in str(info.value), method
    assert str(prog).startswith("out = f(x, y)")  # a scalar listing needs no later stage


def test_an_unregistered_listing_printer(monkeypatch):
    x = sp.MatrixSymbol("X", 2, 2)
    prog = symdiff.lower(x.T, wrt=[x])
    monkeypatch.setattr(ir, "_services", {})
    with pytest.raises(MissingStageError, match="listing of a matrix Program needs symdiff."
                                                "printers.make_printer"):
        str(prog)


def test_register_refuses_an_unknown_hand_off():
    with pytest.raises(ArgumentError, match="no Program hand-off is called sorce"):
        ir.register(sorce=emit.module_source)
