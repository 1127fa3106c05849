"""backend="numba": the math program compiled into loops, against the numpy backend's code.

The oracle is the numpy backend (itself checked against sympy.diff everywhere else) and, for the
check, sympy.diff at 50 digits. numba compiles are slow (seconds each), so the formulas run as
one program: CORPUS's formulas over variables of their own, summed, so each formula's gradient is
its own pair of entries and one compile covers them all; the staged example's module is
compiled once per module too. The suite's numba time is about 15 s; without numba the tests
that run its code skip (the text is generated without it).
"""

import importlib.util

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.errors import ArgumentError
from symdiff.parse import parse

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
STAGED = "(x + sigmoid(y))/(sigmoid(x) + (x + y)**2)"
# Formulas of the other tests' corpora (test_enumerated's gates, the layers' activations),
# each over x and y: together every printing form of the math backend that numba compiles.
CORPUS = [
    STAGED, "x*sin(y) + cos(x*y)", "exp(-x**2)*log(1 + y**2)", "tanh(x - y)**2",
    "sqrt(x**2 + y**2 + 1)", "atan2(y, x + 3)", "Max(x, y) + Min(x, 2*y)", "abs(x)*y",
    "relu(x) + softplus(y)", "Piecewise((x**2, x > 0), (sin(y), True))", "erf(x) + erfc(y)",
    "log(sigmoid(x)) + x**3/(1 + y**2)", "sinh(x/4)*cosh(y/4)", "asinh(x) + atan(y)",
    "(x**2 + 1)**(y/3)", "gamma(x**2 + 1) + loggamma(y**2 + 2)",
    "logsumexp(x, y, 0)", "sech(x) + gelu(y)", "1/(1 + x**2) - y**4/24", "floor(x)*y + sign(y)*x",
]
REL = 1e-12


def _corpus():
    """One formula: the sum of CORPUS, formula k over x{k}, y{k}; its variables in order."""
    total, names = 0, []
    for k, text in enumerate(CORPUS):
        term = parse(text)
        new = {"x": sp.Symbol(f"x{k}", real=True), "y": sp.Symbol(f"y{k}", real=True)}
        total += term.subs({s: new[s.name] for s in term.free_symbols})
        names += new.values()
    return total, names


@pytest.fixture(scope="module")
def corpus():
    expr, wrt = _corpus()
    prog = symdiff.lower(expr, wrt=wrt)
    return prog, prog.compile("numba"), prog.compile("numpy")


@pytest.fixture(scope="module")
def staged():
    prog = symdiff.lower(STAGED, wrt=["x", "y"])
    return prog, prog.compile("numba"), prog.compile("numpy")


def _close(got, want, rel=REL):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    scale = np.maximum(np.abs(want[finite]), 1.0)
    assert np.all(np.abs(got[finite] - want[finite]) <= rel * scale), np.max(
        np.abs(got[finite] - want[finite]) / scale)


def test_the_text_needs_no_numba_and_reads_as_the_math_program():
    prog = symdiff.lower(STAGED, wrt=["x", "y"])
    text = prog.source("numba")
    body = prog.source("math").split("def value_and_grad(x, y):")[1].split('"""')[2]
    assert body.strip().split("\n")[:8] == text.split(
        "def value_and_grad_point(x, y):")[1].split('"""')[2].strip().split("\n")[:8]
    assert '@numba.njit(error_model="numpy")\ndef sigmoid(t):' in text
    assert "fastmath" not in text  # IEEE arithmetic: see DESIGN.md, the numba backend
    assert "for ipoint in numba.prange(out.size):" in text
    assert 'numba.njit(error_model="numpy", parallel=True)(value_and_grad_loop))' in text


def test_what_numba_does_not_write_is_refused():
    x, y = sp.symbols("x y")
    with pytest.raises(ArgumentError, match="numba backend writes forward, backward and"):
        symdiff.lower(x * y, wrt=[x, y]).source("numba", functions=("forward", "jvp"))
    with pytest.raises(ArgumentError, match="numba backend writes"):
        symdiff.lower([x * y, x + y], wrt=[x, y]).source("numba")
    with pytest.raises(ArgumentError, match="only the numpy"):
        symdiff.lower(sp.Trace(sp.MatrixSymbol("A", 2, 2)), wrt=["A"]).source("numba")


