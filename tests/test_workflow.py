"""The pull-request workflow: valid for GitHub Actions, and its grading steps, run here, grade with
the pinned grader even when the pull request also edits grader files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.variants import WRONG, write_variant

WORKFLOW = ROOT / "ci" / "grade-pull-request.yml"


def test_workflow_validates_against_the_github_workflow_schema():
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_pins_the_grader_and_never_runs_the_pull_requests_copy():
    wf = yaml.safe_load(WORKFLOW.read_text())
    trigger = wf.get("on") or wf.get(True)
    assert "pull_request_target" in trigger and wf["permissions"] == {"contents": "read"}
    steps = wf["jobs"]["grade"]["steps"]
    checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout")]
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)
    grader = next(s for s in checkouts if s["with"].get("path") == "grader")
    assert grader["with"]["ref"] == "${{ env.GRADER_REF }}"
    runs = " ".join(s.get("run", "") for s in steps)
    assert "submission/" not in runs.split("bracket-grade")[0].split("setup.sh")[0]
    assert "grader/.venv/bin/bracket-grade" in runs and "--fail-under" in runs and "--github" in runs


def test_write_workflow_copies_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "--write-workflow", str(tmp_path / ".github/workflows/g.yml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and (tmp_path / ".github/workflows/g.yml").read_text() == WORKFLOW.read_text()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x.invalid",
                               "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x.invalid"}).stdout.strip()


@pytest.mark.slow
@pytest.mark.worker
def test_grading_steps_run_locally_with_the_pinned_grader(tmp_path, solved_dir):
    ws = tmp_path / "ws"
    sub = ws / "submission"
    sub.mkdir(parents=True)
    git(sub, "init", "-q")
    (sub / "README.md").write_text("course repo\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-qm", "base")
    base = git(sub, "rev-parse", "HEAD")
    # the pull request: a submission with get_WOV wrong, and a "grader" that would pass everything
    write_variant(solved_dir / "exercises.py", sub / "alice.py", {"get_WOV": WRONG["get_WOV"]})
    (sub / "grader").mkdir()
    (sub / "grader" / "compare.py").write_text("def tensor(*a, **k):\n    return None\n")
    (sub / "grader" / "cli.py").write_text("print('all passed'); raise SystemExit(0)\n")
    (sub / "bob.py").symlink_to(ROOT / "reference" / "solutions.py")  # "my" submission: the answers
    git(sub, "add", "-A")
    git(sub, "commit", "-qm", "my work")
    (ws / "grader").symlink_to(ROOT)  # the pinned checkout
    steps = {s.get("name"): s for s in yaml.safe_load(WORKFLOW.read_text())["jobs"]["grade"]["steps"]}
    (tmp_path / "runner-temp").mkdir()
    env = {**os.environ, "GITHUB_WORKSPACE": str(ws), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "GITHUB_OUTPUT": str(tmp_path / "output.txt"), "GITHUB_ENV": str(tmp_path / "env.txt"),
           "RUNNER_TEMP": str(tmp_path / "runner-temp"), "BASE_SHA": base, "FAIL_UNDER": "100"}
    # the sandbox step runs here only where bubblewrap is installed (it would install it otherwise)
    sandbox = ("Install the workers' sandbox",) if shutil.which("bwrap") else ()
    for name in (*sandbox, "Key the grader's reference cache", "Find the changed submissions", "Grade"):
        proc = subprocess.run(["bash", "-e", "-c", steps[name]["run"]], cwd=ws, env=env, capture_output=True, text=True,
                              timeout=900)
        if (tmp_path / "env.txt").exists():  # what a step exports, the next ones see (as on a runner)
            env.update(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines())
        if name == "Install the workers' sandbox":  # installed already (as .ci/run does): it says where
            assert proc.returncode == 0 and proc.stdout.strip() == shutil.which("bwrap"), proc.stdout + proc.stderr
        if name == "Find the changed submissions":
            assert proc.returncode == 0, proc.stderr
            assert (ws / "changed.txt").read_text().split() == ["submission/alice.py"]
            assert "::error file=bob.py::a submission must be a file, not a symbolic link" in proc.stdout
    assert proc.returncode == 1, proc.stdout + proc.stderr  # below --fail-under 100: the check fails
    assert "::error file=submission/alice.py,title=get_WOV failed::" in proc.stdout
    assert "all passed" not in proc.stdout  # the pull request's grader/cli.py never ran
    summary = (tmp_path / "summary.md").read_text()
    assert "| get_WOV | FAIL |" in summary and "| embedding | PASS |" in summary
    assert (ws / "report.json").exists()
    stop = [ln for ln in proc.stdout.splitlines() if ln.startswith("::stop-commands::")]
    assert len(stop) == 1 and f"::{stop[0].split('::')[2]}::" in proc.stdout
    # the cache step saves the folder the grader filled, under the key it answers for
    cache = steps["Restore the reference cache"]
    assert cache["uses"].startswith("actions/cache@") and cache["with"]["path"] == "${{ runner.temp }}/bracket-grader-cache"
    assert cache["with"]["key"] == "${{ steps.cache-key.outputs.key }}" and steps["Key the grader's reference cache"]["id"] == "cache-key"
    key = dict(line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines())["key"]
    folder = Path(env["BRACKET_GRADER_CACHE"])
    assert folder == tmp_path / "runner-temp" / "bracket-grader-cache"
    assert (folder / key.removeprefix("bracket-grader-") / "expected" / "get_WOV.json").is_file()
    assert all(p.stat().st_uid == os.getuid() for p in folder.rglob("*"))  # the runner's user can save it
