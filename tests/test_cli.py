"""The command line: exit codes, report formats, points files."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from grader.catalogue import IDS
from grader.cli import UsageError, main, read_points


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=900)


@pytest.mark.parametrize("args, message", [
    (["no/such/file.py"], "no such file or folder"),
    (["--only", "not_an_item", "x.py"], "unknown item id"),
    (["--weights", "missing.pt", "x.py"], "no such file"),
    (["--device", "tpu"], "invalid choice"),
    (["--statement-timeout", "0", "x.py"], "above 0"),
    (["--timeout", "nan", "x.py"], "above 0"),
    (["--submission-timeout", "inf", "x.py"], "above 0"),
])
def test_usage_errors_exit_2(args, message, tmp_path):
    (tmp_path / "x.py").write_text("")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_points_files_in_json_or_lines(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"embedding": 0, "get_ln_fit": 3}))
    assert read_points(tmp_path / "p.json") == {"embedding": 0.0, "get_ln_fit": 3.0}
    (tmp_path / "p.txt").write_text("# weights\nembedding = 0\nget_ln_fit: 2.5\n")
    assert read_points(tmp_path / "p.txt") == {"embedding": 0.0, "get_ln_fit": 2.5}
    (tmp_path / "bad.txt").write_text("embedding = lots\n")
    with pytest.raises(UsageError):
        read_points(tmp_path / "bad.txt")
    assert main(["--points", str(tmp_path / "bad.txt"), str(tmp_path / "p.json")]) == 2


@pytest.mark.slow
@pytest.mark.worker
def test_reports_have_all_23_ids_in_order_and_points_apply(solved_dir, tmp_path):
    (tmp_path / "points.json").write_text(json.dumps({"get_WOV": 4, "embedding": 0}))
    out = tmp_path / "out"
    proc = run_cli(solved_dir / "exercises.py", "--only", "get_WOV,embedding", "--points", tmp_path / "points.json",
                   "--json", out / "r.json", "--csv", out / "r.csv", "--junit", out / "r.xml",
                   "--gradescope", out / "results.json")
    assert proc.returncode == 0, proc.stderr
    assert "PASS get_WOV" in proc.stdout and "1 submission(s) graded" in proc.stdout
    report = json.loads((out / "r.json").read_text())
    (sub,) = report["submissions"]
    assert [e["id"] for e in sub["exercises"]] == list(IDS)
    by_id = {e["id"]: e for e in sub["exercises"]}
    assert {k: by_id["get_WOV"][k] for k in ("id", "status", "score", "max_score", "feedback")} == {
        "id": "get_WOV", "status": "passed", "score": 4.0, "max_score": 4.0, "feedback": "all 7 cases passed"}
    assert [c["passed"] for c in by_id["get_WOV"]["cases"]] == [True] * 7 and report["schema"] == 5
    assert by_id["embedding"]["max_score"] == 0.0 and by_id["get_ln_fit"]["status"] == "not_autograded"
    assert sub["score"] == 4.0 and sub["max_score"] == 4.0
    rows = list(csv.reader((out / "r.csv").open()))
    assert rows[0] == ["path", "score", "max_score", *IDS, "not_gradable", "raw_score", "late_percent"]
    assert rows[1][1:3] == ["4", "4"]
    suite = ET.parse(out / "r.xml").getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == list(IDS)
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == 4.0
    assert {t["name"] for t in gradescope["tests"]} == {"12. get_WOV", "19. embedding"}
    assert all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"} for t in gradescope["tests"])


def test_the_default_worker_count_follows_the_affinity_mask_and_cgroup_quotas(tmp_path, monkeypatch):
    """A container started with --cpus=1.5 on a 64-core host has two cores to give, not 64; so has
    a process in a systemd slice whose parent holds the quota."""
    from grader.config import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    own = tmp_path / "self-cgroup"
    root = tmp_path / "cgroup"
    (root / "slice" / "job").mkdir(parents=True)
    assert usable_cores(root, tmp_path / "absent") == 8  # no cgroup v2 to read: the mask
    own.write_text("0::/\n")  # in a container: its own root
    for quota, expected in [("max 100000", 8), ("150000 100000", 2), ("20000 100000", 1), ("6400000 100000", 8),
                            ("garbage", 8), ("100000 0", 8)]:
        (root / "cpu.max").write_text(quota + "\n")
        assert usable_cores(root, own) == expected, quota
    (root / "cpu.max").unlink()
    own.write_text("12:cpu,cpuacct:/old\n0::/slice/job\n")  # on a host: the quota may sit on a parent
    (root / "slice" / "job" / "cpu.max").write_text("max 100000\n")
    (root / "slice" / "cpu.max").write_text("300000 100000\n")
    assert usable_cores(root, own) == 3


def test_the_limits_flags_reach_the_grader():
    """Each limit an instructor sets on the command line is the one the workers get (a statement's
    limit too: a class whose demo cells are slow needs more than the default, a red-team run less)."""
    from grader.cli import build_parser, validate

    config = validate(build_parser().parse_args(["x.py", "--timeout", "30", "--submission-timeout", "200",
                                                 "--statement-timeout", "7.5", "--memory", "2"]))
    assert (config.limits.item_seconds, config.limits.submission_seconds) == (30, 200)
    assert config.limits.statement_seconds == 7.5 and config.limits.case_seconds == 15
    assert config.limits.memory_bytes == 2 * 1024**3
