"""The public entry points: ``lower`` a formula to a Program, ``grad`` for the compiled function.

This module resolves what the user passed (a SymPy expression or a string; symbols or names for
``wrt`` and ``args``) with clear errors, names the inputs, and runs the pipeline:
parse -> canonicalize -> lower (forward steps) -> reverse (backward steps) -> Program.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import sympy as sp
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from .dag import gc_paused, postorder, substitute
from .errors import ArgumentError, SymdiffError, VectorOutputError
from .index_notation import from_index
from .ir import Input, Program, is_identifier
from .lower import Lowerer, canonicalize
from .lower_matrix import Converter
from .matrix import reverse_arrays, runtime_dims, step_shapes
from .naming import Namer, natural_key, sanitize
from .parse import parse
from .printers import make_printer
from .reverse import reverse
from .tensor import ARRAY_NODES, ArraySymbol, is_array

_CONDITIONS = (Relational, BooleanAtom, BooleanFunction)
MAX_PRINTED_NODES = 300  # a formula longer than this (as a tree) is not quoted in listings


@gc_paused
def lower(expr, wrt: Sequence, args: Sequence | None = None, *,
          allow_unused: bool = False) -> Program:
    """Lower a formula to a staged forward/backward Program.

    ``expr`` is a SymPy expression or a formula string (parsed with a whitelist, never evaluated),
    or a vector of them (a list, tuple, ``sympy.Tuple`` or one-column/one-row ``sympy.Matrix``):
    all outputs are staged in one forward program sharing common steps, named ``out0``,
    ``out1``, ... (or by a dict: ``{"h_next": h, "c_next": c}`` gives ``backward(dh_next,
    dc_next, cache)``), and ``backward`` takes one upstream gradient per output.
    ``wrt`` lists the Symbols (or names) to differentiate with respect to; ``args`` is the parameter
    order of the generated functions (default: wrt in order, then the other symbols by name, in
    natural order: x2 before x10). A *name* in ``wrt`` or ``args`` that is not a variable of the
    formula is an ArgumentError (a typo), unless ``allow_unused=True``; a SymPy Symbol absent from
    the formula gets a zero gradient.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> prog = lower(x * sp.exp(y), wrt=[x, y])
    >>> print(prog.source("math").count("def "))
    3
    >>> lower([x * y, sp.sin(x * y)], wrt=[x, y]).outputs
    ('out0', 'out1')
    """
    given: tuple[str, ...] = ()
    if isinstance(expr, Mapping):  # {"h_next": h, "c_next": c}: outputs named by the user
        given, expr = _named_outputs(expr)
    if isinstance(expr, sp.Basic):
        expr = from_index(expr)  # index notation over arrays: array nodes
    if isinstance(expr, MatrixExpr) or is_array(expr):
        return _lower_matrix([expr], wrt, args, allow_unused)
    vector = _as_vector(expr)
    exprs = [e if isinstance(e, MatrixExpr) else  # an output of matrix value (vector only)
             as_expression(e, variables=declared_names(wrt, args)) for e in vector or [expr]]
    nodes = postorder(sp.Tuple(*exprs) if vector else exprs[0])  # one walk: matrices? symbols?
    if any(isinstance(n, (MatrixExpr, *ARRAY_NODES)) for n in nodes):  # a Trace: a scalar
        return _lower_matrix(exprs, wrt, args, allow_unused, vector=bool(vector), given=given)
    symbols = sorted({n for n in nodes if isinstance(n, sp.Symbol)},
                     key=lambda s: (natural_key(s.name), str(s.assumptions0)))
    real = {s: real_symbol(s) for s in symbols}
    wrt_pairs = _resolve_wrt(wrt, symbols, real, allow_unused)
    arg_pairs = _resolve_args(args, symbols, real, wrt_pairs, allow_unused)
    namer, inputs, codes, grads = _name_inputs(arg_pairs, wrt_pairs)
    lowerer, texts, outputs = Lowerer(namer, codes), [], []
    for k, e in enumerate(exprs):
        folded: list = []
        canonical = canonicalize(e, real, folded)
        forward = lowerer.run(canonical, _output_name(k, vector, given))
        outputs.append(forward[-1].name)
        written = _as_written(e, canonical, forward, real, codes, folded)
        texts.append(_formula_text(*written, postorder(e) if vector else nodes))
    names = _checked_names(outputs, given) if vector else ()
    backward = reverse(forward, {codes[i].name: g for i, g in grads.items()}, outputs=names)
    user_wrt = tuple(user for user, _ in wrt_pairs)
    text = texts[0] if not vector else f"({', '.join(texts)})" if all(texts) else ""
    return Program(sp.Tuple(*exprs) if vector else exprs[0], inputs, user_wrt, tuple(forward),
                   tuple(backward), text=text, output_names=names)


def _as_vector(expr) -> list | None:
    """The formulas of a vector output (list, tuple, sympy.Tuple, one-column or one-row
    Matrix), or None for one formula."""
    if isinstance(expr, sp.MatrixBase):
        if 1 not in expr.shape:
            raise VectorOutputError(f"a Matrix of outputs must have one row or one column, not "
                                    f"shape {expr.shape}: pass a list of its entries")
        expr = list(expr)
    if not isinstance(expr, (list, tuple, sp.Tuple)):
        return None
    if not len(expr):
        raise ArgumentError("the vector of formulas is empty")
    for k, e in enumerate(expr):
        if isinstance(e, (list, tuple, sp.Tuple, sp.MatrixBase)):
            raise VectorOutputError(f"output {k} is {type(e).__name__}, not one formula: a "
                                    "matrix-valued output is a MatrixExpr (over MatrixSymbols)")
    return list(expr)


def _named_outputs(named: Mapping) -> tuple[tuple[str, ...], list]:
    """The names and formulas of ``{"h_next": h, "c_next": c}`` (names: identifiers)."""
    if not named:
        raise ArgumentError("the dict of named formulas is empty")
    bad = [k for k in named if not isinstance(k, str) or not is_identifier(k)]
    if bad:
        raise ArgumentError(f"an output's name must be a Python identifier, got {bad[0]!r}")
    return tuple(named), list(named.values())


def _output_name(k: int, vector: bool, given: tuple[str, ...]) -> str:
    return given[k] if given else f"out{k}" if vector else "out"


def _checked_names(outputs, given) -> tuple[str, ...]:
    """The outputs' names; a name the user gave that an argument or step took is an error."""
    clash = [g for g, o in zip(given, outputs) if g != o]
    if clash:
        raise ArgumentError(f"output name {clash[0]!r} is taken (an argument, a dimension or "
                            "another output has it, or the output is another's value): choose "
                            "another")
    return tuple(outputs)


