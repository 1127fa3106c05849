"""The array functions of a numba module: one compiled loop over points per function.

A numba module holds the math backend's program as per-point functions (``forward_point``,
``backward_point``, ``value_and_grad_point``, written by emit with the math writers and
compiled by ``numba.njit``), and, written here, one loop per function that calls it at every
point of flat arrays, compiled twice (serial, and ``parallel=True`` with ``numba.prange`` over
the cores), and the public ``forward``, ``backward`` and ``value_and_grad`` over arrays.

Invariants: the loops repeat no step (they call the point functions); the arguments broadcast
together as NumPy's do and are computed in float64; each gradient is reduced to its argument's
shape at return (``unbroadcast``), so the results are the numpy backend's, function for
function: ``value_and_grad`` is the gradient of the sum of the output's entries, the cache
holds the arguments (for their shapes), the points' shape and one flat array per cached value.
The jit flags are the record's (``Backend.jit``): IEEE arithmetic, no fastmath.
"""

from __future__ import annotations

from .backends import Backend
from .errors import ArgumentError
from .ir import Program
from .writer import as_tuple, call, define

INDEX = "ipoint"  # the loop's index (a reserved name: no formula name meets it)
# Which compiled loop runs: the parallel one only when there is more than one thread (on one
# thread, prange's scheduler costs a few per cent over the serial loop, for the same numbers).
PARALLEL = "bool(parallel) and numba.get_num_threads() > 1"
# The helpers the array functions call (the per-point helpers are the printer's).
HELPERS = frozenset({"broadcast", "upstream", "results", "shaped", "unbroadcast"})


def point_names(fn: dict[str, str]) -> dict[str, str]:
    """The names the math writers give the per-point functions: ``forward_point``, ..."""
    return {**fn, **{f: fn[f"{f}_point"] for f in ("forward", "backward", "value_and_grad")}}


def array_functions(prog: Program, backend: Backend, fn: dict[str, str], chosen,
                    cached: list[str]) -> str:
    """The loops and public functions of the ``chosen`` functions (forward, backward and
    value_and_grad only: numba has no jvp, jacobian, hvp or hessian yet)."""
    other = [f for f in chosen if f not in ("forward", "backward", "value_and_grad")]
    if other or prog.output_names:
        what = other[0] if other else "a program of several outputs"
        raise ArgumentError(f"the {backend.name} backend writes forward, backward and "
                            f"value_and_grad of one formula, not {what}: use numpy for it")
    writers = {"forward": _forward, "backward": _backward, "value_and_grad": _value_and_grad}
    return "\n\n\n".join(writers[f](prog, backend, fn, cached) for f in chosen)


def _loop(backend: Backend, name: str, point: str, ins: list[str], outs: list[str],
          cache: list[str] | None = None, skipped=()) -> str:
    """``def name(*ins, *outs)``: ``outs[i] = point(ins[i])`` at every point, then the name
    bound to its two compiled forms, (serial, parallel). ``skipped``: which of forward's
    cached values are not stored (the arguments, already arrays)."""
    at = [f"{a}[{INDEX}]" for a in ins]
    targets = [f"{o}[{INDEX}]" for o in outs]
    if any(skipped):
        rest = iter(targets[1:])
        targets = targets[:1] + ["_" if s else next(rest) for s in skipped]
    if cache is not None:  # backward: the cached values of the point as one tuple
        at.append(as_tuple([f"{c}[{INDEX}]" for c in cache]) if cache else "()")
    if cache is None:  # forward and value_and_grad return (out, (more, ...))
        target = f"{targets[0]}, {as_tuple(targets[1:]) if targets[1:] else '_'}"
    else:  # backward returns the gradients' tuple
        target = as_tuple(targets) if targets else "_"
    sized = outs[0] if outs else ins[0]
    step = call(f"{target} = {point}", at).split("\n")
    body = [f'"""{point} at every point of flat arrays, into the arrays after the inputs."""',
            f"for {INDEX} in numba.prange({sized}.size):", *("    " + s for s in step)]
    params = ins + (list(cache) if cache is not None else []) + outs
    pad = " " * (len(name) + 4)
    compiled = (f"{name} = ({backend.jit.format(options='')}({name}),  # (serial, parallel)\n"
                f"{pad}{backend.jit.format(options=', parallel=True')}({name}))")
    return define(name, params, body) + "\n\n\n" + compiled


