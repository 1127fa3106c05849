"""verify on the layer corpus (tests/layer_corpus.py): every correct hand-written layer is RIGHT,
every injected bug is WRONG in exactly the partials it changes, and the bugs the verifier
already names get the diagnosis a reviewer would give.

The oracle of "correct" is independent of symdiff: each correct implementation is the textbook
backward (cs231n, d2l.ai, Deep Learning from Scratch) and is also checked here against central
differences of its own forward. At least NAMED_FLOOR (80%) of the bugs
get a named diagnosis (``corpus.named``); ``tools/layer_census.py`` prints the whole table.
"""

from __future__ import annotations

import layer_corpus as corpus
import numpy as np
import pytest
from layer_corpus_base import RAISES

CORRECT = [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.false_alarm)]
                        if c.false_alarm else []) for c in corpus.CASES]
BUGS = [pytest.param(c, b, id=f"{c.name}: {b.label}") for c in corpus.CASES for b in c.bugs]

# (layer [style], bug label): bugs whose diagnosis already contains the expected keyword. The
# list grows as the diagnoses do (issue 13); a bug drops off it only if its diagnosis regresses.
NAMED_NOW = {
    ('L2 weight decay (ridge loss) [callable]', 'decay term forgotten in dW'),
    ('affine [float32]', 'dW computed in float16'),
    ('affine [float32]', 'dW divided by N'),
    ('affine [float32]', 'db without the batch sum'),
    ('affine [object]', 'self.dW = dout.T @ x (transposed)'),
    ('affine [object]', 'self.db = dout (no batch sum)'),
    ('affine [pair]', 'dW = dout.T @ x (transposed)'),
    ('affine [pair]', 'dW divided by N'),
    ('affine [pair]', 'db without the batch sum'),
    ('affine [pair]', 'dx = dout @ w (missing transpose)'),
    ('affine, 1-D bias [pair]', '1-D db as a mean over the batch'),
    ('affine, 1-D bias [pair]', '1-D db summed over axis 1'),
    ('affine, 1-D bias [pair]', 'dW sign flipped'),
    ('batchnorm [float32]', 'dgamma without the batch sum'),
    ('batchnorm [float32]', 'drops the path through the mean'),
    ('batchnorm [float32]', 'xhat cached in float16'),
    ('batchnorm [pair]', 'dgamma without the batch sum'),
    ('batchnorm [pair]', 'drops the path through the mean'),
    ('batchnorm [pair]', 'drops the path through the variance'),
    ('batchnorm [pair]', 'missing 1/N'),
    ('batchnorm, graph backward [pair]', 'drops dx2, the path through mu'),
    ('batchnorm, graph backward [pair]', 'drops dxmu2, the path through var'),
    ('batchnorm, graph backward [pair]', 'dvar misses the 1/2 of d sqrt'),
    ('dropout, mask drawn in forward [object]', 'backward forgets the 1/(1 - p) rescale'),
    ('dropout, mask given [pair]', 'forgets the 1/p rescale'),
    ('dropout, mask given [pair]', 'ignores dout'),
    ('gru step [pair]', 'dh misses the direct path z * dout'),
    ('gru step [pair]', 'dh misses the path through r * h'),
    ('gru step [pair]', "dr skips sigmoid'"),
    ('gru step [pair]', 'dz = dout * (cand - h) (sign flipped)'),
    ('layernorm [pair]', 'drops the path through the mean'),
    ('layernorm [pair]', 'missing 1/D'),
    ('leaky relu [callable]', 'alpha * x, not alpha, on the negative side'),
    ('logistic loss, mean over batch [pair]', '1/(N*T) (np.mean) where 1/N belongs'),
    ('logistic loss, mean over batch [pair]', 'ignores dout'),
    ('logistic loss, mean over batch [pair]', 'missing 1/N'),
    ('logistic loss, mean over batch [pair]', 'y - sigmoid(z) (sign flipped)'),
    ('lstm step [pair]', 'dc forgets the upstream dnext_c'),
    ('lstm step [pair]', "sigmoid' used for the tanh candidate g"),
    ('lstm step [pair]', "tanh'(c_next) as 1 - c_next**2"),
    ('mse [pair]', 'divides by N, not N*M'),
    ('mse [pair]', 'ignores dout'),
    ('mse [pair]', 'missing factor 2'),
    ('mse [pair]', 'y - yhat (sign flipped)'),
    ('relu [object]', 'backward forgets the mask'),
    ('relu [object]', 'mask recomputed from dout'),
    ('relu [object]', 'mask stored as x > 0 (inverted)'),
    ('relu [pair]', 'forgets the mask (returns dout)'),
    ('relu [pair]', 'ignores dout (returns the mask)'),
    ('relu [pair]', 'mask inverted (x < 0)'),
    ('relu [pair]', 'mask taken from dout, not x'),
    ('rnn step [pair]', "dWx skips the tanh' factor"),
    ('rnn step [pair]', 'db without the batch sum'),
    ('rnn step [pair]', 'dprev_h = dtanh @ Wh (missing transpose, Wh square)'),
    ('rnn, 3 steps unrolled [pair]', '= for += in dWx, dWh and db'),
    ('rnn, 3 steps unrolled [pair]', 'dWx = ... where += belongs (only step 1 kept)'),
    ('rnn, 3 steps unrolled [pair]', 'dh_t misses the gradient from step t+1 (the h path)'),
    ('sigmoid [float32]', 'ignores dout'),
    ('sigmoid [float32]', 'output cached in float16'),
    ('sigmoid [float32]', "tanh' (1 - s**2) used"),
    ('sigmoid [object]', 'drops the (1 - out) factor'),
    ('sigmoid [object]', 'self.out stores the input x'),
    ('sigmoid [object]', "tanh' (1 - out**2) used"),
    ('sigmoid [pair]', 'drops the (1 - s) factor'),
    ('sigmoid [pair]', 'ignores dout'),
    ('sigmoid [pair]', 's * (1 - s) evaluated at the cached input x'),
    ('sigmoid [pair]', 'sign flipped: s * (s - 1)'),
    ('sigmoid [pair]', "tanh' (1 - s**2) used for sigmoid'"),
    ('softmax cross-entropy [float32]', 'ignores dout'),
    ('softmax cross-entropy [float32]', 'missing 1/N'),
    ('softmax cross-entropy [float32]', 'probabilities cached in float16'),
    ('softmax cross-entropy [object]', "ignores dout (the book's backward(dout=1))"),
    ('softmax cross-entropy [object]', 'missing 1/N'),
    ('softmax cross-entropy [object]', 't - y (sign flipped)'),
    ('softmax cross-entropy [pair]', 'divides by N*C (np.mean habit)'),
    ('softmax cross-entropy [pair]', 'forgets to subtract y'),
    ('softmax cross-entropy [pair]', 'ignores dout'),
    ('softmax cross-entropy [pair]', 'missing 1/N'),
    ('softmax cross-entropy [pair]', 'y - p (sign flipped)'),
    ('tanh [callable]', '1 - tanh(x) (square missing)'),
    ('tanh [callable]', '1 - x**2 (at the input, not the output)'),
    ('tanh [callable]', "sigmoid' form t * (1 - t)"),
    ('two-layer net loss [callable]', 'db2 without the batch sum'),
    ('two-layer net loss [callable]', 'reg term forgotten in dW1'),
    ('two-layer net loss [callable]', 'relu backward forgotten'),
    ('two-layer net loss [callable]', 'relu mask from x @ W1, before the bias'),
    ('two-layer net, MSE (chained pairs) [pair]', 'dW2 from the pre-activation a1, not relu(a1)'),
    ('two-layer net, MSE (chained pairs) [pair]', 'mse backward divides by N, not N*M'),
    ('two-layer net, MSE (chained pairs) [pair]', 'relu backward skipped in the chain'),
    ('two-layer net, MSE (chained pairs) [pair]', "the loss's dout ignored"),
}


