"""The helpers' text: each helper generated modules carry, by backend and name, as source.

The helpers are real, tested code in ``runtime_math``, ``runtime_numpy``, ``runtime_torch``,
``runtime_jax``, ``runtime_numba`` and ``runtime_array_api`` (each top-level def or assignment
is one helper); this module reads those files as text, never imports them (importing
runtime_numpy would import numpy with symdiff, and runtime_torch torch), so ``helper_source``
copies a helper verbatim, and ``with_needs`` adds the helpers a helper calls (the array_api ones
call ``namespace``). The named constants are helpers too: plain floats, the same for every
backend, kept once in ``runtime_math``.
"""

from __future__ import annotations

import ast
from importlib.resources import files

import sympy as sp

from .errors import ArgumentError

# Named constants with no math/numpy name (E and pi print as math.e, np.pi, ...): generated code
# defines each as a module-level float, the double nearest its 50-digit value, named in a comment.
NAMED_CONSTANTS = {
    sp.EulerGamma: ("EULER_GAMMA", "the Euler-Mascheroni constant"),
    sp.Catalan: ("CATALAN", "Catalan's constant"),
    sp.GoldenRatio: ("GOLDEN_RATIO", "the golden ratio, (1 + sqrt(5))/2"),
    sp.TribonacciConstant: ("TRIBONACCI", "the real root of t**3 = t**2 + t + 1"),
}


def _definitions(filename: str) -> dict[str, str]:
    """The source lines of each top-level def and assignment (with its trailing comment) of a
    runtime module, by name."""
    text = files(__package__).joinpath(filename).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    return {node.name if isinstance(node, ast.FunctionDef) else node.targets[0].id:
            "".join(lines[node.lineno - 1:node.end_lineno])
            for node in ast.parse(text).body if isinstance(node, (ast.FunctionDef, ast.Assign))}


_MATH_HELPERS = _definitions("runtime_math.py")
# The named constants are plain floats, the same for every backend: one copy, in runtime_math.
_CONSTANTS = {name: _MATH_HELPERS[name] for name, _ in NAMED_CONSTANTS.values()}
_HELPERS = {"math": _MATH_HELPERS,
            **{backend: {**_definitions(f"runtime_{backend}.py"), **_CONSTANTS}
               for backend in ("numpy", "torch", "jax", "array_api")}}
_HELPERS["numpy"].update(_definitions("runtime_tensor.py"))  # the N-D gates: numpy only
# numba compiles the math program: the math helpers, numpy's unbroadcast, and its own few.
_HELPERS["numba"] = {**_MATH_HELPERS, "unbroadcast": _HELPERS["numpy"]["unbroadcast"],
                     **_definitions("runtime_numba.py")}
HELPER_NAMES: frozenset[str] = frozenset().union(*_HELPERS.values())
# The other helpers of its backend each helper calls (by the names its text reads).
_NEEDS = {backend: {name: frozenset(n.id for n in ast.walk(ast.parse(text))
                                    if isinstance(n, ast.Name) and n.id in helpers and n.id != name)
                    for name, text in helpers.items()}
          for backend, helpers in _HELPERS.items()}


def with_needs(names, backend: str) -> set[str]:
    """The helpers ``names`` and every helper they call, in turn (a module carries them all).

    >>> sorted(with_needs({"sigmoid"}, "array_api"))
    ['namespace', 'sigmoid']
    """
    needs = _NEEDS.get(backend, {})
    found, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(needs.get(name, ()))
    return found


def has_helper(name: str, backend: str) -> bool:
    """Whether generated code of ``backend`` has a helper ``name`` (torch has no besseli).

    >>> has_helper("besseli", "numpy"), has_helper("besseli", "torch")
    (True, False)
    """
    return name in _HELPERS.get(backend, ())


def helper_source(name: str, backend: str) -> str:
    """The ``def name(...)`` text of one helper for ``backend`` (ends with a newline).

    Math helpers use ``math``; numpy helpers use ``np``, except erf, erfc, gamma, loggamma,
    besseli and gelu, which import ``math`` inside their body (numpy has no such functions).

    >>> helper_source("relu", "numpy").splitlines()[-1]
    '    return np.maximum(t, 0.0)'
    """
    if not isinstance(backend, str) or backend not in _HELPERS:
        raise ArgumentError(f"unknown backend {backend!r}; expected one of {', '.join(_HELPERS)}")
    try:
        return _HELPERS[backend][name]
    except KeyError:
        others = [b for b, helpers in _HELPERS.items() if name in helpers]
        who = (f"the {' and '.join(others)} backend{'s have' if len(others) > 1 else ' has'}"
               if others else "no backend has")
        raise ArgumentError(  # (callers that look for a helper catch ArgumentError)
            f"the {backend} backend cannot write this formula yet: it needs the helper {name!r}, "
            f"which {who}") from None
