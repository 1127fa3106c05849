"""Check and verify gradients of matrix formulas on random arrays.

Two independent references:

- **the analytic derivative**: the formula is expanded at small concrete sizes into explicit
  scalar entries with SymPy's own matrix semantics (``explicit``: products, sums, Hadamard
  operations, ``applyfunc`` entry by entry; nothing of symdiff's array conversion is used), the
  scalar objective ``L = sum(dout * out)`` is differentiated with ``sympy.diff`` by every entry of
  every wrt matrix, and evaluated at 50 digits;
- **finite differences**: central differences of L through the generated forward, in floats.

``check_arrays`` compares the generated NumPy backward with both. ``verify_arrays`` compares a
hand-written backward with the generated one (after checking that against the analytic
derivative) at several random sizes, and explains a wrong partial: a wrong shape (transposed, a
missing sum over the batch axis), a transposed square gradient, a constant factor, a factor of a
dimension (a missing 1/N), a swapped partial, or a dropped term at a fork.
"""

from __future__ import annotations

import dataclasses
import random

import mpmath
import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from .dag import postorder
from .diagnose import _nice, _text, fork_variants
from .errors import ArgumentError
from .matrix import AxisMax, explicit_node
from .numeric import DPS, evaluate_many
from .reports import CheckReport, PartialReport, PartialVerdict, VerifyReport

ANALYTIC_REL = 1e-9  # generated float code vs the 50-digit derivative (relative to the largest)
FD_REL = 1e-5  # ... vs central differences in floats
HAND_REL = 1e-7  # a hand backward vs the generated one
CHECK_SIZES = (3, 2, 4, 5, 6)  # concrete sizes for the symbolic dimensions, in name order


# -- the formula at concrete sizes -----------------------------------------------------------


def explicit(expr: sp.Basic, grids: dict) -> sp.Basic:
    """``expr`` with every matrix made explicit: an ImmutableMatrix of scalar expressions (or a
    scalar). ``grids`` maps each MatrixSymbol (with concrete shape) to its matrix of symbols."""
    done: dict = {}

    def stop(n):
        return isinstance(n, (sp.Lambda, sp.Sum)) or n in grids

    for node in postorder(expr, stop=stop):
        if isinstance(node, sp.Lambda):
            continue
        if node in grids:
            done[node] = grids[node]
        elif isinstance(node, sp.Sum):  # an entry of a product: SymPy's sum at concrete sizes
            done[node] = explicit(node.doit(), grids)
        elif isinstance(node, ElementwiseApplyFunction):
            done[node] = done[node.expr].applyfunc(node.function)
        else:
            done[node] = _explicit_node(node, [done.get(a) for a in node.args])
    return done[expr]


def _explicit_node(node, args):
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


class ExplicitReference:
    """The analytic gradient of ``sum(dout * out)`` at concrete sizes, by ``sympy.diff``."""

    def __init__(self, prog, sizes: dict):
        self.prog, self.sizes = prog, sizes
        expr = prog.expr.subs(sizes)
        self.grids, self.entries, self.scalars = {}, {}, {}
        for i in prog.inputs:
            user = i.symbol
            if isinstance(user, sp.MatrixSymbol):
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
        self.matrix_out = isinstance(out, sp.MatrixBase)
        if self.matrix_out:
            self.dout = sp.ImmutableMatrix(out.rows, out.cols, lambda a, b: sp.Symbol(
                f"dout[{a},{b}]", real=True))
            objective = sp.Add(*(o * d for o, d in zip(out, self.dout)))
        else:
            self.dout = sp.Symbol("dout", real=True)
            objective = out * self.dout
        self.shape_out = (out.rows, out.cols) if self.matrix_out else ()
        self.diffs = []
        for i in prog.inputs:
            if i.grad is None:
                continue
            if i.name in self.entries:
                grid = self.entries[i.name]
                self.diffs.append(grid.applyfunc(lambda s: sp.diff(objective, s)))
            else:
                self.diffs.append(sp.diff(objective, self.scalars[i.name]))

    def gradient(self, values: dict, dout) -> list | None:
        """The exact partials at ``values`` (code name -> array or float) as float arrays."""
        env = {}
        for name, grid in self.entries.items():
            arr = np.asarray(values[name], dtype=float)
            env.update((s, mpmath.mpf(float(v))) for s, v in zip(grid, arr.ravel()))
        env.update((s, mpmath.mpf(float(values[n]))) for n, s in self.scalars.items())
        if self.matrix_out:
            env.update((s, mpmath.mpf(float(v))) for s, v in zip(self.dout, np.ravel(dout)))
        else:
            env[self.dout] = mpmath.mpf(float(dout))
        flat = [e for d in self.diffs for e in (d if isinstance(d, sp.MatrixBase) else [d])]
        got = evaluate_many(flat, env, DPS)
        if any(v is None for v in got):
            return None
        result, k = [], 0
        for d in self.diffs:
            if isinstance(d, sp.MatrixBase):
                n = d.rows * d.cols
                result.append(np.array([float(v) for v in got[k:k + n]]).reshape(d.rows, d.cols))
                k += n
            else:
                result.append(float(got[k]))
                k += 1
        return result


