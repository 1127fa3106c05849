"""The framework's own function of a generated module: a ``torch.autograd.Function`` or a
``jax.custom_vjp`` function over the staged forward and backward.

A backend with an ``adapter`` (a template in backends.py) gets one more definition after
``value_and_grad``; this module fills the template's fields from the program. Invariants: the
adapter calls the module's own ``forward`` and ``backward`` and nothing else of the program
(one copy of the steps); it returns one gradient per argument. An argument outside ``wrt`` has
none, and is never given a silent zero: torch's ``needed`` raises if autograd needs its
gradient, and jax's cotangent for it is nan (jax.grad only shows it when asked for it). A torch
cache is saved with ``ctx.save_for_backward``; a matrix program's cache also holds numbers
(dimensions, and steps computed from them alone), which the ``save`` helper keeps on ctx.
"""

from __future__ import annotations

from .backends import Backend
from .ir import Program

# The names an adapter defines (before a module's name prefix): the torch Function, the jax
# function and its two rules.
ADAPTER_NAMES = ("Function", "fn", "fn_forward", "fn_backward")
# The names a numba module adds (emit_numba): per-point functions and their compiled loops.
LOOP_NAMES = tuple(f"{f}_{kind}" for kind in ("point", "loop")
                   for f in ("forward", "backward", "value_and_grad"))


def adapter_source(prog: Program, backend: Backend, fn: dict[str, str]
                   ) -> tuple[str | None, set[str]]:
    """The text of the backend's adapter for ``prog`` (None if the backend has none), and the
    helpers it calls. ``fn`` maps the base names (forward, backward, Function, fn) to the
    module's names."""
    if backend.adapter is None:
        return None, set()
    grad_of = {i.name: i.grad for i in prog.inputs}
    outside = [a for a in prog.args if grad_of[a] is None]
    grads = [grad_of[a] or f"jnp.full_like({a}, jnp.nan)" for a in prog.args]
    unpack = f"{_names(prog.grads)} = "
    helpers = {"needed"} if "needed(" in backend.adapter else set()  # the template's calls
    if prog.dims and "{save}" in backend.adapter:  # numbers in the cache: the save helper
        save, load = "save(ctx, cache)", "saved(ctx)"  # keeps them on ctx beside the tensors
        helpers |= {"save", "saved"}
    else:
        save, load = "ctx.save_for_backward(*cache)", "ctx.saved_tensors"
    name = fn[backend.adapter_name]
    text = backend.adapter.format(
        cls=name, fn=name, args=", ".join(prog.args), out=prog.output,
        forward=fn["forward"], backward=fn["backward"], unpack=unpack, save=save,
        load=f"{unpack}{fn['backward']}(d{prog.output}, {load})",
        grads=", ".join(grad_of[a] or "None" for a in prog.args), jax_grads=_names(grads),
        residuals=f"(cache, ({_names(outside)}))" if outside else "cache",
        res="residuals" if outside else "cache",
        split=f"cache, ({_names(outside)}) = residuals\n    " if outside else "",
        outside=f" (nan for {', '.join(outside)}: not in wrt)" if outside else "")
    return text, helpers


def _names(names) -> str:
    """``a, b`` or ``a,`` (a tuple of one)."""
    names = list(names)
    return ", ".join(names) + ("," if len(names) == 1 else "")