@needs_numba
def test_corpus_gradients_equal_numpys(corpus):
    prog, fast, ref = corpus
    rng = np.random.default_rng(0)
    points = [rng.uniform(-2.5, 2.5, size=257) for _ in prog.args]
    got, want = fast.value_and_grad(*points), ref.value_and_grad(*points)
    _close(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        _close(g, w)


@needs_numba
def test_corpus_edge_points_as_numpy(corpus):
    """inf, -inf, nan, 0 and huge arguments: the same values, infinities and nans as numpy's
    code (IEEE arithmetic, no fastmath), per formula's own gradient entries; and ties (x = y:
    Max, Min, abs and relu at their kinks), where both follow the rules' conventions."""
    prog, fast, ref = corpus
    edge = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 800.0, -800.0, 1e-300, 1.5])
    n = len(prog.args)
    points = [np.concatenate([np.roll(edge, k), [0.0, 1.0, -2.0]]) for k in range(n)]
    with np.errstate(all="ignore"):
        got, want = fast.value_and_grad(*points), ref.value_and_grad(*points)
    _close(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        _close(g, w)


@needs_numba
def test_forward_backward_and_broadcasting(staged):
    prog, fast, ref = staged
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=3)
    for args in [(x, y), (x, 0.5), (2.0, -1.0), (x[:, :1], y)]:
        out, grads = fast.value_and_grad(*args)
        want_out, want_grads = ref.value_and_grad(*args)
        _close(out, want_out)
        for g, w, a in zip(grads, want_grads, args):
            _close(g, w)
            assert np.shape(g) == np.shape(a) and type(g) is type(w)
        value, cache = fast.forward(*args)
        _close(value, want_out)
        dout = rng.normal(size=np.shape(out))
        for g, w in zip(fast.backward(dout, cache),
                        ref.backward(dout, ref.forward(*args)[1])):
            _close(g, w)


@needs_numba
def test_parallel_gives_the_serial_numbers(staged):
    _, fast, _ = staged
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=10_001), rng.normal(size=10_001)
    serial, parallel = fast.value_and_grad(x, y), fast.value_and_grad(x, y, parallel=True)
    assert np.array_equal(serial[0], parallel[0])
    assert all(np.array_equal(a, b) for a, b in zip(serial[1], parallel[1]))


@needs_numba
def test_parallel_on_one_thread_runs_the_serial_loop(staged):
    """prange's scheduler on one thread only costs time: parallel=True takes the serial loop
    there (the parallel one is swapped for a trap), and the parallel one on more threads."""
    import numba
    _, fast, _ = staged
    x, y = np.linspace(-2.0, 2.0, 101), np.linspace(1.0, 3.0, 101)
    want = fast.value_and_grad(x, y)
    serial, parallel = fast.value_and_grad_loop
    calls = []

    def trap(*args):
        calls.append(len(args))
        return parallel(*args)
    before = numba.get_num_threads()
    fast.value_and_grad_loop = (serial, trap)
    try:
        numba.set_num_threads(1)
        got = fast.value_and_grad(x, y, parallel=True)
        assert not calls and np.array_equal(got[0], want[0])
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            got = fast.value_and_grad(x, y, parallel=True)
            assert calls and all(np.array_equal(a, b) for a, b in zip(got[1], want[1]))
    finally:
        fast.value_and_grad_loop = (serial, parallel)
        numba.set_num_threads(before)


@needs_numba
def test_check_runs_the_numba_code():
    report = symdiff.check(symdiff.lower("x*exp(-y**2) + relu(x - y)", wrt=["x", "y"]),
                           backends=("numba",))
    assert report.ok and report.backends == ("numba",), report


@needs_numba
def test_an_argument_outside_wrt_and_one_gradient():
    prog = symdiff.lower("x*y + log(x)", wrt=["x"], args=["x", "y"])
    fast, ref = prog.compile("numba"), prog.compile("numpy")
    x, y = np.linspace(0.5, 3.0, 7), np.linspace(-1.0, 1.0, 7)
    got, want = fast.value_and_grad(x, y), ref.value_and_grad(x, y)
    _close(got[0], want[0])
    assert len(got[1]) == 1
    _close(got[1][0], want[1][0])
    value, cache = fast.forward(x, y)  # y is a cached argument of backward's: not stored again
    _close(fast.backward(2.0, cache)[0], ref.backward(2.0, ref.forward(x, y)[1])[0])
    with pytest.raises(TypeError, match="complex"):
        fast.value_and_grad(x + 1j, y)
    with pytest.raises(ValueError):  # an upstream gradient that is not the points' shape
        fast.backward(np.ones(3), cache)
    with np.errstate(all="ignore"):  # log(-1) is nan at that point only, as numpy's
        _close(fast.value_and_grad(np.array([-1.0, 1.0]), 0.0)[0],
               ref.value_and_grad(np.array([-1.0, 1.0]), 0.0)[0])


def test_without_numba_compile_names_the_install(monkeypatch):
    prog = symdiff.lower("x*y", wrt=["x", "y"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba" else real(name, *a))
    with pytest.raises(symdiff.MissingToolError, match=r"pip install 'symdiff\[numba\]'"):
        prog.compile("numba")
    assert "def value_and_grad(x, y, *, parallel=False):" in prog.source("numba")
