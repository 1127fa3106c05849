"""Benchmarks of symdiff against SymPy, hand-staged code, JAX and PyTorch, measured in one run.

    python benchmarks/run.py            # small sizes (n, depth = 10, 100)
    python benchmarks/run.py --full     # n, depth = 10 ... 10,000 (several minutes)
    python benchmarks/run.py --smoke    # the CI test's tiny run (size 10, no JAX/PyTorch)

Prints Markdown tables, one per section, and writes every figure to --json (default
benchmarks/results.json):

1. generation time (lower, source) vs SymPy's route: diff per variable, cse, lambdify;
2. operation counts (Program.count_ops) vs SymPy's cse'd gradient;
3. value + gradient at one point, math backend, vs hand-staged code and lambdify(cse=True);
4. the same over arrays, numpy backend;
5. JAX and PyTorch autodiff over the same arrays, when they are installed;
6. a matrix formula: the Gaussian-process NLL value + gradient at N = 500 (benchmarks/gp.py)
   vs a hand-written NumPy gradient and PyTorch autograd (``--only gp`` runs just this one);
7. the cheap-gradient principle on the chain of depth 1,000 (benchmarks/chain.py);
8. Hessian-vector products vs value_and_grad, JAX jit(hvp) and CasADi, and Jacobian op counts
   (benchmarks/second_order.py);
9. a convolution layer's forward + backward vs hand-written im2col and PyTorch
   (benchmarks/conv.py; ``--only conv`` runs just this one).

Formulas are built outside the timed regions; generation is timed once (a first generation,
as a user meets it: repeating a small formula hits SymPy's caches). SymPy's route runs in a
child process with a hard time cap (killed when it runs out), so a blow-up records "timeout"
instead of hanging the run. A run time is the fastest of many short
timeit batches, taken in rounds over all implementations, and is reported next to a reference
measured in the same rounds. For the array sections, glibc is asked to keep freed buffers for
reuse (see ``reuse_freed_memory``), as JAX's and PyTorch's own allocators do.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import json
import math
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path

# OpenMP threads (numba's parallel loops, PyTorch) sleep when idle instead of spinning: a
# spinning thread after one timed call takes a core from the next (on 2 cores, numba's
# 2-thread loop measured 0.95x its 1-thread time with spinning, 1.81x without). Set before
# numpy, numba or torch load libgomp, which reads it once.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from chain import bench_chain, chain_ratio, chain_title
from conv import bench_conv, conv_table, conv_targets, conv_title  # noqa: E402
from gp import bench_gp  # noqa: E402
from second_order import bench_second_order, hvp_table, hvp_title  # noqa: E402
from second_order import targets as second_order_targets  # noqa: E402

import symdiff  # noqa: E402

HERE = Path(__file__).resolve().parent
POINT = (3.0, -4.0)  # the staged example's point (SEEDS.md section 3)
CHILD_MEMORY = 8 << 30  # bytes SymPy's route may add: a blow-up fails, not the host


@dataclass(frozen=True)
class Config:
    """What one run measures: sizes, SymPy's time cap, timing rounds, array length, frameworks."""

    mode: str
    sizes: tuple[int, ...]
    timeout: float
    rounds: int  # each implementation's time is its fastest batch (~10 ms) of so many rounds
    points: int
    frameworks: bool
    gp_size: int = 500  # N of the Gaussian-process section


def config(args: argparse.Namespace) -> Config:
    if args.smoke:
        cfg = Config("smoke", (10,), 2.0, 3, 10_000, False, 50)
    elif args.full:
        cfg = Config("full", (10, 100, 1_000, 10_000), 60.0, 25, 1_000_000, True)
    else:
        cfg = Config("small", (10, 100), 10.0, 25, 1_000_000, True)
    if args.timeout is not None:
        cfg = Config(**{**asdict(cfg), "timeout": args.timeout})
    return cfg


def progress(message: str) -> None:
    """Progress goes to stderr, so stdout is only the tables."""
    print(message, file=sys.stderr, flush=True)


# -- the formulas --------------------------------------------------------------------------------


