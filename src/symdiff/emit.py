"""Emit a Program as the text of a self-contained Python module, and compile it.

The module reads like careful hand-written code: a docstring quoting the formula (over sanitized
names only), the helpers it needs, ``forward`` with one step per line, ``backward`` with one
``# backprop <forward line>`` group per step, and ``value_and_grad``. It imports only ``math`` or
``numpy``. Nothing the user wrote reaches the text except sanitized identifiers and printed numbers.

NumPy backend: gradients accumulate functionally (``dx = dx + ...``) because an in-place ``+=``
on an array that another gradient aliases would change both; each gradient is reduced to its
argument's shape once, at return (``unbroadcast``).
"""

from __future__ import annotations

import itertools
import linecache
import re
import textwrap
import types

import sympy as sp

from ._version import __version__
from .dag import gc_paused
from .errors import ArgumentError
from .ir import Program, Step, grad_text, is_identifier
from .printers import helper_source, make_printer

BACKENDS = ("math", "numpy")
_IMPORTS = {"math": "import math", "numpy": "import numpy as np"}
_SAFE_TEXT = re.compile(r"[\w\s+\-*/().,<>=!&|~@\[\]]*", re.ASCII)
_counter = itertools.count(1)
# value_and_grad repeats forward and backward fused (dout = 1 folded, no cache) up to this many
# steps; beyond, calling forward and backward costs nothing next to the steps themselves, and
# the module is not written twice over.
FUSE_LIMIT = 2000


class _Writer:
    """Prints expressions for one backend and remembers which helpers the text calls."""

    def __init__(self, backend: str):
        self.backend = backend
        self.printer = make_printer(backend)
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


@gc_paused
def module_source(prog: Program, backend: str = "math", name: str | None = None) -> str:
    """Text of the generated module for ``prog`` (see ``Program.source``)."""
    if backend not in BACKENDS:
        raise ArgumentError(f"unknown backend {backend!r}: choose 'math' or 'numpy'")
    if prog.shapes is not None and backend != "numpy":
        raise ArgumentError("a matrix formula has only the numpy backend")
    fn = _function_names(prog, name)
    w = _Writer(backend)
    forward_lines = {s.name: f"{s.name} = {w.expr(s.rhs)}" for s in prog.forward}
    functions = [_forward(prog, w, fn, forward_lines), _backward(prog, w, fn, forward_lines),
                 _value_and_grad(prog, fn, w, forward_lines)]
    if backend == "numpy" and prog.grads and prog.shapes is None:
        w.helpers.add("unbroadcast")
    helpers = [helper_source(h, backend).strip() for h in sorted(w.helpers)]
    code = helpers + functions
    imports = [_IMPORTS[backend]] if any(_uses_module(c, backend) for c in code) else []
    return "\n\n\n".join([_docstring(prog, backend, fn)] + imports + code) + "\n"


def _uses_module(text: str, backend: str) -> bool:
    return re.search(r"\bmath\." if backend == "math" else r"\bnp\.", text) is not None


def compile_module(prog: Program, backend: str = "math", name: str | None = None):
    """Compile the generated module; tracebacks show its lines (registered with linecache)."""
    source = module_source(prog, backend, name)
    filename = f"<symdiff-{next(_counter)}-{backend}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"symdiff_generated_{backend}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # our own generated text
    module.__source__ = source
    return module


def _function_names(prog: Program, name: str | None) -> dict[str, str]:
    base = ("forward", "backward", "value_and_grad", "value_and_grad_block")
    if name is None:
        return {b: b for b in base}
    if not is_identifier(name):
        raise ArgumentError(f"name must be a Python identifier, got {name!r}")
    fn = {b: f"{name}_{b}" for b in base}
    clash = set(fn.values()) & (set(prog.args) | {s.name for s in prog.forward})
    if clash:
        raise ArgumentError(f"function name {sorted(clash)[0]} clashes with a formula name")
    return fn


def _docstring(prog: Program, backend: str, fn: dict[str, str]) -> str:
    args, grads, out = _abridged(prog.args), _abridged(prog.grads, "(", ")"), prog.output
    formula = prog.text if _SAFE_TEXT.fullmatch(prog.text or "") and prog.text else None
    quoted = ("\n".join(textwrap.wrap(f"{out} = {formula}", 92, initial_indent="    ",
                                      subsequent_indent="        ", break_long_words=False))
              if formula else f"    (a formula of {len(prog.forward)} steps, too long to quote)")
    return "\n".join([
        f'"""Value and gradient of one formula, generated by symdiff {__version__} '
        f"({backend} backend). Do not edit.",
        "",
        quoted,
        "",
        f"{fn['forward']}({args}) -> ({out}, cache)",
        f"{fn['backward']}(d{out}, cache) -> {grads}",
        f"{fn['value_and_grad']}({args}) -> ({out}, {grads})",
        '"""',
    ])


