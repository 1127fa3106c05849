"""Published formula collections the team did not write, as test entries, and their oracle.

Each collection is read through its own installed code, never copied: the optimisation test
functions of ``deap.benchmarks``, the symbolic-regression set of ``deap.benchmarks.gp``, the test
functions of ``landscapes.single_objective``, the formula functions of ``sympy.physics`` and the
densities of ``sympy.stats``; besides them, standard ML losses that we typed as strings (ours,
not a published collection). The Python collections are written with ``from math import sin``
and sums over a list; they are called with a list of real SymPy symbols while their module's
math names point at SymPy's (the formula is then exactly the one the collection computes, its
constants and spelling included).

The oracle is independent of symdiff: ``sympy.diff`` evaluated with mpmath at ``DPS`` digits at
random points of a box where the value and every partial are real and finite. Tolerances come
from a first-order error bound of the formula itself (see ``magnitude``), not from symdiff.

``python tests/collections_lib.py`` runs every entry through every stage and prints the failures
by class (the findings report).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import random
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

DPS = 40  # digits of the reference (the brief asks for >= 30)
POINTS = 3  # random in-domain points per formula
REL = 1e-8  # relative to the formula's error magnitude (see magnitude): 1e8 float ulps of slack
VERIFY_SAMPLES = 10  # verify's points per formula (its default, 40, would double the file's time)
FLOAT_MAX = 1e300  # a reference beyond this is outside what float code can represent


@dataclass(frozen=True)
class Entry:
    """One formula of a collection: ``collection:name``, its variables and sampling box."""

    collection: str
    name: str
    expr: sp.Expr | None
    wrt: tuple[sp.Symbol, ...] = ()
    box: dict = field(default_factory=dict)  # symbol name -> (lo, hi); default per collection
    skip: str | None = None  # why this entry is not a differentiable formula
    text: str | None = None  # a formula given as a string: symdiff parses it (the oracle: SymPy)

    @property
    def id(self) -> str:
        return f"{self.collection}:{self.name}"

    def bounds(self, symbol: sp.Symbol) -> tuple[float, float]:
        if symbol.name in self.box:
            return self.box[symbol.name]
        return self.box.get("*", (0.5, 3.0) if symbol.is_positive else (-3.0, 3.0))


# ---------------------------------------------------------------------------------------------
# Feeding a collection as it is written

SYMPY_MATH = {"sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "exp": sp.exp, "sqrt": sp.sqrt,
              "log": sp.log, "floor": sp.floor, "pi": sp.pi, "e": sp.E}


@contextlib.contextmanager
def as_written(module) -> Iterator[None]:
    """Point the module's ``from math import ...`` names at SymPy's for the duration."""
    saved = {n: getattr(module, n) for n in SYMPY_MATH if hasattr(module, n)}
    try:
        for name in saved:
            setattr(module, name, SYMPY_MATH[name])
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def real_symbols(n: int, prefix: str = "x") -> list[sp.Symbol]:
    return [sp.Symbol(f"{prefix}{i}", real=True) for i in range(1, n + 1)]


def _is_value_branch(exc: Exception) -> bool:
    """The collection's code branches on a value (``if x > 0``): not one formula."""
    return isinstance(exc, TypeError) and "truth value of Relational" in str(exc)


def _objectives(collection: str, name: str, result, wrt, box) -> list[Entry]:
    """One entry per objective of a (possibly multi-objective) result."""
    values = list(result) if isinstance(result, (tuple, list)) else [result]
    entries = []
    for k, value in enumerate(values):
        label = name if len(values) == 1 else f"{name}[f{k + 1}]"
        value = sp.sympify(value)
        if value.has(sp.I):
            entries.append(Entry(collection, label, value, tuple(wrt), box,
                                 skip="complex-valued (symdiff differentiates over the reals)"))
            continue
        if not value.free_symbols & set(wrt):
            entries.append(Entry(collection, label, value, tuple(wrt), box,
                                 skip="the objective does not depend on the variables"))
            continue
        used = tuple(s for s in wrt if s in value.free_symbols)
        entries.append(Entry(collection, label, value, used, box))
    return entries


