"""The JavaScript emission (emit_js, printers_js, runtime_js.js) against the math backend.

Every module is run by ``node`` (skipped without it), all in one process: the value and
gradient of every formula at every point must equal the math backend's value_and_grad to 1e-12
(relative), where the math backend computes one (where it raises, JavaScript gives NaN or an
infinity and nothing is compared). The formulas: a slice of the enumerated corpus
(tools/enumerate.py) and the gates whose conventions matter (overflow-safe sigmoid and
softplus far out, the non-smooth gates at their kinks, forks, JavaScript's reserved names).
"""

from __future__ import annotations

import json
import math
import pathlib
import random
import shutil
import subprocess
import sys

import pytest
import sympy as sp

import symdiff
from symdiff.emit_js import js_source
from symdiff.errors import SymdiffError, UnsupportedFunctionError
from symdiff.functions import gelu, relu, sigmoid, softplus
from symdiff.printers_js import JS_HELPERS, js_name, print_js

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
import enumerate as corpus  # noqa: E402  (tools/enumerate.py, not the builtin)

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
REL = 1e-12
CORPUS = 240  # enumerated formulas (about 3 s)
x, y = sp.symbols("x y", real=True)

# (formula, points): the conventions the math backend has, at the points where they show.
CONVENTIONS = [
    (sigmoid(x) * y, [(-800.0, 1.0), (800.0, 2.0), (-708.5, 1.0), (0.0, -1.0)]),
    (softplus(x) + softplus(-y), [(-800.0, 700.0), (30.0, -40.0), (0.0, 0.0)]),
    (relu(x) * y + sp.Abs(y), [(0.0, 0.0), (-1.0, 2.0), (3.0, -2.0)]),
    (sp.Max(x, y) + sp.Min(x, 2), [(1.0, 1.0), (2.0, 0.5), (-1.0, 3.0)]),
    (sp.Max(x, y, 1), [(1.0, 1.0), (0.5, 0.5), (3.0, 3.0)]),
    (sp.Heaviside(x) * y + sp.sign(y) * x, [(0.0, 0.0), (1.0, -2.0), (-1.0, 0.0)]),
    (sp.Piecewise((x**2, x > y), (sp.sin(y), True)), [(1.0, 1.0), (2.0, 1.0), (0.0, 1.0)]),
    (sp.atan2(y, x) * x, [(-1.0, 0.0), (1.0, 1.0), (-2.0, -0.0)]),
    (sp.floor(x) * y + sp.ceiling(y), [(1.5, 2.5), (-0.5, 0.0)]),
    ((x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2), [(2.0, -1.0), (0.5, 0.25), (-3.0, 4.0)]),
    (sp.exp(x) * sp.log(y) / (1 + x**2) + sp.cot(x) * sp.asec(y), [(0.5, 2.0), (1.5, 3.0)]),
    (sp.sech(x) + sp.csch(y) + sp.acot(x) + sp.sinc(y), [(800.0, -3.0), (0.0, 1e-3)]),
    (x**sp.Rational(1, 3) + y**-2 + sp.sqrt(x) / y, [(8.0, 2.0), (0.3, -0.7)]),
    (sp.polygamma(0, x) * y + sp.EulerGamma * x, [(0.3, 2.0), (-1.5, 1.0), (12.0, 3.0)]),
    (sp.Add(*(x**k / (k + 1) - y**k for k in range(40))), [(0.9, 0.9), (1.1, -0.7)]),
    (gelu(x) * y + gelu(y), [(0.3, 2.0), (-6.0, 1.5), (-30.0, 4.0)]),
    (sp.erf(x) * y + sp.erfc(y), [(0.3, 2.0), (-1.97, 1.97), (2.5, -2.5), (6.0, 9.0)]),
]


def _named(*names):
    return [sp.Symbol(n, real=True) for n in names]


# Names JavaScript reserves (or the generated code uses) as the user's variables.
RESERVED = [(lambda a, b: a * sp.sin(b) + a**2, _named("var", "Math")),
            (lambda a, b: sp.exp(a) / (1 + b**2), _named("NaN", "function")),
            (lambda a, b: a * b + a, _named("constructor", "__proto__"))]


def _corpus_formulas() -> list[sp.Expr]:
    formulas = []
    for item in corpus.sample(CORPUS, 1):
        try:
            formulas.append(corpus.build(item.tree, item.names))
        except Exception:  # noqa: BLE001  (SymPy failing to build a tree is the harness's)
            continue
    return formulas


def _python(mod, point):
    try:
        value, grad = mod.value_and_grad(*point)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return [value, *grad]


def _cases():
    """(label, js module, [(point, python numbers)]) for every formula the js backend writes."""
    rng = random.Random(18)
    formulas = [(e, None) for e in _corpus_formulas()] + CONVENTIONS
    formulas += [(f(*s), None) for f, s in RESERVED]
    cases, refused = [], 0
    for expr, points in formulas:
        wrt = sorted(expr.free_symbols, key=lambda s: s.name)
        if not wrt:
            continue
        try:
            prog = symdiff.lower(expr, wrt=wrt)
            source = js_source(prog)
        except UnsupportedFunctionError:
            refused += 1
            continue
        except SymdiffError:
            continue
        mod = prog.compile("math")
        if points is None:
            points = [tuple(rng.choice((-1, 1)) * 10 ** rng.uniform(-2, 1) for _ in wrt)
                      for _ in range(3)]
        pairs = [(p, n) for p in points if (n := _python(mod, p)) is not None]
        if pairs:
            cases.append((str(expr), source, pairs))
    return cases, refused


