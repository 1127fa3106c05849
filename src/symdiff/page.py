"""An interactive backprop page: one self-contained HTML file for a scalar Program.

The page shows the computational graph (laid out by Graphviz's ``dot`` when the page is written,
as ``to_svg`` lays it out, then drawn here as SVG), a number box and a slider for every argument,
the forward value on every edge and below it the gradient flowing back along it, and the
generated Python ``forward`` and ``backward`` beside the graph. The numbers are computed in the
browser by the JavaScript emission of the same staged program (emit_js: same steps, same names,
same ``+=`` at forks), so they change as the inputs do. "forward" steps through the forward
lines, "backward" through the backward lines (the gate, its local derivative, the product with
the upstream gradient, the ``+=`` at a fork), each with its Python line highlighted.

The file needs no network: the script (page.js), the style (page.css) and the data are inline.
Contract for tests and scripts: every argument is an ``<input type="number" name="<arg>">``;
every node label (arguments and steps) carries ``data-step``, ``data-value`` and ``data-grad``
(the full-precision numbers shown); buttons ``step-forward``, ``step-backward`` and ``reset``;
the highlighted node has class ``current``. Only names the program sanitized and numbers reach
the markup; every text is escaped, and the data is JSON with ``<``, ``>`` and ``&`` escaped.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
from importlib.resources import files

import numpy as np
import sympy as sp

from .dag import postorder
from .emit import default_backend, module_source
from .emit_js import js_source, trace_grad_names
from .errors import ArgumentError, MissingToolError, SymdiffError
from .graph import ARRAY_ENTRIES, INSTALL_HINT
from .interpret import program_trace
from .ir import Program
from .printers import make_printer

LINE = 14  # px per text line
OP_CHARS = 30  # a node's operation is cut to this many characters
LEAD = ("the values (black, above each edge) flow forward and the gradients (red, below) "
        "flow back. Step through the program with the buttons.")
NUMBER = "-0.000000"  # room for a number on the page (most are this wide: page.js's fmt)


def to_html(prog: Program, at: dict | None = None) -> str:
    """The page's HTML text (see the module docstring); ``at`` is where the inputs start
    (default 1 for every argument).

    >>> import sympy as sp, symdiff
    >>> p, c, t = sp.symbols("price count tax")
    >>> page = symdiff.lower(p * c * t, wrt=[p, c, t]).to_html(at={p: 100, c: 2, t: 1.1})
    >>> '<input type="number" name="price"' in page
    True
    """
    if prog.shapes is None:  # live: the JavaScript trace, which refuses what it cannot compute
        point = prog.resolve_point(at) if at is not None else dict.fromkeys(prog.args, 1.0)
        script = js_source(prog).replace("</", "<\\/").replace("<!--", "<\\!--")  # (comments)
        data = _data(prog, lambda e: sp.sstr(e, order="none"))
        inputs = "\n".join(_input(name, point[name]) for name in prog.args)
    else:  # a matrix program: the numbers at ``at``, computed now (at 50 digits)
        if at is None:
            raise ArgumentError("the page of a matrix program shows it at given arrays: pass "
                                "at={name: array, ...}")
        script, data = "", _data(prog, make_printer("numpy").line)
        data["static"] = _static_trace(prog, prog.resolve_point(at))
        data["width"] = max(len(_text(v)) for part in ("values", "terms", "grads")
                            for v in data["static"][part])
        inputs = ('<p class="static">A matrix program: the values at the arrays given when the '
                  "page was written (shapes, first entries and norm ‖·‖ of every array).</p>")
    svg = _svg(prog, data, _layout(prog, data))
    return _PAGE.format(
        title=html.escape(f"symdiff: {prog.output} = {prog.text}"[:200]),
        style=_asset("page.css"), formula=html.escape(prog.text or prog.output), inputs=inputs,
        lead=LEAD[0].upper() + LEAD[1:] if "static" in data else f"Drag an input: {LEAD}",
        svg=svg, code=_code(prog, data), module=script, data=_json(data),
        script=_asset("page.js"))


def _static_trace(prog: Program, point: dict) -> dict:
    """What page.js's trace() would return, at ``point``: numbers, and arrays summarized."""
    values, terms = program_trace(prog, point)
    names = [*prog.args, *(s.name for s in prog.forward)]
    return {"values": [_shown(values[n]) for n in names], "terms": [_shown(t) for t in terms],
            "grads": [_shown(values[g]) if g in values else None for g in trace_grad_names(prog)],
            "locals": [None] * len(prog.backward)}


def _shown(value):
    """A number (JSON has no nan or inf), or an array as its summary text and its entries."""
    if np.ndim(value) == 0 and np.isfinite(value):
        return float(value)
    array = np.asarray(value, dtype=float)
    data = json.dumps(array.tolist()) if array.size <= 1000 else ""
    if array.ndim == 0:
        return {"text": "undefined" if np.isnan(array) else str(float(array)), "data": data}
    head = " ".join(f"{v:.3g}" for v in array.ravel()[:ARRAY_ENTRIES])
    more = " …" if array.size > ARRAY_ENTRIES else ""
    shape = "×".join(map(str, array.shape))
    return {"text": f"{shape} [{head}{more}] ‖{np.linalg.norm(array):.3g}‖", "data": data}


