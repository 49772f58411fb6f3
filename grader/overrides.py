"""An instructor's regrades, kept in a CSV of their own and applied after every grading (trusted side).

A regrade is a person's decision that an answer deserves other marks than the grader gave. It
lives in the overrides file (`--overrides FILE`: student, item, points, reason, who), never in a
report, so grading the class again (after a fix, with a new model) keeps it: the grader's verdict
is computed afresh and the override is applied on top, shown everywhere with its reason and the
score the grader gave (grader.results.Overridden). An override that names a student or an item the
run does not have is said, not applied.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from grader.catalogue import IDS
from grader.results import Overridden, SubmissionResult

COLUMNS = ("student", "item", "points", "reason", "who")


class OverridesError(ValueError):
    """The file cannot be used: the message names the line and the column."""


@dataclass(frozen=True)
class Override:
    student: str
    item: str
    points: float
    reason: str
    who: str
    line: int  # in the file, for warnings


def read(path: str | Path) -> list[Override]:
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in rows.fieldnames or ()]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise OverridesError(f"{path}: line 1 must name the columns {', '.join(COLUMNS)} (missing: {', '.join(missing)})")
    out: list[Override] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        line = rows.line_num
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue
        for column in ("student", "item", "reason"):
            if not cells[column]:
                raise OverridesError(f"{path}: line {line}: `{column}` is empty (an override says whose, what and why)")
        try:
            points = float(cells["points"])
        except ValueError:
            raise OverridesError(f"{path}: line {line}: `points` is {cells['points']!r}, not a number") from None
        if not 0 <= points < float("inf"):
            raise OverridesError(f"{path}: line {line}: `points` must be 0 or more, not {cells['points']}")
        key = (cells["student"], cells["item"])
        if key in seen:
            raise OverridesError(f"{path}: line {line}: {key[0]}'s {key[1]} is overridden already on line {seen[key]}")
        seen[key] = line
        out.append(Override(cells["student"], cells["item"], points, cells["reason"], cells["who"], line))
    return out


def apply(results: list[SubmissionResult], overrides: list[Override],
          student_of) -> tuple[list[SubmissionResult], list[str]]:
    """The results with each override applied to its student's item, and a warning for each that
    could not be (no such student in this run, no such item, a file that is not gradable).
    `student_of(path)`: the gradebook's name for a submission (grader.reports.student_name).
    Applying again to results that carry overrides starts from the grader's own score."""
    by_student: dict[str, list[int]] = {}
    for n, r in enumerate(results):
        for name in {student_of(r.path), Path(r.path).name, Path(r.path).stem}:
            by_student.setdefault(name, []).append(n)
    # the grader's own scores first: an override no longer in the file (a report read back) is gone
    out = [replace(r, exercises=tuple(replace(e, score=e.override.graded_score, override=None) if e.override else e
                                      for e in r.exercises)) for r in results]
    warnings = []
    for o in overrides:
        where = sorted(set(by_student.get(o.student, [])))
        if o.item not in IDS:
            warnings.append(f"override on line {o.line}: no item `{o.item}` (not applied)")
            continue
        if len(where) != 1:
            warnings.append(f"override on line {o.line}: " + (f"no submission of `{o.student}` in this run" if not where
                            else f"`{o.student}` names {len(where)} submissions") + " (not applied)")
            continue
        r = out[where[0]]
        if r.not_gradable:
            warnings.append(f"override on line {o.line}: {r.path} is not gradable (not applied)")
            continue
        exercises = tuple(_overridden(e, o) if e.id == o.item else e for e in r.exercises)
        out[where[0]] = replace(r, exercises=exercises)
    return out, warnings


def _overridden(e, o: Override):
    graded = e.override.graded_score if e.override else e.score
    return replace(e, score=o.points, override=Overridden(o.points, graded, o.reason, o.who))