def _forward(prog: Program, w: _Writer, fn: dict, lines: dict[str, str]) -> str:
    body = _forward_body(prog, w, lines)
    body.append(f"return {prog.output}, {_tuple(_cached(prog, w.backend))}")
    doc = '"""The formula, one step per line; the cache keeps what backward reads."""'
    return _def(fn["forward"], prog.args, [doc] + body)


def _forward_body(prog: Program, w: _Writer, lines: dict[str, str]) -> list[str]:
    """Argument conversion (numpy), dimensions (matrices) and one line per forward step."""
    body = []
    if prog.shapes is not None:  # matrix arguments: 2-D float arrays of the declared shapes
        return body + _matrix_arguments(prog, w) + _dim_lines(prog) + [
            _noted(step, _guarded(w, step.rhs, lines[step.name])) for step in prog.forward]
    if w.backend == "numpy" and prog.args:  # NumPy semantics for Python numbers and int arrays
        w.helpers.add("asfloat")
        if len(prog.args) <= 4:
            converted = ", ".join(f"asfloat({a})" for a in prog.args)
            body.append(f"{', '.join(prog.args)} = {converted}")
        else:
            body += [f"{a} = asfloat({a})" for a in prog.args]
    body += _dim_lines(prog)
    body += [_noted(step, _guarded(w, step.rhs, lines[step.name])) for step in prog.forward]
    return body


def _noted(step: Step, line: str) -> str:
    """A step a stable rewrite made, under its note (``# stable: log(1 + x) = log1p(x)``)."""
    return f"# {step.note}\n{line}" if step.note else line


def _matrix_arguments(prog: Program, w: _Writer) -> list[str]:
    """``X = asmatrix(X, "X")``; a declared size of 1 (a bias row) is checked too."""
    lines = []
    for a in prog.args:
        shape = prog.shapes[a]
        if not shape:
            w.helpers.add("asfloat")
            lines.append(f"{a} = asfloat({a})")
            continue
        w.helpers.add("asmatrix")
        fixed = tuple(int(n) if n.is_Integer else None for n in shape)
        extra = f", {fixed}" if any(n is not None for n in fixed) else ""
        lines.append(f'{a} = asmatrix({a}, "{a}"{extra})')
    return lines


def _dim_lines(prog: Program) -> list[str]:
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
    return lines


def _backward(prog: Program, w: _Writer, fn: dict, lines: dict[str, str]) -> str:
    grads = _abridged(prog.grads, "(", ")")
    body = [f'"""Gradients {grads} of {prog.output}, given its upstream gradient '
            f'd{prog.output}."""']
    cached = _cached(prog, w.backend)
    unpack = f"{', '.join(cached)}{',' if len(cached) == 1 else ''} = cache"
    if cached:
        body.append(unpack if len(unpack) <= 92 else _call("", cached, " = cache"))
    steps, aliases = _backward_body(prog, w, lines, fold_dout=False)
    body += steps
    body.append(f"return {_tuple(_returned(prog, w.backend, aliases))}")
    return _def(fn["backward"], [f"d{prog.output}", "cache"], body)


def _backward_body(prog: Program, w: _Writer, lines: dict[str, str], fold_dout: bool):
    """The backward lines, and which gradients end up naming another value's array.

    With ``fold_dout`` the upstream gradient of the output is the number 1, folded away
    (``dnum = invden``): the fused ``value_and_grad``.
    """
    body, source = [], None
    alias: dict[str, str] = {}  # gradient -> the value whose array it names, if not its own
    seed = f"d{prog.output}"
    for g in prog.backward:
        if g.source != source:
            source = g.source
            body.append(f"# backprop {_one_line(lines[source])}")
        if fold_dout and g.upstream == seed and not g.whole:
            value = _seeded_text(g.local, w)
        else:
            value = grad_text(g, w.expr)
        if not g.accumulate:
            line = f"{g.name} = {value}"
            if value.isidentifier():  # dx = dxpy: both name one array
                alias[g.name] = alias.get(value, value)
            else:
                alias.pop(g.name, None)
        else:
            sign = "+"
            if value.startswith("-") and value[1:].isidentifier():  # dx += -dt: dx -= dt
                sign, value = "-", value[1:]
            line = (f"{g.name} {sign}= {value}" if w.backend == "math"
                    else f"{g.name} = {g.name} {sign} {value}")
            alias.pop(g.name, None)
        body.append(_guarded(w, g.local, line))
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    body += [f"{z} = {_zero(prog, arg_of[z])}  # {prog.output} does not depend on it"
             for z in prog.zero_grads]
    return body, alias


def _seeded_text(local, w: _Writer) -> str:
    """``upstream * local`` with the upstream gradient 1."""
    if local == 1 or local == -1:
        return f"{int(local)}.0"
    return w.expr(local)


def _zero(prog: Program, arg: str) -> str:
    if prog.shapes is not None and prog.shapes[arg]:
        return f"np.zeros_like({arg})"
    return "0.0"


