"""The shape of the package: modules in layers, each importing only earlier ones; small files.

Every module of src/symdiff is parsed with ``ast`` (nothing is imported), and every import of a
symdiff module, at the top or inside a function, is an edge of the import graph. The graph must
be acyclic and every edge must point to a module earlier in ``LAYERS`` (the order docs/DESIGN.md
lists). Files over ``MAX_FILE_LINES`` and functions over ``MAX_FUNCTION_LINES`` fail, except the
known offenders listed below, which are strict expected failures: when one is fixed, its test
passes unexpectedly and fails the suite until it is taken off the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "symdiff"

# The module order (the list at the top of docs/DESIGN.md): a module imports only modules before
# it, in its own layer or an earlier one.
LAYERS = {
    "ground": ("errors", "_version", "dag", "ir", "functions", "tensor_ops", "array_ops",
               "runtime_math", "runtime_numpy", "runtime_tensor", "runtime_torch", "runtime_jax",
               "runtime_numba", "runtime_array_api", "runtime"),
    "tables": ("ops", "mpeval", "staged_printer", "gate_printer", "printers", "printers_js",
               "numba_printer", "backends", "adapters", "rules", "stable"),
    "pipeline": ("guards", "spellings", "parse", "naming", "lower", "reverse", "tangent",
                 "sparsity", "matrix", "tensor", "index_notation", "matrix_forms", "lower_matrix",
                 "api", "writer",
                 "emit_tangent", "emit_numba", "emit", "emit_js"),
    "judgement": ("numeric", "sampling", "interpret", "roundoff", "tolerance", "reference",
                  "array_reference", "reports", "diagnose", "matrix_diagnose", "tensor_diagnose",
                  "array_diagnose",
                  "hand", "derivative_rows", "array_check", "check",
                  "array_verify", "verify"),
    "faces": ("graph", "page", "handoffs", "layers", "optimize", "cli", "__main__", "__init__"),
}
ORDER = [m for layer in LAYERS.values() for m in layer]

MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60
# Known offenders, split by later parts of issue 12. Each is an xfail(strict=True): fixing one
# makes its test pass unexpectedly, which fails the suite until the entry is removed here.
LONG_FILES: dict[str, str] = {}  # file -> reason (none)
LONG_FUNCTIONS: dict[str, str] = {}  # file -> reason, for files with a long function (none)


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), filename=str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def _target(node: ast.Import | ast.ImportFrom, alias: ast.alias, modules) -> str | None:
    """The symdiff module an import names, or None for an import from outside the package."""
    if isinstance(node, ast.Import):
        parts = alias.name.split(".")
        if parts[0] != "symdiff":
            return None
        return parts[1] if len(parts) > 1 else "__init__"
    if node.level == 0 and (node.module or "").split(".")[0] != "symdiff":
        return None
    if node.level > 1:
        raise AssertionError(f"line {node.lineno}: an import reaches above the package")
    parts = (node.module or "").split(".")[node.level == 0:]  # drop "symdiff" when absolute
    if parts and parts[0]:
        return parts[0]
    return alias.name if alias.name in modules else "__init__"  # from . import name


def _imports(tree: ast.Module, modules) -> list[tuple[str, int, bool]]:
    """(target module, line, inside a function) for every import of a symdiff module."""
    found = []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for alias in child.names:
                    target = _target(child, alias, modules)
                    if target is not None:
                        found.append((target, child.lineno, in_function))
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(tree, False)
    return found


MODULES = _modules()
GRAPH = {name: _imports(tree, MODULES) for name, tree in MODULES.items()}


def test_every_module_has_a_place_in_the_layers():
    assert len(ORDER) == len(set(ORDER)), "a module is listed twice in LAYERS"
    assert set(ORDER) == set(MODULES), (
        f"not in LAYERS: {sorted(set(MODULES) - set(ORDER))}; "
        f"listed but missing: {sorted(set(ORDER) - set(MODULES))}")


def test_imports_name_real_modules():
    unknown = [f"{m}.py:{line} imports {t}" for m, edges in GRAPH.items()
               for t, line, _ in edges if t not in MODULES]
    assert not unknown


def test_the_import_graph_is_acyclic():
    edges = {m: {t for t, _, _ in GRAPH[m] if t != m} for m in GRAPH}
    state: dict[str, str] = {}

    def cycle_from(start):  # iterative depth-first search; returns a cycle or None
        stack, path = [(start, iter(sorted(edges[start])))], [start]
        state[start] = "open"
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = "done"
                stack.pop()
                path.pop()
            elif state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state and nxt in edges:
                state[nxt] = "open"
                stack.append((nxt, iter(sorted(edges[nxt]))))
                path.append(nxt)
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = cycle_from(module)
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_every_import_goes_to_an_earlier_module():
    position = {m: k for k, m in enumerate(ORDER)}
    late = [f"{m}.py:{line} imports {t} ({_layer(t)}), which is not before {m} ({_layer(m)})"
            for m, edges in GRAPH.items() for t, line, _ in edges
            if t in position and m in position and position[t] >= position[m]]
    assert not late, "\n".join(late)


def test_no_function_level_import_of_symdiff():
    # In a strict order there is no cycle for a function-level import to break: an import of an
    # earlier module belongs at the top, and one of a later module is a layering error.
    inner = [f"{m}.py:{line} imports {t} inside a function"
             for m, edges in GRAPH.items() for t, line, inside in edges if inside]
    assert not inner, "\n".join(inner)


def test_the_self_test_sees_every_kind_of_import():
    tree = ast.parse("import symdiff\nimport symdiff.ir\nfrom symdiff import dag\n"
                     "from symdiff.emit import x\nfrom . import __version__\nfrom . import ir\n"
                     "from .numeric import y\nimport numpy\nfrom sympy import z\n"
                     "def f():\n    from .graph import to_dot\n")
    got = _imports(tree, MODULES)
    assert got == [("__init__", 1, False), ("ir", 2, False), ("dag", 3, False),
                   ("emit", 4, False), ("__init__", 5, False), ("ir", 6, False),
                   ("numeric", 7, False), ("graph", 11, True)]


def _layer(module: str) -> str:
    return next((name for name, layer in LAYERS.items() if module in layer), "no layer")


# -- sizes ------------------------------------------------------------------------------------


def _every_file(known: dict[str, str]) -> list:
    """Every module file; the known offenders are strict expected failures (see LONG_FILES)."""

    def mark(file):
        why = f"known offender ({known[file]}); once fixed, delete its entry in this test file"
        return pytest.mark.xfail(strict=True, reason=why)

    return [pytest.param(f, marks=mark(f)) if f in known else f
            for f in sorted(f"{m}.py" for m in MODULES)]


def _long_functions(tree: ast.Module) -> list[str]:
    """``Class.method (72 lines)`` for every function or method over MAX_FUNCTION_LINES."""
    found = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name + "."
                size = child.end_lineno - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and size > MAX_FUNCTION_LINES:
                    found.append(f"{prefix}{child.name} ({size} lines)")
            walk(child, name)

    walk(tree, "")
    return found


def test_known_offenders_are_module_files():
    files = {f"{m}.py" for m in MODULES}
    assert set(LONG_FILES) <= files and set(LONG_FUNCTIONS) <= files


@pytest.mark.parametrize("file", _every_file(LONG_FILES))
def test_no_file_is_long(file):
    lines = len((PACKAGE / file).read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{file} has {lines} lines (at most {MAX_FILE_LINES})"


@pytest.mark.parametrize("file", _every_file(LONG_FUNCTIONS))
def test_no_function_is_long(file):
    long = _long_functions(MODULES[file.removesuffix(".py")])
    assert not long, f"{file}: over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
