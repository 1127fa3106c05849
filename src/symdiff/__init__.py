"""symdiff: readable, verified gradient code from a formula.

    >>> import sympy as sp, symdiff
    >>> x, y = sp.symbols("x y")
    >>> prog = symdiff.lower(x * y + sp.exp(x), wrt=[x, y])
    >>> print(prog.source("math"))          # doctest: +SKIP
"""

from . import handoffs, layers, optimize  # noqa: F401  (handoffs registers Program's hand-offs)
from ._version import __version__
from .api import grad, hessian, hvp, jacobian, jvp, lower
from .check import check
from .errors import (
    ArgumentError,
    InputTooLargeError,
    InvalidProgramError,
    MissingStageError,
    MissingToolError,
    NonDifferentiableError,
    ParseError,
    SymdiffError,
    UnsupportedFunctionError,
    VectorOutputError,
)
from .functions import elu, gelu, mish, relu, selu, sigmoid, softplus, xlogy
from .hand import drawn_masks
from .index_notation import from_index, index_array
from .ir import GradStep, Program, Step
from .matrix import (  # noqa: F401
    add_scalar,
    amax,
    cols,
    divide,
    hadamard,
    maximum,
    mean,
    minimum,
    rows,
    spd,
    sum,
)
from .reports import CheckReport, PartialReport, PartialVerdict, VerifyReport
from .tensor import (  # N-D and matrix
    apply,
    avg_pool2d,
    conv2d,
    dropout,
    einsum,
    flatten,
    max_pool2d,
)
from .verify import assert_gradient, verify, verify_layer

__all__ = [
    "ArgumentError", "CheckReport", "GradStep", "InputTooLargeError", "InvalidProgramError",
    "MissingStageError", "MissingToolError",
    "NonDifferentiableError",
    "ParseError", "PartialReport", "Program", "Step", "SymdiffError", "UnsupportedFunctionError",
    "PartialVerdict", "VectorOutputError", "VerifyReport", "__version__", "assert_gradient",
    "check", "grad", "hessian", "hvp", "jacobian", "jvp", "lower",
    "verify", "verify_layer", "drawn_masks",
    "elu", "gelu", "mish", "relu", "selu", "sigmoid", "softplus", "xlogy",
    "add_scalar", "amax", "apply", "cols", "divide", "hadamard", "maximum", "minimum", "rows",
    # not sum/mean: builtins on import *
    "spd", "avg_pool2d", "conv2d", "dropout", "einsum", "flatten", "max_pool2d",
    "from_index", "index_array",
]
