"""The offline run of the exhaustive small-formula corpus (issue 11): many trees, counted and timed.

    nice python tools/sweep.py [--count 100000] [--check-count 10000] [--seed 0] [--jobs 1]
                               [--timeout 30] [--budget SECONDS] [--out sweep-results]
    nice python tools/sweep.py --rejudge sweep-results.jsonl --out after-fix

Each of the ``--count`` sampled trees (tools/enumerate.py) goes through lower -> source (math,
numpy) -> run, on the SymPy expression and on its formula string, against sympy.diff at 40
digits; every k-th tree (``--check-count`` of them) also through check and verify. Prints the
counts by outcome and the time; writes OUT.json (counts, every failure class with its three
smallest formulas) and OUT.md (the same as Markdown), also every ``--flush`` seconds while
running, so a long run can be read (or stopped at ``--budget`` seconds) before it ends,
and OUT.jsonl (every record with a finding), which ``--rejudge`` runs again after a fix.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import multiprocessing
import pathlib
import random
import re
import sys
import time
import warnings
from dataclasses import asdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tools")]

import enumerate as corpus  # noqa: E402  (tools/enumerate.py, not the builtin)

EXAMPLES = 3  # smallest reproducing formulas kept per failure class


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.report:
        return _report(args)
    if args.rejudge:
        jobs = _rejudge_jobs(args)
        items = [job[1] for job in jobs]
        every = "(as recorded)"
    else:
        items = corpus.sample(args.count, args.seed)
        every = max(1, len(items) // max(1, args.check_count)) if args.check_count else 0
        jobs = [(i, item, bool(every) and i % every == 0, args.timeout, args.seed)
                for i, item in enumerate(items)]
    random.Random(args.seed).shuffle(jobs)  # any prefix (a --budget stop) spans every size
    print(f"{len(items)} trees (seed {args.seed}), check/verify on every {every or '-'}th; "
          f"jobs {args.jobs}; time limit {args.timeout} s per tree", flush=True)
    start = time.perf_counter()
    records, last = [], start
    for rec in _run(jobs, args.jobs):
        records.append(rec)
        now = time.perf_counter()
        if now - last > args.flush:
            last = now
            _write(args, records, now - start, partial=True)
            print(f"  {len(records)} done in {now - start:.0f} s: {dict(_counts(records))}",
                  flush=True)
        if args.budget and now - start > args.budget:
            print(f"time budget of {args.budget} s reached after {len(records)} trees")
            break
    total = time.perf_counter() - start
    summary = _write(args, records, total, partial=len(records) < len(items))
    print(_table(summary))
    return 0


def _report(args) -> int:
    """Rebuild OUT.md and OUT.json's classes from an earlier run's OUT.json and OUT.jsonl."""
    src = pathlib.Path(args.report)
    summary = json.loads(src.with_suffix(".json").read_text())
    records = [json.loads(line) for line in src.with_suffix(".jsonl").read_text().splitlines()]
    counts = summary["counts"]
    if args.merge:  # a --rejudge run of some of these records replaces them
        records = _merge(records, args, counts)
    for rec in records:  # judge the run's mismatches by today's rule (enumerate._near)
        for f in rec["failures"]:
            if f["stage"] == "run" and f["kind"] in ("wrong", "inaccurate"):
                numbers = _numbers(f["message"])
                near = numbers is not None and corpus._near((None, *numbers))
                f["kind"] = "inaccurate" if near else "wrong"
        old, rec["outcome"] = rec["outcome"], _worst(rec)
        counts[old] -= 1
        counts[rec["outcome"]] += 1
    summary["classes"] = classify(records)
    out = pathlib.Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    out.with_suffix(".md").write_text(markdown(summary))
    print(_table(summary))
    return 0


def _merge(records, args, counts) -> list:
    """Records of a --rejudge run (args.merge, over the outcomes args.only) in place of the
    originals; an original it no longer lists is now plain ok."""
    only = set(args.only.split(",")) if args.only else set(corpus.OUTCOMES)
    path = pathlib.Path(args.merge).with_suffix(".jsonl")
    again = {r["item"]: r for r in map(json.loads, path.read_text().splitlines())}
    out = []
    for rec in records:
        if rec["outcome"] not in only:
            out.append(rec)
            continue
        new = again.get(rec["item"])
        counts[rec["outcome"]] -= 1
        counts[new["outcome"] if new else "ok"] += 1
        if new:
            out.append(new)
    return out


def _relative(got: str, want: str) -> float:
    try:
        g, w = float(got), float(want)
    except ValueError:
        return math.inf
    return abs(g - w) / abs(w) if w else math.inf


def _numbers(message: str):
    """(got, want, tol) of a run mismatch message."""
    found = re.search(r": got (\S+), want (\S+) \(tol (\S+)\)", message)
    try:
        return tuple(float(v) for v in found.groups())
    except (AttributeError, ValueError):  # a complex number from numpy: not near
        return None


def _worst(rec) -> str:
    kinds = {f["kind"] for f in rec["failures"]}
    return next((o for o in corpus.OUTCOMES if o in kinds), rec["outcome"])


def _rejudge_jobs(args) -> list:
    """The formulas of an earlier run's OUT.jsonl (its failures), judged again as they were."""
    jobs = []
    only = set(args.only.split(",")) if args.only else None
    for line in pathlib.Path(args.rejudge).read_text().splitlines():
        rec = json.loads(line)
        if only and rec["outcome"] not in only:
            continue
        size, rank, naming = map(int, re.findall(r"\d+", rec["item"]))
        jobs.append((len(jobs), corpus.Item(size, rank, naming), rec["checked"], args.timeout,
                     args.seed))
    return jobs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100_000, help="trees through lower/source/run")
    p.add_argument("--check-count", type=int, default=10_000, help="of them, through check "
                   "and verify too")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="worker processes (the machine is "
                   "shared: at most 2)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per tree")
    p.add_argument("--budget", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--flush", type=float, default=120.0, help="write results this often (s)")
    p.add_argument("--out", default="sweep-results", help="output path without extension")
    p.add_argument("--report", default="", help="an earlier OUT (no extension): rewrite its "
                   "report from OUT.json and OUT.jsonl into --out")
    p.add_argument("--merge", default="", help="with --report: a --rejudge run's OUT whose "
                   "records replace the originals (of the --only outcomes)")
    p.add_argument("--only", default="", help="with --rejudge: only records with these "
                   "outcomes (comma-separated)")
    p.add_argument("--rejudge", default="", help="an earlier OUT.jsonl: judge its formulas "
                   "again (after a fix) instead of sampling")
    return p


def _judge(job):
    index, item, check_verify, timeout, seed = job
    warnings.filterwarnings("ignore")
    rec = corpus.judge(item, check_verify=check_verify, timeout=timeout, seed=seed)
    return index, asdict(rec)


def _run(jobs, workers):
    if workers <= 1:
        for job in jobs:
            yield _judge(job)[1]
        return
    with multiprocessing.Pool(workers, maxtasksperchild=500) as pool:
        for _, rec in pool.imap_unordered(_judge, jobs, chunksize=4):
            yield rec


def _counts(records) -> collections.Counter:
    return collections.Counter(r["outcome"] for r in records)


def normalise(message: str, names) -> str:
    """A failure message with the numbers and the formula's variable names taken out, so that
    one defect met in many formulas is one class."""
    if ": got " in message:  # a wrong number: which quantity, not where, and whose names
        label = message.split(":", 1)[0]
        what = "wrong value" if label == "value" else "wrong partial"
        got, want = (re.findall(r"(?:got|want) ([^,\s]+)", message) + ["", ""])[:2]
        if got in ("0.0", "-0.0") and want not in ("0.0", "-0.0") and abs(float(want)) < 1e-10:
            what += ": 0.0 where the exact one is tiny but representable"
        elif got in ("nan", "inf", "-inf"):
            what += f": {got} where the exact one is finite"
        elif _relative(got, want) < 1e-2:
            what += ": imprecise (relative error 1e-4 to 1e-2)"
        clash = sorted(n for n in names if n in corpus.COLLIDING)
        return what + (f" (variables named {', '.join(clash)})" if clash else " (x, y)")
    if "WRONG" in message:  # a check or verify report: why it said WRONG, not where
        raised = sorted(set(re.findall(r"(\w+ code raised \w+|raised \w+)", message)))
        if raised:
            return "WRONG: " + "; ".join(raised)
        if re.search(r"WRONG +max rel error [^|]*\(0(\.\d+)?(e-\d+)? of tolerance\)", message):
            return "WRONG although the error it prints is below its tolerance"
        message = re.sub(r"\bd\w+ +WRONG", "d<var> WRONG", message)
    text = re.sub(r"\b(math|numpy)(?=[- ]backend)", "<backend>", message)
    text = re.sub(r"<symdiff-\d+-(math|numpy)>", "<generated code>", text)
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_(])", "<var>", text)
    text = re.sub(r"at [A-Za-z_<>]+=.*?(?=\||$)", "at <point> ", text)
    text = re.sub(r"\[([a-z_]+\.py):\d+", r"[\1", text)
    text = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "#", text)
    text = re.sub(r"`[^`]*`", "`..`", text)
    return re.sub(r"\s+", " ", text).strip()[:160]


