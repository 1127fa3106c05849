"""The framework's own function of a generated module: a ``torch.autograd.Function`` or a
``jax.custom_vjp`` function over the staged forward and backward.

A backend with an ``adapter`` (a template in backends.py) gets one more definition after
``value_and_grad``; this module fills the template's fields from the program. Invariants: the
adapter calls the module's own ``forward`` and ``backward`` and nothing else of the program
(one copy of the steps); it returns one gradient per argument, ``None`` for an argument outside
``wrt`` (torch's ``needed`` refuses to leave a gradient that autograd needs at None); a torch
cache saves its tensors with ``ctx.save_for_backward`` and a matrix program's dimensions (ints)
on ``ctx.dims``.
"""

from __future__ import annotations

from .backends import Backend
from .ir import Program

_INDENT = "\n        "  # a line inside a method of the torch Function
# The names an adapter defines (before a module's name prefix): the torch Function, the jax
# function and its two rules.
ADAPTER_NAMES = ("Function", "fn", "fn_forward", "fn_backward")


def adapter_source(prog: Program, backend: Backend, fn: dict[str, str],
                   cached: list[str]) -> str | None:
    """The text of the backend's adapter for ``prog`` (None if the backend has none).

    ``fn`` maps the base names (forward, backward, adapter) to the module's names; ``cached``
    lists what forward returns as its cache, in order.
    """
    if backend.adapter is None:
        return None
    grad_of = {i.name: i.grad for i in prog.inputs}
    grads = ", ".join(grad_of[a] or "None" for a in prog.args)
    unpack = f"{', '.join(prog.grads)}{',' if len(prog.grads) == 1 else ''} = "
    save, load = _torch_cache(prog, cached)
    name = fn[backend.adapter_name]
    return backend.adapter.format(
        cls=name, fn=name, args=", ".join(prog.args), out=prog.output,
        forward=fn["forward"], backward=fn["backward"], grads=grads, unpack=unpack,
        save=save, load=_INDENT.join(load[:-1] + [unpack + load[-1].format(
            backward=fn["backward"], out=prog.output)]))


def _torch_cache(prog: Program, cached: list[str]) -> tuple[str, list[str]]:
    """How the torch Function keeps the cache: ``save_for_backward`` takes tensors only, so a
    matrix program's dimensions (ints read off the shapes) go on ``ctx.dims``."""
    dims = {d for d, _, _ in prog.dims} & set(cached)
    if not dims:
        return "ctx.save_for_backward(*cache)", ["{backward}(d{out}, ctx.saved_tensors)"]
    tensors = [n for n in cached if n not in dims]
    shown = [n for n in cached if n in dims]
    pack = ", ".join(shown) + ("," if len(shown) == 1 else "")
    save = [f"{', '.join(cached)}{',' if len(cached) == 1 else ''} = cache",
            f"ctx.save_for_backward({', '.join(tensors)})",
            f"ctx.dims = ({pack})  # ints, not tensors"]
    load = [f"{', '.join(tensors)}{',' if len(tensors) == 1 else ''} = ctx.saved_tensors",
            f"{pack} = ctx.dims",
            f"{{backward}}(d{{out}}, ({', '.join(cached)}{',' if len(cached) == 1 else ''}))"]
    return _INDENT.join(save), load
