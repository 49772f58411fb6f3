"""Turn what a worker sent about one item into that item's result: its status and score, and the
facts behind them as fields (grader.results); the words are the renderers' (grader.feedback)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from grader import compare
from grader.catalogue import Exercise
from grader.protocol import Kind, ProtocolError, decode
from grader.results import CaseOutcome, ExerciseResult, Replaced


def _error_text(err: dict) -> str:
    text = f"{err.get('type', 'Error')}: {err.get('message', '')}".strip()
    tb = str(err.get("traceback", "")).strip()
    return text + (f"\n{tb}" if tb else "")


def _matches(ex: Exercise, got: Any, expected: Any) -> bool:
    try:
        if ex.expect == "linfit":
            return compare.linfit(got, expected, ex.tolerance)[0] is None
        return compare.COMPARATORS[ex.expect](got, expected, ex.tolerance) is None
    except Exception:
        return False


def same_as_case(ex: Exercise, label: str, got: Any, all_expected: dict[str, Any]) -> str:
    """When a wrong answer equals the right answer of another argument combination, the function
    most likely ignores (or mixes up) an argument: the label of the combination it matched."""
    return next((other for other, expected in all_expected.items()
                 if other != label and _matches(ex, got, expected)), "")


def alternative_cause(ex: Exercise, got: Any, alternatives: list[tuple[str, Any]]) -> str:
    """When a wrong answer equals a known wrong formulation (grader.mistakes), that mistake's id."""
    return next((mistake_id for mistake_id, value in alternatives if _matches(ex, got, value)), "")


def judge_case(ex: Exercise, msg: dict, expected: Any, all_expected: dict[str, Any] | None = None,
               alternatives: Callable[[str], list[tuple[str, Any]]] | None = None) -> CaseOutcome:
    label = str(msg.get("case", "?"))
    if not msg.get("ok"):
        err = msg.get("error") or {}
        kind = err.get("kind") if err.get("kind") in ("timeout", "not_implemented", "skipped") else "error"
        if kind == "not_implemented":
            return CaseOutcome(label, False, kind, category="NotImplementedError")
        if kind == "skipped":  # after a case that timed out, in an item every case of which must pass
            return CaseOutcome(label, False, kind, str(err.get("message", "not run"))[:300])
        return CaseOutcome(label, False, kind, _error_text(err), str(err.get("type", "Error"))[:100])
    try:
        got = decode(msg.get("value"))
    except ProtocolError as e:
        return CaseOutcome(label, False, "error", f"the result could not be read: {e}", "ProtocolError")
    if ex.expect == "linfit":
        problem, _parts = compare.linfit(got, expected, ex.tolerance)
    else:
        problem = compare.COMPARATORS[ex.expect](got, expected, ex.tolerance)
    cause = problem.cause if problem else ""
    if problem and not cause and alternatives is not None:
        cause = alternative_cause(ex, got, alternatives(label))
    same_as = same_as_case(ex, label, got, all_expected) if problem and all_expected and len(all_expected) > 1 else ""
    changed = msg.get("side_effects")
    changed = changed[:300] if isinstance(changed, str) else ""
    if changed and problem is None:  # the right value, but the call broke what it was given
        return CaseOutcome(label, False, "side_effect", changed)
    if problem is not None:
        return CaseOutcome(label, False, "wrong", problem.detail, problem.category, cause, same_as, changed)
    limit = next((c.memory_limit for c in ex.cases if c.label == label), 0)
    largest = msg.get("largest_tensor")
    if limit and isinstance(largest, int) and largest >= limit:
        return CaseOutcome(label, True, "memory", f"on {label} it creates a tensor of {largest:,} elements, the size "
                           "of the full [batch, neuron, d_model] output it is meant to avoid: project before multiplying")
    return CaseOutcome(label, True)


