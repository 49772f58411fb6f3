"""End to end through real worker processes: full marks, zero marks, and every item's verdict
moving exactly when (and only when) that item is wrong."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.catalogue import BY_ID, IDS
from grader.examples import COURSE_LAYOUT_CORRECT
from tests.conftest import COURSE_LAYOUT_PROVIDED, statuses, with_config
from tests.variants import ALTERNATIVE, WRONG, write_variant
from grader.feedback import feedback

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def dependents(ids: set[str]) -> set[str]:
    """Items that call any of `ids`, directly or through others (declared in the catalogue)."""
    out = set(ids)
    changed = True
    while changed:
        changed = False
        for ex in BY_ID.values():
            if ex.id not in out and any(c in out for c in ex.calls):
                out.add(ex.id)
                changed = True
    return out


def test_solved_module_scores_full_marks(grader, solved_dir):
    result = grader.grade(solved_dir / "exercises.py")
    assert [e.id for e in result.exercises] == list(IDS)
    assert statuses(result) == dict.fromkeys(IDS, "passed"), [feedback(e) for e in result.exercises if e.status != "passed"]
    assert result.score == result.max_score == 23


def test_solved_notebook_scores_full_marks_through_a_kernel(grader, solved_dir):
    result = with_config(grader, notebook_mode="kernel").grade(solved_dir / "exercises.ipynb")
    assert statuses(result) == dict.fromkeys(IDS, "passed"), [feedback(e) for e in result.exercises if e.status != "passed"]


@pytest.mark.parametrize("name,mode", [("exercises.py", "lean"), ("exercises.ipynb", "fast"),
                                       pytest.param("exercises.ipynb", "kernel", marks=pytest.mark.kernel)])
def test_untouched_template_scores_zero_as_not_attempted(grader, name, mode):
    from reference.make_template import TEMPLATE_DIR

    result = with_config(grader, notebook_mode=mode).grade(TEMPLATE_DIR / name)
    assert result.score == 0 and result.max_score == 23
    for e in result.exercises:
        assert e.status == "not_attempted" and e.starter == "bracket-grader template", (e.id, e.status, feedback(e))
        assert feedback(e).startswith(f"not attempted: `{e.id}` is the starter's stub, unchanged"), feedback(e)


def course_layout_statuses() -> dict[str, str]:
    """The course-layout file: the two functions the course's notebook gives complete are there as
    given (provided: worth nothing, out of the maximum); every other item is its author's work."""
    return {i: "provided" if i in COURSE_LAYOUT_PROVIDED else "passed" for i in IDS}


def test_course_layout_submission_scores_full_marks(grader):
    result = grader.grade(COURSE_LAYOUT_CORRECT)
    assert statuses(result) == course_layout_statuses(), [(e.id, feedback(e)) for e in result.exercises if e.status != "passed"]
    assert result.score == result.max_score == 23 - len(COURSE_LAYOUT_PROVIDED)


@pytest.mark.course_weights
def test_course_layout_submission_full_marks_on_the_course_model(course_grader):
    result = course_grader.grade(COURSE_LAYOUT_CORRECT)
    assert statuses(result) == course_layout_statuses(), [(e.id, feedback(e)) for e in result.exercises if e.status != "passed"]


# Wrong variants in groups; each group's items are graded together in one submission.
WRONG_GROUPS = [
    ["is_balanced_forloop", "get_post_final_ln_dir", "LN_hook_names", "get_WOV", "embedding",
     "cos_sim_with_MLP_weights", "is_balanced_vectorized_return_both", "avg_squared_cos_sim"],
    ["is_balanced_vectorized", "get_ln_fit", "get_out_by_components", "get_q_and_k_for_given_input",
     "adversarial_examples"],
    ["get_activations", "get_pre_20_dir", "out_by_component_in_unbalanced_dir"],
    ["get_pre_final_ln_dir", "get_attn_probs", "get_out_by_neuron", "v_L_v_R",
     "get_out_by_neuron_in_20_dir_less_memory"],
    ["out_by_component_in_pre_20_unbalanced_dir", "get_out_by_neuron_in_20_dir"],
]


def test_every_item_has_a_wrong_and_an_alternative_variant():
    assert sorted(WRONG) == sorted(IDS) == sorted(ALTERNATIVE)
    assert sorted(i for g in WRONG_GROUPS for i in g) == sorted(IDS)