def rosenbrock(n: int) -> tuple[sp.Expr, list[sp.Symbol]]:
    """sum_{i<n-1} 100*(x_{i+1} - x_i**2)**2 + (1 - x_i)**2 over n real symbols."""
    xs = sp.symbols(f"x0:{n}", real=True)
    terms = [100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1)]
    return sp.Add(*terms), list(xs)  # one Add: sum(terms) would rebuild it n times


def chain(depth: int) -> tuple[sp.Expr, list[sp.Symbol]]:
    """x_{k+1} = x_k*sin(x_k) + y*cos(x_k), x_0 = x: a DAG of 5*depth nodes."""
    x, y = sp.symbols("x y", real=True)
    e = x
    for _ in range(depth):  # unevaluated: SymPy's assumption queries recurse on deep trees
        e = sp.Add(sp.Mul(e, sp.sin(e, evaluate=False), evaluate=False),
                   sp.Mul(y, sp.cos(e, evaluate=False), evaluate=False), evaluate=False)
    return e, [x, y]


def staged() -> tuple[sp.Expr, list[sp.Symbol]]:
    """SEEDS.md section 3: f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)."""
    x, y = sp.symbols("x y", real=True)
    return (x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2), [x, y]


@functools.cache
def formula(kind: str, size: int | None) -> tuple[sp.Expr, list[sp.Symbol]]:
    """The benchmark formula and its wrt symbols (cached: a forked child inherits it built)."""
    return staged() if kind == "staged" else {"rosenbrock": rosenbrock, "chain": chain}[kind](size)


# -- sections 1 and 2: generation time and operation counts --------------------------------------


def measure_symdiff(kind: str, size: int | None) -> dict:
    """Seconds to lower and to emit (math backend), then the program's operation counts."""
    expr, wrt = formula(kind, size)
    start = time.perf_counter()
    prog = symdiff.lower(expr, wrt=wrt)
    lowered = time.perf_counter()
    prog.source(backend="math")
    done = time.perf_counter()
    return {"lower_s": lowered - start, "source_s": done - lowered, "total_s": done - start,
            **prog.count_ops()}


def _limit_memory(extra: int) -> None:
    """Cap this process's address space at its current size + ``extra`` bytes (Linux only)."""
    try:
        import resource

        used = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (used + extra, hard))
    except (ImportError, OSError, ValueError):
        pass  # no cap here: the time cap still holds


