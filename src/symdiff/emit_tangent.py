"""The forward-mode functions of a generated module: ``jvp`` and ``jacobian``.

``jvp(*args, *tangents) -> (out, out_t)`` runs the forward lines, then the tangent pass
(``tangent.tangents``), one ``# tangent <forward line>`` group per step that carries a tangent;
its tangent parameters are the wrt arguments' names plus the program's tangent suffix
(``x_t``). ``jacobian(*args) -> (out, J)``, ``J[i][j] = d out_i / d wrt_j``, runs the forward
lines once, then ``min(m, n)`` sweeps, each with its unit seed folded away: a tangent sweep per
wrt variable (``n <= m``) or a reverse sweep per output (the backward lines of that output
alone, its upstream gradient 1). Nested tuples in math and torch; the ``jacobian_array`` helper of
numpy, jax and array_api makes one float array of shape ``(m, n)`` plus the broadcast shape of
the arguments (a Jacobian per point; array_api's in the arguments' namespace, by ``xp.stack``).

Both are self-contained (they call no other generated function). Every difference between the
backends is a field of the ``backends.Backend`` record (``convert``, ``zeros``, ``copy``,
``guard``); nothing compares a backend's name.
"""

from __future__ import annotations

import textwrap

from .errors import UnsupportedFunctionError
from .ir import Program
from .runtime import has_helper
from .tangent import (
    Tangent,
    row_program,
    second_tangents,
    suffix_for,
    sweeps,
    taken_names,
    tangent_text,
    tangents,
)
from .tangent import wrt_args as wrt_names
from .writer import (
    Writer,
    abridged,
    as_tuple,
    backward_body,
    call,
    define,
    forward_body,
    guarded,
    one_line,
)

JACOBIAN_HELPER = "jacobian_array"  # rows of entries -> one (m, n, ...) array (numpy, jax,
# array_api: each backend that has the helper; math and torch return nested tuples)


def refuse_matrix(w: Writer, function: str) -> None:
    """Forward mode has no rules for the whole-array gates yet: refuse, never guess."""
    if not w.layout.forward_mode:
        raise UnsupportedFunctionError(f"{function} of {w.layout.kind} is not supported yet "
                                       "(forward mode has scalar gates only): use backward")