@pytest.mark.parametrize("group", WRONG_GROUPS, ids=lambda g: g[0])
def test_wrong_variants_fail_their_item_and_nothing_independent(grader, solved_dir, tmp_path, group):
    path = write_variant(solved_dir / "exercises.py", tmp_path / "wrong.py", {i: WRONG[i] for i in group})
    result = grader.grade(path)
    got = statuses(result)
    affected = dependents(set(group))
    for item in group:
        assert got[item] in ("failed", "partial"), (item, got[item], feedback(result.exercises[IDS.index(item)]))
    for item in set(IDS) - affected:
        assert got[item] == "passed", (item, got[item], feedback(result.exercises[IDS.index(item)]))
    texts = {e.id: feedback(e) for e in result.exercises}
    for item in affected - set(group):  # each mistake is scored once: callers pass, given correct helpers
        if BY_ID[item].kind == "function":
            assert got[item] == "passed" and ", given a correct " in texts[item], (item, got[item], texts[item])


def test_correct_answers_written_differently_pass(grader, solved_dir, tmp_path):
    path = write_variant(solved_dir / "exercises.py", tmp_path / "alternative.py", ALTERNATIVE)
    result = grader.grade(path)
    assert statuses(result) == dict.fromkeys(IDS, "passed"), [(e.id, feedback(e)) for e in result.exercises if e.status != "passed"]


def test_low_memory_item_built_the_heavy_way_gets_partial_credit(grader, solved_dir, tmp_path):
    heavy = """
def get_out_by_neuron_in_20_dir_less_memory(model, data, layer):
    return get_out_by_neuron_in_20_dir(model, data, layer)  # right values, full [batch, neuron, d_model] tensor
"""
    path = write_variant(solved_dir / "exercises.py", tmp_path / "heavy.py",
                         {"get_out_by_neuron_in_20_dir_less_memory": heavy})
    g = with_config(grader, only=("get_out_by_neuron_in_20_dir_less_memory", "get_out_by_neuron_in_20_dir"))
    e = {x.id: x for x in g.grade(path).exercises}
    assert e["get_out_by_neuron_in_20_dir"].status == "passed"
    assert e["get_out_by_neuron_in_20_dir_less_memory"].status == "partial"
    assert e["get_out_by_neuron_in_20_dir_less_memory"].score == 0.5


def test_renamed_function_is_reported_with_a_hint(grader, solved_dir, tmp_path):
    src = (solved_dir / "exercises.py").read_text().replace("def get_WOV(", "def get_W_OV(").replace(
        "get_WOV(model, 2, 0)", "get_W_OV(model, 2, 0)").replace("get_WOV(model, 0, 0)", "get_W_OV(model, 0, 0)")
    path = tmp_path / "renamed.py"
    path.write_text(src)
    g = with_config(grader, only=("get_WOV", "get_pre_20_dir"))
    result = g.grade(path)
    e = {x.id: x for x in result.exercises}
    assert e["get_WOV"].status == "missing" and "get_W_OV" in feedback(e["get_WOV"])
    assert e["get_pre_20_dir"].status == "passed"
    assert e["embedding"].status == "not_autograded"


def test_a_folder_grades_every_submission_in_it(grader, solved_dir, tmp_path):
    from grader.engine import find_submissions

    shutil.copy(solved_dir / "exercises.py", tmp_path / "a.py")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / "b.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert [p.name for p in find_submissions([tmp_path])] == ["a.py", "b.ipynb"]


LAYOUT_ITEMS = ("get_activations", "LN_hook_names", "get_ln_fit", "out_by_component_in_unbalanced_dir", "v_L_v_R",
                "adversarial_examples")


@pytest.mark.parametrize("name, mode", [("2023.py", "lean"), ("part7.py", "lean"), ("colab.ipynb", "kernel"),
                                        ("colab.ipynb", "fast"), ("colab.ipynb", "lean")])
def test_older_course_layouts_and_colab_notebooks_grade(grader, tmp_path, name, mode):
    from tests.fixtures.make_layouts import write_all

    path = write_all(tmp_path)[name]
    result = with_config(grader, only=LAYOUT_ITEMS, notebook_mode=mode).grade(path)
    got = {e.id: (e.status, feedback(e)) for e in result.exercises if e.id in LAYOUT_ITEMS}
    assert all(status == ("provided" if i in COURSE_LAYOUT_PROVIDED else "passed") for i, (status, _) in got.items()), got
    assert not [n for n in result.notes if "raised" in n or "again" in n], result.notes  # set-up ran cleanly


