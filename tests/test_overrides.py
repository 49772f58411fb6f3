"""An instructor's regrades: read with errors that name the line, applied after grading in every
output, kept when the class is graded again, and said where they name what the run does not have."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader import overrides, reports
from grader.catalogue import IDS
from grader.feedback import feedback
from grader.results import ExerciseResult, NotGradable, SubmissionResult, submission_from_json

HEADER = "student,item,points,reason,who\n"


def write(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "overrides.csv"
    path.write_text(header + rows)
    return path


def test_a_file_is_read_and_every_mistake_in_it_names_its_line(tmp_path):
    (o,) = overrides.read(write(tmp_path, "alice,get_WOV,1,transposes twice: right,TA Sam\n\n"))
    assert (o.student, o.item, o.points, o.reason, o.who, o.line) == ("alice", "get_WOV", 1.0, "transposes twice: right",
                                                                      "TA Sam", 2)
    for rows, header, message in [
        ("alice,get_WOV,lots,why,me\n", HEADER, "line 2: `points` is 'lots', not a number"),
        ("alice,get_WOV,-1,why,me\n", HEADER, "line 2: `points` must be 0 or more"),
        ("alice,get_WOV,1,,me\n", HEADER, "line 2: `reason` is empty"),
        ("alice,get_WOV,1,why,me\nalice,get_WOV,0,again,me\n", HEADER, "line 3: alice's get_WOV is overridden already on line 2"),
        ("alice,get_WOV,1\n", "student,item,points\n", "line 1 must name the columns"),
    ]:
        with pytest.raises(overrides.OverridesError, match=message.replace("(", r"\(").replace(")", r"\)")):
            overrides.read(write(tmp_path, rows, header))


def graded(path: str, wrong: str = "get_WOV") -> SubmissionResult:
    return SubmissionResult(path, tuple(ExerciseResult(i, "failed", 0.0, 1.0, "transposed") if i == wrong
                                        else ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))


def test_applied_to_the_students_item_again_and_again_from_the_graders_score():
    ovs = [overrides.Override("alice", "get_WOV", 1.0, "right, written another way", "TA Sam", 2),
           overrides.Override("zed", "get_WOV", 1.0, "left the course", "", 3),
           overrides.Override("bob", "no_such_item", 1.0, "renamed", "", 4),
           overrides.Override("carol", "get_WOV", 1.0, "emailed it", "", 5)]
    carol = SubmissionResult("class/carol.py", graded("x").exercises, not_gradable=NotGradable("empty", "0 bytes"))
    results = [graded("class/alice/exercises.ipynb"), graded("class/bob.py"), carol]
    out, warnings = overrides.apply(results, ovs, reports.student_name)
    alice = {e.id: e for e in out[0].exercises}["get_WOV"]
    assert (alice.status, alice.score, alice.override.graded_score, alice.override.who) == ("failed", 1.0, 0.0, "TA Sam")
    assert out[0].score == 23 and out[1] == results[1] and out[2] == carol
    assert warnings == ["override on line 3: no submission of `zed` in this run (not applied)",
                        "override on line 4: no item `no_such_item` (not applied)",
                        "override on line 5: class/carol.py is not gradable (not applied)"]
    gone, _ = overrides.apply(out, [], reports.student_name)  # the row deleted, the report read back: no override
    assert gone[0] == results[0]
    lowered = [overrides.Override("alice", "get_WOV", 0.5, "half: the sign", "", 2)]
    again, _ = overrides.apply(out, lowered, reports.student_name)  # a report read back, overridden anew
    e = {e.id: e for e in again[0].exercises}["get_WOV"]
    assert (e.score, e.override.graded_score, e.override.reason) == (0.5, 0.0, "half: the sign")


def test_every_output_shows_the_override_and_its_reason():
    ovs = [overrides.Override("alice", "get_WOV", 1.0, "right, written another way", "TA Sam", 2)]
    (alice,), _ = overrides.apply([graded("alice.py")], ovs, reports.student_name)
    e = {e.id: e for e in alice.exercises}["get_WOV"]
    said = "overridden by TA Sam to 1 point(s) (the grader gave 0): right, written another way"
    assert feedback(e).startswith(said + "\n") and "transposed" in feedback(e)
    assert said in reports.terminal_table(alice)
    data = json.loads(reports.json_text([alice]))
    item = next(x for x in data["submissions"][0]["exercises"] if x["id"] == "get_WOV")
    assert item["override"] == {"points": 1.0, "graded_score": 0.0, "reason": "right, written another way", "who": "TA Sam"}
    back = {x.id: x for x in submission_from_json(data["submissions"][0]).exercises}["get_WOV"]
    assert back.override == e.override and back.score == 1.0
    (row,) = csv.DictReader(io.StringIO(reports.gradebook_csv([alice])))
    assert (row["get_WOV"], row["total"], row["overridden"]) == ("1", "23", "get_WOV")
    suite = ET.fromstring(reports.junit_text([alice])).find("testsuite")
    assert suite.get("failures") == "0"  # full marks by hand: not a failure any more
    scope = {t["name"]: t for t in json.loads(reports.gradescope_json(alice))["tests"]}["12. get_WOV"]
    assert scope["status"] == "passed" and said in scope["output"] and scope["output_format"] == "md"
    assert reports.md_text(said) in reports.feedback_markdown(alice)
    assert reports.md_text(said) in reports.github_summary_markdown([alice])


@pytest.mark.worker
def test_an_instructor_regrades_and_grades_the_class_again(solved_dir, tmp_path):
    """Graded with the overrides file; then the class graded again (a report rebuilt, a student
    gone): the override is still there, and the one that names no one is said."""
    folder = tmp_path / "class"
    folder.mkdir()
    text = (solved_dir / "exercises.py").read_text()
    (folder / "alice.py").write_text(text.replace("return model.W_U[:, 0] - model.W_U[:, 1]",
                                                  "return model.W_U[:, 1] - model.W_U[:, 0]"))
    assert (folder / "alice.py").read_text() != text
    ovs = write(tmp_path, "alice,get_post_final_ln_dir,1,sign convention stated in the cell,TA Sam\n"
                          "bob,get_WOV,1,late add,TA Sam\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=600)

    first = cli(folder, "--only", "get_post_final_ln_dir,get_WOV", "--workers", "1", "--overrides", ovs,
                "--json", tmp_path / "grades.json", "--gradebook", tmp_path / "book.csv")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "overridden by TA Sam to 1 point(s) (the grader gave 0)" in first.stdout, first.stdout
    assert "warning: override on line 3: no submission of `bob` in this run (not applied)" in first.stderr
    (sub,) = json.loads((tmp_path / "grades.json").read_text())["submissions"]
    item = next(x for x in sub["exercises"] if x["id"] == "get_post_final_ln_dir")
    assert (item["status"], item["score"], item["override"]["graded_score"]) == ("failed", 1.0, 0.0)
    book = next(csv.DictReader((tmp_path / "book.csv").open()))
    assert (book["total"], book["overridden"]) == ("2", "get_post_final_ln_dir")
    again = cli("--from", tmp_path / "grades.json", "--overrides", ovs, "--gradebook", tmp_path / "again.csv")
    assert again.returncode == 0, again.stderr
    assert next(csv.DictReader((tmp_path / "again.csv").open()))["total"] == "2"
    bad = write(tmp_path, "alice,get_post_final_ln_dir,two,typo,TA Sam\n")
    refused = cli(folder, "--overrides", bad)
    assert refused.returncode == 2 and "line 2: `points` is 'two', not a number" in refused.stderr
