"""The generated derivative functions beyond value_and_grad, seen one row at a time as gradients.

``check`` judges a gradient: per point, one value per wrt variable against the reference. Row k
of a Jacobian is exactly such a gradient (of output k), and so is row k of a Hessian (the
gradient of d f / d x_k). This module wraps each generated function as an object whose
``value_and_grad(*args) -> (value, grads)`` returns that row, so the checker judges ``jacobian``,
``jvp`` (one call per unit tangent), ``hvp`` and ``hessian`` with the tolerance model, the
high-precision reference and the reports it already has for gradients: one judge, not five.

Invariant: a row object computes its row only from the generated function it wraps (no value
is taken from the program or the reference), so a wrong generated function is a wrong row.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from .api import lower
from .errors import ArgumentError
from .matrix import reverse_arrays
from .numeric import evaluate
from .reference import Reference
from .reports import CheckReport, VerifyReport
from .tangent import row_program

FIRST_ORDER = ("jacobian", "jvp")  # judged per output row (a vector program, or m = 1)
SECOND_ORDER = ("hvp", "hessian")  # judged per row of the Hessian of one output


def _arrays(prog) -> bool:
    """The one place this module tells a matrix program from a scalar one."""
    return prog.shapes is not None


def chosen_functions(prog, functions) -> tuple[str, ...]:
    """The derivative functions check judges besides the gradient (see ``check``)."""
    if functions is None:
        return FIRST_ORDER if prog.output_names else ()
    functions = (functions,) if isinstance(functions, str) else tuple(functions)
    known = FIRST_ORDER + SECOND_ORDER
    unknown = [f for f in functions if f not in known]
    if unknown:
        raise ArgumentError(f"check's functions names {unknown[0]!r}; choose from "
                            f"{', '.join(known)}")
    if functions and _arrays(prog):
        raise ArgumentError(f"check of {functions[0]} is for scalar formulas; a matrix "
                            "formula's generated code is checked through its gradient")
    return functions


def output_program(prog, k: int):
    """Output k of a vector program on its own (tangent.row_program; for a matrix program,
    with the whole-array reverse pass over the program's shapes)."""
    if not _arrays(prog):
        return row_program(prog, k)
    return row_program(prog, k, lambda forward, grads: reverse_arrays(forward, prog.shapes,
                                                                      grads))


class _Row:
    """``value_and_grad`` of one row of a generated derivative function, which computes every
    output: ``judged(point)`` says whether floats can compute all of them there (where one is
    undefined or outside the float range the function may fail, rightly, and the row is not
    judged at that point)."""

    def __init__(self, call, n: int, prog):
        self._call, self.n, self._prog = call, n, prog

    def value_and_grad(self, *args):
        with np.errstate(all="ignore"):  # another output may be undefined here (see judged)
            return self._call(*args)

    def judged(self, point: dict) -> bool:
        """Every output is defined at ``point`` (check's: real symbols -> numbers), with every
        value and local derivative in the float range and no branch undecided in floats."""
        prog = self._prog
        rows = [output_program(prog, k) for k in range(len(prog.outputs))] \
            if prog.output_names else [prog]
        for row in rows:
            ref = Reference(row)
            if evaluate(ref.expr, point) is None:
                return False
            view = ref.float_view(point)
            if view.beyond or view.shaky or view.undecided:
                return False
        return True


def _units(args, n: int, j: int) -> list:
    """The unit tangent e_j, shaped like the arguments (arrays of ones/zeros for array code)."""
    like = next((a for a in args if np.ndim(a)), None)
    if like is None:
        return [1.0 if i == j else 0.0 for i in range(n)]
    return [np.full(np.shape(like), 1.0 if i == j else 0.0) for i in range(n)]


def jacobian_rows(prog, module, k: int) -> list[tuple[str, _Row]]:
    """Row k of the Jacobian as the module's ``jacobian`` and ``jvp`` compute it, labelled."""
    n, m = len(prog.wrt), len(prog.outputs)

    def by_jacobian(*args):
        values, jac = module.jacobian(*args)
        value = values[k] if m > 1 else values
        return value, tuple(jac[k][j] for j in range(n))

    def by_jvp(*args):
        value, row = None, []
        for j in range(n):
            tangent = _units(args, n, j)
            values, tangents = module.jvp(*args, *tangent)
            value = values[k] if m > 1 else values
            row.append(tangents[k] if m > 1 else tangents)
        return value, tuple(row)

    def by_backward(*args):  # backward with dout_k = 1 and every other upstream 0
        values, cache = module.forward(*args)
        seeds = _units(args, m, k)
        return (values[k] if m > 1 else values), module.backward(*seeds, cache)

    rows = [("jacobian", by_jacobian), ("jvp", by_jvp)]
    if getattr(module, "backward", None) is not None and prog.output_names:
        rows.append(("backward", by_backward))
    return [(label, _Row(call, n, prog)) for label, call in rows if hasattr(module, label)]


def hessian_rows(prog, module, k: int) -> list[tuple[str, _Row]]:
    """Row k of the Hessian as the module's ``hessian`` and ``hvp`` compute it, with value
    d f / d x_k (the gradient they return), labelled."""
    n = len(prog.wrt)

    def by_hessian(*args):
        _, grad, hess = module.hessian(*args)
        return grad[k], tuple(hess[k][j] for j in range(n))

    def by_hvp(*args):
        tangent = _units(args, n, k)
        _, grad, hv = module.hvp(*args, *tangent)  # H e_k: column k, = row k (H symmetric)
        return grad[k], tuple(hv[j] for j in range(n))

    return [("hessian", _Row(by_hessian, n, prog)), ("hvp", _Row(by_hvp, n, prog))]


def judge_rows(prog, functions, backends, judge) -> CheckReport:
    """One check report for the rows of ``prog``'s Jacobian (a vector program: the reverse
    sweep of each row, and ``jacobian``/``jvp`` when asked) or Hessian (``hvp``/``hessian`` of
    a scalar program: row k judged as the gradient of d f / d x_k, whose reference is
    sympy.diff of it). ``judge(row_prog, extra)`` is check's scalar judge; ``extra`` lists the
    (label, row object) it runs beside the generated gradient."""
    first = [f for f in functions if f in FIRST_ORDER]
    second = [f for f in functions if f in SECOND_ORDER]
    if second and prog.output_names:
        raise ArgumentError(f"{second[0]} is the second derivative of one output; this program "
                            f"has {len(prog.outputs)}")
    chosen = tuple(functions) + (("forward", "backward") if prog.output_names else ())
    modules = {b: prog.compile(b, functions=chosen) for b in backends} if chosen else {}
    reports, names = [], []
    if prog.output_names or first:
        for k, out in enumerate(prog.outputs):
            row = output_program(prog, k) if prog.output_names else prog
            if _arrays(prog):  # (judged with the whole program's backward)
                reports.append(judge(row, (prog, k)))
            else:
                extra = [(f"{b} {label}", b, r) for b, module in modules.items()
                         for label, r in jacobian_rows(prog, module, k)
                         if label in first or label == "backward" and prog.output_names]
                reports.append(judge(row, extra))
            names.append(f"d{out}/" if prog.output_names else "")  # dout0/dx
    for k, symbol in enumerate(prog.wrt if second else ()):
        derivative = lower(sp.diff(prog.expr, symbol), prog.wrt,
                           [i.symbol for i in prog.inputs], allow_unused=True)
        extra = [(f"{b} {label}", b, r) for b, module in modules.items()
                 for label, r in hessian_rows(prog, module, k) if label in second]
        reports.append(judge(derivative, extra))
        names.append(f"d2{prog.output}/{prog.grads[k]}")  # d2out/dxdy
    return _merged(prog, reports, names, functions, backends)


def _merged(prog, reports, names, functions, backends) -> CheckReport:
    partials = []
    for report, prefix in zip(reports, names):
        for p in report.partials:
            p.name = prefix + p.name if prefix else p.name
            partials.append(p)
    points = reports[0].points if _arrays(prog) else list(  # (arrays: unhashable)
        {tuple(sorted(p.items())): p for r in reports for p in r.points}.values())
    notes = [n for r in reports for n in r.notes]
    if functions:
        notes.append(f"also judged: the generated {', '.join(functions)} of "
                     f"{', '.join(backends)}, row by row")
    return CheckReport(all(r.ok for r in reports), reports[0].oracle, points, partials,
                       reports[0].backends, list(dict.fromkeys(notes)),
                       prog.text or "(formula too long to print)",
                       raised=[x for r in reports for x in r.raised])


# -- verify: a hand-written Jacobian or Hessian, row by row ---------------------------------------

TRANSPOSED = "the hand Jacobian is transposed"


def _hand_row(hand, k: int, rows: int, what: str):
    """Row k of what the hand code returns (rows x n), as a hand gradient."""
    def row(*args):
        got = hand(*args)
        if len(got) != rows:
            raise ValueError(f"the hand {what} has {len(got)} rows; it must have {rows} "
                             f"(one per {'output' if what == 'Jacobian' else 'wrt variable'})")
        return got[k]
    return row


def verify_rows(prog, hand, order: int, judge) -> VerifyReport:
    """A hand Jacobian (a vector program, ``J[i][j] = d out_i / d wrt_j``) or Hessian
    (``order=2``) judged row by row: ``judge(row_prog, row_hand)`` is verify's scalar judge.
    Where rows are wrong, what the whole matrix shows is said too: a transposed Jacobian, an
    asymmetric Hessian, a missing cross term."""
    if not callable(hand):
        raise ArgumentError("a hand Jacobian or Hessian must be a callable of the formula's "
                            "arguments returning its rows")
    if order == 2 and prog.output_names:
        raise ArgumentError(f"order=2 is the Hessian of one output; this program has "
                            f"{len(prog.outputs)}")
    what = "Hessian" if order == 2 else "Jacobian"
    rows = _row_programs(prog, order)
    reports = [judge(row, _hand_row(hand, k, len(rows), what)) for k, row in enumerate(rows)]
    names = ([f"d2{prog.output}/{g}" for g in prog.grads] if order == 2 else
             [f"d{out}/" for out in prog.outputs])
    for report, prefix in zip(reports, names):
        for p in report.partials:
            p.name = prefix + p.name
    partials = [p for r in reports for p in r.partials]
    notes = list(dict.fromkeys(n for r in reports for n in r.notes))
    if not all(p.ok for p in partials):
        findings = _matrix_findings(prog, rows, hand, reports, order)
        if any(f.startswith(TRANSPOSED) for f in findings):  # it explains every wrong entry
            for p in partials:
                p.diagnosis = p.diagnosis if p.ok else "the Jacobian is transposed (see below)"
        notes += findings
    points = list({tuple(sorted(p.items())): p for r in reports for p in r.points}.values())
    return VerifyReport(all(r.ok for r in reports), prog.text or "(formula too long to print)",
                        reports[0].reference, f"a callable returning the {what}", points,
                        partials, notes, raised=[x for r in reports for x in r.raised])


def _row_programs(prog, order: int) -> list:
    if order == 2:
        return [lower(sp.diff(prog.expr, s), prog.wrt, [i.symbol for i in prog.inputs],
                      allow_unused=True) for s in prog.wrt]
    return [output_program(prog, k) if prog.output_names else prog
            for k in range(len(prog.outputs))]


def _matrix_findings(prog, rows, hand, reports, order) -> list[str]:
    """What the hand matrix and the exact one show together, at the points every row ran."""
    points = [p for p in reports[0].points if all(p in r.points for r in reports)]
    args = [[p[i.symbol.name] for i in prog.inputs] for p in points
            if all(i.symbol.name in p for i in prog.inputs)]
    pairs = []
    for values in args:
        try:
            got = np.array(hand(*values), dtype=float)
        except Exception:  # the row verdicts report what the hand code raised
            continue
        at = {i.name: v for i, v in zip(prog.inputs, values)}
        exact = np.array([[r.evaluate(at)[g] for g in r.grads] for r in rows], dtype=float)
        if got.shape == exact.shape:
            pairs.append((got, exact))
    if not pairs:
        return []
    close = all(np.allclose(g, e, rtol=1e-7, atol=1e-9) for g, e in pairs)
    findings = []
    if close:
        return findings
    square = pairs[0][1].shape[0] == pairs[0][1].shape[1]
    if order == 1 and square and all(np.allclose(g, e.T, rtol=1e-7, atol=1e-9) for g, e in pairs):
        findings.append(f"{TRANSPOSED}: J[i][j] must be d out_i / d wrt_j (one row per "
                        "output, one column per wrt variable)")
    if order == 2:
        findings += _hessian_findings(prog, pairs)
    return findings


def _hessian_findings(prog, pairs) -> list[str]:
    """Asymmetry (and which of the two entries is right), and cross terms left out."""
    names, findings = [s.name for s in prog.wrt], []

    def everywhere(test):
        return all(test(g, e) for g, e in pairs)

    for i, j in itertools.combinations(range(len(names)), 2):
        entry = f"d2{prog.output}/d{names[i]}d{names[j]}"
        if not everywhere(lambda g, e, i=i, j=j: np.isclose(g[i, j], g[j, i], rtol=1e-7,
                                                            atol=1e-9)):
            right = [f"({names[a]}, {names[b]})" for a, b in ((i, j), (j, i)) if everywhere(
                lambda g, e, a=a, b=b: np.isclose(g[a, b], e[a, b], rtol=1e-7, atol=1e-9))]
            findings.append(f"the hand Hessian is not symmetric: its ({names[i]}, {names[j]}) "
                            f"and ({names[j]}, {names[i]}) entries differ, and both are {entry}"
                            + (f"; {right[0]} is the right one" if len(right) == 1 else ""))
        for a, b in ((i, j), (j, i)):
            if everywhere(lambda g, e, a=a, b=b: g[a, b] == 0) and any(e[a, b] for _, e in pairs):
                findings.append(f"a cross term is missing: the hand Hessian's ({names[a]}, "
                                f"{names[b]}) entry is 0, but {entry} is not")
    return list(dict.fromkeys(findings))
