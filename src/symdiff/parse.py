"""Safe parser from a formula string to a SymPy expression.

``parse`` reads a small Python-like language: numbers, names, ``+ - * / ** ^``, comparisons,
``and or not & | ~``, parentheses and calls of a fixed whitelist of functions.

Invariants:

* The text never reaches ``eval``, ``exec``, ``compile``, ``sympify``, ``parse_expr`` or
  ``ast.parse``. A regular-expression tokenizer and an operator-precedence parser with explicit
  stacks read it, so deep nesting costs no Python recursion; the result is built bottom-up with
  SymPy constructors only.
* Every rejected input raises ``ParseError`` naming the offending text and its 1-based column
  (the offset in the whole text, a newline counting as one character). Every exceeded resource
  limit raises ``InputTooLargeError`` naming the column, before SymPy is asked to do the work
  (guards.py), and no exception of SymPy's leaks. What a call builds is spellings.py's.
* A name not followed by ``(`` is a variable, ``Symbol(name, real=True)``, whatever it spells
  (``gamma``, ``beta``, ``lambda``, ``I``, ``S``, ``N``): only ``pi`` and ``E`` are constants,
  and not when the caller declares them as variables (``variables=``: the names listed in
  ``wrt`` or ``args``). ``True`` and ``False`` are conditions. Only whitelisted functions can be
  called, and the result is always a value, never a condition.
* A chain ``a + b - c`` (``a * b / c``) becomes one ``Add`` (``Mul``) call, so long sums are linear.
* SymPy's automatic simplification walks arguments recursively, so a node whose operands are
  nested deeper than ``EVAL_DEPTH`` (or larger than ``EVAL_SIZE`` nodes) is built unevaluated.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable, Iterator

import sympy as sp
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from .errors import InputTooLargeError, ParseError, SymdiffError
from .guards import check_result, number
from .spellings import FUNCTIONS, add, fresh, lattice, negate, nested_conditions, power, product

EVAL_DEPTH = 100  # operands nested deeper than this are combined with evaluate=False
EVAL_SIZE = 500_000  # operands with more tree nodes than this too
LOGIC_EVAL_SIZE = 2_000  # and/or of operands with more tree nodes than this too

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    |(?P<name>[^\W\d]\w*)
    |(?P<op>\*\*|==|!=|<=|>=|/(?!/)|[-+*^<>&|~(),])
    |(?P<bad>//|:=|.)""",
    re.VERBOSE | re.DOTALL,
)
_BAD = {
    "'": "string literals are not allowed",
    '"': "string literals are not allowed",
    ".": "attribute access ('.') is not allowed",
    "[": "'[' is not allowed: no indexing or lists",
    "]": "']' is not allowed: no indexing or lists",
    "{": "'{' is not allowed: no sets, dicts or f-strings",
    "}": "'}' is not allowed: no sets, dicts or f-strings",
    ":=": "':=' (assignment) is not allowed",
    ":": "':' is not allowed",
    "=": "'=' is not allowed (no assignment or keyword arguments): write '==' to compare",
    "//": "'//' is not supported: write floor(a / b)",
    "%": "'%' is not supported",
    "!": "'!' is not allowed: write 'not', or '!=' to compare",
    ";": "';' is not allowed: a formula is one expression",
}
_STRING_PREFIXES = {"r", "u", "f", "b", "br", "rb", "fr", "rf"}
_CONSTANTS = {"pi": sp.pi, "E": sp.E, "True": sp.true, "False": sp.false}
_DECLARABLE = frozenset({"pi", "E"})  # constants a caller may declare to be variables
_NOT_NAMES = frozenset({"None"})  # a keyword that can only be a mistake in a formula
OR, AND, NOT, CMP, ADD, MUL, UNARY, POW = range(1, 9)
_BINARY = {"or": OR, "|": OR, "and": AND, "&": AND, "+": ADD, "-": ADD, "*": MUL, "/": MUL,
           "**": POW, "^": POW, **dict.fromkeys(("<", "<=", ">", ">=", "==", "!="), CMP)}
