"""The class's scores as a gradebook Canvas imports (trusted side: a renderer, and its roster).

Canvas imports a CSV whose first columns name the student (Student, ID, SIS User ID, SIS Login ID,
Section) and whose other columns are assignments, by title; a second row, "Points Possible", gives
each assignment's maximum. With the gradebook Canvas exports (`--canvas-roster`), each submission
is matched to its student by the name it was handed in under (a folder `jdoe/` or a file
`jdoe.ipynb`: the student's SIS Login ID, SIS User ID, Canvas ID or name), and its row keeps
Canvas's own identifiers, so that the import updates the right student. Without a roster a row
carries the name only, which Canvas matches against its students' names.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from grader.reports import spreadsheet_text, student_name
from grader.results import SubmissionResult

ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
DEFAULT_ASSIGNMENT = "[1.5.1] Balanced Bracket Classifier"
POINTS_POSSIBLE = "Points Possible"
TEST_STUDENT = {"teststudent", "studenttest"}  # Canvas's own test student, in every export


class RosterError(ValueError):
    """A roster file that is not a Canvas gradebook export."""


@dataclass(frozen=True)
class Student:
    """One row of Canvas's gradebook: who the student is to Canvas."""

    name: str  # "Last, First", as Canvas writes it
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    def keys(self) -> set[str]:
        """Every name a submission of this student may be handed in under, normalised."""
        names = {self.sis_login_id, self.sis_user_id, self.id, self.name}
        if "," in self.name:  # "Doe, Jane" -> "Jane Doe" too
            last, first = self.name.split(",", 1)
            names.add(f"{first} {last}")
        return {key(n) for n in names if key(n)}


def key(name: str) -> str:
    """A name as it is compared: case, spaces and punctuation left out ("Jane Doe" = "jane_doe")."""
    return re.sub(r"[\W_]+", "", name.split("@", 1)[0]).casefold()


def read_roster(path: str | Path) -> list[Student]:
    """The students of a gradebook Canvas exported (its "Points Possible" row, its test student and
    any row without a student left out)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Student" not in rows[0] or not {"ID", "SIS User ID", "SIS Login ID"} & set(rows[0]):
        raise RosterError(f"{path}: not a Canvas gradebook export (it needs the columns Student and ID, SIS User ID "
                          "or SIS Login ID)")
    students = [Student(*(str(row.get(c) or "").strip() for c in ID_COLUMNS)) for row in rows]
    return [s for s in students if s.name and POINTS_POSSIBLE not in s.name and key(s.name) not in TEST_STUDENT]


@dataclass(frozen=True)
class Matched:
    """Which roster student each submission is, and what could not be matched."""

    students: dict[str, Student]  # submission path -> its student
    unmatched: tuple[str, ...]  # submissions no roster student's names fit (or more than one fits)
    without_submission: tuple[Student, ...]  # roster students no submission was matched to


def match(results: Iterable[SubmissionResult], roster: list[Student]) -> Matched:
    by_key: dict[str, list[Student]] = {}
    for s in roster:
        for k in s.keys():
            by_key.setdefault(k, []).append(s)
    students, unmatched = {}, []
    for r in results:
        found = {id(s): s for s in by_key.get(key(student_name(r.path)), ())}
        if len(found) == 1:
            students[r.path] = next(iter(found.values()))
        else:
            unmatched.append(r.path)
    seen = {id(s) for s in students.values()}
    return Matched(students, tuple(unmatched), tuple(s for s in roster if id(s) not in seen))


def canvas_csv(results: list[SubmissionResult], roster: list[Student] | None = None,
               assignment: str = DEFAULT_ASSIGNMENT) -> str:
    """The import file: one row per submission, with its student's Canvas identifiers where the
    roster names them (a submission the roster does not has its name only). Canvas has one maximum
    per assignment: a score out of a smaller one (items a starter provides are not counted) is
    scaled to it, so that full marks are full marks."""
    matched = match(results, roster) if roster is not None else Matched({}, (), ())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*ID_COLUMNS, spreadsheet_text(assignment)])
    most = max((r.max_score for r in results), default=0.0)
    w.writerow([POINTS_POSSIBLE, "", "", "", "", f"{most:g}"])
    for r in results:
        s = matched.students.get(r.path) or Student(student_name(r.path))
        w.writerow([*(spreadsheet_text(v) for v in (s.name, s.id, s.sis_user_id, s.sis_login_id, s.section)),
                    # a file that is not a submission has no score: left empty, as Canvas keeps ungraded
                    "" if r.not_gradable else f"{round(r.score * most / r.max_score, 2) if r.max_score else 0:g}"])
    return buf.getvalue()