def classify(records) -> list[dict]:
    """Failure classes (kind, stage, path, exception, normalised message), most frequent first,
    each with its count and its EXAMPLES smallest formulas."""
    classes: dict = {}
    for rec in records:
        merged: dict = {}
        for f in rec["failures"]:
            if f["kind"] in ("ok", "skipped"):
                continue
            key = (f["kind"], f["stage"], f["path"], f["exc"],
                   normalise(f["message"], rec["wrt"]))
            merged.setdefault(key, (f, set()))[1].add(f["backend"])
        for key, (f, backends) in merged.items():
            entry = classes.setdefault(key, {"kind": key[0], "stage": key[1], "path": key[2],
                                             "exc": key[3], "message": key[4], "count": 0,
                                             "backends": set(), "examples": []})
            entry["count"] += 1
            entry["backends"] |= backends
            entry["examples"].append(_example(rec, f))
    out = []
    for entry in classes.values():
        entry["examples"] = sorted(entry["examples"], key=_smallness)[:EXAMPLES]
        entry["backends"] = sorted(b for b in entry["backends"] if b)
        out.append(entry)
    order = {o: i for i, o in enumerate(corpus.OUTCOMES)}  # defects first, then by count
    return sorted(out, key=lambda e: (e["kind"] not in corpus.DEFECTS, -e["count"],
                                      order[e["kind"]]))