# -- random data ------------------------------------------------------------------------------


def dimension_symbols(prog) -> list[sp.Symbol]:
    dims = {d for i in prog.inputs if isinstance(i.symbol, sp.MatrixSymbol)
            for d in i.symbol.shape if isinstance(d, sp.Symbol)}
    return sorted(dims, key=lambda d: d.name)


def random_arguments(prog, sizes: dict, rng: np.random.Generator, positive: bool = False):
    """Arguments in parameter order: normal arrays of the concrete shapes; scalars in (0.1, 1)."""
    values = []
    for i in prog.inputs:
        if isinstance(i.symbol, sp.MatrixSymbol):
            shape = tuple(int(n) for n in i.symbol.subs(sizes).shape)
            a = rng.normal(size=shape)
            values.append(np.abs(a) + 0.1 if positive else a)
        else:
            values.append(float(rng.uniform(0.1, 1.0)))
    return values


def _finite_run(module, prog, sizes, rng):
    """Arguments where the formula is finite (normal data, else positive data), the output."""
    for positive in (False, True):
        for _ in range(5):
            args = random_arguments(prog, sizes, rng, positive)
            with np.errstate(all="ignore"):
                out, _ = module.forward(*args)
            if np.all(np.isfinite(out)):
                return args, out
    raise ArgumentError("found no random arrays where the formula is finite")


# -- check ------------------------------------------------------------------------------------


def check_arrays(prog, samples: int = 2, seed: int = 0, sizes: dict | None = None) -> CheckReport:
    """The generated NumPy backward of a matrix program against sympy.diff and finite
    differences at ``samples`` random points; ``sizes`` fixes the dimensions (default 3, 2, 4,
    ... in name order)."""
    dims = dimension_symbols(prog)
    if sizes is None:
        sizes = {d: CHECK_SIZES[k % len(CHECK_SIZES)] for k, d in enumerate(dims)}
    else:
        sizes = {_dim(prog, d, dims): int(v) for d, v in sizes.items()}
    module = prog.compile("numpy")
    ref = ExplicitReference(prog, sizes)
    rng = np.random.default_rng(seed)
    reports = [PartialReport(g, ok=True) for g in prog.grads]
    points = []
    for _ in range(samples):
        args, out = _finite_run(module, prog, sizes, rng)
        dout = rng.normal(size=np.shape(out)) if np.ndim(out) else float(rng.normal())
        got = module.backward(dout, module.forward(*args)[1])
        exact = ref.gradient(dict(zip(prog.args, args)), dout)
        if exact is None:
            continue
        points.append({n: np.asarray(a).tolist() for n, a in zip(prog.args, args)})
        fd = finite_differences(module, prog, args, dout)
        for r, g, e, f in zip(reports, got, exact, fd):
            _compare_array(r, np.asarray(g), np.asarray(e), ANALYTIC_REL, "generated code")
            _compare_array(r, np.asarray(f), np.asarray(e), FD_REL, "finite differences",
                           track=False)
    size_text = ", ".join(f"{d}={v}" for d, v in sizes.items())
    oracle = (f"sympy.diff of the explicit formula at {size_text or 'its sizes'} (50 digits), "
              "and central differences of the generated forward")
    ok = bool(points) and all(r.ok for r in reports)
    notes = [] if points else ["no random arrays where the formula and its gradient are finite"]
    return CheckReport(ok, oracle, points, reports, ("numpy",), notes,
                       prog.text or "(formula too long to print)", "sets of random arrays")