def _lower_matrix(exprs, wrt, args, allow_unused, vector=False, given=()) -> Program:
    """``lower`` for formulas over MatrixSymbols (see ``symdiff.matrix``); several (``vector``)
    are staged in one forward program, outputs ``out0``, ``out1``, ... sharing common steps."""
    whole = sp.Tuple(*exprs) if vector else exprs[0]
    arrays = {n for n in postorder(whole) if isinstance(n, ArraySymbol)}  # N-D (tensor.py)
    matrices = [s for s in whole.free_symbols if isinstance(s, sp.MatrixSymbol)] + list(arrays)
    dims = sorted({d for m in matrices for n in m.shape for d in n.free_symbols},
                  key=lambda d: d.name)  # a size may be an expression in them (4*H)
    for m in matrices:
        bad = [d for d in m.shape if not (d.is_Integer or isinstance(d, sp.Symbol)
                                          or d.is_polynomial() and d.free_symbols)]
        if bad:
            raise ArgumentError(f"the shape of {m.name} must be integers, symbols or "
                                f"polynomials in symbols (4*H), not {bad[0]}")
    scalars = [s for s in whole.free_symbols if isinstance(s, sp.Symbol) and s not in dims
               and s not in {a.args[0] for a in arrays}]  # an ArraySymbol's name is a Symbol
    symbols = sorted(matrices + scalars, key=lambda s: (natural_key(str(s.name)), str(type(s))))
    real = {s: s for s in symbols}
    wrt_pairs = _resolve_wrt(wrt, symbols, real, allow_unused)
    for user, _ in wrt_pairs:
        if user in dims:
            raise ArgumentError(f"{user.name} is a dimension: it has no gradient")
    arg_pairs = _resolve_args(args, symbols, real, wrt_pairs, allow_unused)
    namer, inputs, codes, grads = _name_inputs(arg_pairs, wrt_pairs)
    codes.update((d, sp.Symbol(namer.claim(sanitize(d.name), paired=False), real=True))
                 for d in dims)
    shapes = {codes[u].name: tuple(d.xreplace(codes) for d in u.shape) if u in arrays
              or u.is_Matrix else ()
              for u, _ in arg_pairs}
    lowerer, outputs, texts = Lowerer(namer, {c: c for c in codes.values()}), [], []
    for k, e in enumerate(exprs):
        converted, _ = Converter(codes, shapes).run(e)
        forward = lowerer.run(canonicalize(converted, {}), _output_name(k, vector, given))
        outputs.append(forward[-1].name)
        texts.append(_matrix_text(converted))
    names = _checked_names(outputs, given) if vector else ()
    all_shapes = step_shapes(forward, {**shapes, **{codes[d].name: () for d in dims}},
                             frozenset(codes[d].name for d in dims))
    backward = reverse_arrays(forward, all_shapes, {codes[u].name: g for u, g in grads.items()},
                              outputs=names)
    found = runtime_dims([codes[d] for d in dims], [(codes[u].name, shapes[codes[u].name])
                                                    for u, _ in arg_pairs if shapes[codes[u].name]])
    runtime = tuple((d.name, arg, axis) for d, (arg, axis) in found.items())
    user_wrt = tuple(user for user, _ in wrt_pairs)
    text = f"({', '.join(texts)})" if vector else texts[0]
    return Program(whole, inputs, user_wrt, tuple(forward), tuple(backward), text=text,
                   shapes=all_shapes, dims=runtime, output_names=names)


