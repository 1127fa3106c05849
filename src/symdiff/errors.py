"""The one exception hierarchy of symdiff.

Every error symdiff raises on bad input is a ``SymdiffError``; its message says what is wrong and
where (a column in a formula string, a node of an expression, an argument name). The CLI prints
that message as one line and exits with status 2.
"""

from __future__ import annotations


class SymdiffError(Exception):
    """Base class of every error symdiff raises on bad input."""


class ParseError(SymdiffError, ValueError):
    """A formula string is not in the accepted syntax.

    ``column`` is 1-based (None when the error is not tied to one place); ``text`` is the formula.
    """

    def __init__(self, message: str, text: str = "", column: int | None = None):
        self.text = text
        self.column = column
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"{message}{where}")


class UnsupportedFunctionError(SymdiffError):
    """A function symdiff cannot lower or cannot emit for the chosen backend."""


class NonDifferentiableError(SymdiffError):
    """A node of the formula has no derivative SymPy or symdiff knows."""


class ArgumentError(SymdiffError, ValueError):
    """A bad argument to a public function: wrt, args, backend, points, ..."""


class VectorOutputError(SymdiffError):
    """A stage that needs one scalar output got a program of several (``symdiff.lower`` of a
    list or Matrix of formulas), or an output symdiff cannot stage (a matrix-valued one)."""


class MissingToolError(SymdiffError):
    """An optional external tool (Graphviz's dot) is needed and not installed."""


class InputTooLargeError(SymdiffError):
    """An input exceeds a resource limit (digits of a literal, size of a power, length, depth)."""


class InvalidProgramError(SymdiffError):
    """A Program breaks an invariant of ``symdiff.ir`` (``Program.validate`` names which one).

    symdiff's own programs never do; a hand-built or hand-edited Program can.
    """


class MissingStageError(SymdiffError):
    """A Program method needs a later stage (emit, numeric, graph) that is not registered.

    ``ir`` imports none of its consumers: ``symdiff.handoffs`` registers them, and importing any
    part of symdiff imports it (through the package face), so users never see this error.
    """