def _dim(prog, d, dims):
    name = d if isinstance(d, str) else getattr(d, "name", None)
    for s in dims:
        if s.name == name:
            return s
    raise ArgumentError(f"{d!r} is not a dimension of the formula "
                        f"({', '.join(s.name for s in dims) or 'none'})")


def _compare_array(report, got, exact, rel, label, track=True):
    if got.shape != exact.shape:
        report.ok = False
        report.message = f"{label}: shape {got.shape}, expected {exact.shape}"
        return
    scale = max(float(np.max(np.abs(exact), initial=0.0)), 1e-300)
    err = float(np.max(np.abs(got - exact), initial=0.0)) if exact.size else 0.0
    if track:
        report.max_rel_error = max(report.max_rel_error, err / scale)
        report.worst_ratio = max(report.worst_ratio, err / (rel * scale))
    if report.ok and not err <= rel * scale:
        report.ok = False
        report.message = f"{label}: max error {err:.3g} (largest entry {scale:.3g})"


def finite_differences(module, prog, args, dout, h: float = 1e-6) -> list:
    """Central differences of ``sum(dout * forward(args))`` for every wrt argument."""
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


# -- verify a hand-written backward -----------------------------------------------------------


def verify_arrays(prog, grad, forward=None, samples: int | None = None, seed: int = 0,
                  points=None) -> VerifyReport:
    """A hand gradient of a matrix formula against the generated (and checked) one.

    ``grad(*args)`` returns the partials of the sum of the output's entries, in wrt order; with
    ``forward=``, ``grad`` is ``backward(dout, cache)`` and gets a random ``dout``. ``points``
    (a list of dicts, argument name or symbol -> array) fixes arguments the hand code assumes
    something of, such as one-hot labels; the other arguments are drawn at random in the sizes
    those arrays imply, once per point. ``samples`` fully random trials are added (default 6,
    or none when ``points`` are given).
    """
    checked = check_arrays(prog, samples=1, seed=seed)
    if not checked.ok:
        raise AssertionError("symdiff's own gradient failed its check\n" + str(checked))
    module = prog.compile("numpy")
    dims = dimension_symbols(prog)
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    hand_text = ("backward(dout, cache) paired with forward(*args)" if forward is not None
                 else "a callable of the formula's arguments")
    trials = []
    if samples is None:
        samples = 0 if points else 6
    given = [_given(prog, p) for p in points or []] + [{}] * samples
    for fixed in given:
        sizes = _sizes_for(prog, dims, fixed, pyrng)
        args, out = _finite_run(module, prog, sizes, rng)
        args = [fixed.get(i.name, a) for i, a in zip(prog.inputs, args)]
        out = module.forward(*args)[0]
        if forward is not None:
            dout = rng.normal(size=np.shape(out)) if np.ndim(out) else float(rng.normal())
        else:
            dout = np.ones_like(out) if np.ndim(out) else 1.0
        cache = module.forward(*args)[1]
        exact = [np.asarray(g, dtype=float) for g in module.backward(dout, cache)]
        trials.append((sizes, args, dout, exact))
    verdicts = [PartialVerdict(g, ok=True) for g in prog.grads]
    failure = None
    hands = []
    for sizes, args, dout, _exact in trials:
        try:
            hands.append(_call_hand(grad, forward, args, dout, len(prog.grads)))
        except _HandError as exc:
            failure = f"{exc} (sizes {_sizes_text(sizes)})"
            break
    for k, v in enumerate(verdicts):
        if failure:
            v.ok, v.diagnosis = False, failure
            continue
        _judge(v, k, prog, trials, hands)
    points = [{d.name: n for d, n in sizes.items()} for sizes, *_ in trials]
    return VerifyReport(all(v.ok for v in verdicts), prog.text or "(formula too long to print)",
                        "symdiff's generated gradient, itself checked against " + checked.oracle,
                        hand_text, points, verdicts, sampled="sets of random arrays")


