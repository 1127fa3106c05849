"""What an error may be: the tolerance of float code at a point, and where it is not judged.

``tolerance`` is the allowed error of a partial: a relative share, a multiple of the staged
program's first-order float error bound, the reference's own error, and the share of the bound
due to float constants the lowering computed. Where floating point determines no digit of a
value or partial (``fragile``), generated code that raised or returned inf/nan is spared
(``spare``); where a value is beyond the float range or a branch is undecided in floats
(``unjudged``), generated code is not judged at all. In each case the 50-digit program still is,
and the report's note says where and why.
"""

from __future__ import annotations

import math

import mpmath

FLOAT_SAFETY = 64  # generated code may differ from the reference by this many error bounds
FLOAT_REL = 1e-12  # ... or by this relative error, whichever is larger
HAND_REL = 1e-8  # hand code in float64 may differ from the truth by this relative error
CONSTANT_SAFETY = 4  # ... plus this many bounds of the float constants the lowering computed


def fragile(truth, bounds) -> list[bool]:
    """Per point: does the float tolerance of some partial exceed its size there?

    Then floating point determines no digit of it: an intermediate is within rounding of a
    singularity of a local derivative (coth(19) rounds to 1, where asec' is infinite), and the
    error bound, a first-order estimate, may be exceeded by an inf or a nan.
    """
    return [any(t[k] is not None and t[k] != 0  # an exact 0 is determined (tolerance 1e-300)
                and tolerance(t[k], t_err[k], bound[k], constant[k], 1, FLOAT_REL) >= abs(t[k])
                for k in range(len(t)))
            for (t, t_err), (bound, constant) in zip(truth, bounds)]


def fragile_value(value, bound, constant) -> bool:
    """The same for the value: gamma(-1.0000000000000002) is 4.5e15, but the float code's
    -1.4426950408889634*log(2) is exactly -1.0, a pole (its error bound exceeds the value)."""
    if value is None or not mpmath.isfinite(value) or value == 0:
        return False
    return tolerance(value, 0, bound, constant, 1, FLOAT_REL) >= abs(value)


def spare(points, fragile, raised, comparisons):
    """Failures of generated code at fragile points, taken out of the verdict into a note.

    Where the generated code raised or returned inf/nan at a point where floating point can
    determine no digit of a partial, the verdict stays with the 50-digit program (which is
    compared there as everywhere) and the note says where and what happened.
    """
    where = {tuple(named(p).items()) for p, f in zip(points, fragile) if f}
    kept = [r for r in raised if tuple(r[1].items()) not in where]
    what = sorted({f"the {b} code raised {why.split(':')[0]}" for b, pt, why in raised
                   if tuple(pt.items()) in where})
    hit = {tuple(pt.items()) for _, pt, _ in raised if tuple(pt.items()) in where}
    for label, rows, _, _ in comparisons:
        for i, row in enumerate(rows):
            if fragile[i] and row is not None and not all(math.isfinite(v) for v in row):
                what.append(f"the {label} code returned a non-finite partial")
                hit.add(tuple(named(points[i]).items()))
                rows[i] = None
    if not hit:
        return raised, ""
    what = sorted(set(what))
    example = ", ".join(f"{k}={v:.6g}" for k, v in sorted(hit)[0])
    return kept, (f"at {len(hit)} of {len(points)} points (e.g. {example}) floating point "
                  f"determines no digit of the value, of a partial or of a local derivative (its "
                  f"error bound exceeds its size: an intermediate rounds onto a singularity), and "
                  f"{' and '.join(what)} there; "
                  f"the 50-digit program is compared with the reference there as everywhere")


BEYOND = "a step's value, a local derivative or a gradient term is beyond the float range"
UNDECIDED = ("a branch is undecided in floats (a Max, Min, condition, floor, ceiling, sign or "
             "|u| is closer to its switch than its float error bound)")


def unjudged(points, outside, raised, comparisons, why):
    """Generated code is not judged where a value is beyond the float range (it over- or
    underflows whatever it does) or a branch is undecided in floats (it may rightly take the
    other one); the 50-digit program is. The note says where and ``why``."""
    if not any(outside):
        return raised, ""
    where = {tuple(named(p).items()) for p, o in zip(points, outside) if o}
    for _, rows, _, _ in comparisons:
        for i, o in enumerate(outside):
            if o:
                rows[i] = None
    example = ", ".join(f"{k}={v:.6g}" for k, v in sorted(where)[0])
    return ([r for r in raised if tuple(r[1].items()) not in where],
            f"at {len(where)} of {len(points)} points (e.g. {example}) {why}, so the generated "
            f"code is not judged there; the 50-digit program is")


def tolerance(t, t_err, bound, constant, unit, rel):
    """What an error may be: ``max(rel |t|, 64 unit bound, 4 t_err) + 4 constant``.

    ``bound`` is the float error bound of the staged program (``unit`` rescales it for the
    50-digit program), ``t_err`` the reference's own error, ``constant`` the share of the bound
    due to float constants the lowering computed, which the 50-digit program makes too.
    """
    return max(rel * abs(t), FLOAT_SAFETY * unit * bound, 4 * t_err, mpmath.mpf(1e-300)) \
        + CONSTANT_SAFETY * constant


def named(point: dict) -> dict:
    return {s.name: float(v) for s, v in point.items()}