def _example(rec, f) -> dict:
    return {"item": rec["item"], "size": rec["size"], "string": rec["string"],
            "python": rec["python"], "wrt": rec["wrt"], "message": f["message"]}


def _smallness(example) -> tuple:
    return (example["size"], len(example["string"] or example["python"]))


def _write(args, records, seconds, partial) -> dict:
    counts = _counts(records)
    checked = sum(r["checked"] for r in records)
    summary = {
        "command": "python tools/sweep.py " + " ".join(sys.argv[1:]),
        "partial": partial, "trees": len(records), "checked": checked,
        "seconds": round(seconds, 1), "counts": {o: counts.get(o, 0) for o in corpus.OUTCOMES},
        "sizes": dict(sorted(collections.Counter(r["size"] for r in records).items())),
        "string_paths": sum(r["string"] is not None for r in records),
        "timeouts_by_stage": dict(collections.Counter(r["stage"] for r in records
                                                      if r["outcome"] == "timeout")),
        "classes": classify(records),
    }
    out = pathlib.Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    with open(out.with_suffix(".jsonl"), "w") as f:  # every record that is not plain ok
        for rec in records:
            if rec["failures"]:
                f.write(json.dumps(rec) + "\n")
    out.with_suffix(".md").write_text(markdown(summary))
    return summary


def _table(summary) -> str:
    rows = [f"{'outcome':>20}  trees"] + [f"{o:>20}  {n}" for o, n in summary["counts"].items()]
    return "\n".join(rows + [f"{'total':>20}  {summary['trees']} ({summary['checked']} also "
                             f"through check and verify) in {summary['seconds']} s"])


def markdown(summary) -> str:
    """The summary as Markdown: counts, then every failure class with its smallest examples."""
    lines = [f"Command: `{summary['command']}`" + (" (partial)" if summary["partial"] else ""),
             "", f"{summary['trees']} trees ({summary['checked']} also through check and "
             f"verify; {summary['string_paths']} also as formula strings) in "
             f"{summary['seconds']} s; sizes {summary['sizes']}", "",
             "| outcome | trees |", "|---|---|"]
    lines += [f"| {o} | {n} |" for o, n in summary["counts"].items()]
    lines += ["", f"Timeouts by stage: {summary['timeouts_by_stage']}", "",
              "## Failure classes (defects first, each kind most frequent first)", ""]
    for k, c in enumerate(summary["classes"], 1):
        where = f"{c['stage']} ({c['path'] or '-'}; {', '.join(c['backends']) or '-'})"
        lines.append(f"### {k}. {c['kind']}: {where}, {c['exc'] or '-'}: {c['count']} trees")
        lines.append(f"`{c['message']}`")
        lines.append("")
        for ex in c["examples"]:
            formula = ex["string"] or ex["python"]
            lines.append(f"- `{formula}` wrt {ex['wrt']} ({ex['item']}): {ex['message'][:240]}")
            if ex["string"] is None:
                lines.append("  (no string spelling; SymPy code, V(name) = real Symbol)")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
