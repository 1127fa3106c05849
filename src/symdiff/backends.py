"""The backends generated code is written for, one frozen record each: what differs, as data.

A ``Backend`` holds everything the emitter and the checker do differently for one target
library: its printer class, the import line, how a gradient accumulates at a fork, the upstream
gradient of ones, the helpers that convert arguments, reduce gradients and run in blocks, the
block a line with a Piecewise runs under, and whether it has matrix programs. Code that writes
or runs generated code reads these fields; nothing compares a backend's name. ``BACKENDS``, the
names in order, is defined here only; ``backend_named`` turns a user's string into its record.

Invariant: each template's text is exactly what generated modules contain (tests/golden); the
printing facts (module prefix, long-sum call, atan2) live on the printer class and are read
through the record, so there is one copy of each.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
from dataclasses import dataclass

from .errors import ArgumentError, MissingToolError
from .numba_printer import NumbaPrinter
from .printers import ArrayApiPrinter, JaxPrinter, MathPrinter, NumpyPrinter, TorchPrinter


@dataclass(frozen=True)
class Backend:
    """One target library of generated code (see MATH and NUMPY below for the values).

    Templates are ``str.format`` patterns; a field of None means the backend has no such step.
    """

    name: str  # as users spell it: prog.source("numpy")
    printer: type  # the printers class printing one expression as one line
    imports: str  # the import line of a module whose text calls the library
    accumulate: str  # a later write to a gradient at a fork: {name}, {sign} (+ or -), {value}
    ones: str  # the upstream gradient value_and_grad passes to backward: {out}
    doc: str  # value_and_grad's docstring when it calls backward: {out}, {grads}
    folded_doc: str  # ... when it is fused with dout = 1 folded away
    zeros: str | None  # the zero gradient of an array argument: {arg}
    convert: str | None  # helper each argument goes through first (number -> float array)
    reduce: str | None  # helper summing a returned gradient to its argument's shape
    shape_of: str | None  # the shape of a value, for reduce over the output's shape: {}
    copy: str | None  # a returned gradient that names another value's array: {}
    guard: str | None  # the block a line with a Piecewise runs under (every branch evaluated)
    blocks: str | None  # helper running the fused value_and_grad over blocks of rows
    matrices: bool  # has matrix programs (the whole-array gates of array_ops)
    batched: bool  # generated functions are elementwise over arrays: check runs all points at once
    library: str | None = None  # the package the code needs, if symdiff does not (pip extra)
    convert_all: str | None = None  # helper converting all arguments at once (one dtype, device)
    adapter: str | None = None  # the framework's function of the module (adapters.py fills it)
    adapter_name: str | None = None  # the name it defines (the jax rules add _forward, _backward)
    arrays: str | None = None  # dotted callable: a float64 NumPy array -> the library's array
    context: str | None = None  # dotted callable; check runs the code under context(True)
    jit: str | None = None  # compiles per-point functions into loops (numba): {options}
    fallback: str | None = None  # what the code runs on without library (then not required)
    namespace: str | None = None  # helper binding the arrays' namespace: xp = namespace(x, y)
    guard_helper: str | None = None  # the helper the guard block calls
    guard_call: str | None = None  # helper an elementwise guarded line calls instead of guard:
    # name = guard_call(lambda xp, a, b: <rhs>, xp, a, b) (Dask: the guard inside each chunk)

    @property
    def module(self) -> str:
        """The prefix of the library's names in generated code (``math``, ``np``)."""
        return self.printer.module

    @property
    def sum_call(self) -> str:
        """The call a long sum prints as (``math.fsum``, ``sum``)."""
        return self.printer.sum_call

    @property
    def atan2_call(self) -> str:
        """The two-argument arctangent (``math.atan2``, ``np.arctan2``)."""
        return self.printer.atan2_call

    def make_printer(self):
        """A printer for the lines of one module; its ``helpers`` collects the helpers used."""
        return self.printer()

    def require(self) -> None:
        """A MissingToolError, with the install command, if the library is not installed."""
        if (self.library is not None and self.fallback is None
                and importlib.util.find_spec(self.library) is None):
            raise MissingToolError(f"the {self.name} backend's code needs {self.library}, which "
                                   f"is not installed: pip install 'symdiff[{self.library}]'")

    def run_context(self):
        """The context check runs this backend's code under (jax: float64), resolved lazily."""
        return contextlib.nullcontext() if self.context is None else resolved(self.context)(True)

    def uses_module(self, text: str) -> bool:
        """Whether ``text`` calls the library (then the module needs ``imports``)."""
        return re.search(rf"\b{re.escape(self.module)}\.", text) is not None

    def accumulated(self, name: str, sign: str, value: str) -> str:
        """``dx += dt`` (math) or ``dx = dx + dt`` (numpy: an in-place += would also change
        an array another gradient aliases, after ``dx = dxpy; dy = dxpy``)."""
        return self.accumulate.format(name=name, sign=sign, value=value)

    def reduced(self, grad: str, arg: str, out: str | None = None) -> str:
        """``unbroadcast(dx, x)``; with dout folded to 1, over ``out``'s shape first (what a
        dout of ones would have done)."""
        shape = f", {self.shape_of.format(out)}" if out else ""
        return f"{self.reduce}({grad}, {arg}{shape})"


