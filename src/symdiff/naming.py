"""Names in generated code: safe identifiers for user symbols, short derived names for steps.

Rules (deterministic: the same formula always gets the same names):
- a user symbol keeps its name when that is a plain ASCII identifier; otherwise it is spelled in
  ASCII (``α`` -> ``alpha``, other characters -> ``_``); a keyword or builtin gets a trailing ``_``;
- a step name ``n`` is claimed only when ``n`` and its gradient ``d`` + ``n`` are both free, so a
  user symbol ``dx`` never meets the gradient of ``x``; clashes get suffixes ``_2``, ``_3``, ...;
- a derived name longer than ``MAX_LEN`` falls back to the gate's stem and a number (``sum1``).

The step-name templates are here too (``add_name``, ``pow_name``, ``function_name``, ...): each
builds a gate's derived name from its operands' names, and ``lower`` calls them.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

import sympy as sp

from . import array_ops
from .adapters import ADAPTER_NAMES, LOOP_NAMES
from .ops import OPS
from .runtime import HELPER_NAMES

MAX_LEN = 10

# Names generated code uses itself; no symbol, step or gradient may take them.
RESERVED = frozenset(
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | set(HELPER_NAMES)
    | {"math", "np", "numpy", "cache", "forward", "backward", "value_and_grad",
       "value_and_grad_block", "torch", "jax", "jnp", "ctx", "xp", "array_namespace",
       *ADAPTER_NAMES,
       # a numba module's own names: its library, loop index and array functions' locals
       "numba", "ipoint", "points", "shape", "values", "parallel", *LOOP_NAMES}
)


def sanitize(name: str) -> str:
    """An ASCII identifier spelling ``name`` (not yet checked against other names); underscores
    at either end are dropped, so ``x'`` is ``x``.

    >>> sanitize("α"), sanitize("x'"), sanitize("lambda"), sanitize("2x")
    ('alpha', 'x', 'lambda_', 'v2x')
    """
    parts = []
    for ch in unicodedata.normalize("NFKC", name):
        if ch.isascii():
            parts.append(ch if (ch.isalnum() or ch == "_") else "_")
        else:
            parts.append(_ascii_spelling(ch))
    text = "".join(parts).strip("_") or "v"
    text = re.sub(r"__+", "_", text)
    if text[0].isdigit():
        text = "v" + text
    if text in RESERVED:
        text += "_"
    return text


def _ascii_spelling(ch: str) -> str:
    """Greek letters by name (``alpha``), accented letters without accent, else ``_``."""
    base = unicodedata.normalize("NFKD", ch)[0]
    if base.isascii():
        return base if base.isalnum() else "_"
    words = unicodedata.name(ch, "").split()
    if len(words) == 4 and words[0] == "GREEK" and words[2] == "LETTER":
        return words[3].lower() if words[1] == "SMALL" else words[3].capitalize()
    return "_"


def natural_key(name: str) -> tuple:
    """Sort key putting ``x2`` before ``x10`` (digit runs compare as numbers).

    >>> sorted(["x10", "x2", "x1", "y"], key=natural_key)
    ['x1', 'x2', 'x10', 'y']
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name) if part)


class Namer:
    """Hands out distinct identifiers; every name claimed is checked against all claimed before."""

    def __init__(self, reserved=RESERVED):
        self.taken: set[str] = set(reserved)
        self._next: dict[str, int] = {}

    def claim(self, base: str, paired: bool = True) -> str:
        """``base``, ``base_2``, ``base_3``, ...: the first free one (and ``d`` + it, if paired)."""
        k = self._next.get(base, 1)
        name = base if k == 1 else f"{base}_{k}"
        while not self._free(name, paired):
            k += 1
            name = f"{base}_{k}"
        self._next[base] = k + 1
        self.taken.add(name)
        if paired:
            self.taken.add("d" + name)
        return name

    def numbered(self, stem: str) -> str:
        """``stem1``, ``stem2``, ...: the next free numbered name (paired with its gradient)."""
        k = self._next.get(stem + "#", 1)
        while not self._free(f"{stem}{k}", True):
            k += 1
        self._next[stem + "#"] = k + 1
        return self.claim(f"{stem}{k}")

    def step(self, derived: str, stem: str, limit: int = MAX_LEN) -> str:
        """A step name: ``derived`` when at most ``limit`` long, else a numbered ``stem``."""
        if len(derived) <= limit and derived.isidentifier() and derived not in RESERVED:
            return self.claim(derived)
        return self.numbered(stem)

    def _free(self, name: str, paired: bool) -> bool:
        return name not in self.taken and not (paired and "d" + name in self.taken)


# -- step-name templates: a gate's derived name from its operands' names ----------------------

