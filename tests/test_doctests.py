"""Every docstring example in src/symdiff runs and prints what it shows (examples are docs)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import shutil

import pytest

import symdiff
from symdiff.backends import ALL

# __main__ runs the command line when imported, and has no examples.
MODULES = sorted(m.name for m in pkgutil.iter_modules(symdiff.__path__) if m.name != "__main__")
# the helpers of a framework backend import the framework (an optional extra)
NEEDS = {f"runtime_{b.name}": b.library for b in ALL if b.library}
# programs the examples run (the page's example lays its graph out with Graphviz's dot)
TOOLS = {"page": "dot"}


def imported(name: str):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    if name in TOOLS and shutil.which(TOOLS[name]) is None:
        pytest.skip(f"the examples of {name} run {TOOLS[name]}, which is not installed")
    return importlib.import_module(f"symdiff.{name}")


def examples(module) -> int:
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(module))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = imported(name)
    result = doctest.testmod(module)  # a failure prints its example, expected and got
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_doctests_are_found():
    assert examples(symdiff.naming) >= 2
    assert sum(examples(importlib.import_module(f"symdiff.{n}")) for n in MODULES
               if n not in NEEDS) >= 20
