"""The reference gradient of a matrix formula: its entries, differentiated by sympy.diff.

The formula is expanded at concrete sizes into explicit scalar entries with SymPy's own matrix
semantics (``explicit``: products, sums, Hadamard operations, ``applyfunc`` entry by entry;
nothing of symdiff's array conversion is used); the scalar objective ``L = sum(dout * out)`` is
differentiated with ``sympy.diff`` by every entry of every wrt array and evaluated at 50 digits
(``ExplicitReference``). ``finite_differences`` is the second, float oracle: central differences
of L through a generated forward. ``check`` and ``verify`` of matrix programs build on both, as
they build on ``reference.Reference`` for scalar ones.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.slice import MatrixSlice
from sympy.tensor.array import ImmutableDenseNDimArray as NDArray

from .dag import postorder
from .errors import ArgumentError, InputTooLargeError
from .matrix import AxisMax, explicit_node
from .numeric import DPS, evaluate_many, within_budget
from .reference import DIFF_MAX_TREE, DIFF_SECONDS, tree_size
from .tensor import LOWERED, ArraySymbol, TensorApply, explicit_arithmetic, explicit_terms


def explicit(expr: sp.Basic, grids: dict) -> sp.Basic:
    """``expr`` with every matrix made explicit: an ImmutableMatrix of scalar expressions (or a
    scalar). ``grids`` maps each MatrixSymbol (with concrete shape) to its matrix of symbols."""
    done: dict = {}

    def stop(n):
        return isinstance(n, (sp.Lambda, sp.Sum, sp.MatrixBase, sp.BlockMatrix)) or n in grids

    for node in postorder(expr, stop=stop):
        if isinstance(node, sp.Lambda):
            continue
        if node in grids:
            done[node] = grids[node]
        elif isinstance(node, sp.BlockMatrix):  # its blocks, each written out, side by side
            grid = node.blocks
            done[node] = sp.ImmutableMatrix(sp.Matrix.vstack(*(sp.Matrix.hstack(
                *(explicit(grid[i, j], grids) for j in range(grid.cols)))
                for i in range(grid.rows))))
        elif isinstance(node, sp.MatrixBase):  # a constant matrix
            done[node] = sp.ImmutableMatrix(node)
        elif isinstance(node, sp.Sum):  # an entry of a product: SymPy's sum at concrete sizes
            done[node] = explicit(node.doit(), grids)
        elif isinstance(node, (ElementwiseApplyFunction, TensorApply)):
            done[node] = done[node.expr].applyfunc(node.function)
        else:
            done[node] = _explicit_node(node, [done.get(a) for a in node.args])
    return done[expr]


def _explicit_node(node, args):
    if isinstance(node, LOWERED):  # the N-D nodes write their own entries (tensor.py)
        return node.explicit(*args)
    arithmetic = explicit_arithmetic(node, args)
    if arithmetic is not None:
        return arithmetic
    linear = explicit_node(node, args)
    if linear is not None:
        return linear
    if isinstance(node, (sp.OneMatrix, sp.ZeroMatrix, sp.Identity)):
        return node.as_explicit()
    if isinstance(node, sp.MatAdd):
        return _sum_matrices(args)
    if isinstance(node, sp.MatMul):
        scalar = sp.Mul(*(a for a in args if not isinstance(a, sp.MatrixBase)))
        product = None
        for a in args:
            if isinstance(a, sp.MatrixBase):
                product = a if product is None else product * a
        return sp.ImmutableMatrix(product * scalar)
    if isinstance(node, sp.HadamardProduct):
        result = args[0]
        for a in args[1:]:
            result = result.multiply_elementwise(a)
        return sp.ImmutableMatrix(result)
    if isinstance(node, sp.HadamardPower):
        base, exp = args
        return base.applyfunc(lambda e: e**exp)
    if isinstance(node, sp.MatPow):
        return sp.ImmutableMatrix(args[0] ** args[1])
    if isinstance(node, sp.Transpose):
        return args[0].T
    if isinstance(node, sp.Trace):
        return args[0].trace()
    if isinstance(node, MatrixSlice):  # bounds at the concrete sizes: numbers
        (r0, r1, _), (c0, c1, _) = args[1:]
        return sp.ImmutableMatrix(args[0][int(r0):int(r1), int(c0):int(c1)])
    if isinstance(node, AxisMax):
        a = args[0]
        if node.axis == 0:
            return sp.ImmutableMatrix(1, a.cols, lambda i, j: sp.Max(*a[:, j]))
        return sp.ImmutableMatrix(a.rows, 1, lambda i, j: sp.Max(*a[i, :]))
    if isinstance(node, MatrixExpr):
        raise ArgumentError(f"no explicit form for {type(node).__name__}")
    if not node.args:
        return node
    return node.func(*args)


def _sum_matrices(args):
    total = args[0]
    for a in args[1:]:
        total = total + a
    return sp.ImmutableMatrix(total)


CACHED = 32  # references kept: a test suite verifying several hand versions of one formula


def reference_at(prog, sizes: dict) -> ExplicitReference:
    """The ``ExplicitReference`` of ``prog`` at ``sizes``, built once per formula and sizes
    (sympy.diff of every entry is most of a matrix verify's time)."""
    key = (formula_key(prog), tuple(sorted((str(d), int(n)) for d, n in sizes.items())))
    if key not in _REFERENCES:
        if len(_REFERENCES) >= CACHED:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = ExplicitReference(prog, sizes)
    return _REFERENCES[key]


def formula_key(prog) -> tuple:
    """What a program's judgement depends on: its formula, arguments and wrt."""
    return (prog.expr, tuple((i.symbol, i.name, i.grad) for i in prog.inputs))


_REFERENCES: dict = {}


EXPLICIT_TERMS = 5_000  # products and window entries of the N-D steps the reference writes out
FD_DPS, FD_STEP = 60, mpmath.mpf("1e-20")  # the central difference of the explicit formula


class ExplicitReference:
    """The gradient of ``sum(dout * out)`` at concrete sizes, the formula written out entry by
    entry: by ``sympy.diff`` of every entry; where the formula is larger than DIFF_MAX_TREE as
    a tree or SymPy takes longer than DIFF_SECONDS (it walks the shared entries of an unrolled
    recurrence as a tree: an LSTM over 3 steps took 290 s), by central differences of the
    explicit formula at 60 digits (h = 1e-20 relative), one DAG walk per evaluation. ``oracle``
    says which."""

    def __init__(self, prog, sizes: dict):
        self.prog, self.sizes = prog, sizes
        expr = prog.expr.subs(sizes)
        terms = explicit_terms(expr)
        if terms > EXPLICIT_TERMS:  # written out, SymPy would take minutes (a whole CNN)
            raise InputTooLargeError(
                f"written out entry by entry at {', '.join(f'{d}={n}' for d, n in sizes.items())}"
                f" the formula's N-D steps have {terms:,} terms (the reference expands at most "
                f"{EXPLICIT_TERMS:,}): check its layers separately, with symbolic sizes")
        self.grids, self.entries, self.scalars = {}, {}, {}
        for i in prog.inputs:
            user = i.symbol
            if isinstance(user, ArraySymbol):
                self.grids[user.subs(sizes)] = self.entries[i.name] = _grid(
                    i.name, user.subs(sizes).shape)
            elif isinstance(user, sp.MatrixSymbol):
                concrete = user.subs(sizes)
                r, c = (int(n) for n in concrete.shape)
                grid = sp.ImmutableMatrix(r, c, lambda a, b, n=i.name: sp.Symbol(
                    f"{n}[{a},{b}]", real=True))
                self.grids[concrete] = grid
                self.entries[i.name] = grid
            else:
                self.scalars[i.name] = sp.Symbol(i.name, real=True)
        real = {i.symbol: self.scalars[i.name] for i in prog.inputs if i.name in self.scalars}
        out = explicit(expr.xreplace(real), self.grids)
        self.matrix_out = isinstance(out, (sp.MatrixBase, NDArray))
        if self.matrix_out:
            self.dout = _grid("dout", out.shape)
            objective = sp.Add(*(o * d for o, d in zip(_flat(out), _flat(self.dout))))
        else:
            self.dout = sp.Symbol("dout", real=True)
            objective = out * self.dout
        self.shape_out = tuple(out.shape) if self.matrix_out else ()
        self.objective = objective
        by_grad = {i.grad: i.name for i in prog.inputs if i.grad is not None}
        self.wrt = [self.entries.get(by_grad[g], self.scalars.get(by_grad[g])) for g in prog.grads]
        self.diffs = None  # a large formula (as a tree) goes straight to the difference oracle
        if tree_size(objective, DIFF_MAX_TREE) <= DIFF_MAX_TREE:
            self.diffs = within_budget(lambda: [w.applyfunc(lambda s: sp.diff(objective, s))
                                                if isinstance(w, (sp.MatrixBase, NDArray))
                                                else sp.diff(objective, w) for w in self.wrt],
                                       DIFF_SECONDS, default=None)
        self.oracle = ("sympy.diff of the explicit formula" if self.diffs is not None else
                       "central differences of the explicit formula at 60 digits (h = 1e-20)")

    def gradient(self, values: dict, dout) -> list | None:
        """The exact partials at ``values`` (code name -> array or float) as float arrays."""
        env = {}
        for name, grid in self.entries.items():
            arr = np.asarray(values[name], dtype=float)
            env.update((s, mpmath.mpf(float(v))) for s, v in zip(_flat(grid), arr.ravel()))
        env.update((s, mpmath.mpf(float(values[n]))) for n, s in self.scalars.items())
        if self.matrix_out:
            env.update((s, mpmath.mpf(float(v))) for s, v in zip(_flat(self.dout),
                                                                 np.ravel(dout)))
        else:
            env[self.dout] = mpmath.mpf(float(dout))
        if self.diffs is None:
            got = self._differences(env)
        else:
            flat = [e for d in self.diffs for e in (_flat(d) if isinstance(
                d, (sp.MatrixBase, NDArray)) else [d])]
            got = evaluate_many(flat, env, DPS)
        if any(v is None for v in got):
            return None
        result, k = [], 0
        for d in self.diffs or self.wrt:
            if isinstance(d, (sp.MatrixBase, NDArray)):
                n = len(_flat(d))
                result.append(np.array([float(v) for v in got[k:k + n]]).reshape(d.shape))
                k += n
            else:
                result.append(float(got[k]))
                k += 1
        return result


    def _differences(self, env: dict) -> list:
        """Central differences of the objective by every wrt entry, at 60 digits."""
        got = []
        with mpmath.workdps(FD_DPS):
            for w in self.wrt:
                for s in (_flat(w) if isinstance(w, (sp.MatrixBase, NDArray)) else [w]):
                    h = FD_STEP * max(1, abs(env[s]))
                    up = evaluate_many([self.objective], {**env, s: env[s] + h}, FD_DPS)[0]
                    down = evaluate_many([self.objective], {**env, s: env[s] - h}, FD_DPS)[0]
                    got.append(None if up is None or down is None else (up - down) / (2 * h))
        return got


def _grid(name: str, shape) -> sp.Basic:
    """A matrix (2 axes) or N-D array of real symbols ``name[a,b,...]`` of a concrete shape."""
    shape = tuple(int(n) for n in shape)
    entries = [sp.Symbol(f"{name}[{','.join(map(str, k))}]", real=True)
               for k in np.ndindex(shape)]
    return sp.ImmutableMatrix(*shape, entries) if len(shape) == 2 else NDArray(entries, shape)


def _flat(a) -> list:
    """The entries of an explicit matrix or N-D array, in C order."""
    return list(a) if isinstance(a, sp.MatrixBase) else list(sp.flatten(a))


def finite_differences(module, prog, args, dout, h: float = 1e-6, symmetric=()) -> list:
    """Central differences of ``sum(dout * forward(args))`` for every wrt argument.

    An argument in ``symmetric`` (code names: a matrix declared spd, which generated code
    refuses unsymmetric) is moved along E_ij + E_ji, which gives the symmetric part of its
    gradient, (G + G.T)/2."""
    wrt = [k for k, i in enumerate(prog.inputs) if i.grad is not None]
    by_grad = {prog.inputs[k].grad: k for k in wrt}

    def objective(values):
        out, _ = module.forward(*values)
        return float(np.sum(np.asarray(out) * dout))

    result = []
    for g in prog.grads:
        k = by_grad[g]
        values = [np.array(a, dtype=float) if np.ndim(a) else float(a) for a in args]
        if np.ndim(values[k]) == 0:
            plus, minus = list(values), list(values)
            plus[k], minus[k] = values[k] + h, values[k] - h
            result.append((objective(plus) - objective(minus)) / (2 * h))
            continue
        if prog.inputs[k].name in symmetric:
            result.append(_symmetric_differences(objective, values, k, h))
            continue
        grad = np.zeros_like(values[k])
        for index in np.ndindex(values[k].shape):
            old = values[k][index]
            values[k][index] = old + h
            up = objective(values)
            values[k][index] = old - h
            down = objective(values)
            values[k][index] = old
            grad[index] = (up - down) / (2 * h)
        result.append(grad)
    return result


def _symmetric_differences(objective, values, k, h) -> np.ndarray:
    """(G + G.T)/2 of a symmetric argument, by differences along E_ij + E_ji."""
    base = values[k]
    grad = np.zeros_like(base)
    for i, j in np.ndindex(base.shape):
        if j < i:
            continue
        step = np.zeros_like(base)
        step[i, j] = step[j, i] = h
        shifted = list(values)
        shifted[k] = base + step
        up = objective(shifted)
        shifted[k] = base - step
        down = objective(shifted)
        grad[i, j] = grad[j, i] = (up - down) / (2 * h) / (1 if i == j else 2)
    return grad
