"""Section 8 of benchmarks/run.py: second order and Jacobians, next to JAX and CasADi.

For each benchmark formula (run.formula: Rosenbrock, the chain, the staged example) it records:

- operation counts (symdiff.tangent.count_ops): the Hessian-vector product against the gradient
  (Griewank & Walther, *Evaluating Derivatives*, 2008, ch. 5: forward over reverse costs a
  small multiple of the gradient; the target is <= 4x);
- generation: symdiff's lower + the hvp module's source, JAX's first ``jit(hvp)``
  call (trace + XLA compile), CasADi's SX graph, ``gradient``, ``jtimes`` and ``Function``;
- run time at one point with the math backend, in the same rounds: value_and_grad, symdiff's
  hvp, JAX ``jit(hvp)`` (``jvp`` of ``grad``) and CasADi's compiled-VM hvp; every hvp is
  checked against symdiff's (value, gradient, Hv). The target is hvp <= 5x value_and_grad.

The JAX and CasADi functions are built from the same SymPy DAG by ``evaluate``, a memoised
walk (never SymPy's printers: they treat a shared DAG as a tree). Jacobians: two vector
formulas, one tall (the Box 3-D residuals, m = 10 > n = 3: forward sweeps) and one wide
(m = 2 < n = 100: reverse sweeps), whose Jacobian must cost <= min(m, n) x one
vector-Jacobian product (the forward plus one backward).
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy as sp

import symdiff
from symdiff.tangent import count_ops

# JAX traces the unrolled formula and XLA compiles it: 5.9 s at Rosenbrock n = 100, 17.6 s at
# n = 300, over 8 minutes at n = 1,000 (measured here); JAX is not run above this size.
JAX_LIMIT = 100


def evaluate(expr: sp.Expr, wrt, values, lib):
    """expr at ``values`` (one per wrt symbol) with ``lib``'s exp/log/sin/cos/sqrt, each
    shared node once (post-order over the DAG, no recursion)."""
    done = dict(zip(wrt, values))
    stack = [expr]
    while stack:
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        todo = [a for a in node.args if a not in done and not a.is_Number]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        done[node] = _apply(node, [done[a] if a in done else float(a) for a in node.args], lib)
    return done[expr]


def _apply(node, args, lib):
    if node.is_Number:
        return float(node)
    if node.is_Add or node.is_Mul:
        total = args[0]
        for a in args[1:]:
            total = total + a if node.is_Add else total * a
        return total
    if node.is_Pow:
        base, exp = args
        return lib.sqrt(base) if exp == 0.5 else base ** (int(exp) if exp == int(exp) else exp)
    name = type(node).__name__.lower()
    if name in ("exp", "log", "sin", "cos"):
        return getattr(lib, name)(args[0])
    raise NotImplementedError(f"evaluate: no {name} in the benchmark formulas")


def jax_hvp(expr, wrt):
    """(seconds to the first result, jitted (x, v) -> (value, grad, Hv)) or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def f(x):
        return evaluate(expr, wrt, [x[i] for i in range(len(wrt))], jnp)

    def hvp(x, v):
        (value, grad), (_, hv) = jax.jvp(jax.value_and_grad(f), (x,), (v,))
        return value, grad, hv

    fn = jax.jit(hvp)
    return fn, lambda x, v: [np.asarray(r) for r in jax.block_until_ready(fn(x, v))]


def casadi_hvp(expr, wrt):
    """(CasADi Function of (x, v) -> (value, grad, Hv), its caller) or None without CasADi."""
    try:
        import casadi as ca
    except ImportError:
        return None
    x, v = ca.SX.sym("x", len(wrt)), ca.SX.sym("v", len(wrt))
    f = evaluate(expr, wrt, [x[i] for i in range(len(wrt))], ca)
    grad = ca.gradient(f, x)
    fn = ca.Function("hvp", [x, v], [f, grad, ca.jtimes(grad, x, v)])
    return fn, lambda x, v: [np.asarray(r, dtype=float).ravel() for r in fn(x, v)]