def _sympy_child(kind: str, size: int | None, conn) -> None:
    """In the child: SymPy's route, sending each figure as soon as it is known."""
    _limit_memory(CHILD_MEMORY)
    try:
        expr, wrt = formula(kind, size)
        start = time.perf_counter()
        grads = [sp.diff(expr, v) for v in wrt]
        conn.send(("diff_s", time.perf_counter() - start))
        start = time.perf_counter()
        replacements, reduced = sp.cse(grads)
        conn.send(("cse_s", time.perf_counter() - start))
        start = time.perf_counter()  # lambdify reuses that cse instead of running its own
        sp.lambdify(wrt, grads, modules="math", cse=lambda _: (replacements, reduced))
        conn.send(("lambdify_s", time.perf_counter() - start))
        ops = sp.count_ops([e for _, e in replacements]) + sp.count_ops(reduced)
        conn.send(("cse_ops", int(ops)))
        conn.send(("status", "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
        conn.send(("status", f"error: {type(exc).__name__}"))


def sympy_route(kind: str, size: int | None, timeout: float) -> dict:
    """SymPy's route in a child process killed after ``timeout`` seconds.

    Returns diff_s, cse_s, lambdify_s (those that finished), total_s, cse_ops and a status:
    "ok", "timeout", "error: <exception>" or "crashed (exit <code>)".
    """
    fork = "fork" in mp.get_all_start_methods()  # the child inherits the formula, already built
    ctx = mp.get_context("fork" if fork else "spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_sympy_child, args=(kind, size, sender), daemon=True)
    child.start()
    sender.close()
    result: dict = {"status": "timeout"}
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and receiver.poll(left):
        try:
            key, value = receiver.recv()
        except EOFError:
            result["status"] = "crashed"
            break
        result[key] = value
        if key == "status":
            break
    child.kill()
    child.join()
    receiver.close()
    if result["status"] == "crashed":
        result["status"] = f"crashed (exit {child.exitcode})"
    if all(k in result for k in ("diff_s", "cse_s", "lambdify_s")):
        result["total_s"] = result["diff_s"] + result["cse_s"] + result["lambdify_s"]
    return result


def bench_generation(cfg: Config) -> list[dict]:
    """Sections 1 and 2: every formula and size, symdiff then SymPy's route.

    Once SymPy's route times out on a formula, its larger sizes are not run ("not run").
    """
    expr, wrt = staged()
    symdiff.lower(expr, wrt=wrt).source()  # warm up imports and printers
    cases = [("rosenbrock", n) for n in cfg.sizes] + [("chain", n) for n in cfg.sizes]
    cases.append(("staged", None))
    rows, gave_up = [], set()
    for kind, size in cases:
        progress(f"generation: {kind} {size or ''}")
        formula(kind, size)  # built outside every timed region
        row = {"formula": kind, "size": size, "symdiff": measure_symdiff(kind, size)}
        if kind in gave_up:
            row["sympy"] = {"status": "not run"}
        else:
            row["sympy"] = sympy_route(kind, size, cfg.timeout)
            if row["sympy"]["status"] == "timeout":
                gave_up.add(kind)
        rows.append(row)
    return rows


def growth(rows: list[dict], small: int = 1_000, large: int = 10_000) -> dict:
    """Time ratio from size ``small`` to ``large`` per formula, where both were measured."""
    out = {}
    for kind in ("rosenbrock", "chain"):
        by_size = {r["size"]: r for r in rows if r["formula"] == kind}
        if small in by_size and large in by_size:
            a, b = by_size[small], by_size[large]
            sympy_ratio = None
            if "total_s" in a["sympy"] and "total_s" in b["sympy"]:
                sympy_ratio = b["sympy"]["total_s"] / a["sympy"]["total_s"]
            out[kind] = {"symdiff": b["symdiff"]["total_s"] / a["symdiff"]["total_s"],
                         "sympy": sympy_ratio}
    return out


# -- sections 3 to 5: run time per value + gradient -----------------------------------------------


def formula_with(x, y, exp):
    """The staged example written once for any array library's exp (JAX, PyTorch)."""
    return (x + 1 / (1 + exp(-y))) / (1 / (1 + exp(-x)) + (x + y) ** 2)


def hand_staged(x, y, lib):
    """The textbook staged value and gradient (dout = 1), as a person writes it, for floats
    (lib = math: ``math.exp``) or naively over arrays (lib = np, one temporary per step). The
    forks add with ``dx = dx + ...``: for arrays ``+=`` would also change dy, the same array."""
    sigy = 1.0 / (1.0 + lib.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1.0 + lib.exp(-x))
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den * den)) * dinvden
    dsigx = dden
    dxpysqr = dden
    dxpy = (2 * xpy) * dxpysqr
    dx = dxpy
    dy = dxpy
    dx = dx + ((1 - sigx) * sigx) * dsigx
    dx = dx + dnum
    dsigy = dnum
    dy = dy + ((1 - sigy) * sigy) * dsigy
    return f, (dx, dy)


def as_arrays(result) -> list[np.ndarray]:
    """(value, (dx, dy)) or [value, dx, dy] as [value, dx, dy] numpy arrays."""
    value, *rest = result
    grads = rest[0] if len(rest) == 1 else rest
    return [np.asarray(v) for v in (value, *grads)]


def value_only(result) -> list[np.ndarray]:
    """forward's (value, cache) as [value]."""
    return [np.asarray(result[0])]


def calls_per_batch(timer: timeit.Timer, seconds: float = 0.01) -> int:
    """The smallest power of two of calls that takes at least ``seconds``."""
    number = 1
    while timer.timeit(number) < seconds:
        number *= 2
    return number


def measure(impls: list[tuple], cfg: Config, reference: list[np.ndarray]) -> list[dict]:
    """Seconds per call of each (name, fn, args, to_arrays): its fastest batch in cfg.rounds.

    One untimed call first checks the result against ``reference`` (value, dx, dy) and warms up
    (JAX compiles there). Each round then times one short batch of every implementation in
    turn: other processes on the machine slow some batches down, and the fastest batch of many
    is the least disturbed, for every implementation alike.
    """
    rows, timers = [], []
    for name, fn, args, to_arrays in impls:
        progress(f"timing: {name}")
        got = to_arrays(fn(*args))
        agrees = all(np.allclose(g, r, rtol=1e-9, atol=1e-12) for g, r in zip(got, reference))
        names = [f"a{k}" for k in range(len(args))]
        call = f"fn({', '.join(names)})"
        timer = timeit.Timer(call, globals={"fn": fn, **dict(zip(names, args))})
        timers.append((timer, calls_per_batch(timer)))
        rows.append({"implementation": name, "seconds": math.inf, "agrees": bool(agrees)})
    for _ in range(cfg.rounds):
        for row, (timer, number) in zip(rows, timers):
            row["seconds"] = min(row["seconds"], timer.timeit(number) / number)
    for row in rows:
        row["vs_reference"] = row["seconds"] / rows[0]["seconds"]
    return rows


def bench_math(cfg: Config) -> dict:
    """Section 3: one value + gradient at POINT, math backend; hand-staged = 1.00x."""
    expr, (x, y) = formula("staged", None)
    generated = symdiff.lower(expr, wrt=[x, y]).compile("math")
    lambdified = sp.lambdify([x, y], [expr, sp.diff(expr, x), sp.diff(expr, y)],
                             modules="math", cse=True)
    reference = as_arrays(hand_staged(*POINT, math))
    rows = measure([
        ("hand-staged (textbook, math.exp)", hand_staged, (*POINT, math), as_arrays),
        ("symdiff math value_and_grad", generated.value_and_grad, POINT, as_arrays),
        ("lambdify(cse=True), math", lambdified, POINT, as_arrays),
    ], cfg, reference)
    return {"point": list(POINT), "rows": rows}


def array_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)