@pytest.mark.parametrize("case", CORRECT)
def test_a_correct_layer_is_verified_right(case):
    report = corpus.verify(case)
    assert report.ok, str(report)


_REPORTS: dict = {}  # (layer, bug label) -> report: the floor test reuses the bug tests' runs


def _report(case, bug):
    key = (case.name, bug.label)
    if key not in _REPORTS:
        _REPORTS[key] = corpus.verify(case, bug)
    return _REPORTS[key]


NAMED_FLOOR = 0.80  # issue 13: at least 80% of the caught bugs get a named diagnosis


@pytest.mark.parametrize("case, bug", BUGS)
def test_a_bug_is_caught_in_the_partials_it_changes(case, bug):
    report = _report(case, bug)
    assert not report.ok, f"{bug.label} was not caught\n{report}"
    wrong = set(corpus.wrong_partials(report))
    expected = {p.name for p in report.partials} if bug.wrong == RAISES else set(bug.wrong)
    assert wrong == expected, str(report)
    if (case.name, bug.label) in NAMED_NOW:
        for p in report.partials:
            assert p.ok or bug.expect.lower() in p.diagnosis.lower(), str(report)


def test_most_bugs_get_a_named_diagnosis():
    """A diagnosis is named unless some wrong partial gets only "no simple pattern"."""
    named = [corpus.named(_report(c, b)) for c in corpus.CASES for b in c.bugs]
    assert sum(named) / len(named) >= NAMED_FLOOR, f"{sum(named)} of {len(named)} named"