MATH = Backend(
    name="math", printer=MathPrinter, imports="import math",
    accumulate="{name} {sign}= {value}", ones="1.0",
    doc="{out} and its gradient {grads} at one point",
    folded_doc="{out} and its gradient {grads} at one point",
    zeros=None, convert=None, reduce=None, shape_of=None, copy=None,  # floats: nothing aliases
    guard=None,  # a Piecewise is a lazy conditional expression: untaken branches never run
    blocks=None, matrices=False, batched=False,
)
NUMPY = Backend(
    name="numpy", printer=NumpyPrinter, imports="import numpy as np",
    accumulate="{name} = {name} {sign} {value}", ones="np.ones_like({out})",
    doc="{out} and the gradient {grads} of the sum of its entries",
    # d(sum of out)/d arg: elementwise for full-shape args, summed for broadcast ones
    folded_doc="{out} and its gradient {grads}, elementwise (summed if broadcast)",
    zeros="np.zeros_like({arg})", convert="asfloat", reduce="unbroadcast",
    shape_of="np.shape({})", copy="np.array({})",
    guard='with np.errstate(all="ignore"):',  # np.select evaluates every branch
    blocks="in_blocks", matrices=True, batched=True,
)
# The framework's own function of a torch module, composing with autograd. Fields: {cls},
# {args}, {out}, {forward}, {backward}, {save} and {load} (the cache into and out of ctx), {grads}.
TORCH_FUNCTION = '''class {cls}(torch.autograd.Function):
    """{out} = {forward}({args}) as a torch.autograd.Function whose backward is the staged
    backward: {cls}.apply({args}) composes with autograd (once: backward is not itself
    differentiable, since the values it reads were saved without a graph)."""

    @staticmethod
    def forward(ctx, {args}):
        {out}, cache = {forward}({args})
        {save}
        return {out}

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d{out}):
        {load}
        return needed(ctx, {grads})'''
