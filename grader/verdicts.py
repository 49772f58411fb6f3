"""Turn what a worker sent about one item into that item's result: status, score, feedback."""
from __future__ import annotations

from typing import Any, Callable


from grader import compare, mistakes
from grader.catalogue import Exercise
from grader.protocol import ProtocolError, decode
from grader.results import CaseOutcome, ExerciseResult

MAX_FEEDBACK_CASES = 3


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


def cross_case_hint(ex: Exercise, label: str, got: Any, all_expected: dict[str, Any]) -> str:
    """When a wrong answer equals the right answer of another argument combination, the function
    most likely ignores (or mixes up) an argument: say which combination it matched."""
    for other, expected in all_expected.items():
        if other != label and _matches(ex, got, expected):
            return f"; it equals the right answer for ({other}): {mistakes.says('ignored_argument')}?"
    return ""


def alternative_hint(ex: Exercise, got: Any, alternatives: list[tuple[str, Any]]) -> str:
    """When a wrong answer equals a known wrong formulation (grader.mistakes), name the mistake."""
    for mistake_id, value in alternatives:
        if _matches(ex, got, value):
            return f"; likely cause: {mistakes.says(mistake_id)}"
    return ""


def judge_case(ex: Exercise, msg: dict, expected: Any, all_expected: dict[str, Any] | None = None,
               alternatives: Callable[[str], list[tuple[str, Any]]] | None = None) -> CaseOutcome:
    label = str(msg.get("case", "?"))
    if not msg.get("ok"):
        err = msg.get("error") or {}
        kind = err.get("kind") if err.get("kind") in ("timeout", "not_implemented", "skipped") else "error"
        if kind == "not_implemented":
            return CaseOutcome(label, False, kind, "not implemented (raises NotImplementedError)")
        if kind == "skipped":  # after a case that timed out, in an item every case of which must pass
            return CaseOutcome(label, False, kind, str(err.get("message", "not run"))[:300])
        return CaseOutcome(label, False, kind, _error_text(err))
    try:
        got = decode(msg.get("value"))
    except ProtocolError as e:
        return CaseOutcome(label, False, "error", f"the result could not be read: {e}")
    if ex.expect == "linfit":
        problem, _parts = compare.linfit(got, expected, ex.tolerance)
    else:
        problem = compare.COMPARATORS[ex.expect](got, expected, ex.tolerance)
    if problem and "likely cause" not in problem and alternatives is not None:
        problem += alternative_hint(ex, got, alternatives(label))
    if problem and all_expected and len(all_expected) > 1:
        problem += cross_case_hint(ex, label, got, all_expected)
    changed = msg.get("side_effects")
    if isinstance(changed, str) and changed:  # the right value, or not, but the call broke what it was given
        text = changed[:300]
        if problem is None:
            return CaseOutcome(label, False, "side_effect", f"it returns the right value, but {text}")
        problem += f"; also, {text}"
    limit = next((c.memory_limit for c in ex.cases if c.label == label), 0)
    largest = msg.get("largest_tensor")
    if problem is None and limit and isinstance(largest, int) and largest >= limit:
        return CaseOutcome(label, True, "memory", f"on {label} it creates a tensor of {largest:,} elements, the size "
                           "of the full [batch, neuron, d_model] output it is meant to avoid: project before multiplying")
    return CaseOutcome(label, problem is None, "pass" if problem is None else "wrong", problem or "")


def summarise(ex: Exercise, outcomes: list[CaseOutcome], points: float) -> ExerciseResult:
    """Aggregate case outcomes: all pass -> passed; some -> partial (if declared) or failed."""
    n_pass = sum(o.passed for o in outcomes)
    total = len(outcomes)
    heavy = [o for o in outcomes if o.kind == "memory"]
    if total and n_pass == total and heavy:
        score = round(points * (1 - ex.memory_penalty), 4)
        return ExerciseResult(ex.id, "partial", score, points, f"all {total} cases give the right values, but "
                              f"{heavy[0].message}", tuple(outcomes))
    if total and n_pass == total:
        return ExerciseResult(ex.id, "passed", points, points, f"all {total} cases passed", tuple(outcomes))
    failing = [o for o in outcomes if not o.passed]
    kinds = {o.kind for o in failing}
    if kinds == {"not_implemented"} and n_pass == 0:
        return ExerciseResult(ex.id, "failed", 0.0, points, "not implemented (raises NotImplementedError)", tuple(outcomes))
    lines = [f"{n_pass} of {total} cases passed."]
    shown = [o for o in failing if o.kind != "skipped"]
    for o in shown[:MAX_FEEDBACK_CASES]:
        lines.append(f"- {ex.id}({o.label}): {o.message}")
    if len(shown) > MAX_FEEDBACK_CASES:
        lines.append(f"- ... and {len(shown) - MAX_FEEDBACK_CASES} more failing cases")
    skipped = len(failing) - len(shown)
    if skipped:
        lines.append(f"- {skipped} more cases not run: a case ran past its time limit, and this item scores "
                     "only when every case passes")
    feedback = "\n".join(lines)
    if kinds & {"wrong", "side_effect"} or n_pass:
        if ex.partial and n_pass:
            score = round(points * n_pass / total, 4)
            return ExerciseResult(ex.id, "partial", score, points, feedback, tuple(outcomes))
        return ExerciseResult(ex.id, "failed", 0.0, points, feedback, tuple(outcomes))
    status = "timeout" if "timeout" in kinds else "error"
    return ExerciseResult(ex.id, status, 0.0, points, feedback, tuple(outcomes))


