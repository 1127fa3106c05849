"""symdiff: readable, verified gradient code from a formula.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> prog = symdiff.lower(x * y + sp.exp(x), wrt=[x, y])
    >>> print(prog.source("math"))          # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import layers  # noqa: E402, F401
from .api import grad, lower  # noqa: E402
from .check import CheckReport, PartialReport, check  # noqa: E402
from .errors import (  # noqa: E402
    ArgumentError,
    InputTooLargeError,
    MissingToolError,
    NonDifferentiableError,
    ParseError,
    SymdiffError,
    UnsupportedFunctionError,
)
from .functions import relu, sigmoid, softplus  # noqa: E402
from .ir import GradStep, Program, Step  # noqa: E402
from .matrix import amax, apply, cols, divide, hadamard, mean, rows, sum  # noqa: E402, F401
from .verify import PartialVerdict, VerifyReport, assert_gradient, verify  # noqa: E402

__all__ = [
    "ArgumentError", "CheckReport", "GradStep", "InputTooLargeError", "MissingToolError",
    "NonDifferentiableError",
    "ParseError", "PartialReport", "Program", "Step", "SymdiffError", "UnsupportedFunctionError",
    "PartialVerdict", "VerifyReport", "__version__", "assert_gradient", "check", "grad", "lower",
    "verify",
    "relu", "sigmoid", "softplus",
    "amax", "apply", "cols", "divide", "hadamard", "rows",  # not sum/mean: builtins on import *
]