def _name_inputs(arg_pairs, wrt_pairs):
    """Code names of the arguments and their gradients, claimed in parameter order.

    Returns the namer (for the steps still to name), the Inputs, the code Symbol of each internal
    symbol and the gradient name of each wrt one.
    """
    namer = Namer()
    names = [namer.claim(sanitize(str(user.name)), paired=False) for user, _ in arg_pairs]
    wrt_internal = {internal for _, internal in wrt_pairs}
    grads = {internal: namer.claim("d" + name, paired=False)
             for name, (_, internal) in zip(names, arg_pairs) if internal in wrt_internal}
    inputs = tuple(Input(user, name, grads.get(internal))
                   for name, (user, internal) in zip(names, arg_pairs))
    codes = {internal: sp.Symbol(name, real=True) for name, (_, internal) in zip(names, arg_pairs)}
    return namer, inputs, codes, grads


def _matrix_text(expr) -> str:
    """The converted formula as NumPy code, when it is short."""
    if len(postorder(expr)) > 60:
        return ""
    try:
        return make_printer("numpy").line(expr)
    except SymdiffError:
        return ""


def grad(expr, wrt: Sequence, backend: str = "math", args: Sequence | None = None, *,
         allow_unused: bool = False) -> Callable:
    """The compiled ``value_and_grad(*args) -> (value, gradients)`` of a formula.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> grad(x**2, wrt=[x])(3.0)
    (9.0, (6.0,))
    """
    return lower(expr, wrt, args, allow_unused=allow_unused).compile(backend).value_and_grad


def jvp(expr, wrt: Sequence, backend: str = "math", args: Sequence | None = None, *,
        allow_unused: bool = False) -> Callable:
    """The compiled ``jvp(*args, *tangents) -> (value, tangent of the value)``: one tangent per
    wrt symbol, after the arguments; ``expr`` may be a vector of formulas (see ``lower``).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> jvp(x * y, wrt=[x, y])(2.0, 3.0, 1.0, 0.0)
    (6.0, 3.0)
    """
    return _compiled("jvp", expr, wrt, backend, args, allow_unused)


def jacobian(exprs, wrt: Sequence, backend: str = "math", args: Sequence | None = None, *,
             allow_unused: bool = False) -> Callable:
    """The compiled ``jacobian(*args) -> (values, J)``, ``J[i][j] = d out_i / d wrt_j``: nested
    tuples (math) or a float array of shape (m, n) (numpy; with array arguments, (m, n) plus
    their broadcast shape). ``exprs`` is a vector of formulas, or one (then m = 1).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> jacobian([x * y, x + y], wrt=[x, y])(2.0, 3.0)
    ((6.0, 5.0), ((3.0, 2.0), (1.0, 1.0)))
    """
    return _compiled("jacobian", exprs, wrt, backend, args, allow_unused)


