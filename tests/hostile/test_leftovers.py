"""Submissions graded one after another in one slot (one warm worker, whose children every later
submission's workers are forked from) share nothing: what the first leaves in the sandbox's
writable places is gone before the next starts, and no child can open the warm worker's memory
(where it could change what every later classmate's children start from); and each is the first
process the kernel ends where the host runs out of memory, not the grader. Graded through the
command line in each of the three set-ups (tests/hostile/setups.py)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.hostile.cases import BASE
from tests.hostile.setups import SETUPS, make_runner, require

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("hostile")]

PLACES = ("/tmp", "/dev/shm", "/dev", "/", "/usr")

LEAVES = BASE + f'''
LEFT = []
for _folder in {PLACES!r}:
    try:
        with open(os.path.join(_folder, "left-by-a-classmate"), "w") as _f:
            _f.write("x")
        LEFT.append(_folder)
    except OSError:
        pass

def get_WOV(model, layer, head):  # needs LEFT, so even a lean run writes
    return model.W_V[layer, head] @ model.W_O[layer, head] + 0 * len(LEFT)
'''

LOOKS = BASE + f'''
SEEN = [_folder for _folder in {PLACES!r} if os.path.exists(os.path.join(_folder, "left-by-a-classmate"))]
try:
    with open(f"/proc/{{os.getppid()}}/mem", "rb"):
        MEMORY = "opened the warm worker's memory"
except OSError:
    MEMORY = ""
try:  # the kernel ends a worker, never the grader, where the host runs out of memory
    with open("/proc/self/oom_score_adj") as _f:
        OOM = "" if _f.read().strip() == "1000" else "not the first the kernel ends when memory runs out"
except OSError:
    OOM = "no OOM score"

def get_WOV(model, layer, head):
    if SEEN or MEMORY or OOM:
        raise RuntimeError(f"saw what a classmate left in {{SEEN}}; {{MEMORY}}; {{OOM}}")
    return model.W_V[layer, head] @ model.W_O[layer, head]
'''


@pytest.mark.parametrize("setup", SETUPS)
def test_the_next_submission_in_a_slot_sees_nothing_the_last_one_left(setup, reference):
    require(setup)
    folder = Path(tempfile.mkdtemp(prefix="bracket-leftovers-"))  # where another user can reach it
    os.chmod(folder, 0o755)
    try:
        runner = make_runner(setup, folder / "grader")
        subs = folder / "class"
        subs.mkdir(mode=0o755)
        for name, text in (("a_leaves.py", LEAVES), ("b_looks.py", LOOKS)):  # graded in this order, one slot
            (subs / name).write_text(text)
            os.chmod(subs / name, 0o644)
        report = runner.home / "grades.json"
        proc = runner.run(str(subs), "--only", "get_WOV", "--workers", "1", "--quiet", "--json", str(report))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        got = [(s["path"], {e["id"]: (e["status"], e["feedback"]) for e in s["exercises"]}["get_WOV"])
               for s in json.loads(report.read_text())["submissions"]]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert [Path(p).name for p, _ in got] == ["a_leaves.py", "b_looks.py"]
    assert got[0][1][0] == "passed", got[0]
    assert got[1][1][0] == "passed", got[1]


def test_both_are_graded_in_one_slot_when_one_worker_grades_them(grader, tmp_path):
    """What the command-line test above relies on, checked where it can be seen: with one worker,
    the two submissions share the one slot (and its warm worker)."""
    from grader.config import GradeConfig
    from grader.engine import Grader

    require("root")
    g = Grader(GradeConfig(only=("get_WOV",)))
    try:
        g.start(1)
        results = []
        for name, text in (("a_leaves.py", LEAVES), ("b_looks.py", LOOKS)):
            (tmp_path / name).write_text(text)
            results.append(g.grade(tmp_path / name))
        assert len(g.pool.slots) == 1, "both graded in the one slot"
    finally:
        g.close()
    assert [{e.id: e.status for e in r.exercises}["get_WOV"] for r in results] == ["passed", "passed"]
