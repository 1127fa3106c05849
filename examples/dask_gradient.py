"""Value and gradient over data past one machine's memory: a Dask array, in chunks, on a cluster.

A least-squares fit of a sigmoid curve, ``loss = sum((sigmoid(a*u + b) - v)**2)`` over N data
points (u, v), needs the loss and its gradient in the two parameters a and b. symdiff writes the
per-point formula's value_and_grad once, with ``backend="array_api"``; called with Dask arrays it
runs in Dask's own namespace, so it builds a lazy graph chunk by chunk instead of computing
anything: the per-point values stay chunked, and the gradients in a and b (broadcast against
the data) are lazy sums over the chunks. ``dask.compute`` then runs that graph on the workers,
each chunk generated, used and dropped there, and only three numbers come back to the client.
No process ever holds a whole array: at N = 10**8 one float64 array is 800 MB, while each
worker's peak resident memory stays at its chunks' temporaries.

The same code runs on a real cluster: replace ``LocalCluster(...)`` by the address of a Dask
scheduler (``Client("tcp://scheduler:8786")``) or a dask-jobqueue / dask-kubernetes cluster,
and read the data with ``dask.array.from_zarr`` (or ``from_array`` over HDF5/NetCDF) instead of
generating it. Nothing in the generated module changes: it only ever calls the arrays' own
namespace.

Run it with ``python examples/dask_gradient.py [points] [chunk]`` (default 10**8 points in
chunks of 2*10**6; from a checkout: ``PYTHONPATH=src python ...``). It needs
``pip install "dask[distributed]" array-api-compat`` (``symdiff[dask]``).
"""

from __future__ import annotations

import resource
import sys
import time

import dask
import dask.array as da
from dask.distributed import Client, LocalCluster

import symdiff

FORMULA = "(sigmoid(a*u + b) - v)**2"
TRUE_A, TRUE_B, NOISE, SEED = 1.5, -0.5, 0.05, 0


def peak_mib() -> float:
    """The peak resident memory of the calling process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data(n: int, chunk: int):
    """u uniform on [-3, 3] and v = sigmoid(1.5 u - 0.5) + noise, as lazy Dask arrays: each
    chunk is generated on the worker that uses it."""
    rng = da.random.default_rng(SEED)
    u = rng.uniform(-3.0, 3.0, n, chunks=chunk)
    v = 1.0 / (1.0 + da.exp(-(TRUE_A * u + TRUE_B))) + NOISE * rng.standard_normal(n, chunks=chunk)
    return u, v


def module():
    """The generated module: value_and_grad(u, v, a, b) -> (out, (da, db))."""
    prog = symdiff.lower(FORMULA, wrt=["a", "b"], args=["u", "v", "a", "b"])
    return prog.compile("array_api")


def loss_and_gradient(m, u, v, a: float, b: float):
    """The loss and its gradient (d loss/da, d loss/db), lazily: nothing is computed here."""
    out, (grad_a, grad_b) = m.value_and_grad(u, v, a, b)
    return out.sum(), grad_a, grad_b


def run(n: int, chunk: int, workers: int = 2, a: float = 0.5, b: float = 0.5) -> dict:
    """The loss and gradient at (a, b) over n points on a local cluster of ``workers``
    processes, with the time and every process's peak memory."""
    m = module()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        u, v = data(n, chunk)
        lazy = loss_and_gradient(m, u, v, a, b)
        assert all(isinstance(x, da.Array) for x in lazy)  # a graph, not numbers
        start = time.perf_counter()
        loss, grad_a, grad_b = (float(x) for x in dask.compute(*lazy))
        seconds = time.perf_counter() - start
        workers_mib = sorted(client.run(peak_mib).values())
    return {"loss": loss, "grad_a": grad_a, "grad_b": grad_b, "seconds": seconds,
            "chunks": len(u.chunks[0]), "worker_peak_mib": workers_mib,
            "client_peak_mib": peak_mib(), "array_mib": n * 8 / 2**20}


def main(argv: list[str]) -> None:
    n = int(float(argv[1])) if len(argv) > 1 else 10**8
    chunk = int(float(argv[2])) if len(argv) > 2 else 2 * 10**6
    r = run(n, chunk)
    print(f"points = {n}")
    print(f"chunks = {r['chunks']}")
    print(f"loss = {r['loss']!r}")
    print(f"dloss_da = {r['grad_a']!r}")
    print(f"dloss_db = {r['grad_b']!r}")
    print(f"seconds = {r['seconds']:.2f}")
    print(f"one whole float64 array (MiB) = {r['array_mib']:.0f}")
    print("peak memory per worker (MiB) = " + ", ".join(f"{w:.0f}" for w in r["worker_peak_mib"]))
    print(f"peak memory of the client (MiB) = {r['client_peak_mib']:.0f}")


if __name__ == "__main__":
    main(sys.argv)
