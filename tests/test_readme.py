"""The README stays true: its test command is CI's, its generated code is what symdiff writes."""

import ast
import importlib.util
import pathlib
import re

import pytest
import sympy as sp

import symdiff
from symdiff import layers

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


def shown_python(marker: str) -> str:
    """The ```python block between <!-- marker:begin --> and <!-- marker:end -->."""
    return re.search(rf"<!-- {marker}:begin -->\n(?:<!-- needs: [\w, ]+ -->\n)?```python\n(.*?)```"
                     rf"\n<!-- {marker}:end -->", README, re.S).group(1)


def test_readme_shows_the_affine_module_symdiff_writes():
    expected = layers.program("affine").source("numpy", name="affine")
    assert shown_python("affine-numpy") == expected


def test_readme_shows_the_conv_backward_symdiff_writes():
    source = layers.program("conv2d", stride=2, padding=1).source("numpy", name="conv2d")
    functions = {node.name: ast.get_source_segment(source, node)
                 for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    expected = functions["conv2d_backward"] + "\n\n\n" + functions["conv2d_dx"] + "\n"
    assert shown_python("conv-backward") == expected


def test_readme_shows_the_torch_function_symdiff_writes(staged):
    expr, x, y = staged
    source = symdiff.lower(expr, wrt=[x, y]).source("torch")
    (cls,) = [ast.get_source_segment(source, node) for node in ast.parse(source).body
              if isinstance(node, ast.ClassDef)]
    assert shown_python("torch-function") == f"import torch\n\n\n{cls}\n"


def test_readme_batchnorm_formula_is_the_batchnorm_layer():
    namespace = {"sp": sp, "symdiff": symdiff}
    exec(shown_python("batchnorm-formula"), namespace)  # our own README's code
    expected = layers.program("batchnorm").source("numpy", name="batchnorm")
    assert namespace["prog"].source("numpy", name="batchnorm") == expected


def test_readme_shows_the_batchnorm_code_symdiff_writes():
    source = layers.program("batchnorm").source("numpy", name="batchnorm")
    functions = [ast.get_source_segment(source, node) for node in ast.parse(source).body
                 if isinstance(node, ast.FunctionDef)
                 and node.name in ("batchnorm_forward", "batchnorm_backward")]
    assert shown_python("batchnorm-numpy") == "\n\n\n".join(functions) + "\n"


@pytest.mark.parametrize("marker", ["verify-arrays", "verify-staged", "verify-layers",
                                    "verify-conv"])
def test_readme_verify_reports_are_the_real_ones(capsys, marker):
    exec(shown_python(marker), {})  # our own README's code
    printed = capsys.readouterr().out
    end = README.index(f"<!-- {marker}:end -->")
    shown = re.search(r"```text\n(.*?)```", README[end:], re.S).group(1)
    assert printed == shown


def python_blocks():
    """(the libraries a block needs or "", the block): a ``<!-- needs: torch -->`` line right
    above a block names the optional libraries it imports (``dask, array_api_compat``)."""
    return re.findall(r"(?:<!-- needs: ([\w, ]+) -->\n)?```python\n(.*?)```", README, re.S)


def test_every_python_block_runs_as_printed(tmp_path, monkeypatch, capsys):
    """Each ```python block of the README runs on its own, in a fresh namespace, unchanged;
    one that needs an optional library (torch, jax) only where it is installed."""
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert len(blocks) >= 8
    for k, (needs, block) in enumerate(blocks):
        if needs and any(importlib.util.find_spec(n) is None for n in needs.split(", ")):
            continue
        namespace = {"__name__": f"readme_block_{k}"}
        try:
            exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
        except Exception as exc:  # name the block, not just the exception
            raise AssertionError(f"README python block {k + 1} fails: {exc!r}\n{block}") from exc
    capsys.readouterr()


def test_readme_check_report_is_the_real_one(staged):
    expr, x, y = staged
    head = "`symdiff.check(prog)` prints, for the staged example:\n\n```\n"
    shown = README[README.index(head) + len(head):].split("```")[0]
    assert shown == str(symdiff.check(symdiff.lower(expr, wrt=[x, y]))) + "\n"


def test_readme_shows_the_gp_backward_symdiff_writes():
    import sys
    sys.path.insert(0, str(ROOT / "examples"))
    import gp_nll

    source = gp_nll.gp_program().source("numpy", name="gp_nll")
    start = source.index("def gp_nll_backward")
    assert shown_python("gp-backward") == source[start:source.index("\n\n\ndef ", start)] + "\n"


def test_readme_matrix_refusals_are_what_the_code_refuses():
    table = re.search(r"<!-- matrix-refusals:begin -->\n(.*?)<!-- matrix-refusals:end -->",
                      README, re.S).group(1)
    rows = re.findall(r"^\| `(.+?)` \| (.+?) \|$", table, re.M)
    assert len(rows) >= 5
    n = sp.Symbol("n", integer=True, positive=True)
    X = sp.MatrixSymbol("X", n, n)
    for code, words in rows:
        with pytest.raises(symdiff.SymdiffError) as caught:
            expr = eval(code, {"sp": sp, "symdiff": symdiff, "X": X, "n": n})  # README's own
            symdiff.lower(expr, wrt=[X])
        assert words in str(caught.value), (code, str(caught.value))


def test_readme_shows_the_staged_hvp_symdiff_writes(staged):
    expr, x, y = staged
    source = symdiff.lower(expr, wrt=[x, y]).source("math", functions=("hvp",))
    assert shown_python("staged-hvp") == source[source.index("def hvp"):]
