"""From worker messages to verdicts, with fakes (no worker): every status and its feedback."""
from __future__ import annotations

import numpy as np
import pytest

import json

from grader.catalogue import BY_ID
from grader.catalogue import EXERCISES as EXERCISES_ALL
from grader.protocol import encode
from grader.verdicts import judge_adversarial, judge_function, judge_object, judge_unfinished
from grader.feedback import feedback

WOV = BY_ID["get_WOV"]
rng = np.random.default_rng(1)
EXPECTED = {c.label: rng.standard_normal((56, 56)).astype(np.float32) for c in WOV.cases}


def case_msgs(values: dict) -> list[dict]:
    return [{"kind": "case", "item": WOV.id, "case": label, "ok": True, "value": encode(v)} for label, v in values.items()]


def test_all_cases_right_is_passed():
    r = judge_function(WOV, case_msgs(EXPECTED), EXPECTED, 2.0)
    assert (r.status, r.score, r.max_score, feedback(r)) == ("passed", 2.0, 2.0, "all 7 cases passed")


def test_an_ignored_argument_is_named_with_the_case_it_matched():
    first = next(iter(EXPECTED))
    values = {label: EXPECTED[first] for label in EXPECTED}  # always returns layer 0, head 0
    r = judge_function(WOV, case_msgs(values), EXPECTED, 1.0)
    assert r.status == "failed" and r.score == 0
    assert "1 of 7 cases passed." in feedback(r)
    assert f"it equals the right answer for ({first})" in feedback(r)
    assert feedback(r).count("\n- ") <= 4  # at most three cases spelled out, then a count


def test_not_implemented_says_so():
    msgs = [{"kind": "case", "item": WOV.id, "case": label, "ok": False,
             "error": {"kind": "not_implemented", "type": "NotImplementedError", "message": "", "traceback": ""}}
            for label in EXPECTED]
    r = judge_function(WOV, msgs, EXPECTED, 1.0)
    assert (r.status, feedback(r)) == ("failed", "not implemented (raises NotImplementedError)")


def test_exceptions_carry_the_students_traceback():
    tb = 'File "alice.py, cell 7", line 3, in get_WOV\n    return model.W_V[layer, head] @ W_O\nNameError: name \'W_O\' is not defined\n'
    msgs = [{"kind": "case", "item": WOV.id, "case": label, "ok": False,
             "error": {"kind": "exception", "type": "NameError", "message": "name 'W_O' is not defined", "traceback": tb}}
            for label in EXPECTED]
    r = judge_function(WOV, msgs, EXPECTED, 1.0)
    assert r.status == "error" and "NameError: name 'W_O' is not defined" in feedback(r) and "cell 7" in feedback(r)


def test_timeouts_and_missing_and_unfinished():
    msgs = [{"kind": "case", "item": WOV.id, "case": label, "ok": False,
             "error": {"kind": "timeout", "type": "CaseTimeout", "message": "took longer than 30 s", "traceback": ""}}
            for label in EXPECTED]
    assert judge_function(WOV, msgs, EXPECTED, 1.0).status == "timeout"
    first, *rest = EXPECTED
    skipped = {"kind": "skipped", "type": "Skipped", "message": f"not run: the case {first!r} ran past its limit"}
    msgs = msgs[:1] + [{"kind": "case", "item": WOV.id, "case": label, "ok": False, "error": skipped} for label in rest]
    r = judge_function(WOV, msgs, EXPECTED, 1.0)
    assert (r.status, r.score) == ("timeout", 0.0)
    assert feedback(r).splitlines() == [
        "0 of 7 cases passed.", f"- get_WOV({first}): CaseTimeout: took longer than 30 s",
        "- 6 more cases not run: a case ran past its time limit, and this item scores only when every case passes"]
    r = judge_function(WOV, [{"kind": "missing", "item": WOV.id, "detail": "no function named `get_WOV` was found"}],
                       EXPECTED, 1.0)
    assert (r.status, feedback(r)) == ("missing", "no function named `get_WOV` was found")
    r = judge_unfinished(WOV, 1.0, "error", "the worker process was killed by SIGKILL")
    assert r.status == "error" and r.score == 0


