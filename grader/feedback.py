"""The words a student reads, made from a result's fields (trusted side, renderers' edge).

Every renderer (terminal table, JSON, Markdown, JUnit, Gradescope, Classroom, the class page, the
notebook table, pytest's failure text) takes its words from here or from the fields themselves;
nothing reads these words back.
"""
from __future__ import annotations

from dataclasses import replace

from grader.inert import inert
from grader.mistakes import says
from grader.results import (CaseOutcome, Condition, ExerciseResult, Kept, Late, NotGradable, Overridden, Replaced,
                            SubmissionResult)

MAX_FEEDBACK_CASES = 3
NOT_IMPLEMENTED = "not implemented (raises NotImplementedError)"
OBJECT_PASSED = "matches the reference on your model and data"


def and_list(names: tuple[str, ...] | list[str], last: str = " and ") -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + last + names[-1]


def difference_text(detail: str, cause: str = "", same_as: str = "", also: str = "") -> str:
    """What differs, then the likely cause, the case it equals, what else it changed."""
    parts = [detail] if detail else []
    if cause:
        parts.append(f"likely cause: {says(cause)}")
    if same_as:
        parts.append(f"it equals the right answer for ({same_as}): {says('ignored_argument')}?")
    if also:
        parts.append(f"also, {also}")
    return "; ".join(parts)


def case_text(c: CaseOutcome) -> str:
    """One case's message (without the item and label)."""
    if c.kind == "not_implemented":
        return NOT_IMPLEMENTED
    if c.kind == "side_effect":
        return f"it returns the right value, but {c.detail}"
    if c.kind == "wrong":
        return difference_text(c.detail, c.cause, c.same_as, c.also)
    return c.detail


def _cases_text(e: ExerciseResult) -> str:
    total, passed = len(e.cases), sum(c.passed for c in e.cases)
    heavy = [c for c in e.cases if c.kind == "memory"]
    if passed == total and heavy:
        return f"all {total} cases give the right values, but {heavy[0].detail}"
    if passed == total:
        return f"all {total} cases passed"
    failing = [c for c in e.cases if not c.passed]
    if {c.kind for c in failing} == {"not_implemented"} and not passed:
        return NOT_IMPLEMENTED
    lines = [f"{passed} of {total} cases passed."]
    shown = [c for c in failing if c.kind != "skipped"]
    lines += [f"- {e.id}({c.label}): {case_text(c)}" for c in shown[:MAX_FEEDBACK_CASES]]
    if len(shown) > MAX_FEEDBACK_CASES:
        lines.append(f"- ... and {len(shown) - MAX_FEEDBACK_CASES} more failing cases")
    if len(failing) > len(shown):
        lines.append(f"- {len(failing) - len(shown)} more cases not run: a case ran past its time limit, and this "
                     "item scores only when every case passes")
    return "\n".join(lines)


def starter_text(e: ExerciseResult) -> str:
    if e.status == "not_attempted":
        return (f"not attempted: `{e.id}` is the starter's stub, unchanged ({e.starter}); write it to earn "
                f"its {e.max_score:g} point(s)")
    given = f"worth {e.max_score:g} point(s) here" if e.max_score else "worth no points, and not counted in the maximum"
    return f"provided: `{e.id}` is given complete by the starter ({e.starter}) and is unchanged, so it is {given}"


def verdict_text(e: ExerciseResult) -> str:
    """The verdict itself, without the condition it was given on."""
    if e.status == "not_attempted" or (e.status == "provided" and e.score >= e.max_score):
        return starter_text(e)
    if e.status == "provided":
        return starter_text(e) + "; as graded: " + verdict_text(replace(e, status="failed", starter=""))
    if e.taken_from_course:
        return (f"`{e.id}` was taken from the course's solutions (the grader answered for it), so it is not graded "
                "as your work; your own functions that call it are graded on your own code")
    if e.cases:
        return _cases_text(e)
    if e.cause or e.detail:
        return difference_text(e.detail, e.cause) if e.status != "passed" or e.cause else e.detail
    return OBJECT_PASSED if e.status == "passed" else ""


def condition_text(c: Condition) -> str:
    helpers = list(c.helpers)
    if c.course_examples:
        given = f", given a correct {' and '.join(helpers)}" if helpers else ""
        return (f"{given}, on the course's {c.course_examples:,} examples (your code depends on the data size; "
                "submissions run on fewer first)")
    how = "computed again" if c.recomputed else "graded"
    if len(helpers) == 1:
        return (f", given a correct {helpers[0]} ({how} with the reference's {helpers[0]} in place of yours; your "
                f"{helpers[0]} is scored on its own)")
    return (f", given a correct {and_list(helpers)} ({how} with the reference's in place of yours; each is scored "
            "on its own)")


def replaced_text(r: Replaced) -> str:
    tested = ", the value the course's test there was given" if r.tested else ""
    return (f" (judged on the value of its own exercise cell, cell {r.cell}{tested}; a later statement, in cell "
            f"{r.by_cell}, replaced it with another value, which is not what is graded)")