def summarise(ex: Exercise, outcomes: list[CaseOutcome], points: float) -> ExerciseResult:
    """Aggregate case outcomes: all pass -> passed; some -> partial (if declared) or failed."""
    n_pass = sum(o.passed for o in outcomes)
    total = len(outcomes)
    cases = tuple(outcomes)
    if total and n_pass == total:
        if any(o.kind == "memory" for o in outcomes):
            return ExerciseResult(ex.id, "partial", round(points * (1 - ex.memory_penalty), 4), points, cases=cases)
        return ExerciseResult(ex.id, "passed", points, points, cases=cases)
    kinds = {o.kind for o in outcomes if not o.passed}
    if kinds & {"wrong", "side_effect"} or n_pass or kinds == {"not_implemented"}:
        if ex.partial and n_pass:
            return ExerciseResult(ex.id, "partial", round(points * n_pass / total, 4), points, cases=cases)
        return ExerciseResult(ex.id, "failed", 0.0, points, cases=cases)
    status = "timeout" if "timeout" in kinds else "error"
    return ExerciseResult(ex.id, status, 0.0, points, cases=cases)


def judge_function(ex: Exercise, messages: list[dict], expected: dict[str, Any], points: float,
                   alternatives: Callable[[str], list[tuple[str, Any]]] | None = None) -> ExerciseResult:
    for msg in messages:
        if msg["kind"] == Kind.MISSING:
            return ExerciseResult(ex.id, "missing", 0.0, points, str(msg.get("detail", "not found"))[:500])
    by_label = {str(m.get("case")): m for m in messages if m["kind"] == Kind.CASE}
    outcomes = []
    for case in ex.cases:
        msg = by_label.get(case.label)
        if msg is None:
            outcomes.append(CaseOutcome(case.label, False, "error", "no result came back for this case"))
        else:
            outcomes.append(judge_case(ex, msg, expected[case.label], expected, alternatives))
    return summarise(ex, outcomes, points)


def judge_object(ex: Exercise, msg: dict | None, points: float,
                 reference_for: Callable[[str | None, list[str] | None], tuple]) -> ExerciseResult:
    """Object items: the submission's values against the reference computed on its own model/data.
    Where a later statement replaced the value the item's own exercise cell gave it, that value is
    judged too, and scored where it scores more (the answer as the student gave it)."""
    if msg is None:
        return ExerciseResult(ex.id, "error", 0.0, points, "no result came back for this item")
    if not msg.get("ok"):
        if "missing" in msg:
            return ExerciseResult(ex.id, "missing", 0.0, points, str(msg["missing"])[:500])
        return ExerciseResult(ex.id, "error", 0.0, points, _error_text(msg.get("error") or {}))
    last = _judge_values(ex, msg.get("values"), msg.get("context"), points, reference_for)
    given = msg.get("exercise")
    if len(ex.names) != 1 or not isinstance(given, dict) or type(given.get("cell")) is not int \
            or type(msg.get("cell")) is not int:
        return last
    try:  # the worker's message: whatever is wrong with this part leaves the last value's verdict
        own = _judge_values(ex, given.get("values"), given.get("context"), points, reference_for)
    except Exception:
        return last
    if own.score > last.score:  # else the last value is the student's answer (both wrong: their last try)
        return replace(own, replaced=Replaced(given["cell"], msg["cell"], given.get("tested") is True))
    return last