# A jax.custom_vjp function whose rules are the staged forward (the cache as residuals) and
# backward. Fields: {fn}, {args}, {out}, {forward}, {backward}, {unpack}, {jax_grads}; an
# argument outside wrt is kept in the residuals ({residuals}, {res}, {split}) for its cotangent,
# nan: never a silent 0 ({outside} says so).
JAX_FUNCTION = '''@jax.custom_vjp
def {fn}({args}):
    """{out} = {forward}({args}) as a jax.custom_vjp function: its gradient is the staged
    backward, under jit, vmap and grad."""
    return {forward}({args})[0]


def {fn}_forward({args}):
    """The forward rule: the value, and the cache as residuals."""
    {out}, cache = {forward}({args})
    return {out}, {residuals}


def {fn}_backward({res}, d{out}):
    """The backward rule: the staged backward{outside}."""
    {split}{unpack}{backward}(d{out}, cache)
    return {jax_grads}


{fn}.defvjp({fn}_forward, {fn}_backward)'''
TORCH = Backend(
    name="torch", printer=TorchPrinter, imports="import torch",
    accumulate="{name} = {name} {sign} {value}", ones="torch.ones_like({out})",
    doc=NUMPY.doc, folded_doc=NUMPY.folded_doc,
    zeros="torch.zeros_like({arg})", convert=None, reduce="unbroadcast",
    shape_of="{}.shape", copy="{}.clone()",
    guard=None,  # torch.where evaluates every branch, silently
    blocks=None, matrices=True, batched=True, library="torch", convert_all="astensors",
    adapter=TORCH_FUNCTION, adapter_name="Function", arrays="torch.from_numpy",
)
JAX = Backend(
    name="jax", printer=JaxPrinter, imports="import jax\nimport jax.numpy as jnp",
    accumulate="{name} = {name} {sign} {value}", ones="jnp.ones_like({out})",
    doc=NUMPY.doc, folded_doc=NUMPY.folded_doc,
    zeros="jnp.zeros_like({arg})", convert="asfloat", reduce="unbroadcast",
    shape_of="jnp.shape({})", copy=None,  # jax arrays are immutable: nothing to protect
    guard=None,  # jnp.select evaluates every branch, silently
    blocks=None, matrices=True, batched=True, library="jax", adapter=JAX_FUNCTION,
    adapter_name="fn",
    arrays="jax.numpy.asarray", context="jax.enable_x64",  # float64, as the checker's floats
)
# The math program compiled per point and looped over arrays (emit_numba). The flags keep IEEE
# arithmetic: no fastmath (it assumes no nan or inf, and reorders sums); error_model="numpy"
# makes 1/0 inf and 0/0 nan, as NumPy, where "python" would raise ZeroDivisionError.
NUMBA = Backend(
    name="numba", printer=NumbaPrinter, imports="import math\n\nimport numba\nimport numpy as np",
    accumulate=MATH.accumulate, ones=MATH.ones, doc=MATH.doc, folded_doc=MATH.folded_doc,
    zeros=None, convert=None, reduce=None, shape_of=None, copy=None,  # per point: floats
    guard=None, blocks=None, matrices=False, batched=True, library="numba",
    jit='numba.njit(error_model="numpy"{options})',
)
# Code over any Array API array in the arrays' own namespace (xp = namespace(x, y): Dask stays
# lazy, torch and CuPy on their device). An opt-in record of its own, so numpy modules stay
# as they are. The import is runtime_array_api's first statement, verbatim (tested).
ARRAY_API_IMPORT = """try:
    from array_api_compat import array_namespace
except ImportError:  # NumPy arrays and numbers only: namespace() refuses any other array
    array_namespace = None"""
ARRAY_API = Backend(
    name="array_api", printer=ArrayApiPrinter, imports=ARRAY_API_IMPORT,
    accumulate="{name} = {name} {sign} {value}", ones="xp.ones_like({out})",
    doc=NUMPY.doc, folded_doc=NUMPY.folded_doc,
    zeros="xp.zeros_like({arg})", convert=None, reduce="unbroadcast",
    shape_of="{}.shape", copy="xp.asarray({}, copy=True)",
    guard="with quiet(xp):", guard_helper="quiet",  # NumPy's errstate, for NumPy's arrays
    guard_call="quietly",  # ... and in each chunk's task, for Dask's (computed later)
    blocks=None,  # Dask has its chunks; torch and CuPy their own kernels
    matrices=True, batched=True, library="array_api_compat", convert_all="asarrays",
    fallback="NumPy arrays", namespace="namespace",
)
ALL: tuple[Backend, ...] = (MATH, NUMPY, TORCH, JAX, NUMBA, ARRAY_API)
BACKENDS: tuple[str, ...] = tuple(b.name for b in ALL)
# The backends whose code runs wherever symdiff does (no optional library): check's default
# (array_api, on NumPy arrays the numpy backend's numbers, is checked when named).
BUNDLED: tuple[str, ...] = tuple(b.name for b in ALL if b.library is None)
_BY_NAME = {b.name: b for b in ALL}


def resolved(dotted: str):
    """The object a dotted name names (``torch.from_numpy``), its module imported now: the
    optional libraries are imported only when their code runs."""
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def backend_named(name) -> Backend:
    """The record of the backend a user names; an ArgumentError for any other name.

    >>> backend_named("numpy").imports
    'import numpy as np'
    """
    backend = _BY_NAME.get(name) if isinstance(name, str) else None
    if backend is None:
        choices = " or ".join(repr(b) for b in BACKENDS)
        raise ArgumentError(f"unknown backend {name!r}: choose {choices}")
    return backend