def test_unreadable_results_are_errors_not_crashes():
    msgs = [{"kind": "case", "item": WOV.id, "case": label, "ok": True, "value": {"$pickle": "gASV"}} for label in EXPECTED]
    r = judge_function(WOV, msgs, EXPECTED, 1.0)
    assert r.status == "error" and "could not be read" in feedback(r)


def test_partial_credit_where_declared():
    fit = BY_ID["get_ln_fit"]
    assert fit.partial and not WOV.partial
    from grader.protocol import LinearFit

    probe = rng.standard_normal((20, 56))
    expected = {c.label: (LinearFit(np.eye(56), np.zeros(56)), 0.99, probe) for c in fit.cases}
    good = {"$tuple": [{"$linreg": {"coef": encode(np.eye(56)), "intercept": encode(np.zeros(56))}}, 0.99]}
    bad = {"$tuple": [{"$linreg": {"coef": encode(2 * np.eye(56)), "intercept": encode(np.zeros(56))}}, 0.99]}
    msgs = [{"kind": "case", "item": fit.id, "case": c.label, "ok": True, "value": good if i else bad}
            for i, c in enumerate(fit.cases)]
    r = judge_function(fit, msgs, expected, 2.0)
    n = len(fit.cases)
    assert r.status == "partial" and r.score == round(2.0 * (n - 1) / n, 4)


def test_objects_need_a_known_model():
    ex = BY_ID["v_L_v_R"]
    msg = {"kind": "object", "item": ex.id, "ok": True, "values": {"v_L": encode(np.ones(3)), "v_R": encode(np.ones(3))},
           "context": {"model_hash": "abc", "data": {"strs": ["()"]}}}
    r = judge_object(ex, msg, 1.0, lambda h, s: (None, "computed with a model the grader does not know"))
    assert r.status == "error" and "does not know" in feedback(r)
    r = judge_object(ex, msg, 1.0, lambda h, s: ({"v_L": np.ones(3), "v_R": -np.ones(3)}, ""))
    assert r.status == "failed" and feedback(r).startswith("v_L, v_R: v_R:") and "sign is flipped" in feedback(r)
    r = judge_object(ex, {"kind": "object", "item": ex.id, "ok": False, "missing": "no value for v_L"}, 1.0, None)
    assert r.status == "missing"


def test_an_object_is_judged_on_the_value_its_exercise_cell_gave_it():
    """A later statement that binds the name to another value (a scratch line two exercises on)
    does not replace the answer: the exercise cell's value is judged too, and scored where it
    scores more (else the last value is the answer). The feedback says which cell's was graded."""
    from grader import reports
    from grader.results import SubmissionResult, submission_from_json

    ex = BY_ID["out_by_component_in_unbalanced_dir"]
    right = rng.standard_normal((10, 50)).astype(np.float32)
    context = {"model_hash": "m", "data": {"strs": ["()"]}}

    def msg(last, own, tested=True):
        return {"kind": "object", "item": ex.id, "ok": True, "values": {ex.names[0]: encode(last)}, "context": context,
                "cell": 31, "exercise": {"values": {ex.names[0]: encode(own)}, "context": context, "cell": 17,
                                         "tested": tested}}

    reference = lambda h, s: ({ex.names[0]: right}, "")  # noqa: E731
    r = judge_object(ex, msg(right[:7], right), 1.0, reference)
    assert r.status == "passed" and (r.replaced.cell, r.replaced.by_cell, r.replaced.tested) == (17, 31, True)
    assert "cell 17" in feedback(r) and "cell 31" in feedback(r) and "the course's test there" in feedback(r)
    r = judge_object(ex, msg(right, right + 1), 1.0, reference)  # fixed in a later cell: the later one
    assert r.status == "passed" and r.replaced is None
    r = judge_object(ex, msg(right[:7], right + 1, tested=False), 1.0, reference)  # both wrong: the last try
    assert r.status == "failed" and r.category == "shape" and r.replaced is None
    broken = msg(right[:7], right)
    broken["exercise"]["cell"] = "17"  # malformed: the last value is judged, as before
    assert judge_object(ex, broken, 1.0, reference).category == "shape"
    strict = lambda h, s: ({ex.names[0]: right}, "") if {h: s}[h] else (None, "no data")  # noqa: E731 (hashes h)
    for bad in ({"data": "x", "model_hash": "m"}, {"model_hash": ["unhashable"]}, 7):  # the last verdict stands
        broken = msg(right[:7], right)
        broken["exercise"]["context"] = bad
        assert judge_object(ex, broken, 1.0, strict).category == "shape", bad
    result = SubmissionResult("a.py", (judge_object(ex, msg(right[:7], right), 1.0, reference),))
    back = json.loads(reports.json_text([result]))["submissions"][0]
    assert back["exercises"][0]["replaced"] == {"cell": 17, "by_cell": 31, "tested": True}
    assert submission_from_json(back) == result


