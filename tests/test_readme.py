"""The README stays true: its test command is CI's, its generated code is what symdiff writes."""

import pathlib
import re

import sympy as sp

import symdiff

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shell_blocks():
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    install_and_run, install_and_test = shell_blocks()[:2]
    assert "symdiff gen" in install_and_run and "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_shows_the_code_symdiff_writes(staged):
    expr, x, y = staged
    shown = re.search(r"<!-- staged-math:begin -->\n```python\n(.*?)```\n<!-- staged-math:end -->",
                      README, re.S).group(1)
    assert shown == symdiff.lower(expr, wrt=[x, y]).source("math")


def test_readme_numbers_are_the_real_ones(staged):
    expr, x, y = staged
    value, grads = symdiff.grad(expr, wrt=[x, y])(3.0, -4.0)
    assert f"({value!r}, ({grads[0]!r}, {grads[1]!r}))" in README
    exact = [sp.diff(expr, v).subs({x: 3, y: -4}).evalf(30) for v in (x, y)]
    assert all(abs(g - float(e)) < 1e-14 for g, e in zip(grads, exact))
