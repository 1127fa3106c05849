"""Formulas nobody on the team wrote: published collections, fed in as they are written.

Issue 11 asks for at least three published formula collections as CI tests. The entries come
from the installed packages themselves (see collections_lib): deap's optimisation test functions
and its symbolic-regression benchmark set, the landscapes test functions, SymPy's physics
formula functions and SymPy's probability densities (plus ML losses we typed as strings: ours,
not published). Every formula is lowered with all its variables in ``wrt``; both generated
backends are run at random in-domain points and compared with sympy.diff at 40 digits; ``check``
must say OK, and ``verify`` of the exact gradient (as expressions, at 10 points) must say OK.
An entry that is not one differentiable formula (random, a Python branch on a value,
complex-valued) is skipped with that reason; a collection whose package is not installed skips.
"""

from __future__ import annotations

import collections_lib as lib
import pytest

import symdiff

PACKAGES = {"deap.benchmarks": "deap", "deap.benchmarks.gp": "deap",
            "landscapes": "landscapes", "sympy.physics": "sympy", "sympy.stats": "sympy",
            "ml-losses-ours": "sympy"}


# Entries that fail today for a reason not fixed yet (issue 11 stays open), with the tests they
# fail: strict xfails, so a fix that makes one pass fails the suite until its line is removed.
KNOWN: dict[str, tuple[str, set]] = {}  # "collection:entry" -> (why, the tests it fails)


def _built() -> list:
    built = []
    for collection, build in lib.all_entries().items():
        try:
            built.append((collection, build()))
        except ImportError:  # the test itself says which package is missing
            built.append((collection, None))
    return built


BUILT = _built()


def _params(test: str) -> list:
    params = []
    for collection, entries in BUILT:
        if entries is None:
            params.append(pytest.param(collection, id=f"{collection}:(not installed)"))
            continue
        for entry in entries:
            marks = [pytest.mark.skip(reason=entry.skip)] if entry.skip else []
            reason, tests = KNOWN.get(entry.id, ("", ()))
            if test in tests:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            params.append(pytest.param(entry, id=entry.id, marks=marks))
    return params


def _installed(entry) -> lib.Entry:
    """The entry, or a clean skip when its collection's package is not installed."""
    if isinstance(entry, str):
        pytest.importorskip(PACKAGES[entry])
        pytest.fail(f"{entry} is importable but its entries could not be built")
    return entry


_ORACLES: dict = {}  # entry id -> Oracle or NoReference (the three tests share them)
_PROGRAMS: dict = {}  # entry id -> Program or the exception lowering raised


def _oracle(entry: lib.Entry) -> lib.Oracle:
    if entry.id not in _ORACLES:
        try:
            _ORACLES[entry.id] = lib.oracle(entry)
        except lib.NoReference as exc:
            _ORACLES[entry.id] = exc
    found = _ORACLES[entry.id]
    if isinstance(found, lib.NoReference):  # e.g. floor: sympy.diff leaves Derivative(floor)
        pytest.skip(f"no reference: {found}")
    return found


def _program(entry: lib.Entry):
    if entry.id not in _PROGRAMS:
        try:
            _PROGRAMS[entry.id] = lib.lower(entry)
        except Exception as exc:  # noqa: BLE001 -- re-raised in every test that needs it
            _PROGRAMS[entry.id] = exc
    found = _PROGRAMS[entry.id]
    if isinstance(found, Exception):
        raise found
    return found


@pytest.mark.parametrize("backend", ["math", "numpy"])
@pytest.mark.parametrize("entry", _params("code"))
def test_generated_code_matches_sympy_diff(entry, backend):
    entry = _installed(entry)
    ref = _oracle(entry)
    rows = lib.run_backend(_program(entry), backend, ref)
    bad = lib.mismatches(rows, ref)
    assert not bad, f"{entry.id} = {entry.expr}\n{len(bad)} wrong:\n" + "\n".join(bad[:6])


@pytest.mark.parametrize("entry", _params("check"))
def test_check_says_ok(entry):
    entry = _installed(entry)
    _oracle(entry)  # skips an entry without a reference, like the other tests
    report = symdiff.check(_program(entry))
    assert report.ok, f"{entry.id}\n{report}"


@pytest.mark.parametrize("entry", _params("verify"))
def test_verify_of_the_exact_gradient_says_ok(entry):
    entry = _installed(entry)
    ref = _oracle(entry)
    report = lib.verify(entry, ref)
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


def test_the_comparison_catches_one_part_in_a_million():
    """The oracle can fail a result: exact floats pass, one partial off by 1e-6 does not."""
    entry = next(e for e in lib.physics_entries() if e.name == "optics.hyperfocal_distance")
    ref = lib.oracle(entry)
    exact = [tuple(float(v) for v in row) for row in ref.values]
    assert not lib.mismatches(exact, ref)
    wrong = [(row[0], row[1] * (1 + 1e-6), *row[2:]) for row in exact]
    assert len(lib.mismatches(wrong, ref)) == len(exact)


def test_the_error_magnitude_keeps_the_scale_of_what_cancels():
    """x - y at x ~ y ~ 1e10 is ~1e-6, but its float error is ~1e10 * 2**-53: the tolerance
    follows the terms, so a correct cancelling formula is not failed on rounding noise."""
    x, y = lib.sp.symbols("x y", real=True)
    size = lib.magnitude(x - y, (x, y), (1e10 + 2e-6, 1e10))
    assert 2e10 <= size <= 3e10
    assert lib.magnitude(x * y, (x, y), (3.0, 4.0)) == 12  # one rounding of the product
