"""A batch of 50 submissions, 10 of them hostile, completes; every honest submission's scores are
identical to grading it alone."""
from __future__ import annotations

from dataclasses import replace

import pytest

from grader.engine import Grader
from grader.sandbox import Limits
from tests.hostile.cases import BASE, CASES

pytestmark = pytest.mark.slow

ITEMS = ("get_post_final_ln_dir", "get_WOV", "embedding")
HOSTILE_NAMES = ["infinite_python_loop", "os_exit_in_item", "output_flood", "fork_bomb", "kill_parent",
                 "detached_child", "huge_allocation", "forged_messages", "sys_exit_at_import", "mutates_model_and_globals"]
HONEST_BODIES = [
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 0] - model.W_U[:, 1]\n",
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 1] - model.W_U[:, 0]\n",
    "def get_post_final_ln_dir(model):\n    return (model.W_U @ t.tensor([1.0, -1.0])).double()\n",
    "def get_post_final_ln_dir(model):\n    return model.W_U[:, 0]\n",
]


def test_fifty_submissions_with_ten_hostile(grader, tmp_path):
    g = Grader.__new__(Grader)
    g.__dict__.update(grader.__dict__)
    g.config = replace(grader.config, only=ITEMS, limits=Limits(item_seconds=20, case_seconds=8, submission_seconds=120,
                                                                memory_bytes=6 * 1024**3))
    folder = tmp_path / "batch"
    folder.mkdir()
    by_name = {c.name: c for c in CASES}
    honest = []
    for i in range(40):
        path = folder / f"honest_{i:02d}.py"
        body = HONEST_BODIES[i % len(HONEST_BODIES)]
        if i % 5 == 0:  # some get embedding wrong too
            body += "\ndef embedding(model, tokenizer, char):\n    return model.W_E[0]\n"
        path.write_text(BASE + "\nPORT = 9\n" + body)
        honest.append(path)
    for name in HOSTILE_NAMES:
        (folder / f"hostile_{name}.py").write_text(BASE + "\nPORT = 9\n" + by_name[name].code)
    results = {r.path: r for r in g.grade_many([folder], workers=2)}
    assert len(results) == 50
    alone = {r.path: r for r in g.grade_many(honest, workers=2)}  # no hostile neighbours this time
    for path in honest:
        together = results[str(path)]
        assert [e.to_json() for e in alone[str(path)].exercises] == [e.to_json() for e in together.exercises]
    for path in honest:
        got = {e.id: e.status for e in results[str(path)].exercises if e.id in ITEMS}
        assert got["get_WOV"] == "passed"
        assert got["embedding"] == ("failed" if int(path.stem[-2:]) % 5 == 0 else "passed")
