"""Rosenbrock's chained function at n = 10,000: its Hessian (tridiagonal) by colouring.

Prints the lowering and compile time, the number of colours (Hessian-vector products), the
nonzeros, the time of one sparse Hessian, and the largest difference from the Hessian written
out by hand (diagonal and off-diagonal of sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2).
Run: ``python benchmarks/sparse_hessian.py [n]`` (SciPy needed). Not part of the test suite.
"""

import sys
import time

import numpy as np
import sympy as sp

from symdiff import optimize


def hand_hessian(x):
    n = len(x)
    diag = np.zeros(n)
    diag[:-1] += 1200 * x[:-1]**2 - 400 * x[1:] + 2
    diag[1:] += 200
    off = -400 * x[:-1]
    return diag, off


def main(n: int = 10_000) -> None:
    xs = sp.symbols(f"x0:{n}", real=True)
    f = sp.Add(*[100 * (xs[i + 1] - xs[i]**2)**2 + (1 - xs[i])**2 for i in range(n - 1)])
    start = time.perf_counter()
    obj = optimize.objective(f, list(xs), sparse=True)
    x = np.random.default_rng(0).normal(size=n)
    obj.hessp(x, x)  # lowers, writes and compiles hvp
    built = time.perf_counter() - start
    start = time.perf_counter()
    H = obj.hess(x)
    once = time.perf_counter() - start
    diag, off = hand_hessian(x)
    err = max(np.abs(H.diagonal() - diag).max(), np.abs(H.diagonal(1) - off).max(),
              np.abs(H.diagonal(-1) - off).max())
    print(f"n = {n}: lowered and compiled in {built:.1f} s; {obj.colours} colours "
          f"(Hessian-vector products); {H.nnz} nonzeros; one sparse Hessian {once:.3f} s; "
          f"largest difference from the hand Hessian {err:.2e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
