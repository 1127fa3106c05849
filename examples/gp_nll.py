"""Gaussian-process regression: fit the kernel's hyper-parameters with a gradient symdiff wrote.

The negative log marginal likelihood of targets y (N x 1) under a zero-mean GP with an RBF
kernel (Rasmussen & Williams, *Gaussian Processes for Machine Learning*, 2006, eq. 2.30,
without its constant N/2 log 2 pi) is one matrix formula,

    K   = sf2 * exp(-D / (2 ell**2)) + noise * I     (exp elementwise; D: squared distances)
    nll = 1/2 y.T K**-1 y + 1/2 log det K

over the length-scale ell, the signal variance sf2 and the noise variance noise. K is declared
symmetric positive definite (``symdiff.spd``), so the generated code factors it once with a
Cholesky decomposition and the backward pass reuses that factor. The generated module (printed
below) is all the fit uses: scipy.optimize.minimize calls its value_and_grad, over the logs of
the three parameters so they stay positive (d nll / d log p = p * d nll / d p).

The gradient is checked first against central differences, and against PyTorch float64
autograd when PyTorch is installed; the fit runs when SciPy is installed.

Run it with ``python examples/gp_nll.py`` (from a checkout: ``PYTHONPATH=src python ...``).
"""

import numpy as np
import sympy as sp

import symdiff

N_POINTS, SEED = 40, 0
START = {"ell": 1.0, "sf2": 1.0, "noise": 0.5}


def gp_formula():
    """The NLL as a SymPy matrix formula, its hyper-parameters (wrt) and its arguments."""
    n = sp.Symbol("N", integer=True, positive=True)
    d, y = sp.MatrixSymbol("D", n, n), sp.MatrixSymbol("y", n, 1)
    ell, sf2, noise = sp.symbols("ell sf2 noise", positive=True)
    k = symdiff.spd(sf2 * symdiff.apply(sp.exp, -d / (2 * ell**2)) + noise * sp.Identity(n))
    nll = sp.Trace(y.T * k.I * y) / 2 + sp.log(sp.Determinant(k)) / 2
    return nll, [ell, sf2, noise], [ell, sf2, noise, d, y]


def gp_program():
    """The staged program: forward(ell, sf2, noise, D, y), backward -> (dell, dsf2, dnoise)."""
    nll, wrt, args = gp_formula()
    return symdiff.lower(nll, wrt=wrt, args=args)


def make_data(n=N_POINTS, seed=SEED):
    """Noisy samples of sin on [0, 10]: inputs x, the squared distances D, targets y."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 10.0, n))
    y = np.sin(x) + 0.1 * rng.normal(size=n)
    return x, (x[:, None] - x[None, :]) ** 2, y[:, None]


def finite_differences(value_and_grad, params, d, y, h=1e-6):
    """Central differences of the NLL in each hyper-parameter."""
    out = []
    for k in range(len(params)):
        up, down = list(params), list(params)
        up[k], down[k] = params[k] + h, params[k] - h
        out.append((value_and_grad(*up, d, y)[0] - value_and_grad(*down, d, y)[0]) / (2 * h))
    return out


def torch_gradient(params, d, y):
    """The same NLL in PyTorch float64 with autograd; None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    ell, sf2, noise = (torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params)
    dt, yt = torch.from_numpy(d), torch.from_numpy(y)
    k = sf2 * torch.exp(-dt / (2 * ell**2)) + noise * torch.eye(len(d), dtype=torch.float64)
    c = torch.linalg.cholesky(k)
    nll = 0.5 * (yt.T @ torch.cholesky_solve(yt, c))[0, 0] + torch.log(torch.diag(c)).sum()
    return [float(g) for g in torch.autograd.grad(nll, (ell, sf2, noise))]


def fit(value_and_grad, d, y, start=START):
    """scipy.optimize.minimize (L-BFGS-B) over log-parameters; None without SciPy."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        return None

    def objective(logs):
        params = np.exp(logs)
        value, grads = value_and_grad(*params, d, y)
        return float(value), params * np.array(grads, dtype=float)

    return minimize(objective, np.log(list(start.values())), jac=True, method="L-BFGS-B")


def main():
    prog = gp_program()
    source = prog.source("numpy", name="gp_nll")
    start = source.index("def gp_nll_backward")
    print(source[start:source.index("\n\n\ndef ", start)])  # the generated backward pass
    module = prog.compile("numpy")
    _, d, y = make_data()
    params = list(START.values())
    value, grads = module.value_and_grad(*params, d, y)
    print(f"nll at start = {float(value):.12g}")
    for name, g, fd in zip(START, grads, finite_differences(module.value_and_grad, params, d, y)):
        print(f"d{name} = {float(g):.12g}   (central differences {fd:.12g})")
    torch_grads = torch_gradient(params, d, y)
    if torch_grads is None:
        print("PyTorch is not installed: no autograd comparison")
    else:
        print(f"max |symdiff - PyTorch autograd| = "
              f"{max(abs(float(a) - b) for a, b in zip(grads, torch_grads)):.3g}")
    result = fit(module.value_and_grad, d, y)
    if result is None:
        print("SciPy is not installed: no fit")
        return
    fitted = np.exp(result.x)
    print(f"fit: {result.nit} iterations, converged = {result.success}")
    print(f"nll at fit = {result.fun:.12g}")
    for name, p in zip(START, fitted):
        print(f"fitted {name} = {p:.6g}")


if __name__ == "__main__":
    main()