def _given(prog, point) -> dict:
    """A user's point: argument (code) name -> float array or number."""
    if not isinstance(point, dict):
        raise ArgumentError(f"a point must be a dict of argument -> array, got {point!r}")
    by_name = {i.symbol.name: i for i in prog.inputs}
    by_name.update((i.name, i) for i in prog.inputs)
    fixed = {}
    for key, value in point.items():
        name = key if isinstance(key, str) else getattr(key, "name", None)
        if name not in by_name:
            raise ArgumentError(f"the point names {key!r}, which is not an argument")
        arg = by_name[name]
        array = np.asarray(value, dtype=float)
        if isinstance(arg.symbol, sp.MatrixSymbol) and array.ndim != 2:
            raise ArgumentError(f"{name} must be a 2-D array, got shape {array.shape}")
        fixed[arg.name] = array if array.ndim else float(array)
    return fixed


def _sizes_for(prog, dims, fixed: dict, pyrng: random.Random) -> dict:
    """Distinct random sizes for the dimensions, except those the given arrays fix."""
    sizes = {}
    for i in prog.inputs:
        if i.name in fixed and isinstance(i.symbol, sp.MatrixSymbol):
            for dim, n in zip(i.symbol.shape, fixed[i.name].shape):
                if isinstance(dim, sp.Symbol):
                    if sizes.setdefault(dim, n) != n:
                        raise ArgumentError(f"the point gives {dim} two sizes: {sizes[dim]}, {n}")
                elif int(dim) != n:
                    raise ArgumentError(f"{i.name} must have {dim} at that axis, got {n}")
    free = [n for n in range(2, 9) if n not in sizes.values()]
    pyrng.shuffle(free)
    for dim in dims:
        if dim not in sizes:
            sizes[dim] = free.pop() if free else pyrng.randint(2, 8)
    return sizes


class _HandError(Exception):
    pass


def _call_hand(grad, forward, args, dout, n):
    copies = [np.array(a) if np.ndim(a) else a for a in args]
    try:
        if forward is not None:
            result = forward(*copies)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise _HandError("forward must return (value, cache)")
            partials = grad(dout, result[1])
        else:
            partials = grad(*copies)
    except _HandError:
        raise
    except Exception as exc:  # the user's code: any failure is a finding
        hint = ""
        if isinstance(exc, ValueError) and ("matmul" in str(exc) or "align" in str(exc)):
            hint = " (shapes do not fit a matrix product: a missing or extra transpose?)"
        raise _HandError(f"raised {type(exc).__name__}: {_first_line(exc)}{hint}") from None
    if n == 1 and not isinstance(partials, (tuple, list)):
        partials = (partials,)
    if not isinstance(partials, (tuple, list)) or len(partials) != n:
        count = len(partials) if isinstance(partials, (tuple, list)) else 1
        raise _HandError(f"returned {count} partials for {n} wrt arguments")
    try:
        return [np.asarray(p, dtype=float) for p in partials]
    except (TypeError, ValueError):
        raise _HandError("returned something that is not an array of numbers") from None


def _close(a, b) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return bool(np.all(np.abs(a - b) <= HAND_REL * scale))


def _judge(v, k, prog, trials, hands) -> None:
    pairs = [(h[k], t[3][k]) for h, t in zip(hands, trials)]
    errors = [float(np.max(np.abs(h - e), initial=0.0)) if h.shape == e.shape else np.inf
              for h, e in pairs]
    scales = [max(float(np.max(np.abs(e), initial=0.0)), 1e-300) for _, e in pairs]
    v.max_abs_error = max(errors)
    v.max_rel_error = max(e / s for e, s in zip(errors, scales))
    if all(_close(h, e) for h, e in pairs):
        return
    v.ok = False
    bad = next(i for i, (h, e) in enumerate(pairs) if not _close(h, e))
    sizes = trials[bad][0]
    v.worst_point = {d.name: n for d, n in sizes.items()}
    h, e = pairs[bad]
    if h.shape != e.shape:
        v.detail = f"at sizes {_sizes_text(sizes)}: hand shape {h.shape}, exact {e.shape}"
    else:
        v.detail = (f"at sizes {_sizes_text(sizes)}: max error {errors[bad]:.3g} "
                    f"(largest exact entry {scales[bad]:.3g})")
    v.diagnosis = _diagnose(k, prog, trials, hands, pairs)


