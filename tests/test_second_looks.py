"""The second-look policy as pure functions: from verdicts to the next pass's plan (no worker)."""
from __future__ import annotations

import json

from grader import second_looks
from grader.answers import Grants
from grader.catalogue import BY_ID, IDS
from grader.feedback import feedback
from grader.results import CaseOutcome, Condition, ExerciseResult


def results(**statuses: str) -> list[ExerciseResult]:
    """Every item passed but those given (an object that failed for its shape: status "shape")."""
    out = []
    for i in IDS:
        status = statuses.get(i, "passed")
        if status == "shape":
            out.append(ExerciseResult(i, "failed", 0.0, 1.0, f"{i}: wrong shape", category="shape"))
        elif status == "error_case":
            out.append(ExerciseResult(i, "error", 0.0, 1.0, cases=(CaseOutcome("x", False, "error", "NameError: x"),)))
        else:
            out.append(ExerciseResult(i, status, 1.0 if status == "passed" else 0.0, 1.0))
    return out


def ids(plan) -> list[str]:
    return [e.id for e in plan.exercises]


def test_a_wrong_helper_gives_its_callers_one_pass_with_the_reference_standing_in():
    plans = second_looks.helper_passes(results(get_WOV="failed", get_pre_20_dir="failed"), set(), "lean", "d.json")
    assert len(plans) == 1
    assert ids(plans[0]) == ["get_pre_20_dir"] and plans[0].helpers == {"get_pre_20_dir": ("get_WOV",)}


def test_in_a_look_an_item_granted_less_is_computed_before_one_granted_more():
    """The items of a look share a process: one computed after another granted more could return
    what that one kept of its answers (tests/hostile/test_grants.py), so the fewer grants go first."""
    plans = second_looks.helper_passes(results(
        get_pre_20_dir="failed", get_out_by_neuron="failed", get_out_by_neuron_in_20_dir="failed",
        get_out_by_neuron_in_20_dir_less_memory="failed"), set(), "lean", "d.json")
    (plan,) = plans
    grants = [set(plan.helpers[i]) for i in ids(plan)]
    assert grants == [{"get_pre_20_dir"}, {"get_out_by_neuron", "get_pre_20_dir"}]
    assert ids(plan) == ["get_out_by_neuron_in_20_dir_less_memory", "get_out_by_neuron_in_20_dir"]
    for n, later in enumerate(grants):  # none computed after another whose grants hold more than its own
        assert all(not (earlier > later) for earlier in grants[:n])


def test_items_whose_grants_do_not_nest_are_computed_in_runs_of_their_own():
    """The course's helpers form one chain, so its grants always nest; a catalogue where they do not
    (as here, made up) gets a run per chain, and the warm worker forgets everything between runs."""
    runs = second_looks.nested_runs({"get_attn_probs": ("get_activations",),
                                     "get_pre_final_ln_dir": ("get_post_final_ln_dir",),
                                     "get_pre_20_dir": ("get_activations", "get_post_final_ln_dir")})
    assert runs == [["get_pre_final_ln_dir", "get_pre_20_dir"], ["get_attn_probs"]]


def test_objects_get_a_pass_of_their_own_when_they_need_a_stand_in_for_an_item_graded_again():
    """A pass never grants a helper it also grades before that helper's results are in: objects
    computed with get_pre_final_ln_dir standing in come after get_pre_final_ln_dir's own second look."""
    before = results(get_ln_fit="partial", get_pre_final_ln_dir="failed", get_pre_20_dir="failed",
                     out_by_component_in_unbalanced_dir="failed")
    functions, objects = second_looks.helper_passes(before, set(), "lean", "d.json")
    assert ids(functions) == ["get_pre_final_ln_dir", "get_pre_20_dir"] and not functions.module_helpers
    assert functions.helpers["get_pre_20_dir"] == ("get_ln_fit", "get_pre_final_ln_dir")
    assert ids(objects) == ["out_by_component_in_unbalanced_dir"]
    assert objects.module_helpers == ("get_ln_fit", "get_pre_final_ln_dir") and not objects.helpers
    assert objects.skips == functions.skips == "helpers"  # a statement that hung is skipped in both
    # within the functions' pass get_pre_20_dir may ask for get_pre_final_ln_dir only once its results are in
    grants = Grants(functions.helpers, functions.module_helpers, functions.ids)
    assert "get_pre_final_ln_dir" not in grants.allowed("get_pre_20_dir", frozenset())
    assert "get_pre_final_ln_dir" in grants.allowed("get_pre_20_dir", frozenset({"get_pre_final_ln_dir"}))


