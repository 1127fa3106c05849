"""SciPy's calling conventions over generated code: one formula -> fun/jac/hess/hessp of a vector.

``scipy.optimize.minimize`` and ``least_squares`` call their functions with one 1-D NumPy vector
``x`` of all the unknowns; symdiff's generated functions take one argument per symbol. This
module is the adapter between the two, and nothing else: the formula is lowered and compiled
once, ``x[k]`` is the k-th ``wrt`` symbol, the other arguments are fixed by ``params``, and what
SciPy calls twice at one point (``fun`` then ``jac``) is computed once. SciPy itself is not
imported: the objects only follow its conventions.

Invariant: every returned array is a fresh float64 NumPy array of the documented shape, so
SciPy may keep or modify it without touching symdiff's cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .api import lower
from .errors import ArgumentError, MissingToolError
from .sparsity import colouring, hessian_pattern


class _Vectorised:
    """A compiled program whose arguments come from one vector ``x`` (wrt order) and ``params``."""

    def __init__(self, prog, params: Mapping | None, backend: str):
        if prog.shapes is not None:
            raise ArgumentError("symdiff.optimize works over scalar symbols (x[k] is the k-th "
                                "wrt symbol); write the unknowns of a matrix formula as scalar "
                                "symbols, e.g. sp.symbols('w0:5')")
        self.program, self.backend = prog, backend
        position = {s: k for k, s in enumerate(prog.wrt)}
        names = {i.name: i for i in prog.inputs} | {i.symbol.name: i for i in prog.inputs}
        given = {}
        for key, value in (params or {}).items():
            name = key if isinstance(key, str) else getattr(key, "name", None)
            item = names.get(name)
            if item is None or item.symbol in position:
                what = "a wrt symbol (it comes from x)" if item is not None else "not an argument"
                raise ArgumentError(f"params: {key!r} is {what}; the arguments fixed by params "
                                    f"are {', '.join(self._fixed_names(position))}")
            given[item.symbol] = float(value)
        missing = [i.name for i in prog.inputs if i.symbol not in position
                   and i.symbol not in given]
        if missing:
            raise ArgumentError(f"params must give a value to every argument not in wrt; "
                                f"missing: {', '.join(missing)}")
        # Each slot of the generated functions' argument list: an index into x, or a fixed value.
        self._slots = [(position[i.symbol], None) if i.symbol in position
                       else (None, given[i.symbol]) for i in prog.inputs]
        self.n = len(prog.wrt)
        self._modules: dict[str, object] = {}

    def _fixed_names(self, position) -> list[str]:
        return [i.name for i in self.program.inputs if i.symbol not in position] or ["(none)"]

    def module(self, function: str):
        """The generated module holding ``function``, compiled on first use."""
        if function not in self._modules:
            self._modules[function] = self.program.compile(self.backend, functions=(function,))
        return self._modules[function]

    def arguments(self, x) -> list[float]:
        """The generated functions' arguments at the vector ``x``."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n,):
            raise ArgumentError(f"x must be a 1-D vector of {self.n} values (one per wrt "
                                f"symbol: {', '.join(s.name for s in self.program.wrt)}), "
                                f"got shape {x.shape}")
        return [float(x[k]) if k is not None else value for k, value in self._slots]