def timed(build):
    """(seconds build() took, what it returned)."""
    start = time.perf_counter()
    built = build()
    return time.perf_counter() - start, built


def generation(expr, wrt, x, v, frameworks: bool, size) -> tuple[dict, dict]:
    """Generation seconds of each route (to its first result) and the callables it built;
    JAX and CasADi only when ``frameworks`` (not in the smoke run), JAX up to JAX_LIMIT."""
    lower_s, prog = timed(lambda: symdiff.lower(expr, wrt))
    source_s, _ = timed(lambda: prog.source("math", functions=("hvp",)))  # the hvp module
    module = prog.compile("math", functions=("forward", "backward", "value_and_grad", "hvp"))
    seconds = {"symdiff": lower_s + source_s, "symdiff_lower": lower_s}
    calls = {"symdiff": module, "counts": count_ops(prog)}
    routes = [("jax", jax_hvp)] if (size or 0) <= JAX_LIMIT else []
    for name, build in routes + [("casadi", casadi_hvp)] if frameworks else ():
        start = time.perf_counter()
        built = build(expr, wrt)
        if built is not None:
            built[1](x, v)  # JAX traces and compiles at its first call
            seconds[name], calls[name] = time.perf_counter() - start, built[1]
    return seconds, calls


def bench_case(kind: str, size, cfg, measure, formula) -> dict:
    """One formula: op counts, generation seconds and hvp run times, all in one set of rounds."""
    expr, wrt = formula(kind, size)
    n = len(wrt)
    x = np.array([(-1.2 if i % 2 == 0 else 1.0) if kind == "rosenbrock" else 0.3 + 0.4 * i
                  for i in range(n)])
    v = np.linspace(1.0, -1.0, n) if n > 1 else np.ones(1)
    seconds, calls = generation(expr, wrt, x, v, cfg.frameworks, size)
    module, counts = calls["symdiff"], calls["counts"]
    value, grad, hv = module.hvp(*x, *v)
    reference = [np.array(grad), np.array(hv)]
    impls = [("symdiff math value_and_grad", module.value_and_grad, tuple(x),
              lambda r: [np.array(r[1])]),
             ("symdiff math hvp", module.hvp, (*x, *v), lambda r: [np.array(r[1]), np.array(r[2])])]
    for name, label in (("jax", "JAX jit(jvp(value_and_grad))"),
                        ("casadi", "CasADi Function(jtimes(gradient))")):
        if name in calls:
            impls.append((label, calls[name], (x, v), lambda r: [r[1], r[2]]))
    rows = measure(impls, cfg, reference)
    return {"formula": kind, "size": size, "n": n, "value": float(value), "generation": seconds,
            "gradient_ops": counts["gradient"], "hvp_ops": counts["hvp"],
            "ops_ratio": counts["hvp"] / counts["gradient"], "rows": rows}


def jacobian_cases() -> list[tuple[str, list, list]]:
    """(label, formulas, wrt): the Box 3-D residuals (tall) and a wide pair of sums."""
    x1, x2, x3 = sp.symbols("x1 x2 x3", real=True)
    box = [sp.exp(-t * x1) - sp.exp(-t * x2) - x3 * (math.exp(-t) - math.exp(-10 * t))
           for t in (0.1 * i for i in range(1, 11))]
    xs = list(sp.symbols("w0:100", real=True))
    wide = [sp.Add(*[w ** 2 for w in xs]),
            sp.Add(*[sp.sin(a) * b for a, b in zip(xs, xs[1:])])]
    return [("Box 3-D residuals", box, [x1, x2, x3]), ("two sums of 100 variables", wide, xs)]


