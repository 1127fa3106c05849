"""The long fuzz run of issue 6: the two CI fuzz tests with many more examples, counted and timed.

    python tools/fuzz_run.py [EXAMPLES]      # default 2,000 of each; random seeds

Random token strings must give generated code that compiles in both backends or one clear
SymdiffError; random well-formed formulas must lower, compile and run (or be refused by name,
as tests/test_hostile.py allows). Prints the counts, the total time and the slowest example.
"""

import collections
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import test_hostile as hostile  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import symdiff  # noqa: E402


def run(examples: int) -> None:
    counts: collections.Counter = collections.Counter()
    slowest = [0.0, ""]
    options = settings(max_examples=examples, derandomize=False, database=None, deadline=None,
                       suppress_health_check=list(HealthCheck))

    def timed(text, body):
        start = time.perf_counter()
        body(text)
        seconds = time.perf_counter() - start
        if seconds > slowest[0]:
            slowest[:] = [seconds, text]

    def any_string(text):
        try:
            prog = symdiff.lower(text, wrt=["x"])
            for backend in ("math", "numpy"):
                prog.compile(backend)
            counts["compiled"] += 1
        except symdiff.SymdiffError as exc:
            counts[type(exc).__name__] += 1

    def well_formed(text):
        hostile.test_fuzz_well_formed_formulas_compile_and_run.hypothesis.inner_test(text)
        counts["ok"] += 1

    suites = [
        ("random token strings", st.lists(st.sampled_from(hostile.TOKENS), max_size=25)
         .map("".join), any_string),
        ("well-formed formulas", st.recursive(hostile.LEAVES, hostile.well_formed,
                                              max_leaves=10), well_formed),
    ]
    for label, strategy, body in suites:
        counts.clear()
        slowest[:] = [0.0, ""]
        start = time.perf_counter()
        options(given(strategy)(_bound(timed, body)))()
        total = time.perf_counter() - start
        print(f"{label}: {examples} examples {dict(counts)} in {total:.1f} s; slowest "
              f"{slowest[0]:.2f} s on {slowest[1]!r}")


def _bound(timed, body):
    def test(text):
        timed(text, body)

    return test


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