def test_objects_on_a_model_a_function_changed_are_computed_with_that_function_stood_in():
    """embedding divides a row of W_E in place: the objects computed after it are on a model the
    grader does not know. They are computed again with the reference's embedding standing in (the
    model as it was), and a pass they earn then is given on a correct embedding."""
    from dataclasses import replace

    from grader.results import UNKNOWN_MODEL

    before = results(embedding="failed")
    changed = CaseOutcome("char='('", False, "wrong", "a unit vector", also="model.W_E changed")
    unknown = dict(status="error", score=0.0, category=UNKNOWN_MODEL)
    before = [replace(r, cases=(changed,)) if r.id == "embedding" else
              replace(r, **unknown) if r.id in ("adversarial_examples", "v_L_v_R") else r for r in before]
    (plan,) = second_looks.helper_passes(before, set(), "lean", "d.json")
    assert ids(plan) == ["v_L_v_R", "adversarial_examples"] and plan.module_helpers == ("embedding",)
    assert plan.object_helpers == {"v_L_v_R": ("embedding",), "adversarial_examples": ("embedding",)}
    again = [ExerciseResult("adversarial_examples", "passed", 1.0, 1.0)]
    after = {r.id: r for r in second_looks.better(before, again, plan)}
    assert after["adversarial_examples"].condition == Condition(("embedding",), recomputed=True)
    # an object on an unknown model with no function that changed its inputs: nothing to stand in
    plain = [replace(r, **unknown) if r.id == "adversarial_examples" else r for r in results()]
    assert second_looks.helper_passes(plain, set(), "lean", "d.json") == []
    # a function taken from the course's solutions is never stood in
    assert second_looks.helper_passes(before, {"embedding"}, "lean", "d.json") == []


def test_what_was_taken_from_the_course_is_not_stood_in_and_scores_nothing():
    before = results(get_activations="failed", get_ln_fit="failed")
    assert second_looks.helper_passes(before, {"get_activations"}, "lean", "d.json") == []
    after = second_looks.taken_from_course(before, {"get_activations"})
    taken = next(r for r in after if r.id == "get_activations")
    assert (taken.status, taken.score, taken.taken_from_course) == ("missing", 0.0, True)
    assert "taken from the course's solutions" in feedback(taken)


def test_a_second_look_only_raises_a_score_and_records_its_condition():
    plan = second_looks.helper_passes(results(get_WOV="failed", get_pre_20_dir="failed"), set(), "lean", "d.json")[0]
    first = results(get_WOV="failed", get_pre_20_dir="failed")
    again = [ExerciseResult("get_pre_20_dir", "passed", 1.0, 1.0, cases=(CaseOutcome("x", True),))]
    merged = {r.id: r for r in second_looks.better(first, again, plan)}
    assert merged["get_pre_20_dir"].condition == Condition(("get_WOV",))
    assert feedback(merged["get_pre_20_dir"]).startswith("correct, given a correct get_WOV (graded with the reference's")
    lower = [ExerciseResult("get_pre_20_dir", "failed", 0.0, 1.0)]
    assert second_looks.better(first, lower, plan) == first


