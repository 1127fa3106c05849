"""Tests of symdiff.backends: the Backend records, their texts, and that nothing else branches
on a backend's name (the records are the one place per fact)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sympy as sp

import symdiff
from symdiff import layers
from symdiff.backends import ALL, BACKENDS, BUNDLED, MATH, NUMPY, Backend, backend_named
from symdiff.emit import default_backend
from symdiff.printers import make_printer, print_expr

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "src" / "symdiff").glob("*.py"))
x, y = sp.symbols("x y", real=True)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- one place per fact


def test_no_code_compares_a_backend_name():
    """``backend == "numpy"`` (or ``!=``, or on a ``backend_name``) nowhere in the package."""
    pattern = re.compile(r"\bbackend\w*\s*[!=]=|[!=]=\s*\w*backend\w*\b")
    found = [f"{p.name}:{n}: {line.strip()}" for p in SOURCES
             for n, line in enumerate(_text(p).splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)


# The stages that treat a matrix program differently, each telling it once: emit (its layout),
# the listing, check and verify (their array judges), the rows of derivatives (a matrix output's
# row keeps the whole-array reverse pass), optimize (it refuses matrix formulas), emit_js (it
# refuses them too), page (a matrix program's page is static).
KIND_DISPATCH = {"emit.py": 1, "ir.py": 1, "check.py": 1, "verify.py": 1,
                 "derivative_rows.py": 1, "optimize.py": 1, "emit_js.py": 1,
                 "page.py": 1}


def test_each_stage_tells_matrix_from_scalar_programs_in_one_place():
    pattern = re.compile(r"shapes is (not )?None")
    found = {p.name: len(pattern.findall(_text(p))) for p in SOURCES}
    assert {k: v for k, v in found.items() if v} == KIND_DISPATCH


def _defines(path: Path, name: str) -> bool:
    for node in ast.walk(ast.parse(_text(path))):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def test_backends_is_defined_in_exactly_one_module():
    files = SOURCES + sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "tools").glob("*.py"))
    defining = [p.relative_to(ROOT).as_posix() for p in files if _defines(p, "BACKENDS")]
    assert defining == ["src/symdiff/backends.py"]
    assert BACKENDS == ("math", "numpy", "torch", "jax", "numba", "array_api") == tuple(
        b.name for b in ALL)
    assert BUNDLED == ("math", "numpy")  # the others need their library (an optional extra)


def test_backends_imports_only_earlier_modules():
    tree = ast.parse(_text(ROOT / "src" / "symdiff" / "backends.py"))
    local = {node.module for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert local == {"errors", "printers", "numba_printer"}


def test_each_record_names_its_printer():
    for backend in ALL:
        assert backend.printer.backend_name == backend.name
        assert type(make_printer(backend.name)) is backend.printer
        assert type(backend.make_printer()) is backend.printer


# ---------------------------------------------------------------- names in, records out


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_named(name):
    record = backend_named(name)
    assert isinstance(record, Backend) and record.name == name


@pytest.mark.parametrize("bad", ["tensorflow", "Math", None, ["math"], 3])
def test_an_unknown_name_is_an_argument_error(bad):
    message = (f"unknown backend {bad!r}: choose 'math' or 'numpy' or 'torch' or 'jax' or "
               "'numba' or 'array_api'")
    with pytest.raises(symdiff.ArgumentError) as raised:
        backend_named(bad)
    assert str(raised.value) == message
    with pytest.raises(symdiff.ArgumentError) as raised:  # the public face says the same
        symdiff.lower(x * y, wrt=[x, y]).source(bad)
    assert str(raised.value) == message


def test_the_printers_and_check_refuse_unknown_names_too():
    with pytest.raises(symdiff.ArgumentError,
                       match="expected one of math, numpy, torch, jax, array_api, numba$"):
        print_expr(x, "tensorflow")
    with pytest.raises(symdiff.ArgumentError,
                       match="'tensorflow': choose from math, numpy, torch, jax, numba, "
                             "array_api$"):
        symdiff.check(symdiff.lower(x * y, wrt=[x, y]), backends=("math", "tensorflow"))


# ---------------------------------------------------------------- the texts of the fields


def test_math_texts():
    assert MATH.imports == "import math" and MATH.module == "math"
    assert MATH.accumulated("dx", "+", "dt*y") == "dx += dt*y"
    assert MATH.accumulated("dx", "-", "dt") == "dx -= dt"
    assert MATH.ones.format(out="out") == "1.0"
    assert (MATH.doc.format(out="out", grads="(dx, dy)")
            == "out and its gradient (dx, dy) at one point")
    assert MATH.folded_doc == MATH.doc
    assert (MATH.sum_call, MATH.atan2_call) == ("math.fsum", "math.atan2")
    assert None is MATH.zeros is MATH.convert is MATH.reduce is MATH.copy is MATH.guard
    assert MATH.blocks is None and not MATH.matrices and not MATH.batched
    assert MATH.uses_module("t = math.exp(x)") and not MATH.uses_module("t = np.exp(x)")
    assert not MATH.uses_module("mymath.exp(x)")


def test_numpy_texts():
    assert NUMPY.imports == "import numpy as np" and NUMPY.module == "np"
    assert NUMPY.accumulated("dx", "+", "dt*y") == "dx = dx + dt*y"  # never in place: aliases
    assert NUMPY.accumulated("dx", "-", "dt") == "dx = dx - dt"
    assert NUMPY.ones.format(out="out") == "np.ones_like(out)"
    assert (NUMPY.doc.format(out="out", grads="(dx,)")
            == "out and the gradient (dx,) of the sum of its entries")
    assert (NUMPY.folded_doc.format(out="out", grads="(dx,)")
            == "out and its gradient (dx,), elementwise (summed if broadcast)")
    assert NUMPY.zeros.format(arg="W") == "np.zeros_like(W)"
    assert NUMPY.convert == "asfloat" and NUMPY.blocks == "in_blocks"
    assert NUMPY.reduced("dx", "x") == "unbroadcast(dx, x)"
    assert NUMPY.reduced("dx", "x", "out") == "unbroadcast(dx, x, np.shape(out))"
    assert NUMPY.copy.format("dy") == "np.array(dy)"
    assert NUMPY.guard == 'with np.errstate(all="ignore"):'
    assert (NUMPY.sum_call, NUMPY.atan2_call) == ("sum", "np.arctan2")
    assert NUMPY.matrices and NUMPY.batched
    assert NUMPY.uses_module("t = np.exp(x)") and not NUMPY.uses_module("t = numpy.exp(x)")


@pytest.mark.parametrize("backend", ALL, ids=BACKENDS)
def test_the_printers_spell_what_the_record_says(backend):
    long_sum = sum(sp.Symbol(f"x{i}") ** 2 for i in range(40))
    assert print_expr(long_sum, backend.name)[0].startswith(f"{backend.sum_call}((\n")
    assert print_expr(sp.atan2(y, x), backend.name)[0] == f"{backend.atan2_call}(y + 0.0, x)"


@pytest.mark.parametrize("backend", ALL, ids=BACKENDS)
def test_generated_modules_carry_the_record_texts(backend):
    prog = symdiff.lower(x * sp.exp(x) + sp.Piecewise((x, x > 0), (y, True)), wrt=[x, y])
    source = prog.source(backend.name)
    assert f"\n{backend.imports}\n" in source
    accumulated = [g for g in prog.backward if g.accumulate]
    assert accumulated
    assert all(re.search(backend.accumulated(g.name, "[+-]", ".*"), source) for g in accumulated)
    if backend.guard is None:  # math: a lazy conditional expression, nothing to silence
        assert "errstate" not in source
    else:
        assert f"    {backend.guard}\n        " in source
    if backend.reduce is not None:
        assert f"{backend.reduce}(dx, x" in source


def test_default_backend_is_the_first_that_has_the_program():
    assert default_backend(symdiff.lower(x * y, wrt=[x, y])) == "math"
    assert default_backend(layers.program("affine")) == "numpy"
    only = "^a matrix formula has only the numpy or torch or jax or array_api backend$"
    with pytest.raises(symdiff.ArgumentError, match=only):
        layers.program("affine").source("math")
