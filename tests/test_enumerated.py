"""The CI slice of the exhaustive small-formula corpus (issue 11; tools/enumerate.py).

A reproducible slice of the enumerated trees (up to 5 operations over + - * /, integer,
negative, rational and float powers, every unary function of the string syntax, atan2, Max,
Min, Abs, Piecewise, named constants, repeated subtrees, and variables named E, I, S, N, O, Q,
beta, gamma, lambda, zeta, Gamma, pi, sum, max, math, np, dx, out) goes through lower -> source
(math, numpy) -> run, as a SymPy expression and as a formula string, against sympy.diff at 40
digits; every CHECK_EVERY-th one also through check (must say OK) and verify of the exact
gradient (must say OK). Chunks name every failing formula with its stage and message.
The offline run of 100,000 trees is tools/sweep.py.
"""

import pathlib
import sys

import pytest
import sympy as sp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

import enumerate as corpus  # noqa: E402  (tools/enumerate.py, not the builtin)

TREES = 2400  # lower -> source -> run
CHECK_EVERY = 12  # ... and 200 through check and verify
CHUNK = 40
SEED = 0
TIMEOUT = 30.0  # seconds per tree

ITEMS = corpus.sample(TREES, SEED)
CHUNKS = [ITEMS[i:i + CHUNK] for i in range(0, len(ITEMS), CHUNK)]


# Defects this slice found that are not fixed yet (issue 11 stays open for them). Each must
# still fail: when a fix makes one pass, this test fails until its line is removed.
KNOWN: dict[str, str] = {}  # str(Item) -> why it fails (a strict expectation)


def _describe(rec) -> str:
    formula = rec.string if rec.string is not None else rec.python
    lines = [f"{rec.outcome}: {formula}  wrt {rec.wrt}  [{rec.item}]"]
    lines += [f"    {f['kind']} at {f['stage']} ({f['path'] or '-'}, {f['backend'] or '-'}) "
              f"{f['exc']}: {f['message']}" for f in rec.failures
              if f["kind"] in corpus.DEFECTS or _symdiff_timeout(f)]
    return "\n".join(lines)


def _symdiff_timeout(failure) -> bool:
    """A timeout inside symdiff is a defect (one in building the formula or in the oracle is
    recorded as skipped: ``corpus.HARNESS_STAGES``)."""
    return failure["kind"] == "timeout"


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_enumerated_formulas(chunk):
    bad, known_failing = [], set()
    for k, item in enumerate(CHUNKS[chunk]):
        index = chunk * CHUNK + k
        rec = corpus.judge(item, check_verify=index % CHECK_EVERY == 0, timeout=TIMEOUT)
        if any(f["kind"] in corpus.DEFECTS or _symdiff_timeout(f) for f in rec.failures):
            if str(rec.item) in KNOWN:
                known_failing.add(str(rec.item))
            else:
                bad.append(_describe(rec))
    assert not bad, f"{len(bad)} of {len(CHUNKS[chunk])} formulas fail:\n" + "\n".join(bad)
    fixed = {str(i) for i in CHUNKS[chunk]} & set(KNOWN) - known_failing
    assert not fixed, f"known failures now pass, remove them from KNOWN: {sorted(fixed)}"


def test_the_slice_covers_the_grammar():
    """The slice reaches every operation of the grammar, every size and every naming."""
    keys = set().union(*(corpus.keys(item.tree) for item in ITEMS))
    missing = sorted(set(corpus.OPS) - keys - {"v0", "v1"})
    assert not missing, f"operations the CI slice never uses: {missing}"
    assert {item.size for item in ITEMS} == set(range(corpus.MAX_SIZE + 1))
    assert any(item.tree[0] == "repeat" for item in ITEMS)
    names = {n for item in ITEMS for n in item.names.values()}
    assert set(corpus.COLLIDING) <= names


def test_enumeration_is_a_bijection():
    """tree_at and rank_of invert each other, on every tree of size 1 and on sampled ones."""
    for rank in range(corpus.count(1)):
        assert corpus.rank_of(corpus.tree_at(1, rank)) == rank
    for item in ITEMS[::7]:
        assert corpus.size_of(item.tree) == item.size
        assert corpus.rank_of(item.tree) == item.rank


def test_the_oracle_catches_a_wrong_gradient():
    """The harness's comparison is not vacuous: a program whose gradient is off by 1e-6
    relative (or whose value is) is reported wrong; the exact one passes."""
    import sympy as sp

    x = sp.Symbol("x", real=True)
    oracle = corpus.Oracle(sp.sin(x) * sp.exp(x), [x])
    (point, want, tol), = corpus.points_for(oracle, "self-test", 1)
    assert corpus._mismatch(["x"], want, tol, want) is None
    off = [want[0], want[1] * (1 + 1e-6)]
    assert corpus._mismatch(["x"], want, tol, off)[0] == "dx"
    assert corpus._mismatch(["x"], want, tol, [want[0] + 1e-6 * abs(want[0]) + 1e-9,
                                               want[1]])[0] == "value"


def test_an_honest_inf_where_no_digit_is_determined_is_not_a_defect():
    """3/log(tanh(x**2)**-2) at x = -5.85: tanh rounds to 1 and the math code divides by zero,
    where the oracle's own tolerance exceeds the value (floats determine no digit there); the
    formula is judged at its other points. A raise where digits are determined is a crash."""
    rec = corpus.judge(corpus.Item(5, 21534147501187099, 37), check_verify=True, timeout=TIMEOUT)
    assert rec.outcome == "ok", rec.failures

    class Raising:
        def value_and_grad(self, *args):
            raise ZeroDivisionError("planted")

    item = corpus.Item(1, 1, 0)  # -y
    rec = corpus.judge(item)
    oracle = corpus.Oracle(corpus.build(item.tree, item.names),
                           [sp.Symbol(n, real=True) for n in rec.wrt])
    pts = corpus.points_for(oracle, "self-test", 1)
    assert rec.wrt == ["y"] and pts and not oracle.rounds_onto_a_singularity(pts[0][0], pts[0][1])
    assert not corpus._run(rec, "sympy", "math", Raising(), pts, oracle)
    assert rec.failures[-1]["kind"] == "crash"
