"""Section 6 of benchmarks/run.py: the Gaussian-process NLL, value + gradient, at N points.

The formula is examples/gp_nll.py's (K = sf2 exp(-D/(2 ell^2)) + noise I declared spd, so one
Cholesky factor serves the solve, the log-determinant and the backward pass). It is timed, in
the same rounds, against a hand-written NumPy gradient (Rasmussen & Williams 2006, Algorithm
2.1 and eq. 5.9: one Cholesky factor, K^-1 from it, dnll/dtheta = 1/2 tr((K^-1 - a a') dK)),
the same formula without ``spd`` (LU: solve, slogdet, inv), and PyTorch float64 autograd when
it is installed. Ratios are to the hand-written row.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import gp_nll  # noqa: E402 - the formula under test is the example's

import symdiff  # noqa: E402

PARAMS = (1.3, 0.8, 0.05)  # ell, sf2, noise


def _cho_solve():
    """SciPy's cho_solve, or two np.linalg.solve with the factor when SciPy is missing."""
    try:
        from scipy.linalg import cho_solve
    except ImportError:
        return "np.linalg.solve on the factor", lambda c, b: np.linalg.solve(
            c.T, np.linalg.solve(c, b))
    return "scipy cho_solve", lambda c, b: cho_solve((c, True), b, check_finite=False)


SOLVER, CHO_SOLVE = _cho_solve()


def gp_by_hand(ell, sf2, noise, d, y):
    """The textbook value and gradient, as a person writes it with NumPy."""
    e = np.exp(-d / (2 * ell * ell))
    k = sf2 * e + noise * np.eye(len(d))
    c = np.linalg.cholesky(k)
    alpha = CHO_SOLVE(c, y)
    w = 0.5 * (CHO_SOLVE(c, np.eye(len(d))) - alpha @ alpha.T)  # d nll / dK
    nll = 0.5 * (y.T @ alpha)[0, 0] + np.log(np.diag(c)).sum()
    we = w * e
    return nll, (sf2 * np.sum(we * d) / ell**3, np.sum(we), np.trace(w))


def torch_call(d, y):
    """(name, call, args) for PyTorch float64 autograd, or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    dt, yt = torch.from_numpy(d), torch.from_numpy(y)
    eye = torch.eye(len(d), dtype=torch.float64)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in PARAMS]

    def call(ell, sf2, noise):
        k = sf2 * torch.exp(-dt / (2 * ell**2)) + noise * eye
        c = torch.linalg.cholesky(k)
        nll = 0.5 * (yt.T @ torch.cholesky_solve(yt, c))[0, 0] + torch.log(torch.diag(c)).sum()
        return nll.detach(), torch.autograd.grad(nll, (ell, sf2, noise))

    return (f"PyTorch {torch.__version__} autograd ({torch.get_num_threads()} threads)", call,
            tuple(params))


def bench_gp(cfg, measure, as_arrays, size: int) -> dict:
    """Section 6 rows, measured with run.measure in the same rounds; ratios to hand-written."""
    _, d, y = gp_nll.make_data(size)
    nll, wrt, args = gp_nll.gp_formula()
    spd = symdiff.lower(nll, wrt=wrt, args=args).compile("numpy")
    plain_formula = nll.xreplace({s: s.arg for s in nll.atoms(symdiff.matrix.SPD)})
    plain = symdiff.lower(plain_formula, wrt=wrt, args=args).compile("numpy")
    impls = [
        (f"hand-written numpy (Cholesky, {SOLVER})", gp_by_hand, (*PARAMS, d, y), as_arrays),
        ("symdiff numpy, K declared spd (Cholesky)", spd.value_and_grad, (*PARAMS, d, y),
         as_arrays),
        ("symdiff numpy, no spd (solve, slogdet, inv)", plain.value_and_grad, (*PARAMS, d, y),
         as_arrays),
    ]
    missing = []
    made = torch_call(d, y) if cfg.frameworks else None
    if made is None:
        status = "not installed" if cfg.frameworks else f"skipped (--{cfg.mode})"
        missing.append({"implementation": "PyTorch", "status": status})
    else:
        impls.append((*made, as_arrays))
    rows = measure(impls, cfg, as_arrays(gp_by_hand(*PARAMS, d, y)))
    return {"points": size, "rows": rows + missing}
