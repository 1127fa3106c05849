"""Two matrix models written as people write them, differentiated by symdiff.

1. Ridge regression, ||X W - Y||_F^2 + lam ||W||_F^2 written with traces. Its gradient is
   2 X'(X W - Y) + 2 lam W, zero at the normal equations' solution (X'X + lam I) W = X'Y:
   the script fits W by gradient descent on the generated gradient and compares.
2. The multivariate normal log density, -1/2 (x - mu)' S^-1 (x - mu) - 1/2 log det S - n/2
   log 2 pi, with S declared symmetric positive definite (one Cholesky factor serves the
   solve, the log-determinant and the backward pass), against the closed forms
   d/dmu = S^-1 r and d/dS = 1/2 (S^-1 r r' S^-1 - S^-1), r = x - mu.

Run: python examples/ridge_and_mvn.py
"""

import numpy as np
import sympy as sp

import symdiff

N, D, M, n = sp.symbols("N D M n", integer=True, positive=True)
X, Y, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("Y", N, M), sp.MatrixSymbol("W", D, M)
lam = sp.Symbol("lam", positive=True)
x, mu, S = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("mu", n, 1), sp.MatrixSymbol("S", n, n)
rng = np.random.default_rng(0)


def ridge() -> None:
    loss = sp.Trace((X * W - Y).T * (X * W - Y)) + lam * sp.Trace(W.T * W)
    module = symdiff.lower(loss, wrt=[W], args=[X, Y, W, lam]).compile("numpy")
    xv, yv = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    w, step = np.zeros((4, 2)), 0.5 / np.linalg.norm(xv, 2) ** 2
    for _ in range(2_000):  # gradient descent on the generated gradient
        _, (dw,) = module.value_and_grad(xv, yv, w, 0.3)
        w = w - step * dw
    best = np.linalg.solve(xv.T @ xv + 0.3 * np.eye(4), xv.T @ yv)
    _, (at_best,) = module.value_and_grad(xv, yv, best, 0.3)
    print("ridge: gradient descent vs normal equations, max |W - W*| = "
          f"{np.abs(w - best).max():.3e}")
    print(f"ridge: max |gradient at W*| = {np.abs(at_best).max():.3e}")


def mvn() -> None:
    r = x - mu
    K = symdiff.spd(S)  # declared symmetric positive definite: the Cholesky route
    logpdf = (-sp.Trace(r.T * K.I * r) / 2 - sp.log(sp.Determinant(K)) / 2
              - n * sp.log(2 * sp.pi) / 2)
    prog = symdiff.lower(logpdf, wrt=[mu, S], args=[x, mu, S])
    a = rng.normal(size=(3, 3))
    xv, muv, sv = rng.normal(size=(3, 1)), rng.normal(size=(3, 1)), a @ a.T + 3 * np.eye(3)
    value, (dmu, ds) = prog.compile("numpy").value_and_grad(xv, muv, sv)
    si, rv = np.linalg.inv(sv), xv - muv
    want = (-0.5 * (rv.T @ si @ rv).item() - 0.5 * np.linalg.slogdet(sv)[1]
            - 1.5 * np.log(2 * np.pi))
    print(f"mvn: log density = {value:.15g} (closed form {want:.15g})")
    print(f"mvn: max |dmu - S^-1 r| = {np.abs(dmu - si @ rv).max():.3e}")
    print(f"mvn: max |dS - (S^-1 r r' S^-1 - S^-1)/2| = "
          f"{np.abs(ds - 0.5 * (si @ rv @ rv.T @ si - si)).max():.3e}")
    print("mvn:", "check OK" if symdiff.check(prog).ok else "check FAILED")


if __name__ == "__main__":
    ridge()
    mvn()