def jvp_function(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    """``def jvp(x, y, x_t, y_t)``: the values and their tangents along the given one."""
    refuse_matrix(w, "jvp")
    suffix = suffix_for(prog)
    wrt = wrt_names(prog)
    seeds = [a + suffix for a in wrt]
    outs = list(prog.outputs)
    doc = docstring(f"{_values(prog)} and {_values(prog, suffix)}, their derivatives along "
                    f"the tangent {abridged(seeds, '(', ')')} of {abridged(wrt, '(', ')')}: the "
                    "Jacobian times the tangent, by one forward (tangent) pass.")
    body = [doc] + forward_body(prog, w, lines) + _converted(seeds, w)
    tans = tangents(prog.forward, dict(zip(wrt, seeds)), outs, suffix)
    text, aliases = _tangent_lines(tans, w, lines)
    body += text
    result = []
    for o in outs:
        t = o + suffix
        if not any(x.name == t for x in tans):
            result.append(_zero(o, w))
        else:
            result.append(w.backend.copy.format(t) if w.backend.copy and t in aliases else t)
    body.append(f"return {packed(prog, outs)}, {packed(prog, result)}")
    return define(fn["jvp"], list(prog.args) + seeds, body, w)


def jacobian_function(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    """``def jacobian(x, y)``: the values and the Jacobian, by the cheaper kind of sweep."""
    refuse_matrix(w, "jacobian")
    wrt, outs = wrt_names(prog), list(prog.outputs)
    m, n = len(outs), len(wrt)
    mode = sweeps(prog)
    how = (f"by {n} forward (tangent) sweep{'s' * (n > 1)}, one per wrt variable (n = {n} <= "
           f"m = {m})" if mode == "forward" else
           f"by {m} reverse sweeps, one per output (m = {m} < n = {n})")
    doc = docstring(f"{_values(prog)} and the Jacobian J[i][j] = d {_values(prog)}[i] / d "
                    f"{abridged(wrt, '(', ')')}[j], {how}.")
    body = [doc] + forward_body(prog, w, lines)
    jac = matrix_names(prog, wrt if mode == "forward" else outs, "jac")
    sweep = _forward_sweeps if mode == "forward" else _reverse_sweeps
    body += sweep(prog, w, lines, jac)
    rows = f"tuple(zip({', '.join(jac)}))" if mode == "forward" else as_tuple(jac)
    if has_helper(JACOBIAN_HELPER, w.backend.name):  # one array, (m, n) + the arguments' shape
        w.helpers.add(JACOBIAN_HELPER)
        rows = call(JACOBIAN_HELPER, [rows] + list(prog.args))
    body.append(f"return {packed(prog, outs)}, {rows}")
    return define(fn["jacobian"], prog.args, body, w)


def hvp_function(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    """``def hvp(x, y, x_t, y_t)``: the value, the gradient and the Hessian times the tangent,
    by one tangent sweep over the forward and the backward lines (forward over reverse)."""
    refuse_second(prog, w, "hvp")
    suffix, wrt = suffix_for(prog), wrt_names(prog)
    seeds = [a + suffix for a in wrt]
    doc = docstring(f"{prog.output}, the gradient {as_tuple(prog.grads)} and the Hessian times "
                    f"the tangent {abridged(seeds, '(', ')')} of {abridged(wrt, '(', ')')}, by "
                    "one tangent sweep over the forward and backward lines (forward over "
                    "reverse; no Hessian is formed).")
    body = [doc] + forward_body(prog, w, lines) + _converted(seeds, w)
    body += _second_sweep(prog, w, lines, dict(zip(wrt, seeds)), with_backward=True)
    last = _last_lines(body)
    hv = [_returned(g + suffix, last, w) if g + suffix in last else _zero(a, w)
          for g, a in zip(prog.grads, wrt)]
    grads = [_returned(g, last, w) for g in prog.grads]
    body.append(f"return {prog.output}, {as_tuple(grads)}, {as_tuple(hv)}")
    return define(fn["hvp"], list(prog.args) + seeds, body, w)


def hessian_function(prog: Program, w: Writer, fn: dict, lines: dict[str, str]) -> str:
    """``def hessian(x, y)``: the value, the gradient and the Hessian, by one tangent sweep
    (unit seed folded away) per wrt variable; entry (i, j) with i > j is entry (j, i)."""
    refuse_second(prog, w, "hessian")
    suffix, wrt = suffix_for(prog), wrt_names(prog)
    n = len(wrt)
    doc = docstring(f"{prog.output}, the gradient {as_tuple(prog.grads)} and the Hessian "
                    f"H[i][j] = d2 {prog.output} / d {abridged(wrt, '(', ')')}[i] d ...[j], by "
                    f"{n} tangent sweep{'s' * (n > 1)} over the forward and backward lines, one "
                    "per wrt variable (forward over reverse); H is symmetric by construction "
                    "(the entries below the diagonal are those above it).")
    body = [doc] + forward_body(prog, w, lines)
    body += backward_body(prog, w, lines, fold_dout=True)[0]
    columns = matrix_names(prog, wrt, "hess")
    for j, (a, column) in enumerate(zip(wrt, columns)):
        body.append(f"# column d/d{a}: the tangents with {a}{suffix} = 1 and every other 0")
        sweep = _second_sweep(prog, w, lines, {a: None}, False, prog.grads[:j + 1])
        body += sweep
        have = _last_lines(sweep)
        entries = [g + suffix if g + suffix in have else "0.0" for g in prog.grads[:j + 1]]
        body.append(f"{column} = {as_tuple(entries)}")
    rows = as_tuple([as_tuple([f"{columns[max(i, j)]}[{min(i, j)}]" for j in range(n)])
                     for i in range(n)])
    if has_helper(JACOBIAN_HELPER, w.backend.name):  # one array, (n, n) + the arguments' shape
        w.helpers.add(JACOBIAN_HELPER)
        rows = call(JACOBIAN_HELPER, [rows] + list(prog.args))
    last = _last_lines(body)
    grads = [_returned(g, last, w) for g in prog.grads]
    body.append(f"return {prog.output}, {as_tuple(grads)}, {rows}")
    return define(fn["hessian"], prog.args, body, w)


def refuse_second(prog: Program, w: Writer, function: str) -> None:
    refuse_matrix(w, function)
    if prog.output_names:
        raise UnsupportedFunctionError(f"{function} is the second derivative of one output; "
                                       f"this program has {len(prog.outputs)}")


def _second_sweep(prog: Program, w: Writer, lines, seeds: dict, with_backward: bool,
                  grads=None) -> list[str]:
    """The forward tangents the backward tangents read, (the backward lines,) and the
    tangents of the gradients (``grads``, default all): one ``# tangent <line>`` group per
    line."""
    suffix = suffix_for(prog)
    forward, backward = second_tangents(prog, seeds, suffix, grads or prog.grads)
    body = _tangent_lines(forward, w, lines)[0]
    if with_backward:
        body += backward_body(prog, w, lines, fold_dout=True)[0]
    source = None
    for t in backward:
        if t.source != source:
            source = t.source
            body.append(f"# tangent of backprop {one_line(lines[source])}")
        text = tangent_text(t, w.expr)
        line = f"{t.name} = {t.name} + {text}" if t.accumulate else f"{t.name} = {text}"
        body.append(guarded(w, _any_piecewise([loc for loc, _ in t.terms], w), line))
    return body


def _returned(name: str, last: dict[str, str], w: Writer) -> str:
    """A returned value, copied where its last line only names another array (``dy_t =
    dxpy_t``: two results must not share one)."""
    named = last[name].isidentifier()
    return w.backend.copy.format(name) if named and w.backend.copy else name


def _last_lines(body: list[str]) -> dict[str, str]:
    """Each name ``body`` assigns, and the right-hand side of its last assignment."""
    last = {}
    for text in body:
        for line in text.splitlines():
            if " = " in line and not line.lstrip().startswith("#"):
                name, rhs = line.split(" = ", 1)
                last[name.strip()] = rhs
    return last


def docstring(text: str, width: int = 88) -> str:
    """A function's docstring, wrapped to fit the module's lines."""
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    return '"""' + "\n".join(lines) + '"""'


def _forward_sweeps(prog: Program, w: Writer, lines, jac: list[str]) -> list[str]:
    suffix, body = suffix_for(prog), []
    for a, column in zip(wrt_names(prog), jac):
        body.append(f"# column d/d{a}: the tangents with {a}{suffix} = 1 and every other 0")
        tans = tangents(prog.forward, {a: None}, prog.outputs, suffix)
        body += _tangent_lines(tans, w, lines)[0]
        have = {t.name for t in tans}
        entries = [o + suffix if o + suffix in have else "0.0" for o in prog.outputs]
        body.append(f"{column} = {as_tuple(entries)}")
    return body


def _reverse_sweeps(prog: Program, w: Writer, lines, jac: list[str]) -> list[str]:
    body = []
    for k, (o, row) in enumerate(zip(prog.outputs, jac)):
        body.append(f"# row d{o}: the backward lines of {o} alone, d{o} = 1")
        body += backward_body(row_program(prog, k), w, lines, fold_dout=True)[0]
        body.append(f"{row} = {as_tuple(prog.grads)}")
    return body


def _tangent_lines(tans: list[Tangent], w: Writer, lines: dict[str, str]):
    """One ``# tangent <forward line>`` group per tangent, and the tangents that only name
    another value (``out_t = x_t``: a returned one is copied)."""
    body, aliases = [], set()
    for t in tans:
        text = tangent_text(t, w.expr)
        body.append(f"# tangent {one_line(lines[t.source])}")
        locals_ = [local for local, _ in t.terms]
        body.append(guarded(w, _any_piecewise(locals_, w), f"{t.name} = {text}"))
        if text.isidentifier():
            aliases.add(t.name)
    return body, aliases


def _any_piecewise(exprs, w: Writer):
    """The first expression with a Piecewise in it (for the NumPy guard), or the first one."""
    return next((e for e in exprs if w.has_piecewise(e)), exprs[0])


def _converted(names: list[str], w: Writer) -> list[str]:
    """``x_t, y_t = asfloat(x_t), asfloat(y_t)``: tangents become arrays as arguments do."""
    convert = w.backend.convert
    if convert is None or not names:
        return []
    w.helpers.add(convert)
    return [f"{', '.join(names)} = {', '.join(f'{convert}({a})' for a in names)}"]


def _zero(value: str, w: Writer) -> str:
    """The tangent of a value that no wrt argument moves: 0.0, or zeros of its shape."""
    return w.backend.zeros.format(arg=value) if w.backend.zeros else "0.0"


def _values(prog: Program, suffix: str = "") -> str:
    outs = [o + suffix for o in prog.outputs]
    return outs[0] if not prog.output_names else abridged(outs, "(", ")")


def packed(prog: Program, names: list[str]) -> str:
    """One value for a scalar program, a tuple of them for a vector one (``(out0, out1)``)."""
    return as_tuple(names) if prog.output_names else names[0]


def matrix_names(prog: Program, values: list[str], stem: str) -> list[str]:
    """``jac_x`` per column (forward sweeps) or ``jac_out0`` per row (``hess_x``: a Hessian's
    column): the first prefix with which none meets a name taken (``jac_``, ``jac2_``, ...)."""
    taken = taken_names(prog)
    suffix = suffix_for(prog)
    taken |= {v + suffix for v in list(prog.args) + [s.name for s in prog.forward]
              + [g.name for g in prog.backward]}
    k = 1
    while True:
        names = [f"{stem}{k if k > 1 else ''}_{v}" for v in values]
        if not taken & set(names):
            return names
        k += 1
