"""A failure in the submission's own top-level code costs only what depends on it.

In the course layout, demo cells call the student's functions at module level (that is how the
object items are built). A function that hangs or ends the process, reached from such a cell,
used to cost the whole submission: every item timed out after the submission's limit (0/23), or
the worker ended "before grading began" (9/23). Now the statement is stopped (a soft limit, then a
kill and a fresh worker without it) and only what depends on it is lost; an object computed with
the broken function is computed again with the reference's (each mistake scored once)."""
from __future__ import annotations

import pytest

from grader.examples import COURSE_LAYOUT_CORRECT
from grader.config import Limits
from tests.conftest import COURSE_LAYOUT_PROVIDED, with_config
from grader.feedback import all_notes, feedback

pytestmark = [pytest.mark.slow, pytest.mark.worker]

LIMITS = Limits(item_seconds=20, case_seconds=4, statement_seconds=4, submission_seconds=400)
HANG = ("    all_hook_names = embedding_hook_names + head_hook_names + mlp_hook_names\n",
        "    all_hook_names = embedding_hook_names + head_hook_names + mlp_hook_names\n    while True:\n        pass\n")
SWALLOWED_HANG = ("    all_hook_names = embedding_hook_names + head_hook_names + mlp_hook_names\n",
                  "    all_hook_names = embedding_hook_names + head_hook_names + mlp_hook_names\n    while True:\n"
                  "        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n")
EXIT = ('    return model.W_V[layer, head] @ model.W_O[layer, head]\n',
        '    import os\n    os._exit(0)\n')


def graded(grader, tmp_path, edit):
    text = COURSE_LAYOUT_CORRECT.read_text()
    assert edit[0] in text
    path = tmp_path / "submission.py"
    path.write_text(text.replace(edit[0], edit[1]))
    result = with_config(grader, limits=LIMITS).grade(path)
    return {e.id: e for e in result.exercises}, result


@pytest.mark.parametrize("edit", [HANG, SWALLOWED_HANG], ids=["hangs", "hangs and swallows the alarm"])
def test_a_helper_that_hangs_at_module_level_costs_only_itself(grader, tmp_path, edit):
    by_id, result = graded(grader, tmp_path, edit)
    assert by_id["get_out_by_components"].status == "timeout", feedback(by_id["get_out_by_components"])
    for item in ("out_by_component_in_unbalanced_dir", "out_by_component_in_pre_20_unbalanced_dir"):
        assert by_id[item].status == "passed" and "given a correct get_out_by_components" in feedback(by_id[item]), \
            (item, feedback(by_id[item]), result.notes)
    # everything but the one item: the course's given functions are provided (out of the maximum)
    assert result.score == result.max_score - 1 == 22 - len(COURSE_LAYOUT_PROVIDED), \
        [(e.id, e.status, feedback(e)[:200]) for e in result.exercises if e.status != "passed"]
    assert any("ran past its limit" in n for n in all_notes(result)), all_notes(result)
    assert result.seconds < 300


def test_a_helper_that_ends_the_process_at_module_level_costs_only_itself(grader, tmp_path):
    by_id, result = graded(grader, tmp_path, EXIT)
    assert by_id["get_WOV"].status == "error", feedback(by_id["get_WOV"])
    for item in ("get_pre_20_dir", "get_out_by_neuron_in_20_dir", "out_by_component_in_pre_20_unbalanced_dir"):
        assert by_id[item].status == "passed" and "given a correct get_WOV" in feedback(by_id[item]), \
            (item, feedback(by_id[item]), result.notes)
    # everything but the one item: the course's given functions are provided (out of the maximum)
    assert result.score == result.max_score - 1 == 22 - len(COURSE_LAYOUT_PROVIDED), \
        [(e.id, e.status, feedback(e)[:200]) for e in result.exercises if e.status != "passed"]
    assert any("ended the worker process" in n and "skipped" in n for n in all_notes(result)), all_notes(result)
