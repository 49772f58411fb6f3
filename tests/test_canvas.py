"""The Canvas gradebook, as an instructor makes it: the CLI on a class's JSON report, with the
gradebook Canvas exported as its roster; the file read back as Canvas reads an import."""
from __future__ import annotations

import csv
import io
import subprocess
import sys

from grader import reports
from grader.canvas import ID_COLUMNS, POINTS_POSSIBLE, Student, canvas_csv, key, match
from grader.catalogue import IDS
from grader.results import ExerciseResult, SubmissionResult

ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,[1.5.1] Balanced Bracket Classifier (1234),Current Score
    Points Possible,,,,,23,(read only)
"Doe, John",101,S0101,jdoe,Interp A,,
"Roe, Jane",102,S0102,jroe,Interp A,,
"Bloggs, Joe",103,S0103,jbloggs,Interp B,,
"Test Student",104,,,,
"""


def result(path: str, passed: int, provided: int = 0) -> SubmissionResult:
    """`passed` items right, `provided` given by the starter (worth nothing, not counted), the rest wrong."""
    out = []
    for n, i in enumerate(IDS):
        if n < passed:
            out.append(ExerciseResult(i, "passed", 1.0, 1.0))
        elif n >= len(IDS) - provided:
            out.append(ExerciseResult(i, "provided", 0.0, 0.0, starter="the course's notebook"))
        else:
            out.append(ExerciseResult(i, "failed", 0.0, 1.0, "wrong"))
    return SubmissionResult(path, tuple(out))


CLASS = [result("class/jdoe/exercises.ipynb", 20), result("class/Jane Roe.py", 21, provided=2),
         result("class/mallory.py", 5), result("class/=HYPERLINK(1).py", 1), result("late/jroe.py", 3)]


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_cli_writes_an_import_canvas_matches_to_its_students(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    (tmp_path / "report.json").write_text(reports.json_text(CLASS))
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "--from", "report.json", "--canvas", "canvas.csv",
                           "--canvas-roster", "roster.csv", "--canvas-assignment", "Brackets (1234)"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = rows((tmp_path / "canvas.csv").read_text())
    assert got[0] == [*ID_COLUMNS, "Brackets (1234)"]
    assert got[1][0] == POINTS_POSSIBLE and got[1][-1] == "23"
    by_name = {r[0]: r for r in got[2:] if r[-1] != "3"}
    # matched by the SIS Login ID (the folder) and by the name (the file): Canvas's identifiers kept
    assert by_name["Doe, John"] == ["Doe, John", "101", "S0101", "jdoe", "Interp A", "20"]
    assert by_name["Roe, Jane"][1:] == ["102", "S0102", "jroe", "Interp A", "23"]  # 21 of 21: full marks
    assert by_name["mallory"][1:] == ["", "", "", "", "5"]  # not on the roster: the name only
    assert "'=HYPERLINK(1)" in by_name  # a file name is never a formula
    assert "no single student of the roster is 'mallory'" in proc.stderr
    assert "2 submissions are Roe, Jane's (class/Jane Roe.py, late/jroe.py)" in proc.stderr  # said, not guessed
    assert "1 student(s) of the roster have no submission: Bloggs, Joe\n" in proc.stderr  # Canvas's test student is not one


def test_matching_is_by_any_of_the_students_names_and_never_guesses():
    roster = [Student("Doe, John", "101", "S0101", "jdoe"), Student("Doe, Jon", "102", "S0102", "jon.doe@uni.edu"),
              Student("Smith, Ann", "103", "S0103", "asmith"), Student("Smith, Ann", "104", "S0104", "asmith2")]
    subs = [result(p, 1) for p in ("a/JDOE/notebook.ipynb", "jon_doe.py", "S0101.py", "Ann Smith.py", "asmith2.py")]
    m = match(subs, roster)
    assert {p: s.id for p, s in m.students.items()} == {"a/JDOE/notebook.ipynb": "101", "jon_doe.py": "102",
                                                        "S0101.py": "101", "asmith2.py": "104"}
    assert m.unmatched == ("Ann Smith.py",)  # two students of that name: no guess
    assert [s.id for s in m.without_submission] == ["103"]
    assert key("Jane  Doe") == key("jane_doe") == key("jane.doe@uni.edu") == "janedoe"
    without = rows(canvas_csv(subs[:1], None, "A"))
    assert without[2] == ["JDOE", "", "", "", "", "1"]


def test_a_roster_that_is_not_a_canvas_export_is_a_usage_error_before_grading(tmp_path):
    (tmp_path / "roster.csv").write_text("name,email\nJohn,j@x\n")
    for extra in (["--canvas", "c.csv", "--canvas-roster", "roster.csv"], ["--canvas-roster", "roster.csv"],
                  ["--canvas", "c.csv", "--canvas-roster", "missing.csv"]):
        proc = subprocess.run([sys.executable, "-m", "grader.cli", "no-such-folder", *extra], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300)
        assert proc.returncode == 2 and "--canvas" in proc.stderr, (extra, proc.stderr)
    assert not (tmp_path / "c.csv").exists()