def test_every_named_now_entry_is_in_the_corpus():
    labels = {(c.name, b.label) for c in corpus.CASES for b in c.bugs}
    assert NAMED_NOW <= labels, NAMED_NOW - labels


def test_the_corpus_has_three_bugs_per_layer_and_distinct_labels():
    for case in corpus.CASES:
        assert case.false_alarm or len(case.bugs) >= 3, case.name
        assert len({b.label for b in case.bugs}) == len(case.bugs), case.name
    assert len({c.name for c in corpus.CASES}) == len(corpus.CASES)


# -- an oracle independent of symdiff: central differences of the hand forward ------------------


def _numeric_gradient(forward, args, k, dout, h=1e-6):
    """d sum(dout * forward(*args)[0]) / d args[k], by central differences."""
    grad = np.zeros_like(args[k])
    for index in np.ndindex(args[k].shape):
        values = []
        for step in (h, -h):
            shifted = [np.array(a, dtype=float) if np.ndim(a) else a for a in args]
            shifted[k][index] += step
            values.append(float(np.sum(dout * np.asarray(forward(*shifted)[0], dtype=float))))
        grad[index] = (values[0] - values[1]) / (2 * h)
    return grad


ORACLE = [c for c in corpus.CASES if c.style != "float32" and not c.false_alarm and not c.kinds
          and (c.forward is not None or c.value is not None)]  # kinds: a mask drawn inside


@pytest.mark.parametrize("case", ORACLE, ids=lambda c: c.name)
def test_the_correct_code_matches_central_differences(case):
    """The hand partials (in wrt order, a prefix of the arguments) against central differences
    of the hand forward (a pair's) or of the formula written in NumPy (a callable's)."""
    assert case.formula.args[:len(case.formula.wrt)] == case.formula.wrt
    args, rng = _arguments(case), np.random.default_rng(3)
    if case.forward is not None:
        forward = case.forward
        out = forward(*args)[0]
        dout = rng.normal(size=np.shape(out)) if np.ndim(out) else float(rng.normal())
        hand = case.hand(np.copy(dout), forward(*args)[1])  # Relu zeroes dout in place
    else:
        forward, dout = (lambda *a: (case.value(*a), None)), 1.0
        hand = case.hand(*args)
    hand = hand if isinstance(hand, tuple) else (hand,)
    assert len(hand) == len(case.formula.wrt)
    for k, partial in enumerate(hand):
        numeric = _numeric_gradient(forward, args, k, dout)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        assert np.max(np.abs(np.asarray(partial) - numeric)) <= 1e-6 * scale, (case.name, k)


def _arguments(case):
    """Arguments in the formula's order at small fixed sizes, the given points' arrays first."""
    fixed = case.points()[0] if case.points is not None else {}
    sizes, rng = {}, np.random.default_rng(1)
    for symbol in case.formula.args:
        if symbol.name in fixed:
            sizes.update(zip(symbol.shape, np.shape(fixed[symbol.name])))
    args = []
    for k, symbol in enumerate(case.formula.args):
        if symbol.name in fixed:
            args.append(np.array(fixed[symbol.name], dtype=float))
        elif not hasattr(symbol, "shape"):
            args.append(float(rng.uniform(0.1, 1)))
        else:
            shape = [sizes.setdefault(d, 2 + (len(sizes) + k) % 4) if not d.is_number else int(d)
                     for d in symbol.shape]
            args.append(rng.normal(size=shape))
    return args