def test_the_course_size_pass_is_for_objects_a_size_could_explain():
    assert second_looks.course_size(results(), 0, set(), "lean", "c.json", 5000, 1000) is None
    plan = second_looks.course_size(results(out_by_component_in_unbalanced_dir="shape"), 0, set(), "lean", "c.json",
                                    5000, 1000)
    assert ids(plan) == ["out_by_component_in_unbalanced_dir"] and plan.condition.course_examples == 5000
    assert plan.statement_scale == 5  # its statements run on five times the data: five times the time
    from grader.attempts import plan_limits
    from grader.config import Limits

    limits = plan_limits(Limits(), plan)  # and twice the memory (the course's own code needs 2.6 GB more there)
    assert (limits.statement_seconds, limits.memory_bytes) == (5 * Limits.statement_seconds, 2 * Limits.memory_bytes)
    assert second_looks.course_size(results(out_by_component_in_unbalanced_dir="failed"), 0, set(), "lean", "c.json",
                                    5000, 1000) is None  # there, the right shape and wrong: not the size
    plan = second_looks.course_size(results(out_by_component_in_unbalanced_dir="failed"), 2, set(), "lean", "c.json",
                                    5000, 1000)  # but a statement raised: maybe on the size
    assert ids(plan) == ["out_by_component_in_unbalanced_dir"]
    stood_in = second_looks.course_size(results(out_by_component_in_unbalanced_dir="missing", get_WOV="failed",
                                                get_pre_final_ln_dir="failed"), 0, {"get_WOV"}, "lean", "c.json", 5000, 1000)
    assert stood_in.module_helpers == ("get_pre_final_ln_dir",)
    after = second_looks.better(results(out_by_component_in_unbalanced_dir="missing"),
                                [ExerciseResult("out_by_component_in_unbalanced_dir", "passed", 1.0, 1.0)], stood_in)
    assert feedback(after[IDS.index("out_by_component_in_unbalanced_dir")]) == (
        "matches the reference on your model and data, given a correct get_pre_final_ln_dir, on the course's 5,000 "
        "examples (your code depends on the data size; submissions run on fewer first)")


def test_a_stub_left_as_the_starter_has_it_gets_no_second_look_and_still_stands_in():
    """Settled before the second looks (grader.starters.unwritten): no look regrades a stub, and
    the reference still stands in for it where an item the student wrote calls it."""
    from grader import starters

    first = results(get_WOV="error_case", get_pre_20_dir="failed", out_by_component_in_unbalanced_dir="failed",
                    v_L_v_R="error", get_out_by_neuron="failed")
    stub, given = starters.Print("s", False), starters.Print("g", True)
    settled = starters.unwritten(first, {"get_WOV": ("template", stub), "v_L_v_R": ("template", stub),
                                         "get_out_by_neuron": ("course", given)})
    status = {r.id: r.status for r in settled}
    assert (status["get_WOV"], status["v_L_v_R"]) == ("not_attempted", "not_attempted")
    assert status["get_out_by_neuron"] == "failed"  # given complete: judged, other looks ask whether it passed
    plans = second_looks.helper_passes(settled, set(), "lean", "d.json")
    looked_at = {i for p in plans for i in ids(p)}
    assert "get_WOV" not in looked_at and "v_L_v_R" not in looked_at
    assert plans[0].helpers["get_pre_20_dir"] == ("get_WOV",)
    assert second_looks.full_run(settled, "def get_WOV(): ...", 3, "lean", "d.json") is None
    size = second_looks.course_size(settled, 2, set(), "lean", "c.json", 5000, 1000)
    assert "v_L_v_R" not in ids(size) and "out_by_component_in_unbalanced_dir" in ids(size)


def test_no_look_at_code_given_complete_for_nothing_or_at_an_object_the_file_never_sets():
    from grader import starters
    from grader.catalogue import EXERCISES

    source = ("def get_WOV(model, layer, head):\n    return model.W_V[layer, head]\n"
              "v_L = 1\nadversarial_examples = make()\n")
    prints = starters.fingerprints(source, ".py")
    given = {"get_WOV": ("course", starters.Print(prints["get_WOV"].digest, True))}
    settled = starters.beyond_a_second_look(list(EXERCISES), source, given, provided_points=0.0)
    assert "get_WOV" in settled and "v_L_v_R" in settled  # v_R is never written
    assert "adversarial_examples" not in settled and "get_pre_20_dir" not in settled
    assert "get_WOV" not in starters.beyond_a_second_look(list(EXERCISES), source, given, provided_points=1.0)
    # set where no top-level statement binds it: still looked at again
    for way in ("def run():\n    global v_L, v_R\n    v_L, v_R = 1, 2\nrun()\n", 'globals()["v_R"] = 2\n',
                "(v_L, v_R), _ = (1, 2), 3\n"):
        assert "v_L_v_R" not in starters.beyond_a_second_look(list(EXERCISES), source + way, {}, 0.0)
    plan = second_looks.helper_passes(results(get_WOV="failed", get_pre_20_dir="failed", v_L_v_R="failed"), set(),
                                      "lean", "d.json")[0]
    kept = second_looks.without(plan, settled)
    assert ids(kept) == ["get_pre_20_dir"] and kept.helpers == {"get_pre_20_dir": ("get_WOV",)}
    assert second_looks.without(plan, {"get_pre_20_dir", "v_L_v_R"}) is None


