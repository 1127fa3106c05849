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

from ._version import __version__
from .adapters import ADAPTER_NAMES, LOOP_NAMES, adapter_source
from .backends import ALL, Backend, backend_named
from .dag import gc_paused
from .emit_numba import HELPERS as ARRAY_HELPERS
from .emit_numba import array_functions, point_names
from .emit_tangent import (
    docstring,
    hessian_function,
    hvp_function,
    jacobian_function,
    jvp_function,
    packed,
)
from .errors import ArgumentError
from .ir import Program, is_identifier
from .runtime import helper_source, with_needs
from .tangent import suffix_for, wrt_args
from .writer import (
    Writer,
    abridged,
    as_tuple,
    backward_body,
    call,
    define,
    forward_body,
    outputs_text,
    returned,
)

_SAFE_TEXT = re.compile(r"[\w\s+\-*/().,<>=!&|~@\[\]]*", re.ASCII)
_counter = itertools.count(1)
# value_and_grad repeats forward and backward fused (dout = 1 folded, no cache) up to this many
# steps; beyond, calling forward and backward costs nothing next to the steps themselves, and
# the module is not written twice over.
FUSE_LIMIT = 2000
# The functions a module can define, in the order it defines them, and the default choices.
FUNCTIONS = ("forward", "backward", "value_and_grad", "jvp", "jacobian", "hvp", "hessian")
SCALAR_DEFAULT = ("forward", "backward", "value_and_grad")
VECTOR_DEFAULT = ("forward", "backward", "jvp", "jacobian")


class _Scalar:
    """A scalar program: every value is a number (for numpy, arrays of numbers that broadcast
    together), and each gradient is reduced to its argument's shape at return."""

    kind = "a scalar formula"
    vector_default = VECTOR_DEFAULT  # the functions of a module of several outputs
    fused = True  # value_and_grad may repeat forward and backward with dout = 1 folded away
    forward_mode = True  # jvp and jacobian: every gate has its scalar tangent rule
    elementwise = True  # every line is elementwise (a guarded one may run chunk by chunk)

    @staticmethod
    def accepts(backend: Backend) -> bool:
        return True

    @staticmethod
    def arguments(prog: Program, w: Writer) -> list[str]:
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
    def returned(text: str, arg: str, out: str | None, w: Writer) -> str:
        if w.backend.reduce is None:
            return text
        w.helpers.add(w.backend.reduce)
        return w.backend.reduced(text, arg, out)


class _Matrix:
    """A matrix program: arguments are 2-D arrays of declared shapes (or scalars), and every
    gradient already has its argument's shape (the matrix reverse pass sums broadcasts)."""

    kind = "a matrix formula"
    vector_default = ("forward", "backward")  # (forward mode has no array gates yet)
    fused = False  # forward, then backward with a dout of ones
    forward_mode = False  # no tangent rules for the whole-array gates yet
    elementwise = False  # lines reduce and multiply whole arrays

    @staticmethod
    def accepts(backend: Backend) -> bool:
        return backend.matrices

    @staticmethod
    def arguments(prog: Program, w: Writer) -> list[str]:
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
    def returned(text: str, arg: str, out: str | None, w: Writer) -> str:
        return text


def _layout(prog: Program):
    """The one place that tells a matrix program from a scalar one (``prog.shapes``). A layout
    is a class used as a namespace: ``kind``, ``fused`` and the functions the writers call."""
    return _Scalar if prog.shapes is None else _Matrix


@gc_paused
def module_source(prog: Program, backend: str = "math", name: str | None = None,
                  functions=None) -> str:
    """Text of the generated module for ``prog`` (see ``Program.source``)."""
    be, layout = backend_named(backend), _layout(prog)
    if not layout.accepts(be):
        only = " or ".join(b.name for b in ALL if layout.accepts(b))
        raise ArgumentError(f"{layout.kind} has only the {only} backend")
    chosen = _chosen(prog, layout, functions)
    fn = _function_names(prog, name)
    w = Writer(be, layout)
    forward_lines = {s.name: f"{s.name} = {w.expr(s.rhs)}" for s in prog.forward}
    writers = {"forward": _forward, "backward": _backward, "value_and_grad": _value_and_grad,
               "jvp": jvp_function, "jacobian": jacobian_function, "hvp": hvp_function,
               "hessian": hessian_function}
    if be.jit:  # numba: the math functions compiled per point, then loops over arrays
        return _jitted_module(prog, be, w, fn, chosen, [
            writers[f](prog, w, point_names(fn), forward_lines) for f in chosen])
    code = [writers[f](prog, w, fn, forward_lines) for f in chosen]
    adapter = None
    if {"forward", "backward"} <= set(chosen) and not prog.output_names:
        adapter, adapter_helpers = adapter_source(prog, be, fn)
    if adapter is not None:
        w.helpers.update(adapter_helpers)
        code.append(adapter)
    helpers = [helper_source(h, be.name).strip() for h in sorted(with_needs(w.helpers, be.name))]
    code = helpers + code
    imports = [be.imports] if adapter or any(be.uses_module(c) for c in code) else []
    return "\n\n\n".join([_docstring(prog, be.name, fn, chosen)] + imports + code) + "\n"