def _diagnose(k, prog, trials, hands, pairs) -> str:
    name = prog.grads[k]
    arg = next(i.name for i in prog.inputs if i.grad == name)
    if any(h.shape != e.shape for h, e in pairs):
        return _shape_diagnosis(arg, pairs)
    if all(not np.any(h) for h, _ in pairs):
        return "is zero everywhere"
    if all(_close(h, e.T) for h, e in pairs):
        return f"is transposed: it is the transpose of the gradient of {arg}"
    factor = _factor_diagnosis(trials, pairs)
    if factor:
        return factor
    for j, other in enumerate(prog.grads):
        if j != k and all(_close(h, t[3][j]) for (h, _), t in zip(pairs, trials)):
            return f"swapped: it equals the partial {other}"
    fork = _fork_diagnosis(k, prog, trials, pairs)
    if fork:
        return fork
    bad = sum(1 for h, e in pairs if not _close(h, e))
    return f"wrong at {bad} of {len(pairs)} random arrays, with no simple pattern"


def _shape_diagnosis(arg, pairs) -> str:
    for h, e in pairs:
        if h.shape == e.shape:
            continue
        if h.shape == e.T.shape and _close(h.T, e):
            return (f"is transposed: shape {h.shape} where {arg} has shape {e.shape} "
                    f"(the values are those of the transpose)")
        for axis in (0, 1):
            if (e.ndim == 2 and e.shape[axis] == 1 and h.ndim == 2
                    and h.shape[1 - axis] == e.shape[1 - axis]
                    and _close(h.sum(axis=axis, keepdims=True), e)):
                which = "the batch axis (axis 0)" if axis == 0 else "axis 1"
                return (f"misses the sum over {which}: shape {h.shape} where {arg} has shape "
                        f"{e.shape}; sum it with .sum(axis={axis}, keepdims=True)")
        if h.size == e.size and _close(h.reshape(e.shape), e):
            return f"has the right values in the wrong shape: {h.shape}, expected {e.shape}"
        return f"has shape {h.shape} where {arg} has shape {e.shape}"
    return "has the wrong shape"


def _factor_diagnosis(trials, pairs) -> str:
    ratios = []
    for h, e in pairs:
        norm = float(np.sum(e * e))
        if norm == 0:
            return ""
        c = float(np.sum(h * e)) / norm
        if not _close(h, c * e):
            return ""
        ratios.append(c)
    if all(abs(c - ratios[0]) <= 1e-7 * max(1.0, abs(ratios[0])) for c in ratios):
        c = _nice(ratios[0])
        if c == -1:
            return "sign flipped: hand = -exact on every array"
        sign = " (sign flipped)" if c < 0 else ""
        return f"off by a factor of {_text(c)}{sign}: hand = {_text(c)} * exact on every array"
    dims = list(trials[0][0])
    for d in dims:
        sizes = [t[0][d] for t in trials]
        if all(abs(c - n) <= 1e-7 * n for c, n in zip(ratios, sizes)):
            return f"off by a factor of {d}: a missing 1/{d}"
        if all(abs(c * n - 1) <= 1e-7 for c, n in zip(ratios, sizes)):
            return f"off by a factor of 1/{d}: divides by {d} once too often"
    return ""


def _fork_diagnosis(k, prog, trials, pairs) -> str:
    """The hand partial equals the generated one with one term of a fork left out."""
    for backward, text in fork_variants(prog, lambda step: f"{step.name} = {step.rhs}"):
        if _explains(prog, backward, k, trials, pairs):
            return text
    return ""


def _explains(prog, backward, k, trials, pairs) -> bool:
    variant = dataclasses.replace(prog, backward=tuple(backward), _cache={})
    try:
        module = variant.compile("numpy")
        return all(_close(h, np.asarray(module.backward(t[2], module.forward(*t[1])[1])[k],
                                        dtype=float))
                   for (h, _), t in zip(pairs, trials))
    except Exception:  # a variant that does not run explains nothing
        return False


def _first_line(exc: Exception, limit: int = 120) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sizes_text(sizes: dict) -> str:
    return ", ".join(f"{d}={n}" for d, n in sizes.items())