def _text(value) -> str:
    return value["text"] if isinstance(value, dict) else f"{value:.6g}"


def _asset(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json(data) -> str:
    """JSON that cannot end a <script> element or open a comment in it."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _operands(step) -> list[str]:
    """The names a step reads, in order of first appearance, each once (as graph.py draws)."""
    return list(dict.fromkeys(n.name for n in postorder(step.rhs) if n.is_Symbol))


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _short(text: str) -> str:
    """An operation as the page shows it: on one line, cut, small integer powers raised
    (``-invden**2``: ``-invden²``)."""
    text = re.sub(r"\*\*(\d{1,2})(?![\d.])", lambda m: m.group(1).translate(_SUPERSCRIPT),
                  " ".join(text.split()))
    return text if len(text) <= OP_CHARS else text[:OP_CHARS - 3] + "..."


def _data(prog: Program, text) -> dict:
    """What page.js needs: the nodes, edges, forward and backward lines, and where trace puts
    each number (values: arguments then steps; grads: trace_grad_names); ``text`` prints an
    operation."""
    values = [*prog.args, *(s.name for s in prog.forward)]
    grads = trace_grad_names(prog)
    grad_of = {i.name: i.grad for i in prog.inputs if i.grad}
    grad_of.update((s.name, "d" + s.name) for s in prog.forward)
    value_of = {g: v for v, g in grad_of.items()}
    index = set(values)  # (a matrix step may also read a dimension, drawn as no node)
    nodes = [{"name": n, "kind": "input" if k < len(prog.args) else "step", "grad": grad_of.get(n),
              "gi": grads.index(grad_of[n]) if grad_of.get(n) in grads else None,
              "op": "" if k < len(prog.args) else _short(text(prog.step(n).rhs))}
             for k, n in enumerate(values)]
    nodes[-1]["kind"] = "output"
    term = {(g.name, g.source): k for k, g in enumerate(prog.backward)}
    edges = [{"from": values.index(o), "to": values.index(s.name),
              "term": term.get((grad_of.get(o), s.name))}
             for s in prog.forward for o in _operands(s) if o in index]
    backward = [{"name": g.name, "of": values.index(value_of[g.name]),
                 "upstream": g.upstream, "ui": grads.index(g.upstream),
                 "source": values.index(g.source), "accumulate": g.accumulate,
                 "gi": grads.index(g.name),
                 "local": _short(text(g.local)), "whole": g.whole,
                 "edge": next((k for k, e in enumerate(edges) if e["term"] == i), None)}
                for i, g in enumerate(prog.backward)]
    forward = [{"node": len(prog.args) + k} for k in range(len(prog.forward))]
    return {"args": list(prog.args), "nodes": nodes, "edges": edges, "forward": forward,
            "backward": backward, "grads": grads, "width": len(NUMBER)}


def _node_lines(node: dict, width: int) -> list[str]:
    number = "0" * width
    lines = [node["name"]] + ([node["op"]] if node["op"] else []) + [f"= {number}"]
    return lines + ([f"{node['grad']} = {number}"] if node["grad"] else [])


def _layout(prog: Program, data: dict) -> dict:
    """Graphviz's layout (``dot -Tplain``) of the nodes and edges, sized for the page's text:
    the canvas, each node's box and each edge's spline and label position, in px."""
    dot = shutil.which("dot")
    if dot is None:
        raise MissingToolError(f"the page's layout needs Graphviz's `dot` program: {INSTALL_HINT}")
    lines = ["digraph symdiff {", "rankdir=LR; ranksep=0.35; nodesep=0.2;",
             'node [shape=box, fontname="Courier", fontsize=11];',
             'edge [fontname="Courier", fontsize=11];']
    for k, node in enumerate(data["nodes"]):
        label = "\\n".join("0" * len(t) for t in _node_lines(node, data["width"]))
        lines.append(f'n{k} [label="{label}"];')
    for e in data["edges"]:
        label = f"{'0' * data['width']}\\n{'0' * data['width']}"
        lines.append(f'n{e["from"]} -> n{e["to"]} [label="{label}"];')
    try:
        done = subprocess.run([dot, "-Tplain"], input="\n".join(lines + ["}"]),
                              capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise SymdiffError("Graphviz's dot took more than 60 s to lay out the graph") from None
    if done.returncode != 0:
        raise SymdiffError(f"Graphviz's dot failed: {done.stderr.strip()[:300]}")
    return _read_plain(done.stdout)


def _read_plain(text: str) -> dict:
    """Graphviz's plain format (inches, y up) as px with y down; edges by (tail, head)."""
    nodes, edges, height, width = {}, {}, 0.0, 0.0
    for line in text.splitlines():
        parts = shlex.split(line)
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]) * 72, float(parts[3]) * 72
        elif parts[0] == "node":
            x, y, w, h = (float(v) * 72 for v in parts[2:6])
            nodes[parts[1]] = (x, height - y, w, h)
        elif parts[0] == "edge":
            n = int(parts[3])
            points = [(float(parts[4 + 2 * i]) * 72, height - float(parts[5 + 2 * i]) * 72)
                      for i in range(n)]
            rest = parts[4 + 2 * n:]
            label = ((float(rest[1]) * 72, height - float(rest[2]) * 72) if len(rest) > 3
                     else None)
            edges[parts[1], parts[2]] = (points, label)
    return {"width": width, "height": height, "nodes": nodes, "edges": edges}


