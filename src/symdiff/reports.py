"""The reports of ``check`` and ``verify``: one verdict per partial, as text, repr and HTML.

Records only: ``check`` and ``verify`` build them alike for scalar and matrix programs, so they
sit below both and import neither.
A report is true (``bool``) exactly when every partial is ``ok``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field


@dataclass
class PartialReport:
    """The verdict on one partial derivative.

    ``worst_ratio`` is the largest error over all comparisons (the 50-digit program and each
    backend) as a fraction of its tolerance: the partial is ok exactly when it is at most 1.
    ``max_rel_error`` is the generated code's worst error relative to the exact partial, or,
    where that is within float noise of 0, to the noise floor (tolerance / check.FLOAT_REL): a
    partial that is 0 by cancellation does not show a relative error of 1e+55, and ok implies at
    most check.FLOAT_REL.
    """

    name: str  # the gradient's name, e.g. "dx"
    ok: bool
    proved: bool = False
    max_rel_error: float = 0.0  # worst relative error of the generated code (see above)
    worst_ratio: float = 0.0  # worst error as a fraction of its tolerance, all comparisons
    worst_point: dict | None = None
    message: str = ""
    along_directions: bool = False  # checked only along random directions (many variables)
    worst_error: float = 0.0  # the absolute error and the tolerance where the ratio is worst
    worst_tolerance: float = 0.0

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "WRONG" if self.worst_tolerance or self.worst_point else "UNCHECKED"

    def summary(self) -> str:
        """The numbers behind the verdict, in one phrase."""
        if self.along_directions and self.ok:
            return "along random directions"
        how = "proved symbolically; " if self.proved else ""
        if not self.ok and self.worst_tolerance == 0:  # nothing measured: the message says why
            return self.message or "not checked"
        if not self.ok and not math.isfinite(self.worst_error):
            return f"{how}returned {self.worst_error} where the reference is finite"
        if not self.ok:
            return (f"{how}error {self.worst_error:.2g} where {self.worst_tolerance:.2g} is "
                    f"allowed ({self.worst_ratio:.2g} of tolerance)")
        return f"{how}max rel error {self.max_rel_error:.1e} ({self.worst_ratio:.2g} of tolerance)"

    def __str__(self) -> str:
        text = f"{self.name:>8}  {self.status:5}  {self.summary()}"
        shown = self.message and self.message != self.summary()
        return text + (f"\n{'':>16}{self.message}" if shown else "")

    def __repr__(self) -> str:
        return f"<PartialReport {self.name} {self.status}: {self.summary()}>"


@dataclass
class CheckReport:
    """``ok`` is True when every partial matches the reference at every point."""

    ok: bool
    oracle: str
    points: list[dict]
    partials: list[PartialReport]
    backends: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    formula: str = ""
    sampled: str = "points in the domain"  # what the points are ("random arrays" for matrices)
    raised: list[tuple[str, dict, str]] = field(default_factory=list)  # (backend, point, error)

    def __bool__(self) -> bool:
        return self.ok

    def raised_summary(self) -> str:
        """``math code raised ZeroDivisionError: ... at 2 of 20 points, e.g. z=20.3``."""
        if not self.raised:
            return ""
        backend, point, why = self.raised[0]
        where = fmt_point(point)
        others = {b for b, _, _ in self.raised} - {backend}
        also = f" (and {', '.join(sorted(others))} code)" if others else ""
        count = len({tuple(p.items()) for _, p, _ in self.raised})
        return (f"{backend} code{also} raised {why} at {count} of {len(self.points)} points, "
                f"e.g. {where}")

    def verdict(self) -> str:
        if self.ok:
            return "OK"
        if not self.points:
            return "NOT CHECKED (no point in the domain)"
        wrong = [p.name for p in self.partials if p.status == "WRONG"]
        unchecked = [p.name for p in self.partials if p.status == "UNCHECKED"]
        text = f"MISMATCH in {', '.join(wrong)}" if wrong else \
            "MISMATCH" if not self.raised and not unchecked else ""
        if unchecked:  # a row of a vector program with no point in its domain
            text += ("; " if text else "") + f"NOT CHECKED: {', '.join(unchecked)}"
        if self.raised:
            count = len({tuple(p.items()) for _, p, _ in self.raised})
            text += ("; " if text else "") + f"RAISED at {count} of {len(self.points)} points"
        return text

    def __str__(self) -> str:
        raised = (f"the generated {self.raised_summary()} (where the formula and its gradient "
                  "are defined); the partials are judged where it ran") if self.raised else ""
        return report_text([f"check: {self.formula}",
                            f"reference: {self.oracle}; {len(self.points)} {self.sampled}; "
                            f"backends: {', '.join(self.backends) or 'none'}"],
                           self.partials, raised, self.notes, self.verdict())

    def __repr__(self) -> str:
        parts = ", ".join(f"{p.name} {p.status}" for p in self.partials)
        return f"<CheckReport {self.verdict()}: {parts}>"

    def _repr_html_(self) -> str:
        rows = [(p.name, p.status, p.summary(), f"{p.worst_tolerance:.2g}", p.message)
                for p in self.partials]
        notes = ([f"the generated {self.raised_summary()}"] if self.raised else []) + self.notes
        return html_report(f"check: {self.formula}", f"reference: {self.oracle}; "
                           f"{len(self.points)} {self.sampled}", rows, notes,
                           f"verdict: {self.verdict()}")


def report_text(head: list[str], partials, raised: str, notes, verdict: str) -> str:
    """The text of a check or verify report: head lines, one line per partial, the raised
    summary (if any), the notes and the verdict."""
    lines = head + [str(p) for p in partials] + ([raised] if raised else [])
    return "\n".join(lines + [f"note: {n}" for n in notes] + [f"verdict: {verdict}"])


def html_report(title: str, subtitle: str, rows, notes, verdict: str) -> str:
    """A small escaped HTML table: partial, status, error, tolerance, message."""
    head = "".join(f"<th>{h}</th>" for h in ("partial", "status", "error", "tolerance",
                                              "message"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    extra = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<div><p><b>{html.escape(title)}</b><br>{html.escape(subtitle)}</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            + (f"<ul>{extra}</ul>" if extra else "")
            + f"<p><b>{html.escape(verdict)}</b></p></div>")


@dataclass
class PartialVerdict:
    """The verdict on one partial of the hand gradient."""

    name: str  # "dx"
    ok: bool
    proved: bool = False
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_point: dict | None = None
    diagnosis: str = ""  # empty when ok
    detail: str = ""  # the worst point, hand and exact values

    def summary(self) -> str:
        if self.ok:
            return "proved symbolically" if self.proved else (
                f"max abs error {self.max_abs_error:.1e}, max rel error {self.max_rel_error:.1e}")
        return self.diagnosis

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "UNCHECKED" if self.diagnosis.startswith("not checked") else "WRONG"

    def __str__(self) -> str:
        text = f"{self.name:>8}  {self.status:5}  {self.summary()}"
        return text + (f"\n{'':>17}{self.detail}" if self.detail and not self.ok else "")

    def __repr__(self) -> str:
        return f"<PartialVerdict {self.name} {self.status}: {self.summary()}>"


@dataclass
class VerifyReport:
    """``ok`` is True when every hand partial matches the reference at every point."""

    ok: bool
    formula: str
    reference: str
    hand: str  # what the hand gradient was: a callable, a derivation, a backward pair
    points: list[dict]
    partials: list[PartialVerdict]
    notes: list[str] = field(default_factory=list)
    sampled: str = "points in the domain"  # what the points are ("random arrays" for matrices)
    raised: list[tuple[dict, str]] = field(default_factory=list)  # (point, what the hand did)
    value: PartialVerdict | None = None  # the hand forward's value, when a forward was given

    def __bool__(self) -> bool:
        return self.ok

    def raised_summary(self) -> str:
        """``raised OverflowError: math range error at 3 of 40 points, e.g. u=-712.3``."""
        if not self.raised:
            return ""
        kinds = list(dict.fromkeys(why for _, why in self.raised))
        what = kinds[0] + (f" (and {len(kinds) - 1} other failures)" if len(kinds) > 1 else "")
        return (f"{what} at {len(self.raised)} of {len(self.points)} points, e.g. "
                f"{fmt_point(self.raised[0][0])}")

    def verdict(self) -> str:
        bad = [p.name for p in self._judged() if not p.ok]
        if self.ok:
            return "RIGHT"
        if not self.points:
            return "NOT CHECKED (no point in the domain)"
        if bad:
            text = f"WRONG in {', '.join(bad)}"
            if self.raised and len(self.raised) < len(self.points):
                text += (f"; the hand code also failed at {len(self.raised)} of "
                         f"{len(self.points)} points")
            return text
        if self.raised:
            return (f"RAISED at {len(self.raised)} of {len(self.points)} points (the partials "
                    "are right where it ran)")
        return "WRONG"

    def __str__(self) -> str:
        raised = (f"hand code {self.raised_summary()}; the partials are judged on the other "
                  f"{len(self.points) - len(self.raised)} (a domain can leave such points out)"
                  if self.raised and len(self.raised) < len(self.points) else "")
        return report_text([f"verify: {self.formula}", f"hand gradient: {self.hand}",
                            f"reference: {self.reference}; {len(self.points)} {self.sampled}"],
                           self._judged(), raised, self.notes, self.verdict())

    def _judged(self) -> list[PartialVerdict]:
        """The partials, and the forward's value when it was judged."""
        return list(self.partials) + ([self.value] if self.value is not None else [])

    def __repr__(self) -> str:
        parts = ", ".join(f"{p.name} {p.status}" for p in self.partials)
        return f"<VerifyReport {self.verdict().split(' (')[0]}: {parts}>"

    def _repr_html_(self) -> str:
        rows = [(p.name, p.status, p.summary(), "", p.detail)
                for p in self._judged()]
        notes = list(self.notes)
        if self.raised:
            notes.insert(0, "hand code " + self.raised_summary())
        return html_report(f"verify: {self.formula}", f"hand gradient: {self.hand}; reference: "
                           f"{self.reference}; {len(self.points)} {self.sampled}", rows, notes,
                           f"verdict: {self.verdict()}")


def fmt_point(point: dict) -> str:
    """``x=1.5, y=-2`` (each value to 6 significant digits)."""
    return ", ".join(f"{k}={v:.6g}" for k, v in point.items())