def hvp(expr, wrt: Sequence, backend: str = "math", args: Sequence | None = None, *,
        allow_unused: bool = False) -> Callable:
    """The compiled ``hvp(*args, *tangents) -> (value, grad, H @ tangent)``: one tangent per
    wrt symbol, after the arguments; one tangent sweep over the forward and backward lines
    (forward over reverse), no Hessian formed.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> hvp(x**2 * y, wrt=[x, y])(2.0, 3.0, 1.0, 0.0)
    (12.0, (12.0, 4.0), (6.0, 4.0))
    """
    return _compiled("hvp", expr, wrt, backend, args, allow_unused)


def hessian(expr, wrt: Sequence, backend: str = "math", args: Sequence | None = None, *,
            allow_unused: bool = False) -> Callable:
    """The compiled ``hessian(*args) -> (value, grad, H)``, ``H[i][j] = d2 f / d wrt_i d
    wrt_j``: nested tuples (math) or a float array of shape (n, n) (numpy; with array
    arguments, (n, n) plus their broadcast shape); symmetric by construction.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> hessian(x**2 * y, wrt=[x, y])(2.0, 3.0)
    (12.0, (12.0, 4.0), ((6.0, 4.0), (4.0, 0.0)))
    """
    return _compiled("hessian", expr, wrt, backend, args, allow_unused)


def _compiled(function: str, expr, wrt, backend, args, allow_unused) -> Callable:
    prog = lower(expr, wrt, args, allow_unused=allow_unused)
    return getattr(prog.compile(backend, functions=(function,)), function)


def declared_names(*lists) -> list[str]:
    """The names listed in ``wrt``/``args`` (strings or symbols): variables in a formula string."""
    names = []
    for items in lists:
        if isinstance(items, (str, sp.Symbol)):
            items = [items]
        if isinstance(items, Iterable):
            names += [i if isinstance(i, str) else getattr(i, "name", "") for i in items]
    return names


def as_expression(expr, variables: Iterable[str] = ()) -> sp.Expr:
    """A scalar SymPy expression from what the user passed (strings are parsed safely).

    In a string, ``variables`` (the names the caller declares) are variables even where they
    would be constants (``E``, ``pi``).
    """
    if isinstance(expr, str):
        expr = parse(expr, variables=variables)
    elif isinstance(expr, bool):
        raise ArgumentError(f"expected a formula, got the boolean {expr}")
    elif isinstance(expr, int):
        expr = sp.Integer(expr)
    elif isinstance(expr, float):
        expr = sp.Float(expr)
    if isinstance(expr, _CONDITIONS) or not isinstance(expr, sp.Basic):
        raise ArgumentError(
            f"expected a scalar SymPy expression or a formula string, got {type(expr).__name__}")
    if getattr(expr, "is_Matrix", False) or not isinstance(expr, sp.Expr):
        raise ArgumentError(f"expected a scalar expression, got {type(expr).__name__}")
    return expr


def real_symbol(symbol: sp.Symbol) -> sp.Symbol:
    """The real-valued version of a symbol (symdiff differentiates over the reals)."""
    if symbol.is_real:
        return symbol
    if symbol.is_commutative is False:
        raise ArgumentError(f"symbol {symbol.name!r} is non-commutative: not supported")
    cls = sp.Dummy if isinstance(symbol, sp.Dummy) else sp.Symbol
    return cls(symbol.name, real=True)


def _resolve_wrt(wrt, symbols, real, allow_unused) -> list[tuple[sp.Symbol, sp.Symbol]]:
    """(user symbol, internal real symbol) for each wrt entry."""
    if isinstance(wrt, (str, sp.Basic)) or not isinstance(wrt, Iterable):
        wrt = [wrt] if isinstance(wrt, (str, sp.Symbol)) else wrt
    if not isinstance(wrt, Iterable):
        raise ArgumentError(f"wrt must be a list of symbols or names, got {type(wrt).__name__}")
    pairs = [_resolve_symbol(w, symbols, real, "wrt", allow_unused) for w in wrt]
    if not pairs:
        raise ArgumentError("wrt is empty: name at least one symbol to differentiate by")
    seen = set()
    for user, internal in pairs:
        if internal in seen:
            raise ArgumentError(f"wrt lists {user.name!r} twice")
        seen.add(internal)
    return pairs