class Objective:
    """``fun(x)``, ``jac(x)``, ``hess(x)``, ``hessp(x, p)`` of one scalar formula, in
    ``scipy.optimize.minimize``'s conventions (build it with ``objective``)."""

    def __init__(self, expr, wrt: Sequence, args=None, params=None, backend: str = "math",
                 sparse: bool = False):
        if not isinstance(sparse, bool):
            raise ArgumentError(f"sparse must be True or False, got {sparse!r}")
        self._v = _Vectorised(lower(expr, wrt, args), params, backend)
        self.program = self._v.program
        self.sparse = sparse
        self._last: tuple | None = None  # (x, value, gradient) of the last point asked for
        self._colours: tuple | None = None  # (pattern, colour per column), on first use

    def _value_and_grad(self, x):
        x = np.array(x, dtype=float)
        if self._last is None or not np.array_equal(self._last[0], x):
            value, grads = self._v.module("value_and_grad").value_and_grad(*self._v.arguments(x))
            self._last = (x, float(value), np.array(grads, dtype=float).reshape(self._v.n))
        return self._last

    def fun(self, x) -> float:
        """The formula's value at ``x``."""
        return self._value_and_grad(x)[1]

    def jac(self, x) -> np.ndarray:
        """The gradient at ``x``, shape (n,)."""
        return self._value_and_grad(x)[2].copy()

    def hessp(self, x, p) -> np.ndarray:
        """The Hessian at ``x`` times the vector ``p``, shape (n,): one forward-over-reverse
        sweep of the generated ``hvp``, no Hessian formed."""
        p = np.asarray(p, dtype=float).reshape(-1)
        if p.shape != (self._v.n,):
            raise ArgumentError(f"p must be a 1-D vector of {self._v.n} values, got {p.shape}")
        _, _, hv = self._v.module("hvp").hvp(*self._v.arguments(x), *(float(t) for t in p))
        return np.array(hv, dtype=float).reshape(self._v.n)

    def hess(self, x):
        """The Hessian at ``x``, shape (n, n), symmetric: a NumPy array, or with
        ``sparse=True`` a ``scipy.sparse`` CSR matrix built from one ``hessp`` per colour of
        the program's sparsity pattern (``colours``), not n of them."""
        if self.sparse:
            return self._sparse_hess(x)
        _, _, h = self._v.module("hessian").hessian(*self._v.arguments(x))
        return np.array(h, dtype=float).reshape(self._v.n, self._v.n)

    @property
    def colours(self) -> int:
        """How many Hessian-vector products a sparse Hessian takes (colours of its columns)."""
        return max(self._colouring()[1], default=-1) + 1

    def _colouring(self):
        if self._colours is None:
            pattern = hessian_pattern(self.program)
            self._colours = (pattern, colouring(pattern))
        return self._colours

    def _sparse_hess(self, x):
        try:
            from scipy import sparse
        except ImportError:
            raise MissingToolError("hess with sparse=True builds a scipy.sparse matrix: pip "
                                   "install scipy (or use sparse=False)") from None
        pattern, colour = self._colouring()
        rows, cols, values = [], [], []
        for c in range(self.colours):
            seed = np.array([1.0 if k == c else 0.0 for k in colour])
            hv = self.hessp(x, seed)  # the sum of the columns of colour c
            for j in (j for j, k in enumerate(colour) if k == c):
                for i in pattern[j]:
                    if i <= j:  # (i, j) and (j, i) from one product: symmetric by construction
                        rows += [i, j] if i != j else [i]
                        cols += [j, i] if i != j else [j]
                        values += [hv[i], hv[i]] if i != j else [hv[i]]
        n = self._v.n
        return sparse.csr_matrix((values, (rows, cols)), shape=(n, n))


class Residuals:
    """``fun(x)`` (m residuals) and ``jac(x)`` (m × n) of a vector of formulas, in
    ``scipy.optimize.least_squares``'s conventions (build it with ``residuals``)."""

    def __init__(self, exprs, wrt: Sequence, args=None, params=None, backend: str = "math"):
        self._v = _Vectorised(lower(exprs, wrt, args), params, backend)
        self.program = self._v.program
        self.m = len(self.program.outputs)

    def fun(self, x) -> np.ndarray:
        """The residuals at ``x``, shape (m,)."""
        values, _ = self._v.module("forward").forward(*self._v.arguments(x))
        return np.array(values, dtype=float).reshape(self.m)

    def jac(self, x) -> np.ndarray:
        """The Jacobian at ``x``, shape (m, n): ``J[i, j] = d fun_i / d x_j``."""
        _, jac = self._v.module("jacobian").jacobian(*self._v.arguments(x))
        return np.array(jac, dtype=float).reshape(self.m, self._v.n)


def objective(expr, wrt: Sequence, args: Sequence | None = None, *,
              params: Mapping | None = None, backend: str = "math",
              sparse: bool = False) -> Objective:
    """A scalar formula as SciPy's ``minimize`` wants it: ``fun``, ``jac``, ``hess``, ``hessp``
    over one vector ``x`` in ``wrt`` order; ``params`` fixes the other arguments. With
    ``sparse=True``, ``hess`` returns a ``scipy.sparse`` CSR matrix from one ``hessp`` per
    colour of the Hessian's sparsity pattern (read off the staged program).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> obj = objective((1 - x)**2 + 100*(y - x**2)**2, wrt=[x, y])
    >>> obj.fun([1.0, 1.0]), obj.jac([0.0, 0.0]).tolist()
    (0.0, [-2.0, 0.0])
    """
    return Objective(expr, wrt, args, params, backend, sparse)


def residuals(exprs, wrt: Sequence, args: Sequence | None = None, *,
              params: Mapping | None = None, backend: str = "math") -> Residuals:
    """A vector of formulas as SciPy's ``least_squares`` wants it: ``fun`` (m residuals) and
    ``jac`` (m × n) over one vector ``x`` in ``wrt`` order.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> res = residuals([a + b - 3, a - b - 1], wrt=[a, b])
    >>> res.fun([2.0, 1.0]).tolist(), res.jac([2.0, 1.0]).tolist()
    ([0.0, 0.0], [[1.0, 1.0], [1.0, -1.0]])
    """
    return Residuals(exprs, wrt, args, params, backend)