def _value_and_grad(prog: Program, fn: dict, w: _Writer, lines: dict[str, str]) -> str:
    out, grads = prog.output, _abridged(prog.grads, "(", ")")
    large = len(prog.forward) + len(prog.backward) > FUSE_LIMIT
    if prog.shapes is not None or large:  # forward, then backward with dout = 1 (or ones)
        seed = "1.0" if w.backend == "math" else f"np.ones_like({out})"
        doc = (f"{out} and the gradient {grads} of the sum of its entries."
               if w.backend == "numpy" else f"{out} and its gradient {grads} at one point.")
        body = [f'"""{doc}"""', _call(f"{out}, cache = {fn['forward']}", prog.args),
                f"return {out}, {fn['backward']}({seed}, cache)"]
        return _def(fn["value_and_grad"], prog.args, body)
    if w.backend == "math":
        doc = f"{out} and its gradient {grads} at one point"
    else:  # d(sum of out)/d arg: elementwise for full-shape args, summed for broadcast ones
        doc = f"{out} and its gradient {grads}, elementwise (summed if broadcast)"
    blocks = w.backend == "numpy" and bool(prog.args)
    fused = fn["value_and_grad_block" if blocks else "value_and_grad"]
    body = [f'"""{doc}.\n\nForward and backward in one pass, with d{out} = 1 folded away."""']
    body += _forward_body(prog, w, lines)
    steps, aliases = _backward_body(prog, w, lines, fold_dout=True)
    body += steps
    body.append(f"return {out}, {_tuple(_returned(prog, w.backend, aliases, out))}")
    text = _def(fused, prog.args, body)
    if not blocks:
        return text
    w.helpers.add("in_blocks")
    driver = [f'"""{doc}.\n\nLarge arrays of one shape run in blocks of rows that fit in the CPU '
              f'cache (see in_blocks);\neach block is {fused}."""',
              f"return in_blocks({fused}, {_tuple(prog.args)})"]
    return text + "\n\n\n" + _def(fn["value_and_grad"], prog.args, driver)


def _cached(prog: Program, backend: str) -> list[str]:
    """Names backward reads: values in local derivatives (and, for numpy, the wrt arguments)."""
    used = {s.name for g in prog.backward for s in g.local.free_symbols}
    if backend == "numpy" and prog.shapes is None:  # unbroadcast reads the argument's shape
        used |= {i.name for i in prog.inputs if i.grad}
    if prog.shapes is not None:  # np.zeros_like(W) for an unused matrix argument
        arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
        used |= {arg_of[z] for z in prog.zero_grads if prog.shapes[arg_of[z]]}
    order = list(prog.args) + [d[0] for d in prog.dims] + [s.name for s in prog.forward]
    return [n for n in order if n in used]


def _returned(prog: Program, backend: str, aliases: dict[str, str], out: str | None = None):
    """The returned gradients. NumPy: summed to each argument's shape (over ``out``'s shape
    when dout was folded to 1), and copied where the array is another value's (``dx = dxpy``
    and ``dy = dxpy``; ``dx = y``): a caller must be free to change what it gets back."""
    if backend == "math":
        return list(prog.grads)
    shared: dict[str, str] = {}
    returned = []
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    for g in prog.grads:
        owner = aliases.get(g, g)
        copy = owner != g or owner in shared
        shared.setdefault(owner, g)
        text = f"np.array({g})" if copy else g
        if prog.shapes is None:
            shape = f", np.shape({out})" if out else ""
            text = f"unbroadcast({text}, {arg_of[g]}{shape})"
        returned.append(text)
    return returned


def _guarded(w: _Writer, expr, line: str) -> str:
    """NumPy evaluates every Piecewise branch; silence the warnings of the untaken ones."""
    if w.backend == "numpy" and w.has_piecewise(expr):
        return f'with np.errstate(all="ignore"):\n    {line}'
    return line


def _one_line(text: str, limit: int = 80) -> str:
    """A step as one comment line: a wrapped long sum collapses and is cut with '...'."""
    text = " ".join(text.split()).replace("(( ", "((").replace(", ))", "))")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _def(name: str, params, body: list[str]) -> str:
    lines = "\n".join(body).split("\n")
    text = "\n".join(f"    {line}" if line else "" for line in lines)
    return f"{_call(f'def {name}', params, ':')}\n{text}"


def _tuple(names) -> str:
    names = list(names)
    return f"({names[0]},)" if len(names) == 1 else _call("", names)


def _call(head: str, items, tail: str = "", width: int = 92) -> str:
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


def _abridged(names, left: str = "", right: str = "", keep: int = 6) -> str:
    """A name list for a docstring: a long one shows the first few and the last."""
    names = list(names)
    if left and len(names) == 1:
        return f"{left}{names[0]},{right}"
    shown = names if len(names) <= keep else names[: keep - 1] + ["...", names[-1]]
    return f"{left}{', '.join(shown)}{right}"
