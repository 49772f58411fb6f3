"""Files that are not submissions: told apart before anything runs, and shown apart from a score of
0 in every output (the renderers without a worker; the command line on a class folder with one)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader import gradable, reports
from grader.canvas import canvas_csv
from grader.catalogue import IDS
from grader.notebook import summary
from grader.report_page import page_html
from grader.results import ExerciseResult, NotGradable, SubmissionResult, submission_from_json

OTHER_SECTION = json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                       "source": "def train_sae(model, data):\n    return model.fit(data)\n"}],
                            "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.parametrize("content, suffix, reason", [
    (b"", ".py", "empty"),
    (b"  \n\n\t", ".ipynb", "empty"),
    (b"%PDF-1.7\x00\x01\x02 get_WOV", ".py", "binary"),
    ("def get_WOV(): pass\n".encode("utf-16"), ".py", "binary"),
    (b'{"cells": [ {"cell_type": "code", "source": "get_WOV"', ".ipynb", "not_a_notebook"),
    (b'["get_WOV"]', ".ipynb", "not_a_notebook"),
    (OTHER_SECTION.encode(), ".ipynb", "no_items"),
    (b"import torch\nprint('hello')\n", ".py", "no_items"),
], ids=["empty", "blank", "pdf", "utf-16", "cut-short", "a-list", "other-section", "no-item-names"])
def test_what_is_not_a_submission_and_why(content, suffix, reason):
    found = gradable.check(content, suffix)
    assert found is not None and found.reason == reason


def test_a_submission_however_unfinished_is_gradable():
    template = Path(__file__).resolve().parents[1] / "student_template"
    for path in (template / "exercises.py", template / "exercises.ipynb"):
        assert gradable.check(path.read_bytes(), path.suffix) is None
    assert gradable.check(b"v_L = 1\n", ".py") is None  # one object's name: a (very short) submission
    assert gradable.check("v_L = 1  # Jos\u00e9's\n".encode("latin-1"), ".py") is None  # not UTF-8, still text
    assert gradable.check(b"{\"cells\": [], \"metadata\": {}} # get_WOV", ".ipynb") is not None


def not_gradable_result(path="class/bob.py") -> SubmissionResult:
    why = NotGradable("binary", "it holds NUL bytes: not a text file")
    return SubmissionResult(path, tuple(ExerciseResult(i, "error", 0.0, 1.0, "not gradable") for i in IDS),
                            not_gradable=why)


def honest() -> SubmissionResult:
    return SubmissionResult("class/alice.py", tuple(ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))


def test_every_output_shows_it_apart_from_a_score_of_zero():
    bob, alice = not_gradable_result(), honest()
    table = reports.terminal_table(bob)
    assert "not gradable" in table and "not a text file" in table and "0 / 23" not in table and "get_WOV" not in table
    assert reports.summary_line([alice, bob]) == \
        "1 submission(s) graded; mean score 23.00; 1 with full marks; 1 not gradable"
    data = json.loads(reports.json_text([bob]))
    assert data["schema"] == 5 and data["submissions"][0]["not_gradable"] == {
        "reason": "binary", "detail": "it holds NUL bytes: not a text file"}
    assert submission_from_json(data["submissions"][0]).not_gradable == bob.not_gradable
    rows = list(csv.DictReader(io.StringIO(reports.csv_text([alice, bob]))))
    assert (rows[1]["score"], rows[1]["get_WOV"], rows[1]["not_gradable"]) == ("", "", "binary")
    assert (rows[0]["score"], rows[0]["not_gradable"]) == ("23", "")
    book = list(csv.DictReader(io.StringIO(reports.gradebook_csv([alice, bob]))))
    assert (book[1]["total"], book[1]["error"], book[1]["not_gradable"]) == ("", "", "binary")
    suite = ET.fromstring(reports.junit_text([bob])).find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    assert suite.find("testcase").get("name") == "not_gradable" and "not a text file" in suite.find("testcase/error").text
    scope = json.loads(reports.gradescope_json(bob))
    assert scope["score"] == 0 and scope["tests"] == [] and scope["output"].startswith("not gradable")
    room = json.loads(reports.classroom_json(bob))
    assert room["status"] == "error" and [t["name"] for t in room["tests"]] == ["not gradable"]
    assert room["max_score"] == 23 and sum(t["score"] for t in room["tests"]) == 0
    md = reports.feedback_markdown(bob)
    assert "**Not gradable**" in md and "Score:" not in md
    assert "bob.py: not gradable" in reports.github_summary_markdown([bob])
    assert reports.github_annotations([bob]).startswith("::error file=class/bob.py,title=not gradable::")
    items = reports.item_summary_markdown([alice, bob])
    assert "1 file(s) not gradable" in items and "| get_WOV | 1 | 0 | 0 | 0 |" in items  # bob not counted as errors
    canvas = list(csv.reader(io.StringIO(canvas_csv([alice, bob]))))
    assert canvas[-1][-1] == "" and canvas[-2][-1] == "23"
    page = page_html([alice, bob])
    assert "(1 not gradable, left out of the scores)" in page and "data-status='not_gradable'" in page
    assert summary(bob).startswith("not gradable: it is not a text file")


@pytest.mark.worker
def test_a_class_folder_with_files_that_are_not_submissions(tmp_path):
    """As an instructor runs it: the files that are not submissions are named as such, with why,
    and the class's real submission is graded as ever; a check that asks for a score fails on them."""
    from reference.make_template import write_solved

    folder = tmp_path / "class"
    (folder / "alice").mkdir(parents=True)
    write_solved(folder / "alice")
    for other in folder.joinpath("alice").iterdir():
        if other.name != "exercises.py":
            other.unlink()
    (folder / "bob.py").write_text("")
    (folder / "carol.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (folder / "dan.ipynb").write_text('{"cells": [')
    (folder / "eve.ipynb").write_text(OTHER_SECTION)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "grader.cli", str(folder), "--only", "get_WOV", "--workers", "1",
                           "--json", str(out / "r.json"), "--gradebook", str(out / "book.csv"), "--fail-under", "50"],
                          capture_output=True, text=True, timeout=600)
    # a check on the class fails for files with no score, and says that is why (alice scored 100%)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "0 submission(s) scored below 50%; 4 file(s) not gradable" in proc.stderr
    assert "1 submission(s) graded; mean score 1.00; 1 with full marks; 4 not gradable" in proc.stdout, proc.stdout
    for name, why in (("bob.py", "the file is empty"), ("carol.py", "not a text file"),
                      ("dan.ipynb", "not a Jupyter notebook"), ("eve.ipynb", "not a submission of this section")):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(str(folder / name)))
        assert line.endswith(": not gradable"), line
        assert why in proc.stdout
    report = {Path(s["path"]).name: s for s in json.loads((out / "r.json").read_text())["submissions"]}
    assert {n: (s.get("not_gradable") or {}).get("reason") for n, s in report.items()} == {
        "exercises.py": None, "bob.py": "empty", "carol.py": "binary", "dan.ipynb": "not_a_notebook",
        "eve.ipynb": "no_items"}
    assert report["exercises.py"]["score"] == 1
    book = {r["student"]: r for r in csv.DictReader((out / "book.csv").open())}
    assert book["alice"]["total"] == "1" and book["bob"]["total"] == "" and book["bob"]["not_gradable"] == "empty"


def test_a_one_submission_report_is_about_the_gradable_file_that_scored_most():
    """An upload with several files (Gradescope, Classroom): the notebook, not the helper module."""
    low = SubmissionResult("up/helpers.py", tuple(ExerciseResult(i, "missing", 0.0, 1.0) for i in IDS))
    high = honest()
    assert reports.the_submission([not_gradable_result(), low, high]) is high
    assert reports.the_submission([not_gradable_result()]).not_gradable