def reuse_freed_memory() -> str:
    """Ask glibc to keep freed array buffers (up to 32 MiB) for reuse instead of unmapping them.

    By default every 8 MB temporary of a 1e6-point call is fresh memory: about 6,000 page faults
    per call, a third or more of the time of a numpy call here, and noisy. Returns what was set.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return "default allocator (no glibc mallopt)"
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    if mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 1 << 30):
        return "glibc mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=1 GiB"
    return "default allocator (mallopt refused)"


def bench_arrays(cfg: Config) -> tuple[dict, dict]:
    """Sections 4 and 5: value + gradient at cfg.points points, numpy backend, hand-staged numpy
    (= 1.00x), lambdify, JAX and PyTorch, all timed in the same rounds."""
    allocator = reuse_freed_memory()
    xs, ys = array_points(cfg.points)
    expr, (x, y) = formula("staged", None)
    generated = symdiff.lower(expr, wrt=[x, y]).compile("numpy")
    lambdified = sp.lambdify([x, y], [expr, sp.diff(expr, x), sp.diff(expr, y)],
                             modules="numpy", cse=True)
    impls = [
        ("hand-staged numpy (np.exp)", hand_staged, (xs, ys, np), as_arrays),
        ("symdiff numpy value_and_grad", generated.value_and_grad, (xs, ys), as_arrays),
        ("symdiff numpy forward only", generated.forward, (xs, ys), value_only),
        ("lambdify(cse=True), numpy", lambdified, (xs, ys), as_arrays),
    ]
    missing = []
    # PyTorch last: its OpenMP threads spin-wait after each call, which slows whatever runs next
    for label, make in (("JAX", jax_impl), ("symdiff numba", numba_impls),
                        ("symdiff torch/jax backends", backend_impls), ("PyTorch", torch_impl)):
        made = make(xs, ys) if cfg.frameworks else None
        if made is None:
            status = "not installed" if cfg.frameworks else f"skipped (--{cfg.mode})"
            missing.append({"implementation": label, "status": status})
        else:
            impls += [(*impl, as_arrays) for impl in (made if isinstance(made, list)
                                                      else [made])]
    rows = measure(impls, cfg, as_arrays(hand_staged(xs, ys, np)))
    for row in rows[4:]:
        row["vs_symdiff_numpy"] = row["seconds"] / rows[1]["seconds"]
    numpy_section = {"points": cfg.points, "allocator": allocator, "rows": rows[:4],
                     "gradient_over_forward": rows[1]["seconds"] / rows[2]["seconds"]}
    return numpy_section, {"rows": rows[4:] + missing}


def jax_impl(xs: np.ndarray, ys: np.ndarray) -> tuple | None:
    """jit(vmap(value_and_grad)) in float64, on device arrays; None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(
        lambda a, b: formula_with(a, b, jnp.exp), argnums=(0, 1))))

    def call(a, b):
        return jax.block_until_ready(value_and_grad(a, b))

    return f"JAX {jax.__version__} jit(vmap(value_and_grad))", call, (jnp.asarray(xs),
                                                                       jnp.asarray(ys))