def test_a_statement_the_lean_run_skipped_costs_time_not_marks(grader, tmp_path):
    """`globals()[...] = ...` writes a name the slice cannot see: the lean run fails the item, the
    engine grades it again with every cell run, and it passes."""
    path = tmp_path / "sneaky.py"
    path.write_text("from reference.setting import *\n"
                    "globals()['SCALE'] = 1.0\n"
                    "print('demo code the lean run skips')\n"
                    "def get_WOV(model, layer, head):\n"
                    "    return SCALE * model.W_V[layer, head] @ model.W_O[layer, head]\n")
    result = with_config(grader, only=("get_WOV",)).grade(path)
    assert statuses(result)["get_WOV"] == "passed", [feedback(e) for e in result.exercises]
    assert any("graded again with every cell run" in n for n in result.notes), result.notes
    fast = with_config(grader, only=("get_WOV",), notebook_mode="fast").grade(path)
    assert statuses(fast)["get_WOV"] == "passed" and not fast.notes


def test_an_item_wrong_only_through_its_helper_is_credited_given_a_correct_helper(grader, solved_dir, tmp_path):
    wrong_fit = WRONG["get_ln_fit"]
    path = write_variant(solved_dir / "exercises.py", tmp_path / "helper.py", {"get_ln_fit": wrong_fit})
    result = with_config(grader, only=("get_ln_fit", "get_pre_final_ln_dir")).grade(path)
    e = {x.id: x for x in result.exercises}
    assert e["get_ln_fit"].status in ("failed", "partial")
    assert e["get_pre_final_ln_dir"].status == "passed" and e["get_pre_final_ln_dir"].score == 1
    assert feedback(e["get_pre_final_ln_dir"]).startswith("correct, given a correct get_ln_fit")
    # wrong on its own account too: no credit, and the helper pass does not hide its own mistake
    both = write_variant(solved_dir / "exercises.py", tmp_path / "both.py",
                         {"get_ln_fit": wrong_fit, "get_pre_final_ln_dir": WRONG["get_pre_final_ln_dir"]})
    e = {x.id: x for x in with_config(grader, only=("get_ln_fit", "get_pre_final_ln_dir")).grade(both).exercises}
    assert e["get_pre_final_ln_dir"].status == "failed" and "given a correct" not in feedback(e["get_pre_final_ln_dir"])


def test_a_kernel_run_gives_credit_through_a_wrong_helper_as_a_lean_run_does(grader, tmp_path):
    """The benchmark's lean-against-kernel check found a notebook with a transposed get_WOV scored
    4 points lower in kernel mode: the helper pass ran in a kernel, where the stand-ins do not exist."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_grading import EDITS, notebook_json

    text = COURSE_LAYOUT_CORRECT.read_text().replace(*EDITS["wrong_WOV"])
    path = tmp_path / "wrong_wov.ipynb"
    path.write_text(notebook_json(text))
    only = ("get_WOV", "get_pre_20_dir", "get_out_by_neuron_in_20_dir")
    lean = with_config(grader, only=only).grade(path)
    kernel = with_config(grader, only=only, notebook_mode="kernel").grade(path)
    assert [(e.id, e.status, e.score) for e in kernel.exercises] == [(e.id, e.status, e.score) for e in lean.exercises]
    assert statuses(kernel)["get_pre_20_dir"] == "passed" and statuses(kernel)["get_WOV"] == "failed"


@pytest.mark.kernel
def test_an_object_overwritten_later_is_judged_from_its_exercise_cell_in_every_mode(grader, tmp_path):
    """A scratch line two exercises on binds a 7-component slice to object 9's name: in a lean run,
    and through a real Jupyter kernel, the value of its own cell is graded, and the feedback says
    which cell replaced it."""
    from tests.corpus.field import OWN_WORK
    from tests.corpus.submissions import build

    (path,) = build(tmp_path, [s for s in OWN_WORK if s.name.startswith("64_")]).values()
    only = ("out_by_component_in_unbalanced_dir",)
    verdicts = {}
    for mode in ("lean", "kernel"):
        result = with_config(grader, only=only, notebook_mode=mode).grade(path)
        e = next(x for x in result.exercises if x.id == only[0])
        assert e.status == "passed" and e.replaced is not None and e.replaced.by_cell > e.replaced.cell, (mode, feedback(e))
        assert f"in cell {e.replaced.by_cell}, replaced it" in feedback(e)
        verdicts[mode] = (e.replaced.cell, e.replaced.by_cell)
    assert verdicts["lean"] == verdicts["kernel"]