def _call(collection: str, name: str, fn: Callable, wrt, box, *extra) -> list[Entry]:
    try:
        result = fn(list(wrt), *extra)
    except TypeError as exc:
        if not _is_value_branch(exc):
            raise
        return [Entry(collection, name, None, tuple(wrt), box,
                      skip=f"branches on a value in Python ({exc})")]
    return _objectives(collection, name, result, wrt, box)


def _public_functions(module) -> list[tuple[str, Callable]]:
    """The module's own functions, in source order (a new release's entries join by themselves)."""
    own = [(n, f) for n, f in vars(module).items()
           if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_")]
    return sorted(own, key=lambda nf: nf[1].__code__.co_firstlineno)


# ---------------------------------------------------------------------------------------------
# deap.benchmarks: optimisation test functions (single- and multi-objective)

# dtlz with 3 objectives reads x1, x2 for the objectives and the rest for g: 3 suffice
DEAP_DIMS = {"h1": 2, "himmelblau": 2, "poloni": 2, "dent": 2, "schaffer_mo": 1}
DEAP_EXTRA = {"dtlz1": (3,), "dtlz2": (3,), "dtlz3": (3,), "dtlz4": (3, 100), "dtlz5": (3,),
              "dtlz6": (3,), "dtlz7": (3,),
              "shekel": ([[0.5, 0.5, 0.5], [0.25, 0.75, 0.4]], [0.002, 0.005])}
UNIT = {"*": (0.0, 1.0)}
DEAP_BOX = {  # the search domains the collection's docstrings give
    "h1": {"*": (-100.0, 100.0)}, "himmelblau": {"*": (-6.0, 6.0)},
    "ackley": {"*": (-15.0, 30.0)}, "bohachevsky": {"*": (-100.0, 100.0)},
    "griewank": {"*": (-600.0, 600.0)}, "rastrigin": {"*": (-5.12, 5.12)},
    "rastrigin_scaled": {"*": (-5.12, 5.12)}, "schaffer": {"*": (-100.0, 100.0)},
    "schwefel": {"*": (-500.0, 500.0)}, "shekel": UNIT, "kursawe": {"*": (-5.0, 5.0)},
    "schaffer_mo": {"*": (-10.0, 10.0)}, "zdt1": UNIT, "zdt2": UNIT, "zdt3": UNIT,
    "zdt4": {"x1": (0.0, 1.0), "*": (-5.0, 5.0)}, "zdt6": UNIT, "fonseca": {"*": (-4.0, 4.0)},
    "poloni": {"*": (-3.14, 3.14)}, "dent": {"*": (-1.5, 1.5)},
    **{f"dtlz{k}": UNIT for k in range(1, 8)},
}


def deap_entries() -> list[Entry]:
    bench = importlib.import_module("deap.benchmarks")
    entries = []
    with as_written(bench):
        for name, fn in _public_functions(bench):
            wrt = real_symbols(DEAP_DIMS.get(name, 3))
            entries += _call("deap.benchmarks", name, fn, wrt, DEAP_BOX.get(name, {}),
                             *DEAP_EXTRA.get(name, ()))
    return entries


# deap.benchmarks.gp: the symbolic-regression benchmark set (domains from its docstrings)
GP_DIMS = {"salustowicz_1d": 1, "rational_polynomial": 3, "unwrapped_ball": 3}
GP_BOX = {"kotanchek": (-1.0, 7.0), "salustowicz_1d": (0.0, 10.0), "salustowicz_2d": (0.0, 7.0),
          "unwrapped_ball": (-2.0, 8.0), "rational_polynomial": (0.0, 2.0),
          "sin_cos": (0.0, 6.0), "ripple": (-5.0, 5.0), "rational_polynomial2": (0.0, 6.0)}


def deap_gp_entries() -> list[Entry]:
    gp = importlib.import_module("deap.benchmarks.gp")
    entries = []
    with as_written(gp):
        for name, fn in _public_functions(gp):
            wrt = real_symbols(GP_DIMS.get(name, 2))
            entries += _call("deap.benchmarks.gp", name, fn, wrt,
                             {"*": GP_BOX.get(name, (-3.0, 3.0))})
    return entries


# ---------------------------------------------------------------------------------------------
# landscapes.single_objective: optimisation test functions (2-D, 3-D or any dimension)

LANDSCAPES_BOX = {  # the bounds its docstrings give, where the default (-3, 3) would not do
    "amgm": (0.0, 10.0), "eggholder": (-512.0, 512.0), "schwefel": (-500.0, 500.0),
    "griewank": (-600.0, 600.0), "michalewicz": (0.0, 3.14), "bukin_n6": (-15.0, 3.0),
    "rastrigin": (-5.12, 5.12), "styblinski_tang": (-5.0, 5.0), "damavandi": (0.0, 14.0),
    "deckkers_aarts": (-20.0, 20.0), "goldstein_price": (-2.0, 2.0), "trid": (-9.0, 9.0),
}


# rotated_hyper_ellipsoid is n-dimensional but never reads the last variable: give it three
LANDSCAPES_DIMS = {"rotated_hyper_ellipsoid": 3}


def landscapes_entries() -> list[Entry]:
    module = importlib.import_module("landscapes.single_objective")
    entries = []
    with as_written(module):
        for name, fn in _public_functions(module):
            box = {"*": LANDSCAPES_BOX.get(name, (-3.0, 3.0))}
            wrt = (real_symbols(LANDSCAPES_DIMS[name]) if name in LANDSCAPES_DIMS
                   else _landscapes_dims(fn))
            entries += _call("landscapes", name, fn, wrt, box)
    return entries


def _landscapes_dims(fn: Callable) -> list[sp.Symbol]:
    """The variables ``fn`` reads: its fixed dimension, or three for an n-dimensional one."""
    for n in (2, 3, 4):
        try:
            sp.sympify(fn(real_symbols(n)))
            more = sp.sympify(fn(real_symbols(n + 1))).free_symbols
        except IndexError:  # xy[2] of a list of two: the function needs more variables
            continue
        except Exception:  # noqa: BLE001 -- the real call in _call reports what went wrong
            return real_symbols(n)
        if n >= 3 or real_symbols(n + 1)[-1] not in more:
            return real_symbols(n)
    return real_symbols(4)


# ---------------------------------------------------------------------------------------------
# sympy.physics: formula functions by SymPy's authors, called with symbols named as their
# parameters (positive: lengths, indices, masses, frequencies, charges)

def positive(*names: str) -> list[sp.Symbol]:
    return [sp.Symbol(n, positive=True) for n in names]


def _params(fn: Callable, fixed: dict) -> dict:
    """Positive symbols named like ``fn``'s parameters, for every parameter not in ``fixed``."""
    names = [p.name for p in inspect.signature(fn).parameters.values()
             if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in fixed]
    return dict(zip(names, positive(*names)))


def _physics_calls() -> list[tuple[str, Callable, dict]]:
    """(entry name, function, fixed arguments); the other parameters become symbols."""
    from sympy.physics import hydrogen, optics, pring, qho_1d, sho
    from sympy.physics.optics import gaussopt

    calls = [("optics.lens_makers_formula", optics.lens_makers_formula, {}),
             ("optics.lens_makers_formula(thin)", optics.lens_makers_formula, {"d": 0})]
    for fn in (optics.mirror_formula, optics.lens_formula):
        for unknown in ("focal_length", "u", "v"):
            calls.append((f"optics.{fn.__name__}({unknown})", fn, {unknown: None}))
    calls += [(f"optics.{fn.__name__}", fn, {}) for fn in (
        optics.hyperfocal_distance, optics.transverse_magnification, optics.brewster_angle,
        optics.critical_angle, gaussopt.rayleigh2waist, gaussopt.geometric_conj_ab,
        gaussopt.geometric_conj_af, gaussopt.gaussian_conj)]
    calls += [("optics.waist2rayleigh", gaussopt.waist2rayleigh, {"n": 1}),
              ("optics.waist2rayleigh(n)", gaussopt.waist2rayleigh, {}),
              ("optics.fresnel_coefficients", optics.fresnel_coefficients, {})]
    calls += [(f"hydrogen.R_nl({n},{ell})", hydrogen.R_nl, {"n": n, "l": ell})
              for n, ell in ((1, 0), (2, 0), (2, 1), (3, 2), (4, 1))]
    calls += [("hydrogen.E_nl(3)", hydrogen.E_nl, {"n": 3}),
              ("hydrogen.E_nl_dirac(2,1,up)", hydrogen.E_nl_dirac,
               {"n": 2, "l": 1, "spin_up": True, "c": hydrogen.E_nl_dirac.__defaults__[-1]}),
              ("hydrogen.E_nl_dirac(2,1,down)", hydrogen.E_nl_dirac,
               {"n": 2, "l": 1, "spin_up": False, "c": hydrogen.E_nl_dirac.__defaults__[-1]}),
              ("hydrogen.Psi_nlm(2,1,0)", hydrogen.Psi_nlm, {"n": 2, "l": 1, "m": 0}),
              ("hydrogen.Psi_nlm(2,1,1)", hydrogen.Psi_nlm, {"n": 2, "l": 1, "m": 1})]
    calls += [(f"qho_1d.psi_n({n})", qho_1d.psi_n, {"n": n, "x": QHO_X}) for n in (0, 1, 3)]
    calls += [("qho_1d.E_n(2)", qho_1d.E_n, {"n": 2}),
              ("qho_1d.coherent_state(3)", qho_1d.coherent_state, {"n": 3})]
    calls += [(f"sho.R_nl({n},{ell})", sho.R_nl, {"n": n, "l": ell})
              for n, ell in ((0, 0), (1, 1))]
    calls += [("sho.E_nl(2,1)", sho.E_nl, {"n": 2, "l": 1}),
              ("pring.energy(2)", pring.energy, {"n": 2}),
              ("pring.wavefunction(1)", pring.wavefunction, {"n": 1, "x": QHO_X})]
    return calls


QHO_X = sp.Symbol("x", real=True)  # a position: real, of either sign
PHYSICS_BOX = {  # hbar is 1.05e-34 in SymPy: m*omega*x**2/hbar is O(1) only for x ~ 1e-17
    "qho_1d.psi_n": {"x": (-2e-17, 2e-17)},
    "pring.wavefunction": {"x": (0.0, 6.28)},
}


def _physics_objects() -> list[tuple[str, Callable]]:
    """Scalars read off SymPy's optics objects: a Gaussian beam and ray transfer matrices."""
    from sympy.physics import optics

    wavelen, z, w, d, d1, d2, f, R, n1, n2 = positive(
        "wavelen", "z", "w", "d", "d1", "d2", "f", "R", "n1", "n2")
    beam = lambda: optics.BeamParameter(wavelen, z, w=w)  # noqa: E731
    found = [(f"optics.BeamParameter.{p}", lambda p=p: getattr(beam(), p)) for p in (
        "q", "radius", "w", "divergence", "gouy", "waist_approximation_limit", "z_r")]
    found += [("optics.FreeSpace*ThinLens*FreeSpace",
               lambda: list(optics.FreeSpace(d2) * optics.ThinLens(f) * optics.FreeSpace(d1))),
              ("optics.CurvedRefraction", lambda: list(optics.CurvedRefraction(R, n1, n2))),
              ("optics.FreeSpace*CurvedMirror",
               lambda: list(optics.FreeSpace(d) * optics.CurvedMirror(R)))]
    return found


def physics_entries() -> list[Entry]:
    entries = []
    for name, fn, fixed in _physics_calls():
        symbols = _params(fn, fixed)
        box = PHYSICS_BOX.get(name.split("(")[0], {})
        wrt = list(symbols.values()) + ([QHO_X] if QHO_X in fixed.values() else [])
        entries += _call("sympy.physics", name, lambda _w, fn=fn, s=symbols, f=fixed:
                         fn(**{**f, **s}), wrt, box)
    for name, make in _physics_objects():
        value = make()
        symbols = sorted(sp.sympify(value if not isinstance(value, list) else sum(value))
                         .free_symbols, key=lambda s: s.name)
        entries += _objectives("sympy.physics", name, value, symbols, {})
    return entries


# ---------------------------------------------------------------------------------------------
# sympy.stats: the density of every continuous distribution SymPy ships, at a real x, with
# positive parameters named as SymPy names them (alpha, beta, gamma, lamda, mean, std, ...)

def stats_entries() -> list[Entry]:
    from sympy import stats

    x = sp.Symbol("x", real=True)
    entries = []
    for name in stats.crv_types.__all__:
        fn = getattr(stats, name)
        params = [p.name for p in inspect.signature(fn).parameters.values()  # all but a flag
                  if not isinstance(p.default, bool)][1:]  # after the variable's own name
        if name == "ContinuousRV" or not params:
            continue
        symbols = positive(*params)
        pdf = stats.density(fn("X", *symbols))(x)
        wrt = [x, *symbols]
        if pdf.has(sp.Sum):
            entries.append(Entry("sympy.stats", name, pdf, tuple(wrt),
                                 skip="a series (Sum), not a closed formula"))
            continue
        entries += _objectives("sympy.stats", name, pdf, wrt, {})
    return entries


# ---------------------------------------------------------------------------------------------
# Standard ML losses and activations as people type them (written by us: not a published
# collection, but the strings go through symdiff's parser exactly as a user's would)

ML_LOSSES = {  # name: (formula text, {variable: sampling box})
    "bce_textbook": ("-y*log(1/(1 + exp(-z))) - (1 - y)*log(1 - 1/(1 + exp(-z)))",
                     {"z": (-8, 8), "y": (0, 1)}),
    "bce_with_logits": ("max(z, 0) - z*y + log(1 + exp(-abs(z)))", {"z": (-8, 8), "y": (0, 1)}),
    "logistic_loss": ("log(1 + exp(-y*z))", {"z": (-5, 5), "y": (-1, 1)}),
    "logsumexp3": ("log(exp(a) + exp(b) + exp(c))", {"*": (-5, 5)}),
    "softmax_xent3": ("-log(exp(a)/(exp(a) + exp(b) + exp(c)))", {"*": (-5, 5)}),
    "softmax_xent3_shifted": ("-(a - m) + log(exp(a - m) + exp(b - m) + exp(c - m))",
                              {"*": (-5, 5)}),
    "huber": ("Piecewise((0.5*r**2, abs(r) <= delta), (delta*(abs(r) - 0.5*delta), True))",
              {"r": (-4, 4), "delta": (0.5, 2)}),
    "smooth_l1": ("Piecewise((0.5*r**2/beta, abs(r) < beta), (abs(r) - 0.5*beta, True))",
                  {"r": (-4, 4), "beta": (0.5, 2)}),
    "gelu_tanh": ("0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))", {"x": (-5, 5)}),
    "gelu_erf": ("0.5*x*(1 + erf(x/sqrt(2)))", {"x": (-5, 5)}),
    "focal_loss": ("-alpha*(1 - 1/(1 + exp(-z)))**gamma*log(1/(1 + exp(-z)))",
                   {"z": (-6, 6), "alpha": (0.1, 0.9), "gamma": (0.5, 3)}),
    "gaussian_nll": ("0.5*log(2*pi*sigma**2) + (x - mu)**2/(2*sigma**2)",
                     {"sigma": (0.2, 3), "*": (-3, 3)}),
    "kl_bernoulli": ("p*log(p/q) + (1 - p)*log((1 - p)/(1 - q))", {"*": (0.01, 0.99)}),
    "poisson_nll": ("exp(z) - y*z", {"z": (-3, 3), "y": (0, 5)}),
    "log_cosh": ("log(cosh(y - z))", {"*": (-5, 5)}),
    "softplus": ("log(1 + exp(x))", {"x": (-20, 20)}),
    "swish": ("x/(1 + exp(-beta*x))", {"x": (-6, 6), "beta": (0.5, 2)}),
    "mish": ("x*tanh(log(1 + exp(x)))", {"x": (-6, 6)}),
    "elu": ("Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))",
            {"x": (-4, 4), "alpha": (0.5, 2)}),
    "squared_hinge": ("max(0, 1 - y*z)**2", {"*": (-2, 2)}),
    "cosine_similarity": ("(a1*b1 + a2*b2)/(sqrt(a1**2 + a2**2)*sqrt(b1**2 + b2**2))",
                          {"*": (-3, 3)}),
    "charbonnier": ("sqrt((x - y)**2 + eps**2)", {"eps": (1e-3, 1e-1), "*": (-3, 3)}),
    "weight_decay_l2": ("0.5*lam*(w1**2 + w2**2 + w3**2)", {"lam": (1e-4, 1e-2), "*": (-3, 3)}),
    "sigmoid_mse": ("(1/(1 + exp(-(w*x + b))) - y)**2", {"*": (-3, 3)}),
}


def ml_loss_entries() -> list[Entry]:
    from sympy.parsing.sympy_parser import parse_expr

    entries = []
    for name, (text, box) in ML_LOSSES.items():
        names = sorted(set(re.findall(r"[A-Za-z_]\w*", text)) - ML_FUNCTION_NAMES)
        symbols = {n: sp.Symbol(n, real=True) for n in names}
        expr = parse_expr(text, local_dict={**symbols, "max": sp.Max, "abs": sp.Abs})
        wrt = tuple(s for s in symbols.values() if s in expr.free_symbols)
        entries.append(Entry("ml-losses-ours", name, expr, wrt, box, text=text))
    return entries


ML_FUNCTION_NAMES = {"log", "exp", "max", "abs", "Piecewise", "True", "tanh", "sqrt", "pi",
                     "erf", "cosh"}


# ---------------------------------------------------------------------------------------------
# The oracle: sympy.diff at DPS digits, and the error magnitude that sets the tolerance

def all_entries() -> dict[str, Callable[[], list[Entry]]]:
    """Collection name -> builder (a builder raises ImportError when its package is absent)."""
    return {"deap.benchmarks": deap_entries, "deap.benchmarks.gp": deap_gp_entries,
            "landscapes": landscapes_entries, "sympy.physics": physics_entries,
            "sympy.stats": stats_entries, "ml-losses-ours": ml_loss_entries}


@dataclass
class Oracle:
    """Exact value and gradient of one entry at its sample points, with error magnitudes."""

    entry: Entry
    diffs: list[sp.Expr]
    points: list[tuple]  # floats, in wrt order
    values: list[tuple]  # (value, *partials) per point, mpf
    scales: list[tuple]  # the error magnitude of each, per point (see magnitude)

    def tolerance(self, k: int, j: int) -> float:
        """Allowed |float - exact| for quantity j (0 = value) at point k."""
        return REL * float(self.scales[k][j]) + 1e-300


def oracle(entry: Entry, points: int = POINTS) -> Oracle:
    diffs = [sp.diff(entry.expr, v) for v in entry.wrt]
    if any(d.has(sp.Derivative, sp.Subs) for d in diffs):
        raise NoReference(f"sympy.diff leaves {[d for d in diffs if d.has(sp.Derivative)][0]}")
    exprs = [entry.expr, *diffs]
    with mpmath.workdps(DPS):
        # dummify: a variable named like a function (beta, gamma, zeta) must not shadow it
        fn = sp.lambdify(entry.wrt, exprs, modules="mpmath", dummify=True)
        rng = random.Random(zlib.crc32(entry.id.encode()))
        found, tried = [], 0
        while len(found) < points and tried < 400:
            tried += 1
            point = tuple(rng.uniform(*entry.bounds(s)) for s in entry.wrt)
            exact = _exact(fn, point)
            if exact is None:
                continue
            try:
                scales = tuple(magnitude(e, entry.wrt, point) for e in exprs)
            except (NotReal, ZeroDivisionError, ValueError):  # e.g. (-2)**0.5 * (-3)**0.5:
                continue  # a real product of steps that are not real: outside the domain
            found.append((point, exact, scales))
    if not found:
        raise NoReference("no point of the box where the value and gradient are real and finite")
    return Oracle(entry, diffs, *map(list, zip(*found)))


class NotReal(Exception):
    """A step of the formula is not real at this point: it is outside the real domain."""


class NoReference(Exception):
    """sympy.diff gives no usable reference for this entry (not a symdiff failure)."""


def _exact(fn: Callable, point: tuple) -> tuple | None:
    """The value and partials at ``point`` at DPS digits, or None where not real and finite."""
    try:
        got = fn(*[mpmath.mpf(p) for p in point])
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    out = []
    for v in got:
        v = mpmath.mpmathify(v)
        if isinstance(v, mpmath.mpc):
            if abs(v.imag) > mpmath.mpf(10) ** (8 - DPS) * max(1, abs(v.real)):
                return None
            v = v.real
        if not mpmath.isfinite(v) or abs(v) > FLOAT_MAX:
            return None
        out.append(v)
    return tuple(out)


def magnitude(expr: sp.Expr, wrt: tuple, point: tuple):
    """A first-order bound of the rounding error of evaluating ``expr`` in floats, in ulps.

    Bottom-up over the DAG: a node's bound is the propagated bounds of its arguments (each
    times the node's partial derivative in it) plus one rounding of the node's own value; a sum
    adds the sizes of its terms, so a value that cancels to ~0 keeps the scale of what cancelled.
    Inputs are exact floats; integers are exact; every other constant is one rounding.
    """
    values = dict(zip(wrt, (mpmath.mpf(p) for p in point)))
    bound: dict = {}
    for node in _postorder(expr):
        if isinstance(node, sp.Symbol):
            bound[node] = mpmath.mpf(0)
        elif isinstance(node, sp.Piecewise):  # the value of the branch taken; the worst bound
            values[node] = _real(sp.lambdify(wrt, node, modules="mpmath", dummify=True)(
                *[values[s] for s in wrt]))
            bound[node] = max(bound[pair.expr] for pair in node.args)
        elif node.is_Number or isinstance(node, sp.NumberSymbol):
            values[node] = mpmath.mpf(sp.Float(node, DPS))
            bound[node] = mpmath.mpf(0) if node.is_Integer else abs(values[node])
        else:
            values[node], bound[node] = _node_bound(node, values, bound)
    return bound[expr]


def _node_bound(node: sp.Basic, values: dict, bound: dict) -> tuple:
    """The node's value and error bound from its arguments' (see ``magnitude``)."""
    args = [values[a] for a in node.args]
    value_fn, partials = _shape(node)
    value = mpmath.mpmathify(value_fn(*args))
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > mpmath.mpf(10) ** (8 - DPS) * max(1, abs(value.real)):
            raise NotReal(str(node))
        value = value.real
    total = abs(value) * max(1, len(args) - 1)  # its own roundings (n - 1 for an n-ary op)
    if node.is_Add:
        total += sum(abs(a) for a in args)  # the rounding of each partial sum
    for arg, partial in zip(node.args, partials):
        if bound[arg]:
            total += abs(_real(partial(*args))) * bound[arg]
    return value, total


def _real(v):
    v = mpmath.mpmathify(v)
    return v.real if isinstance(v, mpmath.mpc) else v


def _postorder(root: sp.Basic) -> list[sp.Basic]:
    """Distinct nodes, each after its arguments (an explicit stack: no recursion limit)."""
    seen, order, stack = set(), [], [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            args = node.args
            if isinstance(node, sp.Piecewise):  # conditions are not evaluated as numbers
                args = [pair.expr for pair in node.args]
            stack.extend((a, False) for a in args if a not in seen)
    return order


_SHAPES: dict = {}


def _shape(node: sp.Basic) -> tuple:
    """node.func applied to fresh symbols, with the lambdified value and partials (cached)."""
    key = (node.func, len(node.args))
    if key not in _SHAPES:
        ts = sp.symbols(f"t0:{len(node.args)}", real=True)
        template = node.func(*ts)
        value = sp.lambdify(ts, template, modules="mpmath")
        # d sign(t)/dt = 2*DiracDelta(t) is 0 wherever the formula is sampled (t != 0)
        slopes = [sp.diff(template, t).replace(sp.DiracDelta, lambda *_: sp.S.Zero) for t in ts]
        partials = [_slope(ts, s, value, k) for k, s in enumerate(slopes)]
        _SHAPES[key] = (value, partials)
    return _SHAPES[key]


def _slope(ts: tuple, slope: sp.Expr, value: Callable, k: int) -> Callable:
    """The lambdified partial, or a numerical one where mpmath cannot print it (polygamma')."""
    try:
        return sp.lambdify(ts, slope, modules="mpmath")
    except Exception:  # noqa: BLE001 -- only the size of the error bound depends on it
        order = tuple(int(j == k) for j in range(len(ts)))
        return lambda *args: mpmath.diff(value, args, order)


def _func(node: sp.Basic) -> Callable:
    return _shape(node)[0]


def _partials(node: sp.Basic) -> list[Callable]:
    return _shape(node)[1]


# ---------------------------------------------------------------------------------------------
# The stages every entry goes through (the tests and the findings report share them)

def lower(entry: Entry):
    import symdiff

    if entry.text is not None:
        return symdiff.lower(entry.text, wrt=[s.name for s in entry.wrt])
    return symdiff.lower(entry.expr, wrt=list(entry.wrt))


def run_backend(prog, backend: str, ref: Oracle) -> list[tuple]:
    """Generated code's (value, *partials) per point: the math module point by point, the
    numpy module once over arrays of all the points."""
    module = prog.compile(backend)
    if backend == "math":
        rows = []
        for point in ref.points:
            value, grads = module.value_and_grad(*point)
            rows.append((value, *grads))
        return rows
    arrays = [np.array(column, dtype=float) for column in zip(*ref.points)]
    value, grads = module.value_and_grad(*arrays)
    columns = [np.broadcast_to(np.asarray(c, dtype=float), (len(ref.points),))
               for c in (value, *grads)]
    return [tuple(float(c[k]) for c in columns) for k in range(len(ref.points))]


def mismatches(rows: list[tuple], ref: Oracle) -> list[str]:
    """Every quantity outside its tolerance, as 'd<var> at (point): got G, exact W (tol T)'."""
    names = ["value"] + [f"d{v.name}" for v in ref.entry.wrt]
    found = []
    for k, (row, exact) in enumerate(zip(rows, ref.values)):
        if len(row) != len(exact):
            return [f"returned {len(row)} quantities, expected {len(exact)}"]
        for j, (got, want) in enumerate(zip(row, exact)):
            tol = ref.tolerance(k, j)
            ok = np.isfinite(got) and abs(mpmath.mpf(got) - want) <= tol
            if not ok:
                point = ", ".join(f"{p:.6g}" for p in ref.points[k])
                found.append(f"{names[j]} at ({point}): got {got!r}, exact "
                             f"{mpmath.nstr(want, 17)} (tol {tol:.2g})")
    return found


def stages(entry: Entry) -> Iterator[tuple[str, str | None]]:
    """(stage, failure or None) for lower, source, run (per backend), check and verify.

    Each stage runs even when an earlier one failed, where it can (check needs the program)."""
    import symdiff

    ref = oracle(entry)
    try:
        prog = lower(entry)
    except Exception as exc:  # noqa: BLE001 -- the report names the failure
        yield "lower", _exc(exc)
        prog = None
    for backend in ("math", "numpy"):
        if prog is None:
            break
        try:
            prog.source(backend)
        except Exception as exc:  # noqa: BLE001
            yield f"source-{backend}", _exc(exc)
            continue
        try:
            rows = run_backend(prog, backend, ref)
        except Exception as exc:  # noqa: BLE001
            yield f"run-{backend}", _exc(exc)
            continue
        bad = mismatches(rows, ref)
        yield f"run-{backend}", f"{len(bad)} wrong: {bad[0]}" if bad else None
    if prog is not None:
        try:
            report = symdiff.check(prog)
            yield "check", None if report.ok else "not ok:\n" + str(report)
        except Exception as exc:  # noqa: BLE001
            yield "check", _exc(exc)
    try:
        report = verify(entry, ref)
        yield "verify", None if report.ok else "not ok:\n" + str(report)
    except Exception as exc:  # noqa: BLE001
        yield "verify", _exc(exc)


def verify(entry: Entry, ref: Oracle):
    """``symdiff.verify`` of the exact gradient, given as expressions (a derivation)."""
    import symdiff

    formula = entry.text if entry.text is not None else entry.expr
    wrt = [s.name for s in entry.wrt] if entry.text is not None else list(entry.wrt)
    return symdiff.verify(formula, wrt, ref.diffs, samples=VERIFY_SAMPLES)


def _exc(exc: Exception) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:400]


def _findings() -> None:
    """Print every failing stage of every entry (the findings report), with timings."""
    import time

    for collection, build in all_entries().items():
        try:
            entries = build()
        except ImportError as exc:
            print(f"## {collection}: not installed ({exc})")
            continue
        print(f"## {collection}: {len(entries)} entries")
        for entry in entries:
            if entry.skip:
                print(f"SKIP {entry.id}: {entry.skip}")
                continue
            start = time.perf_counter()
            try:
                results = list(stages(entry))
            except NoReference as exc:
                print(f"NOREF {entry.id}: {exc}")
                continue
            took = time.perf_counter() - start
            failed = [(s, d) for s, d in results if d]
            print(f"{'FAIL' if failed else 'OK  '} {entry.id} ({took:.2f}s) {entry.expr}")
            for stage, detail in failed:
                print(f"    [{stage}] {detail}".replace("\n", "\n      "))


if __name__ == "__main__":
    _findings()