NUMBA_ROWS = ("symdiff numba value_and_grad (1 thread)",
              "symdiff numba parallel=True, 1 thread", "symdiff numba parallel=True, 2 threads")


def numba_impls(xs: np.ndarray, ys: np.ndarray) -> list[tuple] | None:
    """backend="numba"'s value_and_grad: serial on one thread, and parallel=True (prange) on
    one and on two threads (numba.set_num_threads, per call); None without numba."""
    try:
        import numba
    except ImportError:
        return None
    expr, (x, y) = formula("staged", None)
    module = symdiff.lower(expr, wrt=[x, y]).compile("numba")

    def on(threads: int, parallel: bool):
        def call(a, b):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            return module.value_and_grad(a, b, parallel=parallel)
        return call

    return [(name, on(threads, parallel), (xs, ys)) for name, threads, parallel in
            zip(NUMBA_ROWS, (1, 1, 2), (False, True, True))]


def backend_impls(xs: np.ndarray, ys: np.ndarray) -> list[tuple] | None:
    """symdiff's own torch and jax backends (the generated modules, float64): torch's
    value_and_grad on tensors, jax's under jit; None when neither is installed."""
    expr, (x, y) = formula("staged", None)
    prog, impls = symdiff.lower(expr, wrt=[x, y]), []
    try:
        import torch
        module = prog.compile("torch")
        impls.append(("symdiff torch backend value_and_grad", module.value_and_grad,
                      (torch.from_numpy(xs), torch.from_numpy(ys))))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        fused = jax.jit(prog.compile("jax").value_and_grad)
        impls.append(("symdiff jax backend jit(value_and_grad)",
                      lambda a, b: jax.block_until_ready(fused(a, b)),
                      (jnp.asarray(xs), jnp.asarray(ys))))
    except ImportError:
        pass
    return impls or None


def torch_impl(xs: np.ndarray, ys: np.ndarray) -> tuple | None:
    """Forward + torch.autograd.grad per call on float64 tensors; None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    a, b = torch.from_numpy(xs).requires_grad_(), torch.from_numpy(ys).requires_grad_()
    ones = torch.ones_like(a)

    def call(a, b):
        out = formula_with(a, b, torch.exp)
        return out.detach(), torch.autograd.grad(out, (a, b), ones)

    name = f"PyTorch {torch.__version__} autograd ({torch.get_num_threads()} threads)"
    return name, call, (a, b)


# -- report ---------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "sympy": sp.__version__, "symdiff": symdiff.__version__, "git": git_state(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def git_state() -> str | None:
    """The commit symdiff was measured at, and whether src/ had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()

    try:
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "../src")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" + uncommitted changes in src/" if dirty else "")


