"""benchmarks/run.py completes at its smallest size and its figures are consistent (not fast)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """``python benchmarks/run.py --smoke`` run once: (the JSON it wrote, what it printed)."""
    path = tmp_path_factory.mktemp("bench") / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH")] if p)
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", str(path)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(path.read_text(encoding="utf-8")), done.stdout


def test_json_records_the_run(smoke):
    written, _ = smoke
    assert written["config"]["mode"] == "smoke" and written["config"]["sizes"] == [10]
    assert written["command"].startswith("python benchmarks/run.py --smoke --json ")
    assert {"platform", "cpu", "cores", "python", "numpy", "sympy"} <= set(written["machine"])


def test_operation_counts_are_consistent(smoke):
    written, _ = smoke
    formulas = {(r["formula"], r["size"]) for r in written["generation"]}
    assert formulas == {("rosenbrock", 10), ("chain", 10), ("staged", None)}
    for row in written["generation"]:
        ops = row["symdiff"]
        assert ops["forward"] > 0 and ops["backward"] > 0
        assert ops["ratio"] == pytest.approx(ops["backward"] / ops["forward"])
        assert ops["lower_s"] > 0 and ops["source_s"] > 0
        assert ops["total_s"] == pytest.approx(ops["lower_s"] + ops["source_s"])


def test_sympy_route_records_figures_or_a_status(smoke):
    written, _ = smoke
    for row in written["generation"]:
        route = row["sympy"]
        assert route["status"] in ("ok", "timeout", "not run") or route["status"].startswith(
            ("error", "crashed"))
        if route["status"] == "ok":
            assert route["cse_ops"] > 0
            assert route["total_s"] == pytest.approx(
                route["diff_s"] + route["cse_s"] + route["lambdify_s"])
    by_formula = {r["formula"]: r["sympy"]["status"] for r in written["generation"]}
    assert by_formula["staged"] == "ok"  # small enough for any machine's 2 s


def test_every_implementation_agrees_and_ratios_are_to_the_first_row(smoke):
    written, _ = smoke
    assert written["numpy"]["points"] == 10_000
    for section in ("math", "numpy"):
        rows = written[section]["rows"]
        assert len(rows) >= 3 and all(r["agrees"] for r in rows)
        assert rows[0]["vs_reference"] == 1.0
        for r in rows:
            assert r["seconds"] > 0 and math.isclose(
                r["vs_reference"], r["seconds"] / rows[0]["seconds"])
    assert all(r["status"] == "skipped (--smoke)" for r in written["frameworks"]["rows"])


def test_report_is_markdown_with_every_section(smoke):
    written, printed = smoke
    assert printed.startswith("Machine: ") and written["machine"]["cpu"] in printed
    for title in ("### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "### 9.", "### Targets"):
        assert title in printed
    assert printed.count("|---|") >= 6
    assert {t["met"] for t in written["targets"]} <= {True, False, None, "info"}


def test_second_order_figures_are_consistent(smoke):
    written, printed = smoke
    section = written["second_order"]
    assert [r["formula"] for r in section["hvp"]] == ["rosenbrock", "chain", "staged"]  # size 10
    for row in section["hvp"]:
        assert row["ops_ratio"] == pytest.approx(row["hvp_ops"] / row["gradient_ops"])
        assert [r["implementation"] for r in row["rows"]][:2] == [
            "symdiff math value_and_grad", "symdiff math hvp"]
        assert all(r["agrees"] for r in row["rows"])
    for row in section["jacobian"]:
        assert row["bound"] == min(row["m"], row["n"])
        assert row["sweeps"] == ("forward" if row["m"] > row["n"] else "reverse")
    assert "### 8. Second order" in printed


def test_the_convolution_section_agrees_with_symdiff(smoke):
    written, _ = smoke
    rows = written["conv"]["rows"]
    assert [r["implementation"] for r in rows[:2]] == ["symdiff (generated)",
                                                       "im2col (hand NumPy)"]
    assert all(r["agrees"] for r in rows[:2]) and rows[0]["vs_reference"] == 1.0
    assert rows[2]["status"] == "skipped (--smoke)"
    assert any(t["target"].startswith("conv2d forward + backward") for t in written["targets"])
