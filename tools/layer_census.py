"""Census of the layer corpus: how many hand-written layer bugs ``verify`` catches and names.

Runs ``symdiff.verify`` on every correct implementation of ``tests/layer_corpus.py`` (each must
be RIGHT) and on every bug (each must be WRONG), and prints one Markdown table row per run:
layer [style], the bug's label, caught, named (every wrong partial's diagnosis is something
other than "... with no simple pattern"), whether the diagnosis contains the keyword the corpus
expects, the seconds of the verify call, and the diagnosis. Then the totals: correct code
verified RIGHT k/n (false alarms listed), bugs caught k/n, named k/n and the named share.

    PYTHONPATH=src python tools/layer_census.py
    PYTHONPATH=src python tools/layer_census.py --json census.json --only lstm
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import layer_corpus as corpus  # noqa: E402  (tests/layer_corpus.py)
from layer_corpus_base import RAISES  # noqa: E402

WIDTH = 140  # characters of a diagnosis shown in the table (the JSON keeps it whole)


def run(case, bug) -> dict:
    """One verify call and what it found."""
    start = time.perf_counter()
    try:
        report = corpus.verify(case, bug)
        error = ""
    except Exception as exc:  # a corpus entry symdiff cannot run is a finding, not a crash
        report, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    row = {"layer": case.name, "bug": bug.label if bug else "(correct)", "seconds": seconds,
           "expect": bug.expect if bug else "", "false_alarm_known": bool(case.false_alarm)}
    if report is None:
        return {**row, "verdict": "ERROR", "ok": None, "caught": False, "named": False,
                "keyword": False, "wrong_as_expected": False, "diagnosis": error}
    wrong = corpus.wrong_partials(report)
    expected = (tuple(p.name for p in report.partials) if bug and bug.wrong == RAISES
                else bug.wrong if bug else ())
    text = corpus.diagnosis(report)
    return {**row, "verdict": report.verdict(), "ok": report.ok, "caught": not report.ok,
            "named": corpus.named(report), "diagnosis": text,
            "keyword": bool(bug) and keyword_found(report, bug.expect),
            "wrong_as_expected": set(wrong) == set(expected)}


def keyword_found(report, keyword: str) -> bool:
    """The expected keyword is in the diagnosis of every wrong partial (case-insensitive)."""
    wrong = [p for p in report.partials if not p.ok]
    return bool(wrong) and all(keyword.lower() in p.diagnosis.lower() for p in wrong)


def totals(rows: list[dict]) -> dict:
    right = [r for r in rows if r["bug"] == "(correct)"]
    bugs = [r for r in rows if r["bug"] != "(correct)"]
    caught = [r for r in bugs if r["caught"]]
    named = [r for r in caught if r["named"]]
    return {
        "layers": len(right), "correct_right": sum(bool(r["ok"]) for r in right),
        "false_alarms": [r["layer"] for r in right if not r["ok"]],
        "bugs": len(bugs), "caught": len(caught), "named": len(named),
        "named_share": len(named) / len(bugs) if bugs else 0.0,
        "keyword": sum(r["keyword"] for r in bugs),
        "wrong_partials_as_expected": sum(r["wrong_as_expected"] for r in bugs),
        "seconds": sum(r["seconds"] for r in rows), "verify_calls": len(rows),
        "slowest": max(rows, key=lambda r: r["seconds"])["layer"] if rows else "",
        "slowest_seconds": max((r["seconds"] for r in rows), default=0.0),
    }


def _yes(flag) -> str:
    return "yes" if flag else "no"


def table(rows: list[dict]) -> str:
    lines = ["| layer | bug | caught | named | keyword | s | diagnosis |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        text = r["diagnosis"] if r["bug"] != "(correct)" else r["verdict"]
        text = text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."
        correct = r["bug"] == "(correct)"
        lines.append(f"| {r['layer']} | {r['bug']} | {'-' if correct else _yes(r['caught'])} | "
                     f"{'-' if correct else _yes(r['named'])} | "
                     f"{'-' if correct else _yes(r['keyword'])} | {r['seconds']:.2f} | "
                     f"{text.replace('|', '/')} |")
    return "\n".join(lines)


def summary(t: dict) -> str:
    alarms = ", ".join(t["false_alarms"]) or "none"
    return "\n".join([
        f"correct implementations verified RIGHT: {t['correct_right']}/{t['layers']} "
        f"(false alarms: {alarms})",
        f"bugs caught (WRONG): {t['caught']}/{t['bugs']}",
        f"bugs named (not 'no simple pattern'): {t['named']}/{t['bugs']} "
        f"({100 * t['named_share']:.0f}% named)",
        f"diagnosis contains the expected keyword: {t['keyword']}/{t['bugs']}",
        f"wrong partials exactly the ones the bug changes: "
        f"{t['wrong_partials_as_expected']}/{t['bugs']}",
        f"time: {t['seconds']:.1f} s for {t['verify_calls']} verify calls "
        f"({t['seconds'] / max(t['verify_calls'], 1):.2f} s each on average; slowest "
        f"{t['slowest_seconds']:.1f} s, {t['slowest']})",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT", help="also write the rows and totals as JSON")
    parser.add_argument("--only", metavar="TEXT", help="only layers whose name contains TEXT")
    options = parser.parse_args(argv)
    rows = [run(case, bug) for case, bug in corpus.entries()
            if not options.only or options.only in case.name]
    t = totals(rows)
    print(table(rows))
    print()
    print(summary(t))
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps({"rows": rows, "totals": t}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
