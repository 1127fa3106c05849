"""The text of generated functions, shared by the writers of ``emit`` and ``emit_tangent``:
the ``Writer`` (one backend's printer for one program layout, and the helpers the text calls),
the forward and backward bodies, and the small layout helpers (``define``, ``call``, ...).

Every function here writes lines for a layout it is given (``Writer.layout``: scalar or matrix
program, chosen once in ``emit``) and a ``backends.Backend`` record; none compares a backend's
name or tests the kind of program.
"""

from __future__ import annotations

import ast
import re

import sympy as sp

from .array_ops import broadcast, submatrix, transpose
from .backends import Backend
from .ir import Program, Step, grad_text


class Writer:
    """Prints expressions for one backend and program layout, and remembers which helpers the
    text calls."""

    def __init__(self, backend: Backend, layout):
        self.backend = backend
        self.layout = layout
        self.printer = backend.make_printer()
        self.helpers = self.printer.helpers  # filled as lines are printed
        self._printed: dict = {}
        self._piecewise: dict = {}

    def has_piecewise(self, expr) -> bool:
        if expr not in self._piecewise:
            self._piecewise[expr] = expr.has(sp.Piecewise)
        return self._piecewise[expr]

    def expr(self, expr) -> str:
        text = self._printed.get(expr)
        if text is None:  # backward and the fused value_and_grad print the same lines
            text = self._printed[expr] = self.printer.line(expr)
        return text


def forward_body(prog: Program, w: Writer, lines: dict[str, str]) -> list[str]:
    """Argument conversion, dimensions (matrices) and one line per forward step."""
    return w.layout.arguments(prog, w) + dim_lines(prog) + [
        noted(step, guarded(w, step.rhs, lines[step.name])) for step in prog.forward]


def noted(step: Step, line: str) -> str:
    """A step a stable rewrite made, under its note (``# stable: log(1 + x) = log1p(x)``)."""
    return f"# {step.note}\n{line}" if step.note else line


def dim_lines(prog: Program) -> list[str]:
    """``N, D = X.shape``: the symbolic dimensions a matrix program uses, read off its arguments."""
    if not prog.dims:
        return []
    used = {s.name for step in prog.forward for s in step.rhs.free_symbols}
    used |= {s.name for g in prog.backward for s in g.local.free_symbols}
    by_arg: dict[str, dict[int, str]] = {}
    for dim, arg, axis in prog.dims:
        if dim in used:
            by_arg.setdefault(arg, {})[axis] = dim
    lines = []
    for arg, axes in by_arg.items():
        if len(axes) == 2:
            lines.append(f"{axes[0]}, {axes[1]} = {arg}.shape")
        else:
            (axis, dim), = axes.items()
            lines.append(f"{dim} = {arg}.shape[{axis}]")
    read = {dim for axes in by_arg.values() for dim in axes.values()}
    return lines + _derived_size_checks(prog, read)


def _derived_size_checks(prog: Program, read: set[str]) -> list[str]:
    """A size that is an expression in the dimensions (W of 4*H columns) is checked once they
    are read: the arrays must agree with the formula's sizes, or a slice would be wrong."""
    lines = []
    for arg in prog.args:
        for axis, size in enumerate(prog.shapes.get(arg) or ()):
            if not (size.is_Integer or size.is_Symbol) and {
                    d.name for d in size.free_symbols} <= read:
                lines.append(f"if {arg}.shape[{axis}] != {size}:\n"
                             f"    raise ValueError(\"{arg} must have {size} entries in axis "
                             f"{axis}, not %d\" % {arg}.shape[{axis}])")
    return lines


VIEWS = (broadcast, submatrix, transpose)  # NumPy gives a view (broadcast_to: a read-only one)


def backward_body(prog: Program, w: Writer, lines: dict[str, str], fold_dout: bool):
    """The backward lines, and which gradients end up naming another value's array.

    With ``fold_dout`` the upstream gradient of the output is the number 1, folded away
    (``dnum = invden``): the fused ``value_and_grad``.
    """
    body, source = [], None
    alias: dict[str, str] = {}  # gradient -> the value whose array it names, if not its own
    seed = f"d{prog.output}" if fold_dout else None
    for g in prog.backward:
        if g.source != source:
            source = g.source
            body.append(f"# backprop {one_line(lines[source])}")
        if fold_dout and g.upstream == seed and not g.whole:
            value = seeded_text(g.local, w)
        else:
            value = grad_text(g, w.expr)
        if not g.accumulate:
            line = f"{g.name} = {value}"
            if value.isidentifier():  # dx = dxpy: both name one array
                alias[g.name] = alias.get(value, value)
            elif g.whole and isinstance(g.local, VIEWS):  # a view of another array
                alias[g.name] = str(g.local.args[0])
            else:
                alias.pop(g.name, None)
        else:
            sign = "+"
            if value.startswith("-") and value[1:].isidentifier():  # dx += -dt: dx -= dt
                sign, value = "-", value[1:]
            line = w.backend.accumulated(g.name, sign, value)
            alias.pop(g.name, None)
        body.append(guarded(w, g.local, line))
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    body += [f"{z} = {w.layout.zero(prog, arg_of[z], w.backend)}  # {outputs_text(prog)} "
             f"do{'es' * (len(prog.outputs) == 1)} not depend on it"
             for z in prog.zero_grads]
    return body, alias