def load() -> float | None:
    """The 1-minute load average: other processes on the cores make timings noisier."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def secs(value: float | None) -> str:
    """Seconds with 3 significant figures ('-' when missing)."""
    return "-" if value is None else f"{value:.3g}"


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def size_label(row: dict) -> str:
    if row["formula"] == "staged":
        return "SEEDS §3"
    return f"{'n' if row['formula'] == 'rosenbrock' else 'depth'}={row['size']:,}"


def generation_table(rows: list[dict], timeout: float) -> str:
    out = []
    for r in rows:
        if r["formula"] == "staged":
            continue
        s, p = r["symdiff"], r["sympy"]
        if "total_s" in p:
            total, ratio = secs(p["total_s"]), times(p["total_s"] / s["total_s"])
        else:  # a timeout is a lower bound on SymPy's time
            total = p["status"] if p["status"] != "timeout" else f"timeout (> {timeout:g} s)"
            ratio = f"> {times(timeout / s['total_s'])}" if p["status"] == "timeout" else "-"
        out.append([r["formula"], size_label(r), secs(s["lower_s"]), secs(s["source_s"]),
                    secs(s["total_s"]), secs(p.get("diff_s")), secs(p.get("cse_s")),
                    secs(p.get("lambdify_s")), total, ratio])
    return table(["formula", "size", "lower s", "source s", "symdiff total s", "SymPy diff s",
                  "cse s", "lambdify s", "SymPy total s", "SymPy / symdiff"], out)


def ops_table(rows: list[dict]) -> str:
    out = []
    for r in rows:
        s, p = r["symdiff"], r["sympy"]
        sympy_ops = p.get("cse_ops", "timeout" if p["status"] in ("timeout", "not run")
                          else p["status"])
        out.append([r["formula"], size_label(r), f"{s['forward']:,}", f"{s['backward']:,}",
                    f"{s['ratio']:.2f}", f"{s['forward'] + s['backward']:,}",
                    f"{sympy_ops:,}" if isinstance(sympy_ops, int) else sympy_ops])
    return table(["formula", "size", "forward ops", "backward ops", "backward / forward",
                  "symdiff forward + backward", "SymPy cse'd gradient ops"], out)


def timing_table(rows: list[dict], unit: str, scale: float, points: int = 1,
                 versus: str = "hand-staged") -> str:
    out = []
    for r in rows:
        if "seconds" not in r:
            out.append([r["implementation"], r["status"], "-", "-"])
            continue
        per_point = f"{r['seconds'] / points * 1e9:.1f}" if points > 1 else ""
        cells = [r["implementation"], f"{r['seconds'] * scale:,.3g}",
                 times(r["vs_reference"]), "yes" if r["agrees"] else "NO"]
        out.append(cells[:2] + ([per_point] if points > 1 else []) + cells[2:])
    headers = ["implementation", f"{unit}/call"] + (["ns/point"] if points > 1 else [])
    return table(headers + [f"vs {versus}", "agrees"], out)


def frameworks_table(rows: list[dict]) -> str:
    out = [[r["implementation"], "-", "-", "-", r["status"]] if "seconds" not in r else
           [r["implementation"], f"{r['seconds'] * 1e3:,.3g}", times(r["vs_reference"]),
            times(r["vs_symdiff_numpy"]), "yes" if r["agrees"] else "NO"] for r in rows]
    return table(["implementation", "ms/call", "vs hand-staged numpy", "vs symdiff numpy",
                  "agrees"], out)


def target(label: str, value: float | None, limit: float, shown: str) -> dict:
    """One target of the issue: met when the measured value is at most limit."""
    met = None if value is None else value <= limit
    return {"target": label, "value": value, "limit": limit, "met": met,
            "shown": None if value is None else shown}


def targets(results: dict) -> list[dict]:
    """The issue's targets with the figures measured in this run (met None: not measured)."""
    gen = {(r["formula"], r["size"]): r["symdiff"]["total_s"] for r in results["generation"]}
    one, ten = gen.get(("rosenbrock", 1_000)), gen.get(("rosenbrock", 10_000))
    grow = results["growth"].get("rosenbrock", {}).get("symdiff")
    worst = max(r["symdiff"]["ratio"] for r in results["generation"])
    ratio = {r["implementation"]: r["vs_reference"]
             for r in results["math"]["rows"] + results["numpy"]["rows"]}
    sym, lam = ratio["symdiff math value_and_grad"], ratio["lambdify(cse=True), math"]
    npy = ratio["symdiff numpy value_and_grad"]
    rows = [target("Rosenbrock n=1,000 generated < 1 s", one, 1.0, f"{secs(one)} s"),
            target("Rosenbrock n=10,000 generated < 10 s", ten, 10.0, f"{secs(ten)} s"),
            target("growth 1,000 -> 10,000 <= 12x", grow, 12.0, times(grow)),
            target("backward/forward ops <= 3 everywhere", worst, 3.0, f"max {worst:.2f}"),
            target("math backend <= 1.1x hand-staged", sym, 1.1, times(sym)),
            target("math backend faster than lambdify(cse)", sym / lam, 1.0,
                   f"{times(sym / lam)} of lambdify's time"),
            target("numpy backend <= hand-staged numpy", npy, 1.0, times(npy)),
            gp_target(results["gp"]),
            target(f"chain (depth {results['chain']['depth']:,}) value_and_grad <= 3x forward",
                   chain_ratio(results["chain"]), 3.0, times(chain_ratio(results["chain"]))),
            *second_order_targets(results["second_order"], target),
            *conv_targets(results["conv"], target)]
    jax = [r for r in results["frameworks"]["rows"] if r["implementation"].startswith("JAX ")]
    rows += numba_targets(results["frameworks"]["rows"], jax)
    if jax:  # no target: for comparison
        rows.append({"target": "numpy backend time / JAX time (no target)", "met": "info",
                     "value": 1 / jax[0]["vs_symdiff_numpy"],
                     "shown": times(1 / jax[0]["vs_symdiff_numpy"])})
    return rows