_PREFIX = {"-": UNARY, "+": UNARY, "not": NOT, "~": NOT}
_RELATIONS = {"<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne}


def parse(text: str, *, max_length: int = 1_000_000, max_depth: int = 100_000,
          max_digits: int = 1000, variables: Iterable[str] = ()) -> sp.Basic:
    """Parse a formula string into a SymPy expression, never evaluating the string as code.

    ``variables`` are names that are variables even where they would be constants (``E``, ``pi``).

    ``max_length`` bounds ``len(text)``, ``max_depth`` the nesting of parentheses, calls, prefix
    operators and powers, ``max_digits`` the digits of a number literal; exceeding one raises
    ``InputTooLargeError``. Any other bad input raises ``ParseError`` with a 1-based column.

    >>> parse("-x**2 + 3*sin(y)/2")
    -x**2 + 3*sin(y)/2
    >>> parse("where(0 < x < 1, x, 0)")
    Piecewise((x, (x > 0) & (x < 1)), (0, True))
    >>> parse("E*A/L"), parse("E*A/L", variables=["E"]), parse("gamma*lambda")
    (E*A/L, A*E/L, gamma*lambda)
    """
    if len(text) > max_length:
        raise InputTooLargeError(f"formula has {len(text)} characters, more than "
                                 f"max_length={max_length}")
    return _Parser(text, max_depth, max_digits, frozenset(variables)).run()


# ---------------------------------------------------------------------------------- tokens


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """Yield (kind, text, column) for each token, then ("end", "", len + 1); raise on bad ones."""
    pos, size = 0, len(text)
    while pos < size:
        match = _TOKEN.match(text, pos)
        kind, tok, col, pos = match.lastgroup, match.group(), pos + 1, match.end()
        if kind == "ws":
            continue
        if kind == "bad":
            raise ParseError(_BAD.get(tok, f"unexpected character {tok!r}"), text, col)
        if kind == "name":
            kind = _name_kind(text, tok, col, pos)
        yield kind, tok, col
    yield "end", "", size + 1


def _name_kind(text: str, tok: str, col: int, end: int) -> str:
    if end < len(text) and text[end] in "'\"" and tok.lower() in _STRING_PREFIXES:
        raise ParseError(f"string literals are not allowed: {tok}{text[end]}...", text, col)
    if not tok.isidentifier():
        raise ParseError(f"{tok!r} is not a valid name", text, col)
    if tok.startswith("__"):
        raise ParseError(f"names starting with '__' are not allowed: {tok!r}", text, col)
    if tok in ("and", "or", "not"):
        return "op"
    if keyword.iskeyword(tok) and tok not in _CONSTANTS and not _used_as_value(text, end, tok):
        raise ParseError(f"the Python keyword {tok!r} is not allowed in a formula", text, col)
    return "name"


def _used_as_value(text: str, end: int, tok: str) -> bool:
    """A keyword spelling a variable (``lambda*x``: a wavelength), not starting a statement.

    Only a keyword followed by an operator, a comma, a closing parenthesis or the end is one;
    ``lambda x: x``, ``import os`` and ``x if y else z`` stay errors that name the keyword.
    """
    rest = text[end:].lstrip()
    return tok not in _NOT_NAMES and (not rest or rest[0] in "+-*/^<>=!&|,)")


# -------------------------------------------------------------------------------- parser


def _kind(obj: object) -> str:
    if isinstance(obj, _Tuple):
        return "tuple"
    if isinstance(obj, sp.Expr):
        return "value"
    if isinstance(obj, (Relational, BooleanFunction, BooleanAtom)):
        return "condition"
    return "other"


def _evaluate(operands: list[tuple[object, int, int]], sizes: list[int]) -> bool:
    """Whether SymPy may simplify a node of these operands (not too deep, not too large)."""
    return max(o[1] for o in operands) <= EVAL_DEPTH and max(sizes) <= EVAL_SIZE


def _count(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} argument{'s' * (low != 1)}"
    if low == high:
        return f"{low} argument{'s' * (low != 1)}"
    return f"{low} or {high} arguments"


class _Tuple:
    """A parenthesised ``(a, b, ...)``: only an argument of Piecewise may be one."""

    def __init__(self, items: tuple, col: int):
        self.items, self.col = items, col


class _Open:
    """An open '(' on the operator stack: a group (``name`` None) or a call."""

    def __init__(self, col: int, name: str | None, name_col: int, base: int):
        self.col, self.name, self.name_col, self.base = col, name, name_col, base
        self.commas, self.comma_col = 0, col


class _Prefix:
    def __init__(self, sym: str, col: int):
        self.sym, self.col, self.prec = sym, col, _PREFIX[sym]


class _Chain:
    """Operands joined by operators of one precedence level (one operator for ``**``)."""

    def __init__(self, sym: str, col: int):
        self.prec, self.syms, self.cols = _BINARY[sym], [sym], [col]


class _Parser:
    """Shunting-yard over the token stream; values are (object, depth, tree size) triples."""

    def __init__(self, text: str, max_depth: int, max_digits: int, variables: frozenset):
        self.text, self.max_depth, self.max_digits = text, max_depth, max_digits
        self.variables = variables
        self.tokens = _tokens(text)
        self.ahead: tuple[str, str, int] | None = None
        self.values: list[tuple[object, int, int]] = []
        self.ops: list[_Open | _Prefix | _Chain] = []
        self.depth = 0

    def error(self, message: str, col: int | None) -> ParseError:
        return ParseError(message, self.text, col)

    def advance(self) -> tuple[str, str, int]:
        if self.ahead is None:
            return next(self.tokens)
        token, self.ahead = self.ahead, None
        return token

    def run(self) -> sp.Basic:
        want_value = True
        while True:
            kind, sym, col = self.advance()
            if want_value:
                want_value = self.operand(kind, sym, col)
            elif kind == "end":
                return self.finish()
            elif kind == "op" and sym in _BINARY:
                self.binary(sym, col)
                want_value = True
            elif kind == "op" and sym in ",)":
                want_value = self.comma(col) if sym == "," else self.close(col)
            else:
                raise self.error(f"missing operator before {sym!r}", col)

    def operand(self, kind: str, sym: str, col: int) -> bool:
        """Handle a token where a value must start; return whether a value is still wanted."""
        if kind == "num":
            self.values.append((number(sym, col, self.max_digits), 0, 1))
            return False
        if kind == "name":
            return self.name(sym, col)
        if sym == "(":
            self.push(_Open(col, None, col, len(self.values)), col)
        elif sym in _PREFIX:
            self.push(_Prefix(sym, col), col)
        elif sym == ")":
            return self.close_empty(col)
        elif kind == "end":
            self.fail_at_end()
        else:
            raise self.error(f"expected a value, found {sym!r}", col)
        return True

    def name(self, sym: str, col: int) -> bool:
        after = self.advance()
        if after[:2] == ("op", "("):
            self.push(_Open(after[2], sym, col, len(self.values)), after[2])
            return True
        self.ahead = after
        constant = sym in _CONSTANTS and not (sym in self.variables and sym in _DECLARABLE)
        self.values.append((_CONSTANTS[sym] if constant else sp.Symbol(sym, real=True), 0, 1))
        return False

    def push(self, op: _Open | _Prefix | _Chain, col: int) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise InputTooLargeError(f"formula nested deeper than max_depth={self.max_depth} "
                                     f"at column {col}")
        self.ops.append(op)

    def binary(self, sym: str, col: int) -> None:
        prec = _BINARY[sym]
        while self.ops and not isinstance(self.ops[-1], _Open) and self.ops[-1].prec > prec:
            self.reduce()
        top = self.ops[-1] if self.ops else None
        if isinstance(top, _Chain) and top.prec == prec and prec != POW:
            top.syms.append(sym)
            top.cols.append(col)
        elif prec == POW:
            self.push(_Chain(sym, col), col)
        else:
            self.ops.append(_Chain(sym, col))

    def reduce_to_open(self, sym: str, col: int) -> _Open:
        while self.ops and not isinstance(self.ops[-1], _Open):
            self.reduce()
        if not self.ops:
            where = "unmatched ')'" if sym == ")" else "',' outside of a function call"
            raise self.error(where, col)
        return self.ops[-1]

    def comma(self, col: int) -> bool:
        top = self.reduce_to_open(",", col)
        top.commas += 1
        top.comma_col = col
        return True

    def close(self, col: int) -> bool:
        top = self.reduce_to_open(")", col)
        self.ops.pop()
        self.depth -= 1
        items = self.values[top.base:]
        del self.values[top.base:]
        if top.name is not None:
            self.values.append(self.call(top, items))
        elif len(items) == 1:
            self.values.append(items[0])
        else:
            self.values.append(self.node(_Tuple(tuple(i[0] for i in items), top.col), items))
        return False

    def close_empty(self, col: int) -> bool:
        top = self.ops[-1] if self.ops else None
        if not isinstance(top, _Open):
            raise self.error("expected a value, found ')'", col)
        if top.commas:
            raise self.error("trailing comma before ')'", top.comma_col)
        if top.name is None:
            raise self.error("empty parentheses '()'", top.col)
        return self.close(col)

    def fail_at_end(self) -> None:
        top = self.ops[-1] if self.ops else None
        if top is None:
            raise self.error("empty formula", 1)
        if isinstance(top, _Open):
            raise self.error("unclosed '('", top.col)
        sym, col = (top.sym, top.col) if isinstance(top, _Prefix) else (top.syms[-1],
                                                                          top.cols[-1])
        raise self.error(f"the formula ends after {sym!r}: a value is missing", col)

    def finish(self) -> sp.Basic:
        while self.ops:
            if isinstance(self.ops[-1], _Open):
                raise self.error("unclosed '('", self.ops[-1].col)
            self.reduce()
        (result, _, _), = self.values
        if _kind(result) == "condition":
            raise self.error("the formula is a condition, not a value", 1)
        self.need(result, "value", 1, "the formula")
        return result

    def need(self, obj: object, want: str, col: int, what: str) -> None:
        kind = _kind(obj)
        if kind == want:
            return
        if kind == "tuple":
            raise self.error("a parenthesised tuple is only allowed as an argument of "
                             "Piecewise", obj.col)
        if want == "value":
            raise self.error(f"{what} needs a value, not a condition", col)
        raise self.error(f"{what} needs a condition (a comparison, and/or/not, True, False), "
                         f"not a value", col)

    def node(self, obj: object, operands: list[tuple[object, int, int]]) -> tuple:
        return obj, 2 + max(o[1] for o in operands), 1 + sum(o[2] for o in operands)

    def build(self, col: int, builder: Callable, *args) -> sp.Basic:
        try:
            return builder(*args)
        except SymdiffError:
            raise
        except Exception as exc:  # SymPy rejects an argument: report it where it was written
            detail = str(exc).strip().splitlines()
            detail = f": {detail[0][:200]}" if detail else ""
            raise self.error(f"SymPy cannot build this ({type(exc).__name__}{detail})",
                             col) from exc

    def reduce(self) -> None:
        op = self.ops.pop()
        if isinstance(op, _Prefix) or op.prec == POW:
            self.depth -= 1
        count = 1 if isinstance(op, _Prefix) else len(op.syms) + 1
        operands = self.values[-count:]
        del self.values[-count:]
        sizes = [o[2] for o in operands]
        if isinstance(op, _Chain) and op.prec == CMP:
            sizes += sizes[1:-1]  # a < b < c holds b twice
        ev = _evaluate(operands, sizes)
        if isinstance(op, _Chain) and (op.prec in (OR, AND) or len(sizes) > len(operands)):
            ev = ev and sum(sizes) <= LOGIC_EVAL_SIZE  # And/Or sort arguments superlinearly
        objs = [o[0] for o in operands]
        if isinstance(op, _Prefix):
            obj = self.build(op.col, self.prefix, op, objs[0], ev)
        else:
            obj = self.build(op.cols[0], self.chain, op, objs, ev)
        self.values.append((obj, 2 + max(o[1] for o in operands), 1 + sum(sizes)))

    def prefix(self, op: _Prefix, obj: sp.Basic, ev: bool) -> sp.Basic:
        if op.prec == NOT:
            self.need(obj, "condition", op.col, repr(op.sym))
            return fresh(sp.Not(obj, evaluate=ev))
        self.need(obj, "value", op.col, f"unary {op.sym!r}")
        return obj if op.sym == "+" else negate(obj, ev)

    def chain(self, op: _Chain, objs: list[sp.Basic], ev: bool) -> sp.Basic:
        want = "condition" if op.prec in (OR, AND) else "value"
        for i, obj in enumerate(objs):
            sym_col = max(i - 1, 0)
            self.need(obj, want, op.cols[sym_col], repr(op.syms[sym_col]))
        first, pairs, col = objs[0], list(zip(op.syms, objs[1:], op.cols)), op.cols[0]
        if op.prec in (OR, AND):
            return lattice(sp.Or if op.prec == OR else sp.And, objs, ev)
        if op.prec == CMP:
            if ev and any(obj.has(sp.zoo, sp.nan) for obj in objs):  # SymPy may loop on these
                raise self.error("a comparison of an undefined value (zoo or nan, as from a "
                                 "division by zero)", col)
            rels = [fresh(_RELATIONS[s](a, b, evaluate=ev))
                    for s, a, b in zip(op.syms, objs, objs[1:])]
            return rels[0] if len(rels) == 1 else lattice(sp.And, rels, ev)
        if op.prec == POW:
            return power(first, objs[1], ev, col)
        if op.prec == ADD:
            return add([first] + [b if s == "+" else negate(b, ev) for s, b, _ in pairs], ev, col)
        factors = [first] + [b if s == "*" else power(b, sp.S.NegativeOne, ev, c)
                             for s, b, c in pairs]
        return product(factors, ev, col)

    def call(self, top: _Open, items: list[tuple[object, int, int]]) -> tuple:
        name, col = top.name, top.name_col
        if name not in FUNCTIONS:
            if name in _CONSTANTS:
                raise self.error(f"{name} is a constant, not a function", col)
            raise self.error(f"unknown function {name!r}", col)
        low, high, kinds, builder = FUNCTIONS[name]
        if len(items) < low or (high is not None and len(items) > high):
            raise self.error(f"{name} takes {_count(low, high)}, got {len(items)}", col)
        objs = [item[0] for item in items]
        if kinds == "p":
            objs = [self.pair(obj, name, col) for obj in objs]
        else:
            for obj, kind in zip(objs, kinds * len(objs)):
                self.need(obj, "condition" if kind == "c" else "value", col, name)
        ev = _evaluate(items, [o[2] for o in items])
        obj = self.build(col, builder, objs, ev, col)
        if ev:
            check_result(obj, name, col)
        obj, depth, size = self.node(obj, items)
        if ev and isinstance(obj, sp.Piecewise) and nested_conditions(obj.args):
            depth = max(depth, EVAL_DEPTH + 1)  # SymPy rebuilds it slowly: never evaluate it again
        return obj, depth, size

    def pair(self, obj: object, name: str, col: int) -> tuple[sp.Basic, sp.Basic]:
        if not isinstance(obj, _Tuple) or len(obj.items) != 2:
            raise self.error(f"{name} takes pairs (value, condition)", getattr(obj, "col", col))
        self.need(obj.items[0], "value", obj.col, f"{name} pair")
        self.need(obj.items[1], "condition", obj.col, f"{name} pair")
        return obj.items
