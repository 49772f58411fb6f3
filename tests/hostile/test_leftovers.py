"""Submissions graded one after another in one slot (one warm worker, whose children every later
submission's workers are forked from) share nothing: what the first leaves in the sandbox's
writable places is gone before the next starts, and no child can open the warm worker's memory
(where it could change what every later classmate's children start from)."""
from __future__ import annotations

import pytest

from grader.config import GradeConfig
from tests.conftest import skip_unless_sandbox_required
from tests.hostile.cases import BASE

pytestmark = pytest.mark.slow

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

def get_WOV(model, layer, head):
    if SEEN or MEMORY:
        raise RuntimeError(f"saw what a classmate left in {{SEEN}}; {{MEMORY}}")
    return model.W_V[layer, head] @ model.W_O[layer, head]
'''


def test_the_next_submission_in_a_slot_sees_nothing_the_last_one_left(grader, tmp_path):
    from grader.engine import Grader

    if not grader.isolation.bwrap:
        skip_unless_sandbox_required("without bubblewrap a worker writes the machine's own /tmp (the README's "
                                     "warning says so)")
    g = Grader(GradeConfig(only=("get_WOV",)))
    try:
        g.start(1)
        results = []
        for name, text in (("leaves.py", LEAVES), ("looks.py", LOOKS)):
            (tmp_path / name).write_text(text)
            results.append(g.grade(tmp_path / name))
        assert len(g._slots) == 1, "both graded in the one slot"
    finally:
        g.close()
    verdicts = [{e.id: (e.status, e.feedback) for e in r.exercises}["get_WOV"] for r in results]
    assert verdicts[0][0] == "passed", verdicts[0]
    assert verdicts[1][0] == "passed", verdicts[1]
