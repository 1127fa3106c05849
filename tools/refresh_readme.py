"""Rewrite the generated-code blocks of README.md with what symdiff writes now.

    python tools/refresh_readme.py

tests/test_readme.py fails whenever a block is stale; this script is how a maintainer updates
them after a deliberate change to the generated code (review the diff before committing).
"""

import ast
import contextlib
import io
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import sympy as sp  # noqa: E402

import symdiff  # noqa: E402
from symdiff import layers  # noqa: E402


def staged_math() -> str:
    x, y = sp.symbols("x y")
    expr = (x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2)
    return symdiff.lower(expr, wrt=[x, y]).source("math")


def affine_numpy() -> str:
    return layers.program("affine").source("numpy", name="affine")


def batchnorm_numpy() -> str:
    source = layers.program("batchnorm").source("numpy", name="batchnorm")
    functions = [ast.get_source_segment(source, node) for node in ast.parse(source).body
                 if isinstance(node, ast.FunctionDef)
                 and node.name in ("batchnorm_forward", "batchnorm_backward")]
    return "\n\n\n".join(functions) + "\n"


BLOCKS = {"staged-math": staged_math, "affine-numpy": affine_numpy,
          "batchnorm-numpy": batchnorm_numpy}


# Blocks whose ```text output, right after them, is what running the block prints.
PRINTING = ("verify-staged", "verify-arrays")


def printed_by(text: str, marker: str) -> str:
    code = re.search(rf"<!-- {marker}:begin -->\n```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # our own README's code
    return out.getvalue()


def main() -> None:
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    for marker, make in BLOCKS.items():
        block = f"<!-- {marker}:begin -->\n```python\n{make()}```\n<!-- {marker}:end -->"
        pattern = rf"<!-- {marker}:begin -->\n```python\n.*?```\n<!-- {marker}:end -->"
        text, count = re.subn(pattern, block.replace("\\", "\\\\"), text, flags=re.S)
        assert count == 1, marker
    for marker in PRINTING:
        end = text.index(f"<!-- {marker}:end -->")
        start = text.index("```text\n", end) + len("```text\n")
        text = text[:start] + printed_by(text, marker) + text[text.index("```", start):]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