# Step-name stems: each op's row (ops.py), and the structural gates; "{}" marks where the
# operands' names go (``xT``), else they follow the stem (``sinx``).
STEMS = {
    sp.Piecewise: "pw",
    array_ops.matmul: "{}", array_ops.transpose: "{}T", array_ops.axis_sum: "sum{}",
    array_ops.total: "sum{}", array_ops.axis_max: "max{}", array_ops.item: "{}",
    array_ops.broadcast: "bc{}", array_ops.entry: "{}el", array_ops.trace: "tr{}",
    array_ops.det: "det{}", array_ops.logdet: "logdet{}", array_ops.inverse: "inv{}",
    array_ops.solve: "inv{}", array_ops.cholesky: "L{}", array_ops.cho_solve: "inv{}",
    array_ops.cho_logdet: "logdet{}", array_ops.cho_inverse: "inv{}",
    **{op.cls: op.stem for op in OPS},
}
# The fallback stems of powers say which power (sqrt1, inv1, sqr1).
POW_STEMS = {sp.S.Half: "sqrt", -sp.S.Half: "invsqrt", -1: "inv", 2: "sqr", 3: "cube"}
_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six",
          7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def number_name(value: sp.Basic) -> str:
    """A constant operand's part of a name: a small integer as digits, pi, e, half, else c."""
    if value.is_Integer and value >= 0:
        return str(value)
    return {sp.pi: "pi", sp.E: "e", sp.S.Half: "half"}.get(value, "c")


def _lead(name: str) -> str:
    """A name cannot start with a digit: spell a leading small integer as a word."""
    digits = len(name) - len(name.lstrip("0123456789"))
    if not digits:
        return name
    number = int(name[:digits])
    return _WORDS.get(number, "n" + name[:digits]) + name[digits:]


def function_name(func: type, operands: str) -> tuple[str, str]:
    """(derived name, fallback stem) of a function gate over operands named ``operands``.

    >>> function_name(sp.sin, "x"), function_name(array_ops.transpose, "W")
    (('sinx', 'sin'), ('WT', 'T'))
    """
    stem = STEMS.get(func, func.__name__.lower())
    name = stem.format(operands) if "{}" in stem else stem + operands
    return name, stem.replace("{}", "") or "t"


def add_name(terms) -> str:
    """x + y -> xpy, x - y -> xmy, 1 - x -> onemx, 2*x - 1 -> twoxm1; ``terms`` are
    (coefficient, operand name or None for a constant term).

    A coefficient magnitude is spelled as a word (two ... ten, half); any other one makes the name
    unusable ("" falls back to a numbered stem), so a name never hides a coefficient.

    >>> add_name([(sp.Integer(2), "x"), (sp.Integer(-1), None)])
    'twoxm1'
    """
    plus = [_coeff_word(c) + n for c, n in terms if n is not None and c.is_positive]
    minus = [_coeff_word(-c) + n for c, n in terms if n is not None and not c.is_positive]
    if any(n.startswith("?") for n in plus + minus):
        return ""
    consts = [c for c, n in terms if n is None]
    text = "p".join(plus)
    for c in consts:
        sign, c = ("p", c) if c.is_positive else ("m", -c)
        text = (text + sign if text else ("" if sign == "p" else "m")) + number_name(c)
    text += "".join("m" + n for n in minus)
    return _lead(text)


def _coeff_word(c: sp.Basic) -> str:
    """The prefix naming a term's coefficient magnitude: "" for 1, "two" for 2, "?" if none."""
    if c == 1:
        return ""
    if c.is_Integer and 0 < c <= 10:
        return _WORDS[int(c)]
    return "half" if c == sp.S.Half else "?"


def mean_name(operands, name_of) -> str | None:
    """``meanX`` for a sum over an axis times ``1/N`` (``symdiff.mean`` in matrix formulas)."""
    if len(operands) != 2:
        return None
    for total, count in (operands, operands[::-1]):
        if (isinstance(total, (array_ops.axis_sum, array_ops.total)) and count.is_Pow
                and count.exp == -1 and count.base.is_Symbol):
            return "mean" + name_of(total).removeprefix("sum")
    return None


def scale_name(coeff: sp.Basic, name: str) -> str:
    """A product's name with its coefficient: negx, threexy, halfx, else scaledx."""
    if coeff == -1:
        return "neg" + name
    if coeff.is_Integer and 0 < coeff <= 10:
        return _WORDS[int(coeff)] + name
    if coeff == sp.S.Half:
        return "half" + name
    return "scaled" + name


def pow_name(base: str | None, exp: sp.Basic, exp_name: str | None, base_node) -> str:
    """A power's name from its base's name (None for a constant base, ``base_node``) and its
    exponent (``exp_name`` when that is a step or an argument).

    >>> pow_name("x", sp.Integer(2), None, None), pow_name("x", sp.Integer(-3), None, None)
    ('xsqr', 'invxpow3')
    """
    if base is None:  # a constant base: 2**x
        return _lead(number_name(base_node) + "pow" + (exp_name or "c"))
    if exp_name is not None:
        return base + "pow" + exp_name
    special = {-1: "inv{}", 2: "{}sqr", 3: "{}cube", -2: "inv{}sqr",
               sp.S.Half: "sqrt{}", -sp.S.Half: "invsqrt{}"}
    if exp in special:
        return special[exp].format(base)
    if exp.is_Integer:
        return ("inv" if exp < 0 else "") + base + "pow" + str(abs(exp))
    return base + "pow"
