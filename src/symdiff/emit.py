"""Emit a Program as the text of a self-contained Python module, and compile it.

The module reads like careful hand-written code: a docstring quoting the formula (over sanitized
names only), the helpers it needs, ``forward`` with one step per line, ``backward`` with one
``# backprop <forward line>`` group per step, and ``value_and_grad``. It imports only ``math``,
``numpy``, ``torch`` or ``jax`` (whose modules end with the framework's function, adapters.py).
Nothing the user wrote reaches the text except sanitized identifiers and printed numbers.

NumPy backend: gradients accumulate functionally (``dx = dx + ...``) because an in-place ``+=``
on an array that another gradient aliases would change both; each gradient is reduced to its
argument's shape once, at return (``unbroadcast``). Every such difference is a field of the
``backends.Backend`` record, and scalar against matrix programs is chosen once (``_layout``).
"""

from __future__ import annotations

import itertools
import linecache
import re
import textwrap
import types

import sympy as sp

from ._version import __version__
from .adapters import ADAPTER_NAMES, adapter_source
from .backends import ALL, Backend, backend_named
from .dag import gc_paused
from .errors import ArgumentError
from .ir import Program, Step, grad_text, is_identifier
from .runtime import helper_source

_SAFE_TEXT = re.compile(r"[\w\s+\-*/().,<>=!&|~@\[\]]*", re.ASCII)
_counter = itertools.count(1)
# value_and_grad repeats forward and backward fused (dout = 1 folded, no cache) up to this many
# steps; beyond, calling forward and backward costs nothing next to the steps themselves, and
# the module is not written twice over.
FUSE_LIMIT = 2000


class _Scalar:
    """A scalar program: every value is a number (for numpy, arrays of numbers that broadcast
    together), and each gradient is reduced to its argument's shape at return."""

    kind = "a scalar formula"
    fused = True  # value_and_grad may repeat forward and backward with dout = 1 folded away

    @staticmethod
    def accepts(backend: Backend) -> bool:
        return True

    @staticmethod
    def arguments(prog: Program, w: _Writer) -> list[str]:
        """``x, y = asfloat(x), asfloat(y)``: NumPy semantics for Python numbers and int arrays
        (torch: ``x, y = astensors(x, y)``, one dtype and device for all)."""
        convert = w.backend.convert
        if w.backend.convert_all and prog.args:
            return [_converted_together(prog, w)]
        if convert is None or not prog.args:
            return []
        w.helpers.add(convert)
        if len(prog.args) <= 4:
            return [f"{', '.join(prog.args)} = {', '.join(f'{convert}({a})' for a in prog.args)}"]
        return [f"{a} = {convert}({a})" for a in prog.args]

    @staticmethod
    def zero(prog: Program, arg: str, backend: Backend) -> str:
        return "0.0"

    @staticmethod
    def read_back(prog: Program, backend: Backend) -> set[str]:
        """Arguments backward reads besides its locals: the reduction reads their shapes."""
        return {i.name for i in prog.inputs if i.grad} if backend.reduce else set()

    @staticmethod
    def returned(text: str, arg: str, out: str | None, w: _Writer) -> str:
        if w.backend.reduce is None:
            return text
        w.helpers.add(w.backend.reduce)
        return w.backend.reduced(text, arg, out)


class _Matrix:
    """A matrix program: arguments are 2-D arrays of declared shapes (or scalars), and every
    gradient already has its argument's shape (the matrix reverse pass sums broadcasts)."""

    kind = "a matrix formula"
    fused = False  # forward, then backward with a dout of ones

    @staticmethod
    def accepts(backend: Backend) -> bool:
        return backend.matrices

    @staticmethod
    def arguments(prog: Program, w: _Writer) -> list[str]:
        return _matrix_arguments(prog, w)

    @staticmethod
    def zero(prog: Program, arg: str, backend: Backend) -> str:
        return backend.zeros.format(arg=arg) if prog.shapes[arg] else "0.0"

    @staticmethod
    def read_back(prog: Program, backend: Backend) -> set[str]:
        """Arguments backward reads besides its locals: np.zeros_like(W) for an unused W."""
        arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
        return {arg_of[z] for z in prog.zero_grads if prog.shapes[arg_of[z]]}

    @staticmethod
    def returned(text: str, arg: str, out: str | None, w: _Writer) -> str:
        return text