def _resolve_args(args, symbols, real, wrt_pairs,
                  allow_unused) -> list[tuple[sp.Symbol, sp.Symbol]]:
    if args is None:
        chosen = {internal for _, internal in wrt_pairs}
        rest = [(s, real[s]) for s in symbols if real[s] not in chosen]
        return wrt_pairs + _unique(rest)
    if isinstance(args, (str, sp.Basic)):
        raise ArgumentError("args must be a list of symbols or names")
    pairs = [_resolve_symbol(a, symbols, real, "args", allow_unused) for a in args]
    given = [internal for _, internal in pairs]
    if len(set(given)) != len(given):
        raise ArgumentError("args lists a symbol twice")
    missing = [u.name for u, i in _unique([(s, real[s]) for s in symbols]) + wrt_pairs
               if i not in given]
    if missing:
        raise ArgumentError(f"args must include every symbol of the formula and of wrt; "
                            f"missing: {', '.join(dict.fromkeys(missing))}")
    return pairs


def _unique(pairs):
    """Drop pairs whose internal symbol repeats (x and real x are one variable)."""
    seen, out = set(), []
    for user, internal in pairs:
        if internal not in seen:
            seen.add(internal)
            out.append((user, internal))
    return out


def _resolve_symbol(item, symbols, real, what, allow_unused) -> tuple[sp.Symbol, sp.Symbol]:
    if isinstance(item, str):
        if not item.strip():
            raise ArgumentError(f"{what} contains an empty name")
        matches = [s for s in symbols if str(s.name) == item]
        if len(matches) > 1 and len({real[s] for s in matches}) > 1:
            raise ArgumentError(f"{what}: the name {item!r} is ambiguous: the formula has "
                                f"{len(matches)} different symbols of that name")
        if not matches and not allow_unused:
            raise _unknown_name(item, symbols, what)
        user = matches[0] if matches else sp.Symbol(item, real=True)
        return user, real[user] if user in real else real_symbol(user)
    if isinstance(item, sp.Symbol):
        return item, real.get(item, real_symbol(item))
    if isinstance(item, (sp.MatrixSymbol, ArraySymbol)):
        return item, item
    raise ArgumentError(f"{what} entries must be Symbols or names, got {item!r}")


def _unknown_name(item: str, symbols, what: str) -> ArgumentError:
    """The error for a name in wrt/args that the formula does not contain (a typo, usually)."""
    known = ", ".join(dict.fromkeys(str(s.name) for s in symbols)) or "none"
    if any(c in item for c in " ,;"):
        return ArgumentError(f"{what} entry {item!r} is not one name: list the names separately "
                             f"({what}=['x', 'y'], or --{what} x,y); the formula's variables: "
                             f"{known}")
    return ArgumentError(f"{what} names {item!r}, which is not a variable of the formula (its "
                         f"variables: {known}); pass allow_unused=True for a zero gradient")


def _as_written(expr, canonical, forward, real, codes, folded) -> tuple[sp.Expr, dict]:
    """The formula the listing quotes: the canonical one (sigmoid patterns as sigmoid), or the
    user's own where a stable rewrite changed it (the ``# stable:`` notes show each rewrite)
    or a constant was folded to its value (log(cosh(erfc(E))) -> 6.0e-9)."""
    if folded or any(step.note for step in forward):
        return expr, {s: codes.get(r, r) for s, r in real.items()}
    return canonical, codes


def _formula_text(expr: sp.Expr, codes: dict, user_nodes: list) -> str:
    """The formula over code names, when it is small enough to print (empty otherwise)."""
    if len(user_nodes) > MAX_PRINTED_NODES:  # distinct nodes of the user's formula
        return ""
    size: dict[sp.Basic, int] = {}
    for node in postorder(expr):
        size[node] = 1 + sum(size[a] for a in node.args)
        if size[node] > MAX_PRINTED_NODES:
            return ""
    return sp.sstr(substitute(expr, codes))