def test_a_full_run_only_for_what_a_skipped_statement_could_explain():
    source = "def get_WOV(model, layer, head): ...\nv_L = 1\n"
    before = results(get_WOV="error_case", get_ln_fit="failed", embedding="missing", v_L_v_R="missing")
    plan = second_looks.full_run(before, source, 3, "lean", "d.json")
    assert ids(plan) == ["get_WOV", "v_L_v_R"] and plan.mode == "fast"  # not a wrong value, not a name never written
    assert second_looks.full_run(before, source, 0, "lean", "d.json") is None  # nothing was skipped
    assert second_looks.full_run(before, source, 3, "fast", "d.json") is None


def test_the_first_pass_splits_into_functions_and_objects():
    plan = second_looks.Plan("first", tuple(BY_ID.values()), "lean", "d.json")
    functions, objects = second_looks.split(plan)
    assert {e.kind for e in functions.exercises} == {"function"} and objects.name == "first-objects"
    assert functions.skips == objects.skips == "own code"


def test_a_look_that_lost_a_value_the_first_pass_judged_is_what_is_run_again():
    """A second look that could not produce an object (missing, an error, a timeout) the first
    verdict judged a value of has lost it to its run, not to the code: only those are run once more."""
    before = results(out_by_component_in_unbalanced_dir="failed", v_L_v_R="missing",
                     out_by_component_in_pre_20_unbalanced_dir="partial")
    again = [ExerciseResult("out_by_component_in_unbalanced_dir", "missing", 0.0, 1.0, "no value"),
             ExerciseResult("v_L_v_R", "missing", 0.0, 1.0, "no value"),
             ExerciseResult("out_by_component_in_pre_20_unbalanced_dir", "timeout", 0.0, 1.0, "stopped")]
    assert second_looks.lost(before, again) == {"out_by_component_in_unbalanced_dir",
                                                "out_by_component_in_pre_20_unbalanced_dir"}
    assert second_looks.lost(before, [ExerciseResult("out_by_component_in_unbalanced_dir", "failed", 0.0, 1.0)]) == set()
    functions = results(get_pre_20_dir="failed")  # a function's error in a look is its own verdict
    assert second_looks.lost(functions, [ExerciseResult("get_pre_20_dir", "error", 0.0, 1.0)]) == set()


def test_an_object_only_read_never_set_gets_no_second_look():
    """The course's cells that use an object the student is left to write mention its name but set
    it nowhere: no look can make it. Every way a statement could set it keeps the look."""
    from grader import starters
    from grader.catalogue import EXERCISES

    reads = "print(v_L @ v_R)\nplot(out_by_component_in_unbalanced_dir[0])\n"
    settled = starters.beyond_a_second_look(list(EXERCISES), reads, {}, 0.0)
    assert {"v_L_v_R", "out_by_component_in_unbalanced_dir"} <= settled
    for way in ("v_L, v_R = 1, 2\n", "for v_L in [1]:\n    v_R = 2\n", "if MAIN:\n    (v_L := 1); v_R = 2\n",
                "def f():\n    global v_L, v_R\n", "from helpers import v_L, v_R\n", 'exec("v_L = v_R = 1")\n',
                "try:\n    pass\nexcept E as v_L:\n    v_R = 1\n", "import sys\nsys.modules[__name__].v_L = sys.v_R = 1\n",
                "match x:\n    case [v_L, *v_R]:\n        pass\n", "%run setup.py v_L v_R\n",
                "globals().update(v_L=1, v_R=2)\n", "def f(v_L, v_R):\n    globals().update(locals())\n",
                "from helpers import *\n", "def broken(:\n"):  # a star import or a cell that does not parse: the text rule
        assert "v_L_v_R" not in starters.beyond_a_second_look(list(EXERCISES), reads + way, {}, 0.0), way
    notebook = json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": reads},
                                     {"cell_type": "markdown", "metadata": {}, "source": "v_L = the left vector"}],
                           "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert "v_L_v_R" in starters.beyond_a_second_look(list(EXERCISES), notebook, {}, 0.0, ".ipynb")
    assert "v_L_v_R" not in starters.beyond_a_second_look(list(EXERCISES), notebook.replace("print(", "v_L = v_R = ("),
                                                           {}, 0.0, ".ipynb")
