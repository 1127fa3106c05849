"""examples/dask_gradient.py at a CI size: the loss and gradient of a least-squares fit over a
chunked Dask array on a LocalCluster of 2 worker processes, against the hand-derived gradient
computed with NumPy on the same data (the example's 10**8-point run is a tool, not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("array_api_compat")
pytest.importorskip("dask.distributed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import dask_gradient  # noqa: E402

N, CHUNK = 10**6, 10**5


def test_the_cluster_gradient_is_the_hand_gradient():
    a, b = 0.5, 0.5
    r = dask_gradient.run(N, CHUNK, workers=2, a=a, b=b)
    assert r["chunks"] == N // CHUNK and len(r["worker_peak_mib"]) == 2
    u, v = (x.compute(scheduler="sync") for x in dask_gradient.data(N, CHUNK))
    s = 1.0 / (1.0 + np.exp(-(a * u + b)))  # d/da sum (s - v)**2 = sum 2 (s - v) s (1 - s) u
    residual = 2.0 * (s - v) * s * (1.0 - s)
    want = {"loss": np.sum((s - v) ** 2), "grad_a": np.sum(residual * u),
            "grad_b": np.sum(residual)}
    for key, value in want.items():
        assert abs(r[key] - value) <= 1e-12 * abs(value), (key, r[key], value)
