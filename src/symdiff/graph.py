"""Draw a staged program as a computational graph (Graphviz DOT, rendered to SVG by ``dot``).

One node per argument and per forward step, labelled with its name and its operation; one edge
per operand of a step. At a point (``at``), each edge carries the forward value of its operand on
top and, below it in red, the gradient flowing back along that edge (the step's upstream gradient
times its local derivative): at a fork every edge shows its own share, and the shares of a node's
edges add up to its gradient. The output node shows its value and the seed gradient 1.

Text that reaches the DOT file is escaped for Graphviz's HTML-like labels; names are the
program's sanitized identifiers.
"""

from __future__ import annotations

import html
import shutil
import subprocess

import numpy as np
import sympy as sp

from .dag import postorder
from .errors import MissingToolError, SymdiffError
from .interpret import program_trace

FORWARD_COLOR = "black"
GRADIENT_COLOR = "#c0392b"  # red: gradients flow back
ARRAY_ENTRIES = 3  # entries of an array shown on an edge, before its shape
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                "graphviz; others: https://graphviz.org/download), or use to_dot() for the text")


def to_dot(prog, at: dict | None = None) -> str:
    """DOT text of ``prog``'s graph; with ``at``, values and gradients on the edges.

    >>> import sympy as sp, symdiff
    >>> a, b = sp.symbols("a b")
    >>> print(symdiff.lower(a * b, wrt=[a]).to_dot().splitlines()[0])
    digraph symdiff {
    """
    values, terms = program_trace(prog, prog.resolve_point(at)) if at is not None else (None, [])
    share = {(g.name, g.source): term for g, term in zip(prog.backward, terms)}
    grad_of = {i.name: i.grad for i in prog.inputs if i.grad}
    grad_of.update((s.name, "d" + s.name) for s in prog.forward)
    lines = ["digraph symdiff {", "    rankdir=LR;",
             '    node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
             '    edge [fontname="Helvetica", fontsize=10];']
    for name in prog.args:
        label = _input_label(name, grad_of, values)
        lines.append(f'    "{name}" [shape=plaintext, label=<{label}>];')
    for step in prog.forward:
        lines.append(f'    "{step.name}" [label=<{_node_label(step, prog, values)}>];')
    for step in prog.forward:
        for operand in _operands(step):
            label = ""
            if values is not None:
                grad = share.get((grad_of.get(operand), step.name))
                label = f" [label=<{_edge_label(values[operand], grad)}>]"
            lines.append(f'    "{operand}" -> "{step.name}"{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(prog, at: dict | None = None) -> str:
    """The graph rendered by Graphviz's ``dot`` program, as SVG text."""
    dot = shutil.which("dot")
    if dot is None:
        raise MissingToolError(f"rendering SVG needs Graphviz's `dot` program: {INSTALL_HINT}")
    try:
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(prog, at), capture_output=True,
                              text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise SymdiffError("Graphviz's dot took more than 60 s to lay out the graph") from None
    if done.returncode != 0:
        raise SymdiffError(f"Graphviz's dot failed: {done.stderr.strip()[:300]}")
    return done.stdout


def _operands(step) -> list[str]:
    """The names a step reads, in order of first appearance, each once."""
    return list(dict.fromkeys(n.name for n in postorder(step.rhs) if n.is_Symbol))


def _input_label(name: str, grad_of: dict, values) -> str:
    """An argument: its name and, at a point, its value and its whole gradient (the sum)."""
    label = f"<b>{_esc(name)}</b>"
    if values is not None:
        label += f'<br/><font color="{FORWARD_COLOR}">= {_num(values[name])}</font>'
        grad = grad_of.get(name)
        if grad:
            label += (f'<br/><font color="{GRADIENT_COLOR}">{_esc(grad)} = '
                      f"{_num(values[grad])}</font>")
    return label


def _node_label(step, prog, values) -> str:
    rhs = sp.sstr(step.rhs, order="none")
    if len(rhs) > 40:
        rhs = rhs[:37] + "..."
    label = f"<b>{_esc(step.name)}</b><br/>{_esc(rhs)}"
    if values is not None and step.name == prog.output:
        label += (f'<br/><font color="{FORWARD_COLOR}">= {_num(values[step.name])}</font>'
                  f'<br/><font color="{GRADIENT_COLOR}">d{_esc(step.name)} = 1</font>')
    return label


def _edge_label(value: float, grad: float | None) -> str:
    label = f'<font color="{FORWARD_COLOR}">{_num(value)}</font>'
    if grad is not None:
        label += f'<br/><font color="{GRADIENT_COLOR}">{_num(grad)}</font>'
    return label


def _num(value) -> str:
    """A number to 6 digits; an array (of a matrix program) as its first entries and shape."""
    if np.ndim(value) == 0:
        return f"{float(value):.6g}"
    flat = np.ravel(value)
    head = " ".join(f"{v:.3g}" for v in flat[:ARRAY_ENTRIES])
    more = " …" if flat.size > ARRAY_ENTRIES else ""
    return f"[{head}{more}] ({'×'.join(map(str, np.shape(value)))})"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
