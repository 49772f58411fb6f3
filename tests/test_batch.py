"""Batch helpers and instructor outputs, on fake results (fast), and shards end to end (slow)."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader import reports
from grader.batch import ResultsLog, merge_reports
from grader.catalogue import IDS
from grader.results import ExerciseResult, SubmissionResult


def fake(path: str, wrong: dict[str, str] | None = None) -> SubmissionResult:
    wrong = wrong or {}
    ex = tuple(ExerciseResult(i, "failed" if i in wrong else "passed", 0.0 if i in wrong else 1.0, 1.0,
                              wrong.get(i, "all 2 cases passed")) for i in IDS)
    return SubmissionResult(path, ex, ("note",), 1.5)


def test_merged_shard_reports_equal_a_single_report(tmp_path):
    results = [fake(f"sub{i}.py", {"get_WOV": "x"} if i % 2 else None) for i in range(6)]
    single = reports.json_text(sorted(results, key=lambda r: r.path))
    for k, part in enumerate((results[::2], results[1::2])):
        (tmp_path / f"shard{k}.json").write_text(reports.json_text(part))
    merged = merge_reports([tmp_path / "shard0.json", tmp_path / "shard1.json"])
    assert reports.json_text(merged) == single


def test_results_log_survives_a_cut_line(tmp_path):
    log = ResultsLog(tmp_path / "log.jsonl")
    log.append("k1", fake("a.py"))
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"key": "k2", "result": {"path": "b.py", "sco')  # interrupted mid-write
    again = ResultsLog(tmp_path / "log.jsonl")
    assert list(again.done) == ["k1"] and again.done["k1"] == fake("a.py")


def with_cases(result: SubmissionResult, item: str, cases: tuple) -> SubmissionResult:
    from dataclasses import replace

    return replace(result, exercises=tuple(ExerciseResult(e.id, "failed", 0.0, 1.0, cases=cases) if e.id == item else e
                                           for e in result.exercises))


def test_gradebook_summary_and_feedback_files():
    from grader.results import CaseOutcome

    results = [with_cases(fake("alice/exercises.ipynb", {"get_ln_fit": "x"}), "get_ln_fit",
                          (CaseOutcome("x", False, "wrong", "r2: 1 of 1 elements differ", cause="scaled"),)),
               with_cases(fake("bob.py", {"get_ln_fit": "x"}), "get_ln_fit",
                          (CaseOutcome("y", False, "wrong", "r2: 3 of 1 elements differ", cause="scaled"),
                           CaseOutcome("z", True)))]
    rows = list(csv.reader(io.StringIO(reports.gradebook_csv(results))))
    assert rows[0][:2] == ["student", "path"] and rows[1][0] == "alice" and rows[2][0] == "bob"
    assert rows[1][rows[0].index("total")] == "22" and rows[1][rows[0].index("failed")] == "1"
    summary = reports.item_summary_markdown(results)
    line = next(ln for ln in summary.splitlines() if ln.startswith("| get_ln_fit "))
    # one mistake, counted twice: grouped by its likely cause (a field), not by the words around it
    assert "| 0 | 0 | 2 |" in line and "likely cause: it points the right way but is scaled differently (2)" in line
    md = reports.feedback_markdown(results[0])
    assert "**Score: 22 / 23**" in md and "## 6. get_ln_fit: failed" in md


def test_platform_formats_have_their_fields():
    r = fake("a.py", {"get_WOV": "wrong"})
    classroom = json.loads(reports.classroom_json(r))
    assert classroom["version"] == 1 and classroom["status"] == "fail" and classroom["max_score"] == 23
    assert {t["status"] for t in classroom["tests"]} == {"pass", "fail"}
    assert all({"name", "status", "message", "score"} <= set(t) for t in classroom["tests"])
    gs = json.loads(reports.gradescope_json(r))
    assert gs["score"] == 22 and len(gs["tests"]) == 23
    assert all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"} for t in gs["tests"])
    assert {t["status"] for t in gs["tests"]} <= {"passed", "failed"}


def test_annotations_cannot_inject_workflow_commands():
    r = fake("a.py", {"get_WOV": "boom\n::set-output name=score::23\n%0A"})
    text = reports.github_annotations([r])
    assert text.count("\n") == 1 and text.startswith("::error file=a.py,title=get_WOV failed::")
    assert "%0A::set-output" in text  # the student's newline is escaped, so no second command starts
    assert [ln for ln in text.splitlines() if ln.startswith("::")] == text.splitlines()[:1]


@pytest.mark.slow
@pytest.mark.worker
def test_cli_shards_merge_into_the_single_run_report(solved_dir, tmp_path):
    from tests.variants import WRONG, write_variant

    folder = tmp_path / "subs"
    folder.mkdir()
    for i, item in enumerate(["get_WOV", "embedding", None, "get_WOV"]):
        src = solved_dir / "exercises.py"
        if item:
            write_variant(src, folder / f"s{i}.py", {item: WRONG[item]})
        else:
            (folder / f"s{i}.py").write_text(src.read_text())
    common = ["--only", "get_WOV,embedding", "--quiet", "--workers", "2"]

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        return proc

    cli(folder, "--json", tmp_path / "single.json", *common)
    for i in (1, 2):
        cli(folder, "--shard", f"{i}/2", "--json", tmp_path / f"shard{i}.json", *common)
    cli("--merge", tmp_path / "shard1.json", tmp_path / "shard2.json", "--json", tmp_path / "merged.json")

    def strip(path):
        """What must agree: every verdict, and the run's model, data, device and isolation (not its
        date, time taken, memory taken, workers or shard count)."""
        data = json.loads(Path(path).read_text())
        for s in data["submissions"]:
            s.pop("seconds")
        for key in ("date", "seconds", "trusted_peak_mib", "workers", "shards"):
            data["run"].pop(key, None)
        return data

    assert json.loads((tmp_path / "merged.json").read_text())["run"]["shards"] == 2
    assert strip(tmp_path / "merged.json") == strip(tmp_path / "single.json")
    # resume: nothing left to grade, same report
    proc = cli(folder, "--json", tmp_path / "single.json", "--resume", *common)
    assert "resuming: 4 already graded, 0 to go" in proc.stderr
