"""The staged program: small immutable records, a readable listing, and a validator.

Invariants (``Program.validate`` checks them all, raising ``InvalidProgramError``):
- forward steps assign each name once; a step's right-hand side is one gate over arguments and
  earlier steps (a Piecewise gate may carry its guarded branches inline); the last step is the
  output;
- backward steps walk the forward steps in reverse; the first write of a gradient is ``=``, every
  later write is ``+=``; a step's upstream gradient is ``dout`` or was written before;
- every name (argument, step, gradient) is a distinct Python identifier, not a keyword.

``ir`` imports only ``errors`` and SymPy: every later stage imports it, never the reverse. The
methods of ``Program`` that a later stage implements (``source``, ``compile``, ``evaluate``,
``to_dot``, ``to_svg``, the NumPy notation of a matrix listing) are *hand-offs*: they call the
function registered under their name (``register``), which ``symdiff.handoffs`` does once when
symdiff is imported; an unregistered hand-off is a ``MissingStageError``.
"""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import sympy as sp

from . import errors
from .errors import ArgumentError, InvalidProgramError, MissingStageError, MissingToolError


@dataclass(frozen=True)
class Input:
    """A formula symbol and its identifiers in generated code (value and gradient)."""

    symbol: sp.Symbol  # the user's symbol, as it appears in Program.expr
    name: str  # its parameter name in generated code
    grad: str | None  # its gradient's name, for wrt symbols


@dataclass(frozen=True)
class Step:
    """One forward line: ``name = rhs``, where ``op`` names the gate kind; ``note`` says why the
    gate is there when a stable rewrite put it there (``stable: log(1 + x) = log1p(x)``)."""

    name: str
    rhs: sp.Expr
    op: str
    symbol: sp.Symbol | None = field(default=None, compare=False, repr=False)  # Symbol(name)
    note: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.name} = {_text(self.rhs)}"

    @property
    def value(self) -> sp.Symbol:
        """The step's value as a real Symbol named ``name`` (made once: SymPy's symbol cache
        holds 1,000 entries, and rebuilding a symbol it evicted costs its assumptions again)."""
        return self.symbol if self.symbol is not None else sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class GradStep:
    """One backward line: ``name (+)= upstream * local``.

    ``local`` is the local derivative of forward step ``source`` with respect to the value whose
    gradient ``name`` holds, written over forward names; ``accumulate`` marks ``+=`` at a fork.
    With ``whole`` (matrix programs), ``local`` is instead the whole term, written over forward
    names and ``upstream`` (``dout @ W.T`` is no product of ``dout`` and a local derivative).
    """

    name: str
    upstream: str
    local: sp.Expr
    accumulate: bool
    source: str
    whole: bool = False

    @property
    def rhs(self) -> sp.Expr:
        if self.whole:
            return self.local
        return sp.Symbol(self.upstream, real=True) * self.local

    def __str__(self) -> str:
        return f"{self.name} {'+=' if self.accumulate else '='} {grad_text(self, _text)}"


def grad_text(step: GradStep, print_expr) -> str:
    """``upstream * local`` as text, folding a local derivative of 1 or -1."""
    if step.whole:
        return print_expr(step.local)
    if step.local == 1:
        return step.upstream
    if step.local == -1:
        return f"-{step.upstream}"
    local = print_expr(step.local)
    if step.local.is_Number:
        return f"{local}*{step.upstream}"
    if not _is_tight(step.local):
        local = f"({local})"
    return f"{step.upstream} * {local}"


def _is_tight(expr: sp.Expr) -> bool:
    """True when ``expr`` prints as one operand that needs no parentheses after ``*``."""
    if expr.is_Symbol or expr.is_NumberSymbol:
        return True
    if expr.is_Pow:
        return expr.exp.is_Integer and expr.exp > 0
    return isinstance(expr, sp.Function) and not isinstance(expr, sp.Piecewise)


def _text(expr: sp.Basic) -> str:
    return sp.sstr(expr, order="none")