def test_adversarial_examples_count_valid_misclassified_strings():
    ex = BY_ID["adversarial_examples"]
    msg = {"kind": "object", "item": ex.id, "ok": True, "values": {"adversarial_examples": ["(()", "()", "abc", "(" * 41]},
           "context": {"model_hash": "h"}}
    r = judge_adversarial(ex, msg, 1.0, lambda h, strs: ([s == "(()" for s in strs], ""))
    # "()" is one of the course's starting examples: the share is of the strings the student added
    assert r.status == "passed" and feedback(r) == "1 of the 1 valid strings you added are misclassified by the model; 2 invalid ignored"
    r = judge_adversarial(ex, msg, 1.0, lambda h, strs: ([False] * len(strs), ""))
    assert r.status == "failed" and "gets all of them right" in feedback(r)


def test_adversarial_examples_are_a_short_list_judged_by_its_share():
    """10,000 random strings fool a 99.9% model a few times by chance: that is not the exercise."""
    ex = BY_ID["adversarial_examples"]

    def msg(strs):
        return {"kind": "object", "item": ex.id, "ok": True, "values": {"adversarial_examples": strs},
                "context": {"model_hash": "h"}}

    fools = lambda h, strs: ([s.startswith(")") for s in strs], "")  # noqa: E731 - a stand-in model
    many = [")(" * (i % 20 + 1) for i in range(10_000)]
    r = judge_adversarial(ex, msg(many), 1.0, fools)
    assert r.status == "failed" and "10,000 strings" in feedback(r) and "at most 20" in feedback(r)
    r = judge_adversarial(ex, msg(["()()", "((()))", "(()())", "(((())))", ")("]), 1.0, fools)
    assert r.status == "failed" and "fewer than a quarter" in feedback(r)
    r = judge_adversarial(ex, msg(["()", "(())", "))", ")(", "()()"]), 1.0, fools)  # the course's list, added to
    assert r.status == "passed" and feedback(r).startswith("1 of the 2 valid strings you added")