def _layout(prog: Program):
    """The one place that tells a matrix program from a scalar one (``prog.shapes``). A layout
    is a class used as a namespace: ``kind``, ``fused`` and the functions the writers call."""
    return _Scalar if prog.shapes is None else _Matrix


class _Writer:
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


@gc_paused
def module_source(prog: Program, backend: str = "math", name: str | None = None) -> str:
    """Text of the generated module for ``prog`` (see ``Program.source``)."""
    be, layout = backend_named(backend), _layout(prog)
    if not layout.accepts(be):
        only = " or ".join(b.name for b in ALL if layout.accepts(b))
        raise ArgumentError(f"{layout.kind} has only the {only} backend")
    fn = _function_names(prog, name)
    w = _Writer(be, layout)
    forward_lines = {s.name: f"{s.name} = {w.expr(s.rhs)}" for s in prog.forward}
    functions = [_forward(prog, w, fn, forward_lines), _backward(prog, w, fn, forward_lines),
                 _value_and_grad(prog, fn, w, forward_lines)]
    adapter, adapter_helpers = adapter_source(prog, be, fn)
    if adapter is not None:
        w.helpers.update(adapter_helpers)
        functions.append(adapter)
    helpers = [helper_source(h, be.name).strip() for h in sorted(w.helpers)]
    code = helpers + functions
    imports = [be.imports] if adapter or any(be.uses_module(c) for c in code) else []
    return "\n\n\n".join([_docstring(prog, be.name, fn)] + imports + code) + "\n"


def default_backend(prog: Program) -> str:
    """The first backend that has ``prog``: math, or numpy for a matrix program."""
    return next(b.name for b in ALL if _layout(prog).accepts(b))


def compile_module(prog: Program, backend: str = "math", name: str | None = None):
    """Compile the generated module; tracebacks show its lines (registered with linecache)."""
    source = module_source(prog, backend, name)
    backend_named(backend).require()
    filename = f"<symdiff-{next(_counter)}-{backend}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"symdiff_generated_{backend}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # our own generated text
    module.__source__ = source
    return module


def _function_names(prog: Program, name: str | None) -> dict[str, str]:
    base = ("forward", "backward", "value_and_grad", "value_and_grad_block", *ADAPTER_NAMES)
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
    body.append(f"return {prog.output}, {_tuple(_cached(prog, w))}")
    doc = '"""The formula, one step per line; the cache keeps what backward reads."""'
    return _def(fn["forward"], prog.args, [doc] + body)


def _forward_body(prog: Program, w: _Writer, lines: dict[str, str]) -> list[str]:
    """Argument conversion, dimensions (matrices) and one line per forward step."""
    return w.layout.arguments(prog, w) + _dim_lines(prog) + [
        _noted(step, _guarded(w, step.rhs, lines[step.name])) for step in prog.forward]


def _noted(step: Step, line: str) -> str:
    """A step a stable rewrite made, under its note (``# stable: log(1 + x) = log1p(x)``)."""
    return f"# {step.note}\n{line}" if step.note else line


def _converted_together(prog: Program, w: _Writer) -> str:
    """``x, y = astensors(x, y)``: the arguments converted at once (torch: one dtype, device)."""
    w.helpers.add(w.backend.convert_all)
    names = list(prog.args)
    return f"{', '.join(names)}{',' if len(names) == 1 else ''} = " + _call(
        w.backend.convert_all, names)