def outputs_text(prog: Program, suffix: str = "") -> str:
    """``out``, or ``(out0, out1, ...)`` for a vector program (with ``suffix``: tangents)."""
    names = [o + suffix for o in prog.outputs]
    return names[0] if not prog.output_names else abridged(names, "(", ")")


def seeded_text(local, w: Writer) -> str:
    """``upstream * local`` with the upstream gradient 1."""
    if local == 1 or local == -1:
        return f"{int(local)}.0"
    return w.expr(local)


def returned(prog: Program, w: Writer, aliases: dict[str, str], out: str | None = None):
    """The returned gradients. NumPy: copied where the array is another value's (``dx = dxpy``
    and ``dy = dxpy``; ``dx = y``), since a caller must be free to change what it gets back,
    and, for scalar programs, summed to each argument's shape (over ``out``'s shape when dout
    was folded to 1). Math: the names (floats alias nothing)."""
    copy = w.backend.copy
    shared: dict[str, str] = {}
    returned = []
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    for g in prog.grads:
        text = g
        if copy is not None:
            owner = aliases.get(g, g)
            if owner != g or owner in shared:
                text = copy.format(g)
            shared.setdefault(owner, g)
        returned.append(w.layout.returned(text, arg_of[g], out, w))
    return returned


def guarded(w: Writer, expr, line: str) -> str:
    """NumPy evaluates every Piecewise branch; silence the warnings of the untaken ones."""
    if w.backend.guard is not None and w.has_piecewise(expr):
        if w.backend.guard_call and w.layout.elementwise:
            return _guard_call(w, line)
        if w.backend.guard_helper:
            w.helpers.add(w.backend.guard_helper)
        return f"{w.backend.guard}\n    {line}"
    return line


def _guard_call(w: Writer, line: str) -> str:
    """``name = rhs`` as ``name = quietly(lambda xp, a, b: rhs, xp, a, b)``: the names rhs
    reads become the step's parameters, so a Dask array's chunks can be given to it in each
    task (under the guard there, where the errstate of the generated function is long gone)."""
    target, rhs = line.split(" = ", 1)
    reads: list[str] = []
    nodes = list(ast.walk(ast.parse(rhs)))
    calls = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    for n in nodes:
        if isinstance(n, ast.Name) and id(n) not in calls and n.id != "xp" and n.id not in reads:
            reads.append(n.id)
    w.helpers.add(w.backend.guard_call)
    params = ", ".join(["xp"] + reads)
    return f"{target} = {w.backend.guard_call}(lambda {params}: {rhs}, {params})"


def one_line(text: str, limit: int = 80) -> str:
    """A step as one comment line: a wrapped long sum collapses and is cut with '...'."""
    text = " ".join(text.split()).replace("(( ", "((").replace(", ))", "))")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def define(name: str, params, body: list[str], w: Writer | None = None) -> str:
    """``def name(params):`` and the body; with ``w``, whose backend reads a namespace
    (array_api), ``xp = namespace(params)`` after the docstring if a line uses it."""
    body = bound(w, params, body) if w is not None and w.backend.namespace else body
    lines = "\n".join(body).split("\n")
    text = "\n".join(f"    {line}" if line else "" for line in lines)
    return f"{call(f'def {name}', params, ':')}\n{text}"


def bound(w: Writer, params, body: list[str]) -> list[str]:
    """``xp = namespace(x, y)`` as the first line after the docstring, if another line reads
    the module's namespace name (``xp.exp``, ``with quiet(xp):``)."""
    uses = re.compile(rf"\b{re.escape(w.backend.module)}\b")
    if not any(uses.search(line) for line in body[1:]):
        return body
    w.helpers.add(w.backend.namespace)
    return body[:1] + [call(f"{w.backend.module} = {w.backend.namespace}", params)] + body[1:]


def as_tuple(names) -> str:
    names = list(names)
    return f"({names[0]},)" if len(names) == 1 else call("", names)


def call(head: str, items, tail: str = "", width: int = 92) -> str:
    """``head(a, b, ...)tail`` on one line, or wrapped with one indented block of items."""
    items = list(items)
    line = f"{head}({', '.join(items)}){tail}"
    if len(line) <= width:
        return line
    rows, row = [], ""
    for item in items:
        if row and len(row) + len(item) + 2 > width - 4:
            rows.append(row.rstrip())
            row = ""
        row += item + ", "
    rows.append(row.rstrip())
    return f"{head}(\n" + "\n".join("    " + r for r in rows) + f"\n){tail}"


def abridged(names, left: str = "", right: str = "", keep: int = 6) -> str:
    """A name list for a docstring: a long one shows the first few and the last."""
    names = list(names)
    if left and len(names) == 1:
        return f"{left}{names[0]},{right}"
    shown = names if len(names) <= keep else names[: keep - 1] + ["...", names[-1]]
    return f"{left}{', '.join(shown)}{right}"