def test_terminal_table_and_json_read_well_for_a_mixed_submission():
    from grader import reports
    from grader.results import CaseOutcome, CellError, Condition, ExerciseResult, SubmissionResult

    wov_cases = tuple(CaseOutcome(c.label, c.label != "layer=2, head=1", "pass" if c.label != "layer=2, head=1" else "wrong",
                                  "" if c.label != "layer=2, head=1" else "3136 of 3136 elements differ (first at index "
                                  "[0, 0]); largest difference 1.9 (allowed 0.0011)", cause="transposed"
                                  if c.label == "layer=2, head=1" else "") for c in WOV.cases)
    special = {
        "get_WOV": ExerciseResult("get_WOV", "failed", 0.0, 1.0, cases=wov_cases),
        "get_ln_fit": ExerciseResult("get_ln_fit", "failed", 0.0, 1.0, cases=tuple(
            CaseOutcome(c.label, False, "not_implemented") for c in BY_ID["get_ln_fit"].cases)),
        "embedding": ExerciseResult("embedding", "missing", 0.0, 1.0,
                                    "no function named `embedding` was found; did you rename it? closest: embed"),
        "get_attn_probs": ExerciseResult("get_attn_probs", "timeout", 0.0, 1.0,
                                         "stopped: this item ran past its limit of 120 s"),
        "get_pre_20_dir": ExerciseResult("get_pre_20_dir", "passed", 1.0, 1.0, cases=(CaseOutcome("model", True),),
                                         condition=Condition(("get_WOV",))),
    }
    ex = tuple(special.get(e.id) or ExerciseResult(e.id, "passed", 1.0, 1.0, cases=(CaseOutcome("x", True),) * 3)
               for e in EXERCISES_ALL)
    result = SubmissionResult("alice.ipynb", ex, (), 12.0, (CellError(4, "NameError", "name 'px' is not defined"),))
    assert feedback(special["get_WOV"]) == (
        "6 of 7 cases passed.\n- get_WOV(layer=2, head=1): 3136 of 3136 elements differ (first at index [0, 0]); "
        "largest difference 1.9 (allowed 0.0011); likely cause: the matrix is transposed")
    assert feedback(special["get_pre_20_dir"]) == ("correct, given a correct get_WOV (graded with the reference's "
                                                    "get_WOV in place of yours; your get_WOV is scored on its own)")
    table = reports.terminal_table(result)
    lines = table.splitlines()
    assert lines[0] == "alice.ipynb: 19 / 23"
    assert all(len(line) <= 120 for line in lines)
    wov = next(line for line in lines if " get_WOV " in line)
    assert wov.startswith("  FAIL get_WOV") and wov.endswith("likely cause: the matrix is transposed [layer=2, head=1]")
    assert next(line for line in lines if " embedding " in line).startswith("  MISS embedding")
    assert "TIME get_attn_probs" in table and "note: cell 4 raised NameError" in table
    pre20 = next(line for line in lines if " get_pre_20_dir " in line)  # a pass on a condition says so
    assert pre20.startswith("  PASS get_pre_20_dir") and "correct, given a correct get_WOV" in pre20
    assert next(line for line in lines if " is_balanced_forloop " in line).endswith("1/1")  # plain passes stay quiet
    data = json.loads(reports.json_text([result]))
    sub = data["submissions"][0]
    assert data["schema"] == 5 and sub["score"] == 19 and [e["id"] for e in sub["exercises"]] == [e.id for e in EXERCISES_ALL]
    assert {e["status"] for e in sub["exercises"]} == {"passed", "failed", "missing", "timeout"}
    by_id = {e["id"]: e for e in sub["exercises"]}
    # the facts travel as fields, and come back from the JSON as they were
    assert (by_id["get_WOV"]["cause"], by_id["get_WOV"]["case"]) == ("transposed", "layer=2, head=1")
    assert by_id["get_pre_20_dir"]["condition"]["helpers"] == ["get_WOV"]
    assert sub["cell_errors"] == [{"cell": 4, "type": "NameError", "message": "name 'px' is not defined"}]
    from grader.results import submission_from_json

    assert submission_from_json(sub) == result


def test_building_the_full_tensor_in_the_low_memory_item_costs_part_of_the_points():
    ex = BY_ID["get_out_by_neuron_in_20_dir_less_memory"]
    memory_case = next(c for c in ex.cases if c.memory_limit)
    expected = {c.label: np.ones((3, 56), np.float32) for c in ex.cases}
    msgs = [{"kind": "case", "item": ex.id, "case": c.label, "ok": True, "value": encode(np.ones((3, 56), np.float32)),
             **({"largest_tensor": memory_case.memory_limit * 2} if c.memory_limit else {})} for c in ex.cases]
    r = judge_function(ex, msgs, expected, 2.0)
    assert r.status == "partial" and r.score == 1.0 and "[batch, neuron, d_model]" in feedback(r)
    msgs[-1]["largest_tensor"] = 1000
    assert judge_function(ex, msgs, expected, 2.0).status == "passed"


@pytest.mark.slow
@pytest.mark.worker
def test_a_submission_records_how_long_it_took(grader, tmp_path):
    """The report's `seconds` is the wall time of that submission (measured around the call: how
    long a worker takes to start depends on the machine's load, so no fixed bound)."""
    import time

    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not json")
    began = time.monotonic()
    result = grader.grade(bad)
    assert 0 < result.seconds <= time.monotonic() - began
    assert result.not_gradable.reason == "not_a_notebook"  # never run: known before a worker starts
    assert all(e.status == "error" and "not gradable" in feedback(e) for e in result.exercises
               if e.status != "not_autograded")