def numba_targets(rows: list[dict], jax: list[dict]) -> list[dict]:
    """numba (1 thread) <= JAX's time, and parallel=True on 2 threads >= 1.7x faster than on
    1; none when numba's rows were not measured."""
    seconds = {r["implementation"]: r["seconds"] for r in rows if "seconds" in r}
    if NUMBA_ROWS[0] not in seconds:
        return []
    serial, one, two = (seconds[n] for n in NUMBA_ROWS)
    out = []
    if jax:
        ratio = serial / jax[0]["seconds"]
        out.append(target("numba backend (1 thread) <= JAX jit(vmap) time", ratio, 1.0,
                          f"{times(ratio)} of JAX's time"))
    speedup = one / two  # a target of at least 1.7: met when 1.7/speedup <= 1
    out.append({**target("numba parallel=True: 2 threads >= 1.7x faster than 1", 1.7 / speedup,
                         1.0, times(speedup)), "value": speedup})
    return out


def gp_target(gp: dict) -> dict:
    ratio = gp["rows"][1]["vs_reference"]
    return target(f"GP NLL (N = {gp['points']}) <= 1.5x hand-written numpy", ratio, 1.5,
                  times(ratio))


def gp_table(gp: dict) -> str:
    out = [[r["implementation"], "-", "-", r["status"]] if "seconds" not in r else
           [r["implementation"], f"{r['seconds'] * 1e3:,.3g}", times(r["vs_reference"]),
            "yes" if r["agrees"] else "NO"] for r in gp["rows"]]
    return table(["implementation", "ms/call", "vs hand-written", "agrees"], out)


def gp_title(gp: dict) -> str:
    return (f"### 6. Gaussian-process NLL value + gradient, N = {gp['points']:,} "
            "(examples/gp_nll.py; float64)")


def targets_table(rows: list[dict]) -> str:
    marks = {True: "yes", False: "**no**", None: "not measured", "info": "-"}
    return table(["target", "measured", "met"],
                 [[r["target"], r["shown"] or "-", marks[r["met"]]] for r in rows])