def _svg(prog: Program, data: dict, layout: dict) -> str:
    width, height = layout["width"] + 8, layout["height"] + 8
    out = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="-4 -4 {width:.0f} {height:.0f}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="1" refY="5" markerWidth="8" '
           'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
           '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    for k, e in enumerate(data["edges"]):  # (dot lists them in an order of its own)
        points, label = layout["edges"][f"n{e['from']}", f"n{e['to']}"]
        (x0, y0), rest = points[0], points[1:]
        path = f"M{x0:.1f},{y0:.1f} " + " ".join(
            "C" + " ".join(f"{x:.1f},{y:.1f}" for x, y in rest[i:i + 3])
            for i in range(0, len(rest) - 2, 3))
        lx, ly = label if label else rest[-1]
        ends = (html.escape(data["nodes"][e[end]]["name"], quote=True) for end in ("from", "to"))
        out.append('<g class="edge" id="e{}" data-from="{}" data-to="{}">'.format(k, *ends) +
                   f'<path d="{path}" marker-end="url(#arrow)"/>'
                   f'<text class="value" x="{lx:.1f}" y="{ly - 2:.1f}"></text>'
                   f'<text class="grad" x="{lx:.1f}" y="{ly + LINE - 2:.1f}"></text></g>')
    for k, node in enumerate(data["nodes"]):
        out.append(_svg_node(k, node, layout["nodes"][f"n{k}"], data["width"]))
    return "\n".join(out + ["</svg>"])


def _svg_node(k: int, node: dict, box, width: int) -> str:
    x, y, w, h = box
    lines = _node_lines(node, width)
    top = y - LINE * len(lines) / 2 + LINE - 3
    kinds = ["name"] + (["op"] if node["op"] else []) + ["value"] + (
        ["grad"] if node["grad"] else [])
    texts = "".join(f'<text class="{kind}" x="{x:.1f}" y="{top + i * LINE:.1f}">'
                    f"{html.escape(lines[i]) if kind in ('name', 'op') else ''}</text>"
                    for i, kind in enumerate(kinds))
    name = html.escape(node["name"], quote=True)
    return (f'<g class="node {node["kind"]}" id="n{k}" data-step="{name}" data-value="" '
            f'data-grad=""><rect x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" rx="6"/>{texts}</g>')


def _input(name: str, value: float) -> str:
    """A number box and a slider over a range around the starting value."""
    span = max(abs(value), 1.0)
    low, high = value - span, value + span
    esc = html.escape(name, quote=True)
    return (f'<label class="arg"><span>{esc}</span><input type="number" name="{esc}" '
            f'step="any" value="{value!r}"><input type="range" data-for="{esc}" min="{low!r}" '
            f'max="{high!r}" step="{span / 100!r}" value="{value!r}"></label>')


def _code(prog: Program, data: dict) -> str:
    """The generated Python forward and backward (math backend), one span per line; the line
    of every forward and backward step is recorded in ``data`` (``line``)."""
    source = module_source(prog, default_backend(prog), functions=("forward", "backward"))
    lines = source.splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith("def forward("))
    lines = lines[start:]
    wanted = [(s.name, ("=",), data["forward"][k]) for k, s in enumerate(prog.forward)]
    wanted += [(g.name, ("+=", "-=", "=") if g.accumulate else ("=",), data["backward"][k])
               for k, g in enumerate(prog.backward)]
    at = 0
    for i, text in enumerate(lines):
        if at < len(wanted):
            name, ops, entry = wanted[at]
            if any(text.lstrip().startswith(f"{name} {op} ") for op in ops):
                entry["line"], at = i, at + 1
    if at != len(wanted):
        raise ArgumentError(f"the page could not find the Python line of {wanted[at][0]}")
    return "".join(f'<span class="line" data-line="{i}">{html.escape(t) or " "}</span>'
                   for i, t in enumerate(lines))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{style}
</style>
</head>
<body>
<header><h1>{formula}</h1>
<p>{lead}</p></header>
<section id="controls">
{inputs}
<div class="buttons"><button id="step-forward">forward &#9654;</button>
<button id="step-backward">&#9664; backward</button><button id="reset">reset</button></div>
<div id="explain">&nbsp;</div>
</section>
<main>
<div id="graph-pane">
{svg}
</div>
<pre id="code">{code}</pre>
</main>
<script>
{module}
</script>
<script type="application/json" id="symdiff-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""