def override_text(o: Overridden) -> str:
    by = f" by {o.who}" if o.who else ""
    return f"overridden{by} to {o.points:g} point(s) (the grader gave {o.graded_score:g}): {o.reason}"


def feedback(e: ExerciseResult) -> str:
    """The whole feedback of an item, as the JSON report and the feedback files give it; an
    instructor's override first."""
    if e.override:
        return override_text(e.override) + "\n" + feedback(replace(e, override=None))
    said = replaced_text(e.replaced) if e.replaced else ""
    if e.condition is None or e.status in ("not_attempted", "provided"):
        return verdict_text(e) + said
    if not e.condition.course_examples and not e.condition.recomputed and e.status == "passed":
        return "correct" + condition_text(e.condition) + said
    return verdict_text(e) + condition_text(e.condition) + said


NOT_GRADABLE_WHY = {"empty": "the file is empty", "binary": "it is not a text file",
                    "not_a_notebook": "it is not a Jupyter notebook",
                    "no_items": "it is not a submission of this section (another section's work?)",
                    "unreadable": "the file could not be read"}


def late_text(late: Late, raw: float) -> str:
    if late.after_zero:
        return f"handed in {late.days_late:.2f} day(s) late, after the last date the course accepts: 0 (scored {raw:g})"
    return f"{late.percent:g}% late penalty: {late.days_late:.2f} day(s) late (scored {raw:g} before it)"


def kept_text(kept: Kept, own: float) -> str:
    return (f"your best earlier submission ({kept.submitted}, one of {kept.of}) scored {kept.score:g}: that score "
            f"stands (this submission scored {own:g}); the course keeps each student's best")


def not_gradable_text(ng: NotGradable) -> str:
    detail = f" ({ng.detail})" if ng.detail else ""
    return (f"not gradable: {NOT_GRADABLE_WHY.get(ng.reason, ng.reason)}{detail}; nothing in it was run, "
            "and it has no score (not a score of 0)")


def cell_error_notes(s: SubmissionResult) -> list[str]:
    return [f"cell {c.cell} raised {c.type}: {c.message}" for c in s.cell_errors]


def all_notes(s: SubmissionResult) -> list[str]:
    return ([not_gradable_text(s.not_gradable)] if s.not_gradable else []) + \
        ([late_text(s.late, s.raw_score)] if s.late else []) + \
        ([kept_text(s.kept, s.own_score)] if s.kept else []) + \
        [f"{e.id}: {override_text(e.override)}" for e in s.exercises if e.override] + cell_error_notes(s) + list(s.notes)


def headline(e: ExerciseResult, width: int) -> str:
    """The most useful part of an item's verdict in one line: the likely cause when there is one,
    else what differs, then the argument combination in brackets."""
    case = e.failing
    if e.override:
        msg = inert(" ".join(override_text(e.override).split()))
        return msg if len(msg) <= width else msg[: max(width - 3, 0)] + "..."
    if e.status == "passed" and e.condition is None and e.replaced is None:
        return ""
    if e.status in ("not_attempted", "provided"):
        msg = inert(f"{e.status.replace('_', ' ')}, as in {e.starter}")
        return msg if len(msg) <= width else msg[: max(width - 3, 0)] + "..."
    if e.status == "passed" or (e.condition is not None and case is None):
        msg = feedback(e)
    elif e.likely_cause:
        msg = f"likely cause: {says(e.likely_cause)}"
    elif case is not None:
        msg = case_text(case)
    else:
        msg = feedback(e)
    msg = inert(" ".join(msg.split("\n", 1)[0].split()))
    tail = f" [{inert(case.label)}]" if case is not None and e.status != "passed" else ""
    if len(tail) > width // 2:
        tail = tail[: width // 2 - 4] + "...]"
    if len(msg) + len(tail) > width:  # shorten the message, keep which case it was
        msg = msg[: max(width - len(tail) - 3, 0)] + "..."
    return msg + tail


def failure_key(e: ExerciseResult) -> str:
    """What went wrong, the same words for the same mistake across students (the class summary's
    "most common failure"): the likely cause, else the kind of difference or the exception."""
    if e.status in ("not_attempted", "provided"):
        return e.status.replace("_", " ")
    if e.taken_from_course:
        return "taken from the course's solutions"
    cause = e.likely_cause
    if cause:
        return f"likely cause: {says(cause)}"
    case = e.failing
    if case is None:
        return e.status if e.status in ("missing", "timeout") else (e.detail.split(":", 1)[0][:80] or e.status)
    if case.kind == "wrong":
        return {"shape": "wrong shape", "type": "wrong type", "nonfinite": "NaN or infinite values",
                "names": "wrong names", "length": "wrong length", "range": "out of the expected range"}.get(
            case.category, "wrong values") + (" (an argument ignored or mixed up)" if case.same_as else "")
    if case.kind in ("error", "timeout"):
        return case.category or case.kind
    return {"not_implemented": NOT_IMPLEMENTED, "side_effect": "changes what it was given",
            "memory": "builds the full [batch, neuron, d_model] tensor"}.get(case.kind, case.kind)