def judge_function(ex: Exercise, messages: list[dict], expected: dict[str, Any], points: float,
                   alternatives: Callable[[str], list[tuple[str, Any]]] | None = None) -> ExerciseResult:
    for msg in messages:
        if msg["kind"] == "missing":
            return ExerciseResult(ex.id, "missing", 0.0, points, str(msg.get("detail", "not found"))[:500])
    by_label = {str(m.get("case")): m for m in messages if m["kind"] == "case"}
    outcomes = []
    for case in ex.cases:
        msg = by_label.get(case.label)
        if msg is None:
            outcomes.append(CaseOutcome(case.label, False, "error", "no result came back for this case"))
        else:
            outcomes.append(judge_case(ex, msg, expected[case.label], expected, alternatives))
    return summarise(ex, outcomes, points)


def judge_object(ex: Exercise, msg: dict | None, points: float,
                 reference_for: Callable[[str | None, list[str] | None], tuple[dict | None, str]]) -> ExerciseResult:
    """Object items: the submission's values against the reference computed on its own model/data."""
    if msg is None:
        return ExerciseResult(ex.id, "error", 0.0, points, "no result came back for this item")
    if not msg.get("ok"):
        if "missing" in msg:
            return ExerciseResult(ex.id, "missing", 0.0, points, str(msg["missing"])[:500])
        return ExerciseResult(ex.id, "error", 0.0, points, _error_text(msg.get("error") or {}))
    try:
        values = {k: decode(v) for k, v in (msg.get("values") or {}).items()}
    except ProtocolError as e:
        return ExerciseResult(ex.id, "error", 0.0, points, f"the value could not be read: {e}")
    context = msg.get("context") or {}
    strs = (context.get("data") or {}).get("strs")
    expected, problem = reference_for(context.get("model_hash"), strs if isinstance(strs, list) else None)
    if expected is None:
        return ExerciseResult(ex.id, "error", 0.0, points, problem)
    if len(ex.names) == 2:  # a pair: v_L and v_R
        got = tuple(values[n] for n in ex.names)
        right = tuple(expected[n] for n in ex.names) + tuple(expected[k] for k in ("v_L_v_R_bands",) if k in expected)
        problem = compare.COMPARATORS[ex.expect](got, right, ex.tolerance)
        problem = problem.replace("first vector", ex.names[0]).replace("second vector", ex.names[1]) if problem else None
    else:
        problem = compare.tensor(values[ex.names[0]], expected[ex.names[0]], ex.tolerance)
    if problem is None:
        return ExerciseResult(ex.id, "passed", points, points, "matches the reference on your model and data")
    return ExerciseResult(ex.id, "failed", 0.0, points, f"{', '.join(ex.names)}: {problem}")


MAX_ADVERSARIAL = 20  # the course asks for a handful of strings that fool the model, not a random search's output
COURSE_STARTERS = ("()", "(())", "))")  # the list the course's cell starts from, before students add to it


def judge_adversarial(ex: Exercise, msg: dict | None, points: float,
                      classify: Callable[[str | None, list[str]], tuple[list[bool] | None, str]]) -> ExerciseResult:
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
    wrong, problem = classify((msg.get("context") or {}).get("model_hash"), added)
    if wrong is None:
        return ExerciseResult(ex.id, "error", 0.0, points, problem)
    n = sum(wrong)
    detail = f"{n} of the {len(added)} valid strings you added are misclassified by the model" + \
        (f"; {invalid} invalid ignored" if invalid else "")
    if n and 4 * n >= len(added):
        return ExerciseResult(ex.id, "passed", points, points, detail)
    why = ": the model gets all of them right" if not n else ": fewer than a quarter of them fool it"
    return ExerciseResult(ex.id, "failed", 0.0, points, detail + why)


def judge_unfinished(ex: Exercise, points: float, status: str, reason: str) -> ExerciseResult:
    return ExerciseResult(ex.id, status, 0.0, points, reason)