def _run_node(script: str) -> object:
    done = subprocess.run([NODE, "-"], input=script, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= REL * max(abs(a), abs(b))


@needs_node
def test_js_equals_math_backend():
    cases, refused = _cases()
    calls = []
    for _, source, pairs in cases:
        points = ", ".join("[" + ", ".join(repr(float(v)) for v in p) + "]" for p, _ in pairs)
        calls.append(f"(function () {{\n{source}\nreturn [{points}].map((p) => {{ "
                     "const [v, g] = value_and_grad(...p); return [v, ...g].map(String); });"
                     "\n})()")
    got = _run_node("console.log(JSON.stringify([\n" + ",\n".join(calls) + "]));")
    bad, compared = [], 0
    for (label, _, pairs), results in zip(cases, got):
        for (point, python), js in zip(pairs, results):
            for a, b in zip(python, map(float, js)):
                compared += 1
                if not _close(float(a), b):
                    bad.append(f"{label} at {point}: python {a!r}, js {b!r}")
    assert not bad, "\n".join(bad[:20])
    assert len(cases) > 170 and compared > 1000 and refused < len(cases) / 3


@needs_node
def test_trace_terms_add_up_to_the_gradients():
    """trace's terms are the backward lines' terms: each gradient is the sum of its own, in
    order, and the last value is the output."""
    prog = symdiff.lower((x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2), wrt=[x, y])
    got = _run_node(f"{js_source(prog)}\nconsole.log(JSON.stringify(trace(2, -1, 1.0)));")
    sums: dict[str, float] = {}
    for g, term in zip(prog.backward, got["terms"]):
        sums[g.name] = sums[g.name] + term if g.accumulate else term
    value, grad = prog.compile().value_and_grad(2.0, -1.0)
    assert got["values"][-1] == value
    assert [sums["dx"], sums["dy"]] == list(grad)


@needs_node
def test_helpers_equal_the_math_helpers():
    """Every JavaScript helper against its math-backend namesake, at points across its range."""
    from symdiff import runtime_math

    points = [-800.0, -708.2, -30.0, -1.5, -1e-3, 0.0, 1e-3, 0.7, 2.5, 30.0, 800.0]
    two = {"xlogy": [(a, b) for a in (0.0, 2.0, -1.5) for b in (0.5, 3.0)]}
    two.update(erf=[(k / 8,) for k in range(-48, 49)], erfc=[(k / 8,) for k in range(-48, 200)])
    rng = random.Random(7)  # sums that cancel, of terms 40 orders of magnitude apart
    sums = [[rng.choice((-1, 1)) * 10 ** rng.uniform(-20, 20) for _ in range(rng.randint(1, 50))]
            for _ in range(40)]
    two["fsum"] = [(terms + [-t for t in terms[::2]] + [1e-30],) for terms in sums]
    script, expected = [], []
    for name in sorted(JS_HELPERS):
        fn = getattr(runtime_math, name, None) or getattr(math, name)  # erf, erfc: math's
        args = two.get(name, [(p,) for p in points] if name != "logsumexp" else
                       [(a, b, 1.0) for a in points[:6] for b in points[5:]])
        for arg in args:
            try:
                expected.append((name, arg, fn(*arg)))
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            script.append(f"{name}({', '.join(map(repr, arg))})")
    source = "\n".join(JS_HELPERS.values())
    got = _run_node(f"{source}\nconsole.log(JSON.stringify([{', '.join(script)}].map(String)));")
    bad = [f"{n}{a}: {e!r} vs {g}" for (n, a, e), g in zip(expected, got)
           if not _close(e, float(g))]
    assert not bad, bad


def test_names_javascript_reserves_are_renamed():
    a, b = _named("var", "Math")
    source = js_source(symdiff.lower(a * b, wrt=[a, b]))
    assert "function forward($var, $Math)" in source and js_name("x") == "x"


def test_refusals():
    with pytest.raises(UnsupportedFunctionError, match="gamma"):
        print_js(sp.gamma(x))
    with pytest.raises(UnsupportedFunctionError, match="matrix"):
        A = sp.MatrixSymbol("A", 2, 2)
        js_source(symdiff.lower(sp.Trace(A * A), wrt=[A]))


@needs_node
def test_unused_and_non_wrt_arguments():
    """A wrt symbol the formula does not read gets 0; an argument outside wrt gets nothing."""
    z, c = sp.symbols("z c", real=True)
    prog = symdiff.lower(sp.sin(x) * c, wrt=[x, z], args=[x, z, c])
    got = _run_node(f"{js_source(prog)}\nconsole.log(JSON.stringify(value_and_grad(0.7, 2, 3)));")
    value, grads = prog.compile().value_and_grad(0.7, 2.0, 3.0)
    assert _close(got[0], value) and len(got[1]) == 2
    assert _close(got[1][0], grads[0]) and got[1][1] == grads[1] == 0.0


def test_staged_example_module_matches_golden(staged, golden):
    """The signature output in JavaScript: the math module's steps, names and += (reviewed)."""
    expr, x_, y_ = staged
    golden("staged.js", js_source(symdiff.lower(expr, wrt=[x_, y_])))