def _jitted_module(prog: Program, be: Backend, w: Writer, fn: dict, chosen, points) -> str:
    """A numba module: helpers and per-point functions under the jit decorator, then the
    array functions (emit_numba), which call the per-point helpers' array companions."""
    arrays = array_functions(prog, be, fn, chosen, _cached(prog, w))
    jit = f"@{be.jit.format(options='')}\n"
    helpers = [(jit if text.startswith("def ") else "") + text
               for text in (helper_source(h, be.name).strip() for h in sorted(w.helpers))]
    helpers += [helper_source(h, be.name).strip() for h in sorted(ARRAY_HELPERS)]
    code = helpers + [jit + p for p in points] + [arrays]
    return "\n\n\n".join([_docstring(prog, be.name, fn, chosen), be.imports] + code) + "\n"


def _chosen(prog: Program, layout, functions) -> tuple[str, ...]:
    """The functions a module defines, in ``FUNCTIONS`` order: the default of the kind of
    program, or those asked for (each one it can write, with those it calls)."""
    if functions is None:
        if prog.output_names:
            return layout.vector_default
        return SCALAR_DEFAULT
    if isinstance(functions, str) or not all(isinstance(f, str) for f in functions):
        raise ArgumentError(f"functions must be a tuple of names, got {functions!r}")
    unknown = [f for f in functions if f not in FUNCTIONS]
    if unknown or not functions:
        raise ArgumentError(f"functions names {unknown[0]!r}, which no module defines; choose "
                            f"from {', '.join(FUNCTIONS)}" if unknown else "functions is empty")
    if prog.output_names and "value_and_grad" in functions:
        raise ArgumentError("value_and_grad is the gradient of one output; a program of several "
                            "has backward (a vector-Jacobian product), jvp and jacobian")
    needs = {"backward": ("forward",)}
    if not layout.fused or len(prog.forward) + len(prog.backward) > FUSE_LIMIT:
        needs["value_and_grad"] = ("forward", "backward")  # then it calls them
    for f in functions:
        missing = [n for n in needs.get(f, ()) if n not in functions]
        if missing:
            raise ArgumentError(f"{f} needs {' and '.join(missing)} in functions (it "
                                f"{'reads its cache' if f == 'backward' else 'calls them'})")
    return tuple(f for f in FUNCTIONS if f in functions)


def default_backend(prog: Program) -> str:
    """The first backend that has ``prog``: math, or numpy for a matrix program."""
    return next(b.name for b in ALL if _layout(prog).accepts(b))


def compile_module(prog: Program, backend: str = "math", name: str | None = None,
                   functions=None):
    """Compile the generated module; tracebacks show its lines (registered with linecache)."""
    # the default module through the three-argument call (tests replace module_source with one)
    source = (module_source(prog, backend, name) if functions is None
              else module_source(prog, backend, name, functions))
    backend_named(backend).require()
    filename = f"<symdiff-{next(_counter)}-{backend}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"symdiff_generated_{backend}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # our own generated text
    module.__source__ = source
    return module


def _function_names(prog: Program, name: str | None) -> dict[str, str]:
    base = FUNCTIONS + ("value_and_grad_block", *ADAPTER_NAMES, *LOOP_NAMES)
    if name is None:
        return {b: b for b in base}
    if not is_identifier(name):
        raise ArgumentError(f"name must be a Python identifier, got {name!r}")
    fn = {b: f"{name}_{b}" for b in base}
    clash = set(fn.values()) & (set(prog.args) | {s.name for s in prog.forward})
    if clash:
        raise ArgumentError(f"function name {sorted(clash)[0]} clashes with a formula name")
    return fn


def _docstring(prog: Program, backend: str, fn: dict[str, str], chosen) -> str:
    args, grads, outs = abridged(prog.args), abridged(prog.grads, "(", ")"), outputs_text(prog)
    formula = prog.text if _SAFE_TEXT.fullmatch(prog.text or "") and prog.text else None
    quoted = ("\n".join(textwrap.wrap(f"{outs} = {formula}", 92, initial_indent="    ",
                                      subsequent_indent="        ", break_long_words=False))
              if formula else f"    (a formula of {len(prog.forward)} steps, too long to quote)")
    if chosen == SCALAR_DEFAULT and not prog.output_names:
        title = "Value and gradient of one formula"
    else:
        m = len(prog.outputs)
        title = (f"Values and derivatives of {m} formulas" if prog.output_names
                 else "Value and derivatives of one formula")
    suffix = suffix_for(prog)
    tangents_ = abridged([a + suffix for a in wrt_args(prog)])
    signatures = {
        "forward": f"({args}) -> ({outs}, cache)",
        "backward": f"({', '.join('d' + o for o in prog.outputs)}, cache) -> {grads}",
        "value_and_grad": f"({args}) -> ({outs}, {grads})",
        "jvp": f"({args}, {tangents_}) -> ({outs}, {outputs_text(prog, suffix)})",
        "jacobian": f"({args}) -> ({outs}, J), J[i][j] = d {outs}[i] / d "
                    f"{abridged(wrt_args(prog), '(', ')')}[j]",
        "hvp": f"({args}, {tangents_}) -> ({outs}, {grads}, H @ ({tangents_}))",
        "hessian": f"({args}) -> ({outs}, {grads}, H), H[i][j] = d2 {outs} / d "
                   f"{abridged(wrt_args(prog), '(', ')')}[i] d ...[j]",
    }
    return "\n".join([
        f'"""{title}, generated by symdiff {__version__} ({backend} backend). Do not edit.',
        "",
        quoted,
        "",
        *("\n".join(textwrap.wrap(f"{fn[f]}{signatures[f]}", 92, subsequent_indent="    ",
                                  break_long_words=False, break_on_hyphens=False))
          for f in chosen),
        '"""',
    ])