def _judge_values(ex: Exercise, encoded: Any, context: Any, points: float,
                  reference_for: Callable[[str | None, list[str] | None], tuple]) -> ExerciseResult:
    try:
        values = {k: decode(v) for k, v in (encoded if isinstance(encoded, dict) else {}).items()}
    except ProtocolError as e:
        return ExerciseResult(ex.id, "error", 0.0, points, f"the value could not be read: {e}")
    if not set(ex.names) <= set(values):
        return ExerciseResult(ex.id, "error", 0.0, points, "the value did not come back")
    context = context if isinstance(context, dict) else {}
    data, model_hash = context.get("data"), context.get("model_hash")
    strs = data.get("strs") if isinstance(data, dict) else None
    expected, problem, *why = reference_for(model_hash if isinstance(model_hash, str) else None,
                                            strs if isinstance(strs, list) else None)
    if expected is None:  # why: a category (UNKNOWN_MODEL) where the problem has one
        return ExerciseResult(ex.id, "error", 0.0, points, problem, category=why[0] if why else "")
    if len(ex.names) == 2:  # a pair: v_L and v_R
        got = tuple(values[n] for n in ex.names)
        right = tuple(expected[n] for n in ex.names) + tuple(expected[k] for k in ("v_L_v_R_bands",) if k in expected)
        problem = compare.COMPARATORS[ex.expect](got, right, ex.tolerance)
        if problem:
            problem = replace(problem, detail=problem.detail.replace("first vector", ex.names[0])
                              .replace("second vector", ex.names[1]))
    else:
        problem = compare.tensor(values[ex.names[0]], expected[ex.names[0]], ex.tolerance)
    if problem is None:
        return ExerciseResult(ex.id, "passed", points, points)
    return ExerciseResult(ex.id, "failed", 0.0, points, f"{', '.join(ex.names)}: {problem.detail}", cause=problem.cause,
                          category=problem.category)


MAX_ADVERSARIAL = 20  # the course asks for a handful of strings that fool the model, not a random search's output
COURSE_STARTERS = ("()", "(())", "))")  # the list the course's cell starts from, before students add to it


def judge_adversarial(ex: Exercise, msg: dict | None, points: float,
                      classify: Callable[[str | None, list[str]], tuple]) -> ExerciseResult:
    """A short list of valid strings (only brackets, length 1-40), judged by the share of it that
    the targeted model misclassifies: at least a quarter of the strings the student added to the
    course's starting list (a few found, a few tried). Many random strings would fool a 99.9%
    model now and then by chance; a short list of them almost never has that share."""
    if msg is None or not msg.get("ok"):
        detail = "no adversarial examples given" if msg and "missing" in msg else "no result came back"
        return ExerciseResult(ex.id, "missing" if msg and "missing" in msg else "error", 0.0, points, detail)
    try:
        value = decode((msg.get("values") or {}).get("adversarial_examples"))
    except ProtocolError as e:
        return ExerciseResult(ex.id, "error", 0.0, points, f"the value could not be read: {e}")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return ExerciseResult(ex.id, "failed", 0.0, points, f"expected a list of strings, got {compare.describe_type(value)}")
    if len(value) > MAX_ADVERSARIAL:
        return ExerciseResult(ex.id, "failed", 0.0, points, f"{len(value):,} strings: the exercise asks for a handful "
                              f"of strings that fool the model (at most {MAX_ADVERSARIAL} are judged); keep the ones "
                              "you found")
    valid = [s for s in value if isinstance(s, str) and 0 < len(s) <= 40 and set(s) <= {"(", ")"}]
    invalid = len(value) - len(valid)
    added = [s for s in valid if s not in COURSE_STARTERS]
    if not added:
        return ExerciseResult(ex.id, "failed", 0.0, points,
                              f"no valid examples of your own (strings of 1 to 40 brackets); {invalid} invalid")
    wrong, problem, *why = classify((msg.get("context") or {}).get("model_hash"), added)
    if wrong is None:
        return ExerciseResult(ex.id, "error", 0.0, points, problem, category=why[0] if why else "")
    n = sum(wrong)
    detail = f"{n} of the {len(added)} valid strings you added are misclassified by the model" + \
        (f"; {invalid} invalid ignored" if invalid else "")
    if n and 4 * n >= len(added):
        return ExerciseResult(ex.id, "passed", points, points, detail)
    why = ": the model gets all of them right" if not n else ": fewer than a quarter of them fool it"
    return ExerciseResult(ex.id, "failed", 0.0, points, detail + why)


def judge_unfinished(ex: Exercise, points: float, status: str, reason: str) -> ExerciseResult:
    return ExerciseResult(ex.id, status, 0.0, points, reason)


