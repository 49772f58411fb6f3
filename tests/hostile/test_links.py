"""A submission that is a symbolic link is refused, never followed: as a single path, in a folder,
and pointing anywhere (the installed reference solutions, a classmate's file, nothing)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hostile.cases import BASE

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_links_are_refused_as_a_path_and_in_a_folder(tmp_path, grader):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "honest.py").write_text(BASE)
    (folder / "answers.py").symlink_to(ROOT / "reference" / "solutions.py")
    (folder / "copied.py").symlink_to(folder / "honest.py")
    (folder / "dangling.py").symlink_to(tmp_path / "nothing.py")
    report = tmp_path / "grades.json"
    proc = cli(folder, "--only", "get_WOV,get_post_final_ln_dir", "--quiet", "--json", report)
    assert proc.returncode == 0, proc.stderr[-2000:]
    subs = {Path(s["path"]).name: {e["id"]: e for e in s["exercises"]} for s in json.loads(report.read_text())["submissions"]}
    assert set(subs) == {"honest.py", "answers.py", "copied.py", "dangling.py"}
    assert subs["honest.py"]["get_WOV"]["status"] == "passed"
    for name in ("answers.py", "copied.py", "dangling.py"):
        for item in ("get_WOV", "get_post_final_ln_dir"):
            assert subs[name][item]["status"] == "error" and "symbolic link" in subs[name][item]["feedback"], (name, item)
    single = cli(folder / "answers.py", "--only", "get_post_final_ln_dir", "--json", tmp_path / "one.json")
    assert single.returncode == 0, single.stderr[-2000:]
    verdict = json.loads((tmp_path / "one.json").read_text())["submissions"][0]["exercises"]
    assert {e["id"]: e["status"] for e in verdict}["get_post_final_ln_dir"] == "error"