def _matrix_arguments(prog: Program, w: _Writer) -> list[str]:
    """``X = asmatrix(X, "X")``; a declared size of 1 (a bias row) is checked too."""
    lines = [_converted_together(prog, w)] if w.backend.convert_all and prog.args else []
    for a in prog.args:
        shape = prog.shapes[a]
        if not shape and w.backend.convert_all:
            continue
        if not shape:
            w.helpers.add(w.backend.convert)
            lines.append(f"{a} = {w.backend.convert}({a})")
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
    cached = _cached(prog, w)
    unpack = f"{', '.join(cached)}{',' if len(cached) == 1 else ''} = cache"
    if cached:
        body.append(unpack if len(unpack) <= 92 else _call("", cached, " = cache"))
    steps, aliases = _backward_body(prog, w, lines, fold_dout=False)
    body += steps
    body.append(f"return {_tuple(_returned(prog, w, aliases))}")
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
            line = w.backend.accumulated(g.name, sign, value)
            alias.pop(g.name, None)
        body.append(_guarded(w, g.local, line))
    arg_of = {i.grad: i.name for i in prog.inputs if i.grad}
    body += [f"{z} = {w.layout.zero(prog, arg_of[z], w.backend)}  # {prog.output} does not "
             "depend on it"
             for z in prog.zero_grads]
    return body, alias


def _seeded_text(local, w: _Writer) -> str:
    """``upstream * local`` with the upstream gradient 1."""
    if local == 1 or local == -1:
        return f"{int(local)}.0"
    return w.expr(local)


def _value_and_grad(prog: Program, fn: dict, w: _Writer, lines: dict[str, str]) -> str:
    out, grads = prog.output, _abridged(prog.grads, "(", ")")
    large = len(prog.forward) + len(prog.backward) > FUSE_LIMIT
    if not w.layout.fused or large:  # forward, then backward with dout = 1 (or ones)
        doc = w.backend.doc.format(out=out, grads=grads)
        body = [f'"""{doc}."""', _call(f"{out}, cache = {fn['forward']}", prog.args),
                f"return {out}, {fn['backward']}({w.backend.ones.format(out=out)}, cache)"]
        return _def(fn["value_and_grad"], prog.args, body)
    doc = w.backend.folded_doc.format(out=out, grads=grads)
    blocks = w.backend.blocks if prog.args else None
    fused = fn["value_and_grad_block" if blocks else "value_and_grad"]
    body = [f'"""{doc}.\n\nForward and backward in one pass, with d{out} = 1 folded away."""']
    body += _forward_body(prog, w, lines)
    steps, aliases = _backward_body(prog, w, lines, fold_dout=True)
    body += steps
    body.append(f"return {out}, {_tuple(_returned(prog, w, aliases, out))}")
    text = _def(fused, prog.args, body)
    if not blocks:
        return text
    w.helpers.add(blocks)
    driver = [f'"""{doc}.\n\nLarge arrays of one shape run in blocks of rows that fit in the CPU '
              f'cache (see {blocks});\neach block is {fused}."""',
              f"return {blocks}({fused}, {_tuple(prog.args)})"]
    return text + "\n\n\n" + _def(fn["value_and_grad"], prog.args, driver)


def _cached(prog: Program, w: _Writer) -> list[str]:
    """Names backward reads: values in local derivatives, and the arguments the layout reads
    back (their shapes, for numpy's reduction or zeros)."""
    used = {s.name for g in prog.backward for s in g.local.free_symbols}
    used |= w.layout.read_back(prog, w.backend)
    order = list(prog.args) + [d[0] for d in prog.dims] + [s.name for s in prog.forward]
    return [n for n in order if n in used]


def _returned(prog: Program, w: _Writer, aliases: dict[str, str], out: str | None = None):
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


def _guarded(w: _Writer, expr, line: str) -> str:
    """NumPy evaluates every Piecewise branch; silence the warnings of the untaken ones."""
    if w.backend.guard is not None and w.has_piecewise(expr):
        return f"{w.backend.guard}\n    {line}"
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