def _unpacked(names: list[str], value: str) -> str:
    """``a, b = value`` (``a, = value`` for one name)."""
    return f"{', '.join(names)}{',' if len(names) == 1 else ''} = {value}"


def _public(name: str, args: list[str], doc: str, body: list[str]) -> str:
    return define(name, args + ["*", "parallel=False"], [f'"""{doc}"""'] + body)


def _reduced(prog: Program, head: str = "return ") -> str:
    """``head`` then the tuple of each gradient in its points' shape, summed down to its
    argument's shape (wrapped when long)."""
    grad_of = {i.name: i.grad for i in prog.inputs}
    items = [f"unbroadcast(shaped({grad_of[a]}, shape), {a})" for a in prog.args if grad_of[a]]
    if len(items) < 2:
        return head + (f"({items[0]},)" if items else "()")
    return call(head, items)


def _forward(prog, backend, fn, cached) -> str:
    out, args = prog.output, list(prog.args)
    steps = [c for c in cached if c not in args]  # a cached argument is its own flat array
    loop = _loop(backend, fn["forward_loop"], fn["forward_point"], args, [out] + steps,
                 skipped=[c in args for c in cached])
    kept = [i.name for i in prog.inputs if i.grad]  # backward reads their shapes
    values = [f"points[{args.index(c)}]" if c in args else c for c in cached]
    body = [call("shape, points = broadcast", args),
            _unpacked([out] + steps, f"results(shape, {1 + len(steps)})"),
            call(f"{fn['forward_loop']}[{PARALLEL}]", ["*points", out] + steps),
            f"return shaped({out}, shape), ({as_tuple(kept) if kept else '()'}, shape, "
            f"{as_tuple(values) if values else '()'})"]
    doc = (f"{out} and the cache backward reads: {fn['forward_point']} at every point of the "
           "broadcast\narguments (parallel=True: over all cores).")
    return loop + "\n\n\n" + _public(fn["forward"], args, doc, body)


def _backward(prog, backend, fn, cached) -> str:
    out, grads = prog.output, list(prog.grads)
    d = "d" + out
    loop = _loop(backend, fn["backward_loop"], fn["backward_point"], [d], grads, cached)
    kept = [i.name for i in prog.inputs if i.grad]
    body = [f"{as_tuple(kept) if kept else '_'}, shape, values = cache",
            f"{d} = upstream({d}, shape)",
            _unpacked(grads, f"results(shape, {len(grads)})") if grads else "",
            call(f"{fn['backward_loop']}[{PARALLEL}]", [d, "*values"] + grads),
            _reduced(prog)]
    doc = (f"Gradients {as_tuple(grads)} of {out}, given its upstream gradient {d} (broadcast "
           f"to the\npoints): {fn['backward_point']} at every point.")
    return loop + "\n\n\n" + _public(fn["backward"], [d, "cache"], doc, [b for b in body if b])


def _value_and_grad(prog, backend, fn, cached) -> str:
    out, args, grads = prog.output, list(prog.args), list(prog.grads)
    loop = _loop(backend, fn["value_and_grad_loop"], fn["value_and_grad_point"], args,
                 [out] + grads)
    body = [call("shape, points = broadcast", args),
            _unpacked([out] + grads, f"results(shape, {1 + len(grads)})"),
            call(f"{fn['value_and_grad_loop']}[{PARALLEL}]", ["*points", out] + grads),
            _reduced(prog, f"return shaped({out}, shape), ")]
    doc = (f"{out} and its gradient {as_tuple(grads)}, elementwise (summed if broadcast): "
           f"{fn['value_and_grad_point']}\nin one compiled loop over the broadcast "
           "arguments (parallel=True: over all cores).")
    return loop + "\n\n\n" + _public(fn["value_and_grad"], args, doc, body)
