"""The course file (bracket-grader.toml) and the late policy it holds: read with errors that name the
key and the line, overridden by flags, and a penalty every output shows beside the raw score."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader import course_file, late, reports
from grader.catalogue import IDS
from grader.cli import build_parser, main, with_course_file
from grader.config import ConfigError
from grader.course_file import LateRules
from grader.results import ExerciseResult, SubmissionResult, submission_from_json

UTC = dt.timezone.utc
DUE = dt.datetime(2026, 12, 10, 23, 59, tzinfo=UTC)

FULL = """\
[course]
name = "autumn"
mode = "fast"
starter = "blank.py"

[limits]
item_seconds = 40
memory_gib = 3

[points]
provided = 0.5
get_WOV = 2

[visibility]
default = "after_due_date"
get_WOV = "hidden"

[late]
due = 2026-12-10T23:59:00+00:00
percent_per_day = 10
part_of_a_day = "whole"
cap_percent = 30
zero_after = 2026-12-20T23:59:00Z
extensions = "extensions.csv"
times = "times.csv"
"""


def course_folder(tmp_path: Path, text: str = FULL) -> Path:
    (tmp_path / "blank.py").write_text("def get_WOV(model, layer, head):\n    raise NotImplementedError()\n")
    (tmp_path / "extensions.csv").write_text("student,days\nbob,2\n")
    (tmp_path / "times.csv").write_text("student,time\nalice,2026-12-12T10:00:00+00:00\nbob,2026-12-12T10:00:00Z\n")
    (tmp_path / course_file.NAME).write_text(text)
    return tmp_path / course_file.NAME


def test_the_written_example_documents_every_key_and_is_a_valid_course_file(tmp_path):
    assert main(["--write-config", str(tmp_path / "c.toml")]) == 0
    text = (tmp_path / "c.toml").read_text()
    for table, keys in course_file.SCHEMA.items():
        assert f"[{table}]" in text
        if table not in ("points", "visibility"):  # those two take item ids
            assert all(f"{key} =" in text for key in keys), table
    assert course_file.read(tmp_path / "c.toml").name.startswith("ARENA")
    assert main(["--write-config", str(tmp_path / "c.toml")]) == 2  # never over a file


def test_a_full_course_file_is_read(tmp_path):
    c = course_file.read(course_folder(tmp_path))
    assert (c.name, c.mode, c.starter) == ("autumn", "fast", str(tmp_path / "blank.py"))
    assert c.limits == {"item_seconds": 40.0, "memory_gib": 3.0} and c.points == {"provided": 0.5, "get_WOV": 2.0}
    assert (c.visibility_of("get_WOV"), c.visibility_of("embedding")) == ("hidden", "after_due_date")
    assert c.late == LateRules(DUE, 10.0, False, 30.0, dt.datetime(2026, 12, 20, 23, 59, tzinfo=UTC),
                               tmp_path / "extensions.csv", str(tmp_path / "times.csv"))


@pytest.mark.parametrize("change, message", [
    (("[limits]", "[limit]"), ":6: [limit]: unknown table"),
    (("item_seconds = 40", "item_second = 40"), ":7: [limits] item_second: unknown key"),
    (("get_WOV = 2", "get_wov = 2"), ":12: [points] get_wov: unknown key (an item id)"),
    (("memory_gib = 3", "memory_gib = \"3\""), ":8: [limits] memory_gib: expected int or float, got '3'"),
    (("get_WOV = 2", "get_WOV = -2"), ":12: [points] get_WOV: expected a number of at least 0"),
    (('get_WOV = "hidden"', 'get_WOV = "secret"'), ":16: [visibility] get_WOV: one of visible, hidden"),
    (('mode = "fast"', 'mode = "quick"'), ":3: [course] mode: one of lean, fast, kernel"),
    (("due = 2026-12-10T23:59:00+00:00", "due = 2026-12-10T23:59:00"), ":19: [late] due: give the date-time's offset"),
    (("due = 2026-12-10T23:59:00+00:00", "due = 2026-12-10"), ":19: [late] due: expected a date-time"),
    (("zero_after = 2026-12-20T23:59:00Z", "zero_after = 2026-12-01T23:59:00Z"), ":23: [late] zero_after: is before"),
    (('starter = "blank.py"', 'starter = "gone.py"'), ":4: [course] starter: no such file"),
    (("cap_percent = 30", "cap_percent = 300"), ":22: [late] cap_percent: a percentage of the score"),
    (("[points]", "[points"), "not valid TOML"),
])
def test_every_mistake_names_the_key_and_its_line(tmp_path, change, message):
    path = course_folder(tmp_path, FULL.replace(*change))
    with pytest.raises(ConfigError) as e:
        course_file.read(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_found_in_the_class_folder_and_a_flag_wins_over_it(tmp_path):
    course_folder(tmp_path)
    args = build_parser().parse_args([str(tmp_path), "--timeout", "15"])
    with_course_file(args)
    assert args.course.path == tmp_path / course_file.NAME
    assert (args.timeout, args.memory, args.notebook_mode) == (15.0, 3.0, "fast")  # the flag, then the file
    assert args.starter == [str(tmp_path / "blank.py")] and args.points == {"provided": 0.5, "get_WOV": 2.0}
    plain = build_parser().parse_args([str(tmp_path / "blank.py")])
    with_course_file(plain)
    assert plain.course is None and plain.notebook_mode == "lean" and plain.timeout is None
    (tmp_path / course_file.NAME).write_text("[limits]\nitem_seconds = 0\n")
    assert main([str(tmp_path)]) == 2  # a usage error, before anything is graded


def test_the_policy_in_whole_days_or_hours_with_a_cap_and_a_last_date():
    whole = LateRules(DUE, 10.0, False, 30.0, DUE + dt.timedelta(days=10))
    assert late.penalty(whole, DUE - dt.timedelta(hours=1), DUE).percent == 0
    assert late.penalty(whole, DUE + dt.timedelta(minutes=1), DUE).percent == 10  # part of a day is a day
    assert late.penalty(whole, DUE + dt.timedelta(days=1, hours=1), DUE).percent == 20
    assert late.penalty(whole, DUE + dt.timedelta(days=6), DUE).percent == 30  # the cap
    gone = late.penalty(whole, DUE + dt.timedelta(days=11), DUE)
    assert (gone.percent, gone.after_zero) == (100, True)
    assert late.penalty(whole, DUE + dt.timedelta(seconds=3), DUE).percent == 10  # seconds late are late
    extended = DUE + dt.timedelta(days=3)  # an extension moves the last date as far
    assert not late.penalty(whole, DUE + dt.timedelta(days=12), extended).after_zero
    hours = LateRules(DUE, 10.0, True)
    assert late.penalty(hours, DUE + dt.timedelta(hours=6), DUE).percent == 2.5


def test_times_from_a_csv_gradescope_and_git_and_extensions(tmp_path):
    path = course_folder(tmp_path)
    rules = course_file.read(path).late
    results = [SubmissionResult(str(tmp_path / f"{s}.py"), tuple(ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))
               for s in ("alice", "bob", "carol")]
    times, dues = late.times_for(rules, results, None)
    out, warnings = late.apply(results, rules, times, dues, reports.student_name)
    alice, bob, carol = out
    assert alice.late.percent == 20 and alice.raw_score == 23 and alice.score == pytest.approx(18.4)
    assert bob.late is None  # two days' extension: on time
    assert carol.late is None and warnings == [f"late: no submission time for carol ({carol.path}): no late penalty applied"]
    # Gradescope: this submission's time, and the due date it gives this student (an extension)
    meta = tmp_path / "submission_metadata.json"
    meta.write_text(json.dumps({"created_at": "2026-12-11T10:00:00.000000-08:00",
                                "assignment": {"due_date": "2026-12-10T23:59:00.000000+00:00"},
                                "users": [{"name": "Alice", "assignment": {"due_date": "2026-12-11T12:00:00+00:00"}}],
                                "previous_submissions": []}))
    made, due = late.gradescope_times(meta)
    assert made == dt.datetime(2026, 12, 11, 18, tzinfo=UTC) and due == dt.datetime(2026, 12, 11, 12, tzinfo=UTC)
    # git: the last commit of the student's repository, not the file's time on disk
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "exercises.py").write_text("v_L = 1\n")
    env = {**os.environ, "GIT_AUTHOR_DATE": "2026-12-12T09:00:00+00:00", "GIT_COMMITTER_DATE": "2026-12-12T09:00:00+00:00",
           "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x"}
    for cmd in (["init", "-q"], ["add", "exercises.py"], ["commit", "-qm", "done"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    assert late.git_time(repo / "exercises.py") == dt.datetime(2026, 12, 12, 9, tzinfo=UTC)
    # a student's repository cannot make the grader run a program: a "signed" commit with the
    # repository set to show signatures through its own gpg program
    marker = tmp_path / "ran"
    (repo / "gpg.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (repo / "gpg.sh").chmod(0o755)
    for cmd in (["config", "log.showSignature", "true"], ["config", "gpg.program", str(repo / "gpg.sh")]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    (repo / "exercises.py").write_text("v_L = 2\n")
    subprocess.run(["git", "add", "exercises.py"], cwd=repo, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    signed = (f"tree {tree}\nparent {head}\nauthor s <s@x> 1796000000 +0000\ncommitter s <s@x> 1796000000 +0000\n"
              "gpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END PGP SIGNATURE-----\n\nsigned\n")
    commit = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo, input=signed,
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "update-ref", "HEAD", commit], cwd=repo, check=True)
    assert subprocess.run(["git", "log", "-1"], cwd=repo, capture_output=True).returncode == 0 and marker.exists()
    marker.unlink()  # plain git would run it; the grader's does not
    assert late.git_time(repo / "exercises.py") == dt.datetime.fromtimestamp(1796000000, UTC)
    assert not marker.exists()
    assert late.git_time(tmp_path / "blank.py") is None  # not in a repository


def test_every_output_shows_the_penalty_with_the_raw_score():
    r = SubmissionResult("class/alice.py", tuple(ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))
    (r,), _ = late.apply([r], LateRules(DUE, 10.0), {"alice": DUE + dt.timedelta(hours=30)}, {}, reports.student_name)
    said = "20% late penalty: 1.25 day(s) late (scored 23 before it)"
    assert r.score == pytest.approx(18.4)
    assert reports.terminal_table(r).splitlines()[0] == "class/alice.py: 18.4 / 23 (late: 23 before a 20% penalty)"
    assert said in reports.terminal_table(r)
    data = json.loads(reports.json_text([r]))["submissions"][0]
    assert (data["score"], data["raw_score"], data["late"]["percent"]) == (pytest.approx(18.4), 23, 20)
    assert submission_from_json(data).late == r.late
    (row,) = csv.DictReader(io.StringIO(reports.gradebook_csv([r])))
    assert (row["total"], row["raw_total"], row["late_percent"], row["days_late"]) == ("18.4", "23", "20", "1.25")
    scope = json.loads(reports.gradescope_json(r))
    assert scope["score"] == pytest.approx(18.4) and reports.md_text(said) in scope["output"]
    room = json.loads(reports.classroom_json(r))
    assert sum(t["score"] for t in room["tests"]) == pytest.approx(18.4) and room["max_score"] == 23
    assert "late" in {p.get("name") for p in ET.fromstring(reports.junit_text([r])).iter("property")}
    assert reports.md_text("18.4 / 23 (late: 23 before a 20% penalty)") in reports.feedback_markdown(r)


def test_gradescope_results_honour_each_items_visibility(tmp_path):
    c = course_file.read(course_folder(tmp_path))
    r = SubmissionResult("a.py", tuple(ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))
    data = json.loads(reports.gradescope_json(r, None, c.visibility_of))
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["12. get_WOV"]["visibility"] == "hidden" and data["visibility"] == "after_due_date"
    assert {t["visibility"] for n, t in tests.items() if n != "12. get_WOV"} == {"after_due_date"}


@pytest.mark.worker
def test_an_instructor_grades_a_class_folder_with_its_course_file(solved_dir, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text((solved_dir / "exercises.py").read_text())
    (folder / "times.csv").write_text("student,time\nalice,2026-12-11T12:00:00Z\n")
    (folder / course_file.NAME).write_text('[points]\nget_WOV = 4\n\n[late]\ndue = 2026-12-10T23:59:00Z\n'
                                          'percent_per_day = 25\ntimes = "times.csv"\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "grader.cli", str(folder), "--only", "get_WOV,embedding",
                           "--workers", "1", "--json", str(out / "r.json"), "--gradebook", str(out / "book.csv")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3.75 / 5 (late: 5 before a 25% penalty)" in proc.stdout  # the row shown as it is graded, too
    (sub,) = json.loads((out / "r.json").read_text())["submissions"]
    assert (sub["raw_score"], sub["score"], sub["max_score"]) == (5.0, 3.75, 5.0)  # 4 + 1, less a day's 25%
    row = next(csv.DictReader((out / "book.csv").open()))
    assert (row["total"], row["raw_total"], row["late_percent"]) == ("3.75", "5", "25")


def test_a_late_policy_whose_times_cannot_be_read_stops_before_grading(tmp_path, capsys):
    course_folder(tmp_path, FULL.replace('times = "times.csv"', 'times = "gradescope"'))
    (tmp_path / "a.py").write_text("v_L = 1\n")
    assert main([str(tmp_path), "--submission-metadata", str(tmp_path / "none.json")]) == 2
    assert "[late]" in capsys.readouterr().err
    course_folder(tmp_path)
    (tmp_path / "times.csv").write_text("student,time\nalice,yesterday\n")
    assert main([str(tmp_path)]) == 2
    assert "line 2: 'yesterday' is not an ISO 8601 date-time" in capsys.readouterr().err


def test_a_course_that_keeps_the_best_keeps_an_earlier_higher_score_only(tmp_path):
    """keep = "best" ([gradescope]): the best of Gradescope's previous_submissions stands where it
    is higher, shown with this submission's own score in every report; a lower one changes nothing."""
    import json

    from grader import earlier
    from grader.results import ExerciseResult, SubmissionResult, submission_from_json

    (tmp_path / "bracket-grader.toml").write_text('[gradescope]\nkeep = "best"\n')
    assert course_file.read(tmp_path / "bracket-grader.toml").keep == "best"
    (tmp_path / "bad.toml").write_text('\n[gradescope]\nkeep = "highest"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:3: \[gradescope\] keep: one of latest, best"):
        course_file.read(tmp_path / "bad.toml")
    result = SubmissionResult("alice.py", (ExerciseResult("get_WOV", "passed", 1.0, 1.0),
                                           ExerciseResult("embedding", "failed", 0.0, 1.0)))
    meta = tmp_path / "submission_metadata.json"
    meta.write_text(json.dumps({"previous_submissions": [{"submission_time": "2026-12-01T10:00:00+00:00", "score": 2.0},
                                                         {"submission_time": "x", "score": "nan"}, "junk"]}))
    kept = earlier.keep_best(result, meta)
    assert (kept.score, kept.own_score, kept.kept.of) == (2.0, 1.0, 3)
    assert "an earlier submission's, kept: this one scored 1" in reports.score_text(kept)
    gradescope = json.loads(reports.gradescope_json(kept))
    assert gradescope["score"] == 2.0 and "that score stands (this submission scored 1)" in gradescope["output"].replace("\\", "")
    back = submission_from_json(reports.submission_json(kept))  # a resumed or merged report keeps it
    assert (back.kept, back.score, back.own_score) == (kept.kept, 2.0, 1.0)
    meta.write_text(json.dumps({"previous_submissions": [{"submission_time": "t", "score": 0.5}]}))
    assert earlier.keep_best(result, meta) == result
    # at most the assignment's maximum (its points may have changed); a wrong file uploaded keeps it too
    meta.write_text(json.dumps({"previous_submissions": [{"submission_time": "t", "score": 7}]}))
    assert earlier.keep_best(result, meta).score == 2.0
    from grader.results import NotGradable
    empty = SubmissionResult("alice.py", (ExerciseResult("get_WOV", "error", 0.0, 1.0),), not_gradable=NotGradable("empty"))
    assert earlier.keep_best(empty, meta).score == 1.0
    meta.write_text(json.dumps({"previous_submissions": []}))
    assert earlier.keep_best(result, meta) == result