@dataclass(frozen=True, eq=False)
class Program:
    """A formula lowered to staged forward and backward steps (see ``symdiff.lower``).

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> prog = symdiff.lower(x * y + sp.sin(x), wrt=[x, y])
    >>> [s.name for s in prog.forward]
    ['xy', 'sinx', 'out']
    """

    expr: sp.Expr  # the formula as given (a parsed string, or the user's expression)
    inputs: tuple[Input, ...]  # in parameter order
    wrt: tuple[sp.Symbol, ...]
    forward: tuple[Step, ...]
    backward: tuple[GradStep, ...]
    text: str = ""  # the formula over code names (empty when too large to print)
    shapes: dict | None = None  # matrix programs: code name -> shape ((), or (rows, cols))
    dims: tuple = ()  # matrix programs: (dimension name, argument name, axis) read at run time
    output_names: tuple[str, ...] = ()  # vector programs: the output steps, in order (out0, ...)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def output(self) -> str:
        """The one output (a VectorOutputError for a program of several: see ``outputs``)."""
        if self.output_names:
            raise errors.VectorOutputError(f"this program has {len(self.output_names)} outputs "
                                    f"({', '.join(self.output_names)}), not one")
        return self.forward[-1].name

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output steps: ``(out,)``, or ``(out0, out1, ...)`` for a vector program."""
        return self.output_names or (self.forward[-1].name,)

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def grads(self) -> tuple[str, ...]:
        """Gradient names returned by backward, one per wrt symbol, in wrt order."""
        by_symbol = {i.symbol: i.grad for i in self.inputs}
        return tuple(by_symbol[s] for s in self.wrt)

    @property
    def zero_grads(self) -> tuple[str, ...]:
        """Gradients no backward step writes: wrt symbols the output does not depend on."""
        written = {g.name for g in self.backward}
        return tuple(g for g in self.grads if g not in written)

    def __repr__(self) -> str:
        return (f"<Program {_outs(self)} = f({', '.join(self.args)}): {len(self.forward)} forward "
                f"steps, {len(self.backward)} backward steps>")

    def __str__(self) -> str:
        head = f"{_outs(self)} = f({', '.join(self.args)})"
        if self.text:
            head += f" = {self.text}"
        lines = [head, f"wrt: {', '.join(self.grads)}", "forward:"]
        text, step_text = _text, str
        if self.shapes is not None:  # matrix programs: NumPy notation, with each step's shape
            printer = service("make_printer")("numpy")
            text = printer.line

            def step_text(s):
                return f"{s.name} = {text(s.rhs)}".ljust(36) + f"  # {_shape_text(self, s.name)}"

        for s in self.forward:
            if s.note:  # a stable rewrite (stable.py)
                lines.append(f"    # {s.note}")
            lines.append(f"    {step_text(s)}")
        lines.append("backward:")
        source = None
        for g in self.backward:
            if g.source != source:
                source = g.source
                lines.append(f"    # backprop {self.step(source).name} = "
                             f"{text(self.step(source).rhs)}")
            lines.append(f"    {g.name} {'+=' if g.accumulate else '='} {grad_text(g, text)}")
        lines += [f"    {z} = 0" for z in self.zero_grads]
        return "\n".join(lines)

    def step(self, name: str) -> Step:
        """The forward step called ``name``."""
        if "steps" not in self._cache:
            self._cache["steps"] = {s.name: s for s in self.forward}
        return self._cache["steps"][name]

    def source(self, backend: str = "math", name: str | None = None,
               functions: tuple[str, ...] | None = None) -> str:
        """Text of a self-contained Python module computing the value and derivatives.

        ``backend`` is ``"math"`` (Python floats) or ``"numpy"`` (elementwise over arrays). The
        module defines ``functions`` (prefixed by ``name_`` when ``name`` is given; default
        ``forward``, ``backward`` and ``value_and_grad``, or for a vector program ``forward``,
        ``backward``, ``jvp`` and ``jacobian``) and imports nothing but math or numpy.
        """
        return service("source")(self, backend, name, functions)

    def compile(self, backend: str = "math", name: str | None = None,
                functions: tuple[str, ...] | None = None) -> Any:
        """The generated module, compiled and loaded: an object with forward, backward, ..."""
        return service("compile")(self, backend, name, functions)

    def evaluate(self, at: dict, dout: float = 1.0) -> dict[str, float]:
        """Every value of the program at a point: arguments, forward steps and gradients.

        ``at`` maps Symbols or names to numbers (2-D arrays for the arrays of a matrix
        program; ``dout`` may then be an array of the output's shape). Values are computed at
        50 digits (no overflow, no float rounding) and returned as floats or float arrays, keyed
        by their names in the generated code.

        >>> import sympy as sp, symdiff
        >>> a, b = sp.symbols("a b")
        >>> symdiff.lower(a * b, wrt=[a, b]).evaluate({a: 3, b: 4})
        {'a': 3.0, 'b': 4.0, 'out': 12.0, 'dout': 1.0, 'da': 4.0, 'db': 3.0}
        """
        return service("evaluate")(self, self.resolve_point(at), dout)

    def resolve_point(self, at: dict) -> dict[str, Any]:
        """``at`` (Symbols or names, user or code spelling -> numbers, or arrays for the arrays
        of a matrix program) keyed by code names."""
        if not isinstance(at, dict):
            raise ArgumentError(f"a point must be a dict of symbol or name -> number, got {at!r}")
        by_name = {i.symbol.name: i for i in self.inputs}
        by_name.update((i.name, i) for i in self.inputs)
        point = {}
        for key, value in at.items():
            name = key if isinstance(key, str) else getattr(key, "name", None)
            if name not in by_name:
                raise ArgumentError(f"the point names {key!r}, which is not an argument")
            if not isinstance(by_name[name].symbol, sp.Symbol):  # an array (matrix, N-D)
                point[by_name[name].name] = value
                continue
            try:
                point[by_name[name].name] = float(value)
            except (TypeError, ValueError):
                raise ArgumentError(f"the value of {name} is not a number: {value!r}") from None
        missing = [n for n in self.args if n not in point]
        if missing:
            raise ArgumentError(f"the point gives no value for {', '.join(missing)}")
        return point

    def count_ops(self) -> dict[str, Any]:
        """Operation counts of the generated code: ``forward``, ``backward`` and their ``ratio``.

        An operation is one arithmetic operator or function call as ``sympy.count_ops`` counts
        it, step by step. A backward line costs its local derivative, one multiplication by the
        upstream gradient unless the local derivative is 1 (folded) or -1 (one negation, or
        ``-=``), and one addition when it accumulates (``+=``).
        """
        if "count_ops" not in self._cache:
            forward = sum(int(sp.count_ops(s.rhs)) for s in self.forward)
            backward = sum(_grad_ops(g) for g in self.backward)
            self._cache["count_ops"] = {"forward": forward, "backward": backward,
                                        "ratio": backward / forward if forward else 0.0}
        return dict(self._cache["count_ops"])

    def validate(self) -> None:
        """Raise InvalidProgramError naming the first invariant of ``symdiff.ir`` that fails."""
        validate(self)

    def to_dot(self, at: dict | None = None) -> str:
        """Graphviz DOT text of the computational graph; with ``at``, values and gradients.

        Each edge shows its operand's forward value and, below it in red, the gradient flowing
        back along it. See ``symdiff.graph``.
        """
        return service("to_dot")(self, at)

    def to_svg(self, at: dict | None = None) -> str:
        """The graph rendered to SVG by Graphviz's ``dot`` (MissingToolError if it is absent)."""
        return service("to_svg")(self, at)

    def to_html(self, at: dict | None = None) -> str:
        """One self-contained interactive page of the graph (``symdiff.page``; Graphviz)."""
        return service("to_html")(self, at)

    def _repr_html_(self) -> str:
        """Jupyter shows the listing, the graph (when Graphviz is installed) and the code."""
        try:
            picture = self.to_svg()
            picture = picture[picture.find("<svg"):]  # no XML prolog inside HTML
        except MissingToolError:
            picture = ""
        backend = service("default_backend")(self)
        return (f"<div><pre>{escape(str(self))}</pre>{picture}<details><summary>generated "
                f"code ({backend} backend)</summary><pre>{escape(self.source(backend))}</pre>"
                "</details></div>")

    def _repr_pretty_(self, printer, cycle):  # IPython shows the listing
        printer.text(str(self))


def _outs(prog: Program) -> str:
    return prog.output if not prog.output_names else f"({', '.join(prog.output_names)})"


def _grad_ops(step: GradStep) -> int:
    if step.whole:
        return int(sp.count_ops(step.local)) + step.accumulate
    if step.local == 1:  # dt = dout (a copy), dx += dt
        return int(step.accumulate)
    if step.local == -1:  # dt = -dout, dx -= dt
        return 1
    return 1 + int(sp.count_ops(step.local)) + step.accumulate


def _shape_text(prog: Program, name: str) -> str:
    shape = prog.shapes[name]
    return f"({', '.join(map(str, shape))})" if shape else "scalar"


def is_identifier(name: str) -> bool:
    """A name usable as a Python variable."""
    return name.isidentifier() and not keyword.iskeyword(name) and name.isascii()


# -- hand-offs: the methods of Program that a later stage implements ------------------------

# hand-off name -> (what needs it, the function symdiff.handoffs registers for it)
HANDOFFS = {
    "source": ("Program.source", "emit.module_source(prog, backend, name, functions)"),
    "compile": ("Program.compile", "emit.compile_module(prog, backend, name, functions)"),
    "evaluate": ("Program.evaluate", "interpret.program_values(prog, point, dout)"),
    "to_dot": ("Program.to_dot", "graph.to_dot(prog, at)"),
    "to_svg": ("Program.to_svg", "graph.to_svg(prog, at)"),
    "to_html": ("Program.to_html", "page.to_html(prog, at)"),
    "make_printer": ("the listing of a matrix Program", "printers.make_printer(backend)"),
    "default_backend": ("Program._repr_html_", "emit.default_backend(prog)"),
}
_services: dict[str, Callable] = {}


def register(**services: Callable) -> None:
    """Connect Program's hand-offs to the functions of the later stages that implement them."""
    unknown = sorted(set(services) - set(HANDOFFS))
    if unknown:
        raise ArgumentError(f"no Program hand-off is called {', '.join(unknown)}; the hand-offs: "
                            f"{', '.join(HANDOFFS)}")
    _services.update(services)


def service(name: str) -> Callable:
    """The function registered for hand-off ``name`` (a MissingStageError if there is none)."""
    try:
        return _services[name]
    except KeyError:
        what, where = HANDOFFS[name]
        raise MissingStageError(f"{what} needs symdiff.{where}, which is not registered "
                                "(importing symdiff registers every hand-off: symdiff.handoffs)"
                                ) from None


# -- validation ------------------------------------------------------------------------------


def validate(prog: Program) -> None:
    """Check the invariants of a Program (single assignment, defined before use, accumulation);
    raise InvalidProgramError naming the first that fails (never ``assert``: ``python -O``)."""
    _validate_names(prog)
    forward_names = _validate_forward(prog)
    _validate_backward(prog, forward_names)


def _validate_names(prog: Program) -> None:
    if not prog.forward:
        raise InvalidProgramError("the Program has no forward step (the last one is the output)")
    names = [i.name for i in prog.inputs] + [s.name for s in prog.forward]
    grads = [i.grad for i in prog.inputs if i.grad] + ["d" + s.name for s in prog.forward]
    everything = names + grads
    if len(set(everything)) != len(everything):
        twice = sorted(n for n, count in Counter(everything).items() if count > 1)
        raise InvalidProgramError(f"the name {twice[0]} is assigned twice (single assignment: "
                                  "arguments, steps and gradients are distinct names)")
    for name in everything:
        if not is_identifier(name):
            raise InvalidProgramError(f"the name {name!r} is not a Python identifier")
    if len(set(prog.wrt)) != len(prog.wrt):
        raise InvalidProgramError("wrt lists a symbol twice")
    by_symbol = {i.symbol: i for i in prog.inputs}
    for symbol in prog.wrt:
        if symbol not in by_symbol:
            raise InvalidProgramError(f"the wrt symbol {symbol} is not an argument")
        if not by_symbol[symbol].grad:
            raise InvalidProgramError(f"the wrt argument {by_symbol[symbol].name} has no "
                                      "gradient name")


def _validate_forward(prog: Program) -> set[str]:
    """The names the forward steps may read, after checking each is defined before use."""
    defined = set(prog.args) | {d[0] for d in prog.dims}
    for step in prog.forward:
        used = {s.name for s in step.rhs.free_symbols}
        if not used <= defined:
            raise InvalidProgramError(f"forward step {step.name} reads "
                                      f"{', '.join(sorted(used - defined))} before it is defined")
        defined.add(step.name)
    return defined


def _validate_backward(prog: Program, forward_names: set[str]) -> None:
    written = {"d" + o for o in prog.outputs}
    order = {s.name: k for k, s in enumerate(prog.forward)}
    if len(written) != len(prog.outputs) or not set(prog.outputs) <= set(order):
        raise InvalidProgramError("the outputs must be distinct forward steps")
    last = len(prog.forward)
    for g in prog.backward:
        if g.source not in order:
            raise InvalidProgramError(f"backward step {g.name} backpropagates {g.source}, which "
                                      "is not a forward step")
        if g.upstream not in written:
            raise InvalidProgramError(f"backward step {g.name} reads {g.upstream} before it is "
                                      "written")
        if order[g.source] > last:
            raise InvalidProgramError(f"the backward block of {g.source} is out of reverse order")
        last = order[g.source]
        if g.upstream != "d" + g.source:
            raise InvalidProgramError(f"backward step {g.name} in the block of {g.source} is fed "
                                      f"by {g.upstream}, not d{g.source}")
        if g.accumulate != (g.name in written):
            wrong, right = ("+=", "=") if g.accumulate else ("=", "+=")
            raise InvalidProgramError(f"backward step {g.name} writes with {wrong} where {right} "
                                      "belongs (the first write of a gradient is =, every later "
                                      "one +=)")
        used = {s.name for s in g.local.free_symbols} - {g.upstream}
        if not used <= forward_names:
            raise InvalidProgramError(f"backward step {g.name} reads "
                                      f"{', '.join(sorted(used - forward_names))}, which the "
                                      "forward pass does not define")
        written.add(g.name)
