"""A corpus of hand-written layers in the styles people write them, with realistic bugs.

Issue 13 ("Verify layer code as people actually write it") asks for it: each layer is a symdiff
formula, a correct hand implementation and >= 3 realistic bugs, each bug a separate hand
implementation that really computes something else, labelled with the mistake and the keyword a
good diagnosis would contain. ``tests/test_layer_corpus.py`` checks the verdicts;
``tools/layer_census.py`` counts how many bugs are caught and how many get a named diagnosis.

The records (``Case``, ``Bug``) are in ``layer_corpus_base.py``, the layers in the parts:
``layer_corpus_dense`` (affine, activations, dropout), ``layer_corpus_losses`` (softmax
cross-entropy, MSE, mean losses, weight decay, a two-layer net), ``layer_corpus_norm`` (batch
and layer norm), ``layer_corpus_recurrent`` (RNN, LSTM, GRU) and ``layer_corpus_styles``
(float32 code and layer objects).

    >>> report = verify(CASES[0])                 # doctest: +SKIP
    >>> report = verify(CASES[0], CASES[0].bugs[0])  # doctest: +SKIP
"""

from __future__ import annotations

import layer_corpus_dense
import layer_corpus_losses
import layer_corpus_norm
import layer_corpus_recurrent
import layer_corpus_styles
from layer_corpus_base import Bug, Case

import symdiff

CASES: tuple[Case, ...] = (layer_corpus_dense.CASES + layer_corpus_losses.CASES
                           + layer_corpus_norm.CASES + layer_corpus_recurrent.CASES
                           + layer_corpus_styles.CASES)

PATTERNLESS = "with no simple pattern"  # the diagnosis text that names nothing


def verify(case: Case, bug: Bug | None = None) -> symdiff.VerifyReport:
    """``symdiff.verify`` of the case's correct hand code, or of one of its bugs."""
    f = case.formula
    hand = case.hand if bug is None else bug.hand
    forward = bug.forward if bug is not None and bug.forward is not None else case.forward
    points = case.points() if case.points is not None else None
    if hasattr(hand, "layer"):  # a layer object: through symdiff's own adapter
        make, grads, n_inputs = hand.layer
        return symdiff.verify_layer(f.expr, f.wrt, make, grads, inputs=f.args[:n_inputs],
                                    args=f.args, points=points, samples=case.samples,
                                    kinds=case.kinds, domain=case.domain)
    return symdiff.verify(f.expr, f.wrt, hand, args=f.args, forward=forward, points=points,
                          samples=case.samples, kinds=case.kinds, domain=case.domain)


def wrong_partials(report: symdiff.VerifyReport) -> tuple[str, ...]:
    return tuple(p.name for p in report.partials if not p.ok)


def diagnosis(report: symdiff.VerifyReport) -> str:
    """The diagnoses of the wrong partials, ``dW: ...; db: ...``."""
    return "; ".join(f"{p.name}: {p.diagnosis}" for p in report.partials if not p.ok)


def named(report: symdiff.VerifyReport) -> bool:
    """Every wrong partial has a diagnosis that names a mistake (not 'no simple pattern')."""
    wrong = [p for p in report.partials if not p.ok]
    return bool(wrong) and all(PATTERNLESS not in p.diagnosis for p in wrong)


def entries():
    """Every (case, bug) pair, the correct code first (bug None)."""
    for case in CASES:
        yield case, None
        for bug in case.bugs:
            yield case, bug