def report(results: dict) -> str:
    """All sections as Markdown: a machine line, then one titled table per section."""
    m, cfg, num = results["machine"], results["config"], results["numpy"]
    start, end = results["load_average"]["start"], results["load_average"]["end"]
    grow = "; ".join(
        f"{kind}: symdiff {times(g['symdiff'])}"
        + (f", SymPy {times(g['sympy'])}" if g["sympy"] else "")
        for kind, g in results["growth"].items())
    parts = [
        f"Machine: {m['platform']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"numpy {m['numpy']}, sympy {m['sympy']}, symdiff {m['symdiff']}"
        + (f" (git {m['git']})" if m["git"] else "")
        + f", OMP_WAIT_POLICY={m.get('omp_wait_policy')}",
        f"Command: `{results['command']}` (SymPy time cap {cfg['timeout']:g} s per formula)",
        f"Load average (1 min): {secs(start)} at the start, {secs(end)} at the end",
        "### 1. Generation time (seconds; SymPy: diff per variable + cse + lambdify, "
        "in a child process)",
        generation_table(results["generation"], cfg["timeout"]),
    ]
    if grow:
        parts.append(f"Growth from size 1,000 to 10,000: {grow}.")
    parts += [
        "### 2. Operation counts (symdiff: Program.count_ops; SymPy: count_ops of cse'd "
        "[diff(f, v) for v in wrt])",
        ops_table(results["generation"]),
        f"### 3. Value + gradient at (x, y) = {POINT}, math backend (SEEDS §3)",
        timing_table(results["math"]["rows"], "ns", 1e9),
        f"### 4. Value + gradient on {num['points']:,} points, numpy backend "
        f"(float64, single thread)",
        timing_table(num["rows"], "ms", 1e3, num["points"]),
        f"symdiff numpy gradient / forward: {times(num['gradient_over_forward'])}. "
        f"Memory: {num['allocator']}.",
        "### 5. Autodiff frameworks and symdiff's numba, torch and jax backends on the same points "
        "(float64)",
        frameworks_table(results["frameworks"]["rows"]),
        gp_title(results["gp"]),
        gp_table(results["gp"]),
        chain_title(results["chain"]),
        timing_table(results["chain"]["rows"], "us", 1e6, versus="forward"),
        hvp_title(),
        hvp_table(results["second_order"]),
        conv_title(results["conv"]),
        conv_table(results["conv"]),
        "### Targets",
        targets_table(results["targets"]),
    ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks, print the Markdown report, write the JSON; returns the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="every size up to 10,000")
    mode.add_argument("--smoke", action="store_true", help="size 10 only, quick (CI)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json",
                        help="where to write the results (default: %(default)s)")
    parser.add_argument("--only", choices=["gp", "second_order", "conv"], default=None,
                        help="run one section only (gp: the Gaussian-process NLL; "
                             "second_order: section 8; conv: section 9)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds SymPy's route may take per formula (default 60 with "
                             "--full, 10 otherwise)")
    args = parser.parse_args(argv)
    cfg = config(args)
    command = "python benchmarks/run.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    results = {"machine": machine(), "command": command, "config": asdict(cfg),
               "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "load_average": {"start": load()}}
    if args.only == "gp":
        return run_gp_only(results, cfg)
    if args.only == "second_order":
        return run_second_order_only(results, cfg)
    if args.only == "conv":
        return run_conv_only(results, cfg)
    results["generation"] = bench_generation(cfg)
    results["growth"] = growth(results["generation"])
    results["math"] = bench_math(cfg)
    results["numpy"], results["frameworks"] = bench_arrays(cfg)
    results["gp"] = bench_gp(cfg, measure, as_arrays, cfg.gp_size)
    results["chain"] = bench_chain(cfg, measure, formula)
    results["second_order"] = bench_second_order(cfg, measure, formula)
    results["conv"] = bench_conv(cfg, measure)
    results["targets"] = targets(results)
    results["load_average"]["end"] = load()
    print(report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    progress(f"wrote {args.json}")
    return results


def run_gp_only(results: dict, cfg: Config) -> dict:
    """``--only gp``: section 6 and its target, printed; nothing is written."""
    reuse_freed_memory()  # as sections 4 and 5 do, before it in a whole run
    results["gp"] = bench_gp(cfg, measure, as_arrays, cfg.gp_size)
    results["targets"] = [gp_target(results["gp"])]
    results["load_average"]["end"] = load()
    print("\n\n".join([gp_title(results["gp"]), gp_table(results["gp"]),
                        targets_table(results["targets"]),
                        f"Load average (1 min): {secs(results['load_average']['start'])} at "
                        f"the start, {secs(results['load_average']['end'])} at the end"]))
    return results


def run_second_order_only(results: dict, cfg: Config) -> dict:
    """``--only second_order``: section 8 and its targets, printed; nothing is written."""
    results["second_order"] = bench_second_order(cfg, measure, formula)
    rows = second_order_targets(results["second_order"], target)
    print("\n\n".join([hvp_title(), hvp_table(results["second_order"]), targets_table(rows),
                        f"Load average (1 min): {secs(results['load_average']['start'])} at "
                        f"the start, {secs(load())} at the end"]))
    return results


def run_conv_only(results: dict, cfg: Config) -> dict:
    """``--only conv``: section 9 and its targets, printed; nothing is written."""
    reuse_freed_memory()  # as the array sections do, before it in a whole run
    results["conv"] = bench_conv(cfg, measure)
    rows = conv_targets(results["conv"], target)
    print("\n\n".join([conv_title(results["conv"]), conv_table(results["conv"]),
                        targets_table(rows),
                        f"Load average (1 min): {secs(results['load_average']['start'])} at "
                        f"the start, {secs(load())} at the end"]))
    return results


if __name__ == "__main__":
    main()
