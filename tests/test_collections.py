"""Formulas nobody on the team wrote: published collections, fed in as they are written.

Issue 11 asks for at least three published formula collections as CI tests. The entries come
from the installed packages themselves (see collections_lib): deap's optimisation test functions
and its symbolic-regression benchmark set, the landscapes test functions, and SymPy's physics
formula functions. Every formula is lowered with all its variables in ``wrt``; both generated
backends are run at random in-domain points and compared with sympy.diff at 40 digits; ``check``
must say OK and ``verify`` of the exact gradient (as expressions) must say OK. An entry that is
not one differentiable formula (random, a Python branch on a value, complex-valued) is skipped
with that reason; a package that is not installed skips its collection.
"""

from __future__ import annotations

import functools

import collections_lib as lib
import pytest

import symdiff

PACKAGES = {"deap.benchmarks": "deap", "deap.benchmarks.gp": "deap",
            "landscapes": "landscapes", "sympy.physics": "sympy"}


def _params() -> list:
    params = []
    for collection, build in lib.all_entries().items():
        try:
            entries = build()
        except ImportError:  # the test itself says which package is missing
            params.append(pytest.param(collection, id=f"{collection}:(not installed)"))
            continue
        for entry in entries:
            marks = [pytest.mark.skip(reason=entry.skip)] if entry.skip else []
            params.append(pytest.param(entry, id=entry.id, marks=marks))
    return params


ENTRIES = _params()


def _installed(entry) -> lib.Entry:
    """The entry, or a clean skip when its collection's package is not installed."""
    if isinstance(entry, str):
        pytest.importorskip(PACKAGES[entry])
        pytest.fail(f"{entry} is importable but its entries could not be built")
    return entry


@functools.lru_cache(maxsize=None)
def _oracle(entry: lib.Entry) -> lib.Oracle:
    try:
        return lib.oracle(entry)
    except lib.NoReference as exc:  # e.g. floor: sympy.diff has no derivative to compare with
        pytest.skip(f"no reference: {exc}")


@functools.lru_cache(maxsize=None)
def _program(entry: lib.Entry):
    return lib.lower(entry)


@pytest.mark.parametrize("backend", ["math", "numpy"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_generated_code_matches_sympy_diff(entry, backend):
    entry = _installed(entry)
    ref = _oracle(entry)
    rows = lib.run_backend(_program(entry), backend, ref)
    bad = lib.mismatches(rows, ref)
    assert not bad, f"{entry.id} = {entry.expr}\n{len(bad)} wrong:\n" + "\n".join(bad[:6])


@pytest.mark.parametrize("entry", ENTRIES)
def test_check_says_ok(entry):
    entry = _installed(entry)
    _oracle(entry)  # skips an entry without a reference, like the other tests
    report = symdiff.check(_program(entry))
    assert report.ok, f"{entry.id}\n{report}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_verify_of_the_exact_gradient_says_ok(entry):
    entry = _installed(entry)
    ref = _oracle(entry)
    report = symdiff.verify(entry.expr, list(entry.wrt), ref.diffs)
    assert report.ok, f"{entry.id}\n{report}"


@pytest.mark.parametrize("collection", sorted(PACKAGES))
def test_each_collection_yields_formulas(collection):
    """A collection that silently yields nothing (a renamed module, a new calling convention)
    would make every test above vacuous."""
    pytest.importorskip(PACKAGES[collection])
    entries = lib.all_entries()[collection]()
    usable = [e for e in entries if e.skip is None]
    assert len(usable) >= 8, f"{collection}: only {len(usable)} usable entries"
    assert len(usable) >= 0.8 * len(entries), [(e.id, e.skip) for e in entries if e.skip]


def test_as_written_restores_the_module():
    """The collection's math names point at SymPy's only while its entries are built."""
    import math

    bench = pytest.importorskip("deap.benchmarks")
    with lib.as_written(bench):
        assert bench.cos is lib.sp.cos
    assert bench.cos is math.cos and bench.pi == math.pi