def _forward(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    body = forward_body(prog, w, lines)
    body.append(f"return {packed(prog, list(prog.outputs))}, {as_tuple(_cached(prog, w))}")
    doc = '"""The formula, one step per line; the cache keeps what backward reads."""'
    return define(fn["forward"], prog.args, [doc] + body, w)


def _converted_together(prog: Program, w: Writer) -> str:
    """``x, y = astensors(x, y)``: the arguments converted at once (torch: one dtype, device)."""
    w.helpers.add(w.backend.convert_all)
    names = list(prog.args)
    return f"{', '.join(names)}{',' if len(names) == 1 else ''} = " + call(
        w.backend.convert_all, names)


def _matrix_arguments(prog: Program, w: Writer) -> list[str]:
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
        fixed = tuple(int(n) if n.is_Integer else None for n in shape)
        if len(shape) != 2:  # an N-D array (tensor.py): its number of axes is checked too
            w.helpers.add("astensor")
            lines.append(f'{a} = astensor({a}, "{a}", {fixed})')
            continue
        w.helpers.add("asmatrix")
        extra = f", {fixed}" if any(n is not None for n in fixed) else ""
        lines.append(f'{a} = asmatrix({a}, "{a}"{extra})')
    return lines


def _backward(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    grads, seeds = abridged(prog.grads, "(", ")"), ["d" + o for o in prog.outputs]
    if prog.output_names:
        vjp = " + ".join(f"{d}*{o}" for d, o in zip(seeds, prog.outputs))
        doc = docstring(f"Gradients {grads} of {vjp} (a vector-Jacobian product), given one "
                        "upstream gradient per output.")[3:-3]
    else:
        doc = f"Gradients {grads} of {prog.output}, given its upstream gradient d{prog.output}."
    body = [f'"""{doc}"""']
    cached = _cached(prog, w)
    unpack = f"{', '.join(cached)}{',' if len(cached) == 1 else ''} = cache"
    if cached:
        body.append(unpack if len(unpack) <= 92 else call("", cached, " = cache"))
    steps, aliases = backward_body(prog, w, lines, fold_dout=False)
    body += steps
    body.append(f"return {as_tuple(returned(prog, w, aliases))}")
    return define(fn["backward"], seeds + ["cache"], body, w)


def _value_and_grad(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    out, grads = prog.output, abridged(prog.grads, "(", ")")
    large = len(prog.forward) + len(prog.backward) > FUSE_LIMIT
    if not w.layout.fused or large:  # forward, then backward with dout = 1 (or ones)
        doc = w.backend.doc.format(out=out, grads=grads)
        body = [f'"""{doc}."""', call(f"{out}, cache = {fn['forward']}", prog.args),
                f"return {out}, {fn['backward']}({w.backend.ones.format(out=out)}, cache)"]
        return define(fn["value_and_grad"], prog.args, body, w)
    doc = w.backend.folded_doc.format(out=out, grads=grads)
    blocks = w.backend.blocks if prog.args else None
    fused = fn["value_and_grad_block" if blocks else "value_and_grad"]
    body = [f'"""{doc}.\n\nForward and backward in one pass, with d{out} = 1 folded away."""']
    body += forward_body(prog, w, lines)
    steps, aliases = backward_body(prog, w, lines, fold_dout=True)
    body += steps
    body.append(f"return {out}, {as_tuple(returned(prog, w, aliases, out))}")
    text = define(fused, prog.args, body, w)
    if not blocks:
        return text
    w.helpers.add(blocks)
    driver = [f'"""{doc}.\n\nLarge arrays of one shape run in blocks of rows that fit in the CPU '
              f'cache (see {blocks});\neach block is {fused}."""',
              f"return {blocks}({fused}, {as_tuple(prog.args)})"]
    return text + "\n\n\n" + define(fn["value_and_grad"], prog.args, driver)


def _cached(prog: Program, w: Writer) -> list[str]:
    """Names backward reads: values in local derivatives, and the arguments the layout reads
    back (their shapes, for numpy's reduction or zeros)."""
    used = {s.name for g in prog.backward for s in g.local.free_symbols}
    used |= w.layout.read_back(prog, w.backend)
    order = list(prog.args) + [d[0] for d in prog.dims] + [s.name for s in prog.forward]
    return [n for n in order if n in used]