def bench_jacobians() -> list[dict]:
    """Jacobian op counts against min(m, n) vector-Jacobian products."""
    rows = []
    for label, exprs, wrt in jacobian_cases():
        prog = symdiff.lower(exprs, wrt)
        counts = count_ops(prog)
        m, n = len(exprs), len(wrt)
        rows.append({"formula": label, "m": m, "n": n,
                     "sweeps": "forward" if m > n else "reverse",
                     "vjp_ops": counts["gradient"], "jacobian_ops": counts["jacobian"],
                     "ratio": counts["jacobian"] / counts["gradient"], "bound": min(m, n)})
    return rows


def bench_second_order(cfg, measure, formula) -> dict:
    """Section 8: hvp on Rosenbrock, the chain and the staged example; Jacobian op counts."""
    sizes = sorted({min(s, 1_000) for s in cfg.sizes if s >= min(100, max(cfg.sizes))})
    cases = [(kind, s) for kind in ("rosenbrock", "chain") for s in sizes] + [("staged", None)]
    return {"hvp": [bench_case(kind, s, cfg, measure, formula) for kind, s in cases],
            "jacobian": bench_jacobians()}


def _row(row: dict) -> list:
    size = ("SEEDS §3" if row["size"] is None
            else f"{'depth' if row['formula'] == 'chain' else 'n'}={row['size']:,}")
    times = {r["implementation"]: r for r in row["rows"]}
    hvp = times["symdiff math hvp"]["seconds"]
    others = [times.get(name) for name in ("JAX jit(jvp(value_and_grad))",
                                           "CasADi Function(jtimes(gradient))")]
    gen = row["generation"]
    return [row["formula"], size, f"{row['ops_ratio']:.2f}",
            f"{hvp * 1e6:.3g}", f"{hvp / row['rows'][0]['seconds']:.2f}x",
            *[f"{hvp / o['seconds']:.3g}x" if o else "-" for o in others],
            f"{gen['symdiff']:.3g}",
            *[f"{gen[k]:.3g}" if k in gen else "-" for k in ("jax", "casadi")],
            "yes" if all(r["agrees"] for r in row["rows"]) else "NO"]


def hvp_table(section: dict) -> str:
    headers = ["formula", "size", "hvp / gradient ops", "symdiff hvp us", "vs value_and_grad",
               "vs JAX jit", "vs CasADi", "symdiff gen s", "JAX gen s", "CasADi gen s",
               "agree"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in _row(r)) + " |" for r in section["hvp"]]
    lines += ["", "| Jacobian of | m | n | sweeps | Jacobian ops | one vjp ops | ratio | "
              "bound min(m, n) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['formula']} | {r['m']} | {r['n']} | {r['sweeps']} | {r['jacobian_ops']:,} "
              f"| {r['vjp_ops']:,} | {r['ratio']:.2f} | {r['bound']} |"
              for r in section["jacobian"]]
    return "\n".join(lines)


def hvp_title() -> str:
    return ("### 8. Second order: Hessian-vector products at one point (math backend) and "
            "Jacobian costs")


def targets(section: dict, target) -> list[dict]:
    """hvp <= 4x gradient ops and <= 5x value_and_grad time; Jacobian <= min(m, n) vjps."""
    ops = max(r["ops_ratio"] for r in section["hvp"])
    run = max(r["rows"][1]["vs_reference"] for r in section["hvp"])
    jac = max(r["ratio"] / r["bound"] for r in section["jacobian"])
    rosen = [r for r in section["hvp"] if r["formula"] == "rosenbrock"][-1]
    return [target("hvp <= 4x gradient ops", ops, 4.0, f"max {ops:.2f}"),
            target("hvp <= 5x value_and_grad time", run, 5.0, f"max {run:.2f}x"),
            target("Jacobian <= min(m, n) x vjp ops", jac, 1.0,
                   f"max {jac:.2f} of the bound"),
            target(f"Rosenbrock n={rosen['n']:,} hvp module generated < 2 s",
                   rosen["generation"]["symdiff"], 2.0, f"{rosen['generation']['symdiff']:.3g} s")]
