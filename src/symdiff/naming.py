"""Names in generated code: safe identifiers for user symbols, short derived names for steps.

Rules (deterministic: the same formula always gets the same names):
- a user symbol keeps its name when that is a plain ASCII identifier; otherwise it is spelled in
  ASCII (``α`` -> ``alpha``, other characters -> ``_``); a keyword or builtin gets a trailing ``_``;
- a step name ``n`` is claimed only when ``n`` and its gradient ``d`` + ``n`` are both free, so a
  user symbol ``dx`` never meets the gradient of ``x``; clashes get suffixes ``_2``, ``_3``, ...;
- a derived name longer than ``MAX_LEN`` falls back to the gate's stem and a number (``sum1``).
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

from .printers import HELPER_NAMES

MAX_LEN = 10

# Names generated code uses itself; no symbol, step or gradient may take them.
RESERVED = frozenset(
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | set(HELPER_NAMES)
    | {"math", "np", "numpy", "cache", "forward", "backward", "value_and_grad",
       "value_and_grad_block"}
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
