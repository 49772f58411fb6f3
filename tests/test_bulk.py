"""The night before marks are due: a class of 120 through the real CLI, with progress, an
interrupt a third of the way, a resume, and the instructor's files at the end.

The folder is generated from the corpus (each submission copied under several student names), and
graded on six items so the test takes a minute; the corpus test grades every item. (300 students
behave as 120 do: each is graded on its own, and the batch benchmark measures a larger class.)
"""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.corpus.submissions import given_unchanged
from tests.corpus.submissions import CORPUS, build

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("bulk")]

ITEMS = ("is_balanced_forloop", "get_post_final_ln_dir", "LN_hook_names", "get_WOV", "embedding", "cos_sim_with_MLP_weights")
N = 120


def class_folder(folder: Path, n: int = N) -> dict[str, object]:
    """n submissions named student_XXX_<corpus name>, each file unique (the student's name in it)."""
    built = build(folder.parent / "corpus-sources")
    folder.mkdir()
    labels = {}
    for i in range(n):
        sub = CORPUS[i % len(CORPUS)]
        text = built[sub.name].read_text()
        if sub.name.endswith(".ipynb"):
            nb = json.loads(text)
            nb["metadata"]["student"] = f"student {i:03d}"
            text = json.dumps(nb)
        else:
            text = f"# student {i:03d}\n" + text
        name = f"student_{i:03d}_{sub.name}"
        (folder / name).write_text(text)
        labels[name] = sub
    return labels


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


def test_three_hundred_submissions_interrupted_and_resumed(tmp_path, grader):
    subs = tmp_path / "class"
    labels = class_folder(subs)
    out = tmp_path / "out"
    common = [str(subs), "--workers", "2", "--only", ",".join(ITEMS), "--quiet", "--json", str(out / "report.json"),
              "--gradebook", str(out / "gradebook.csv"), "--summary", str(out / "summary.md"),
              "--feedback-dir", str(out / "feedback")]
    log = out / "report.json.log.jsonl"
    out.mkdir()

    # as from a terminal: pytest-xdist's workers ignore SIGINT, and a child would inherit that
    first = subprocess.Popen(cli(*common), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and first.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 40:
            break
        time.sleep(0.5)
    assert first.poll() is None, first.communicate()
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=180)
    assert first.returncode == 130, (stdout[-2000:], stderr[-2000:])
    done_first = len(log.read_text().splitlines())
    assert 40 <= done_first < N
    assert "interrupted:" in stderr and "--resume" in stderr
    assert f"/{N}] " in stderr  # plain progress lines (not a terminal): [done/total] rate, ETA, failures
    assert not (out / "gradebook.csv").exists()  # reports are written by a run that finished

    second = subprocess.run(cli(*common, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming: {done_first} already graded, {N - done_first} to go" in second.stderr
    assert f"[{N - done_first}/{N - done_first}]" in second.stderr
    assert len(log.read_text().splitlines()) == N  # nothing graded twice

    report = json.loads((out / "report.json").read_text())["submissions"]
    assert len(report) == N
    for sub in report:
        label = labels[Path(sub["path"]).name]
        got = {e["id"]: e["status"] for e in sub["exercises"] if e["id"] in ITEMS}
        given = given_unchanged(label)
        want = {i: label.expect.get(i, ("provided" if i in given else "passed", ""))[0] for i in ITEMS}
        assert got == want, (sub["path"], got, want)

    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N and all(item in rows[0] for item in ITEMS)
    summary = (out / "summary.md").read_text()
    assert all(item in summary for item in ITEMS)
    assert len(list((out / "feedback").glob("*.md"))) == N
