"""Moré, Garbow & Hillstrom's test problems, solved by SciPy on derivatives symdiff generated.

J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing Unconstrained Optimization Software",
ACM TOMS 7(1), 1981, give each problem as residuals f_i(x), the objective sum f_i(x)**2, a
standard starting point and the minimum. Five are minimised here with Newton's method on the
generated Hessian-vector product (``scipy.optimize.minimize(..., method="trust-ncg",
hessp=obj.hessp)``: no Hessian is ever formed), and two data-fitting problems with
``scipy.optimize.least_squares`` on the generated Jacobian of the residuals. Each line prints
the iterations, the minimum found and the published one.

Run it with ``python examples/optimize_mgh.py`` (SciPy needed: ``pip install scipy``; from a
checkout: ``PYTHONPATH=src python ...``).
"""

import sys

import numpy as np
import sympy as sp

from symdiff import optimize

x1, x2, x3, x4 = sp.symbols("x1 x2 x3 x4")

# name: (residuals, wrt, start, published minimum of sum f_i**2)   (MGH numbering in brackets)
MINIMISE = {
    "Rosenbrock [1]": ([10 * (x2 - x1**2), 1 - x1], [x1, x2], [-1.2, 1.0], 0.0),
    "Powell singular [13]": ([x1 + 10 * x2, sp.sqrt(5) * (x3 - x4), (x2 - 2 * x3)**2,
                              sp.sqrt(10) * (x1 - x4)**2], [x1, x2, x3, x4],
                             [3.0, -1.0, 0.0, 1.0], 0.0),
    "Wood [14]": ([10 * (x2 - x1**2), 1 - x1, sp.sqrt(90) * (x4 - x3**2), 1 - x3,
                   sp.sqrt(10) * (x2 + x4 - 2), (x2 - x4) / sp.sqrt(10)], [x1, x2, x3, x4],
                  [-3.0, -1.0, -3.0, -1.0], 0.0),
    "Beale [5]": ([sp.Rational(3, 2) - x1 * (1 - x2), sp.Rational(9, 4) - x1 * (1 - x2**2),
                   sp.Rational(21, 8) - x1 * (1 - x2**3)], [x1, x2], [1.0, 1.0], 0.0),
    "Brown badly scaled [4]": ([x1 - 10**6, x2 - sp.Rational(2, 10**6), x1 * x2 - 2], [x1, x2],
                               [1.0, 1.0], 0.0),
}

BARD_Y = [0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10,
          4.39]


def bard():
    """Bard [8]: 15 residuals y_i - (x1 + u_i / (v_i x2 + w_i x3)); minimum 8.21487e-3."""
    res = []
    for i, y in enumerate(BARD_Y, start=1):
        u, v = i, 16 - i
        res.append(sp.Float(y) - (x1 + u / (v * x2 + min(u, v) * x3)))
    return res, [x1, x2, x3], [1.0, 1.0, 1.0], 8.21487e-3


def box3d(m=10):
    """Box three-dimensional [12]: exp(-t x1) - exp(-t x2) - x3 (exp(-t) - exp(-10 t)),
    t = 0.1 i; minimum 0."""
    res = []
    for i in range(1, m + 1):
        t = sp.Rational(i, 10)
        res.append(sp.exp(-t * x1) - sp.exp(-t * x2) - x3 * (sp.exp(-t) - sp.exp(-10 * t)))
    return res, [x1, x2, x3], [0.0, 10.0, 20.0], 0.0


def minimise(name, residuals, wrt, start):
    """trust-ncg on the generated gradient and Hessian-vector product of sum f_i**2."""
    from scipy.optimize import minimize
    obj = optimize.objective(sum(f**2 for f in residuals), wrt)
    # The trust region may grow to the problem's scale: SciPy's default cap of 1,000 would take
    # Brown's badly scaled problem (its minimum at x1 = 1e6) a thousand steps to cross.
    scale = max(1.0, float(np.max(np.abs(np.array(start)))))
    result = minimize(obj.fun, np.array(start), jac=obj.jac, hessp=obj.hessp,
                      method="trust-ncg", options={"gtol": 1e-10, "maxiter": 500,
                                                   "max_trust_radius": 1e7 * scale})
    return result.nit, result.fun, result.x


def fit(name, residuals, wrt, start):
    """least_squares (trust-region reflective) on the generated Jacobian of the residuals."""
    from scipy.optimize import least_squares
    res = optimize.residuals(residuals, wrt)
    result = least_squares(res.fun, np.array(start), jac=res.jac, xtol=1e-15, ftol=1e-15,
                           gtol=1e-15)
    return result.nfev, float(np.sum(result.fun**2)), result.x


def main() -> int:
    try:
        import scipy  # noqa: F401
    except ImportError:
        print("this example needs SciPy: pip install scipy")
        return 0
    print(f"{'problem':24} {'method':14} {'iter':>5} {'f found':>13} {'f published':>12}  x")
    rows = [(name, *spec, minimise, "trust-ncg") for name, spec in MINIMISE.items()]
    rows += [("Bard [8]", *bard(), fit, "least_squares"),
             ("Box 3-D [12]", *box3d(), fit, "least_squares")]
    worst = 0.0
    for name, residuals, wrt, start, published, solve, method in rows:
        iterations, found, x = solve(name, residuals, wrt, start)
        print(f"{name:24} {method:14} {iterations:5d} {found:13.6e} {published:12.6e}  "
              f"{np.array2string(x, precision=6)}")
        worst = max(worst, abs(found - published) / max(1.0, published))
    print(f"largest difference from the published minima: {worst:.1e}")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
