"""GitHub Classroom's output, read as the current autograding reporter reads it
(github-education-resources/autograding-grading-reporter: each runner's result, base64 in
`<RUNNER>_RESULTS`; the check run's "Points X/Y" is the sum of `tests[].score` over the sum of
`max_score`, runners without a max_score left out; the job fails when a runner's `status` is
"fail" or "error"; each test is shown as passed when its `status` is "pass", else with its
`message`)."""
from __future__ import annotations

import base64
import json

from grader.catalogue import BY_ID, IDS
from grader.reports import classroom_json
from grader.results import CaseOutcome, ExerciseResult, SubmissionResult


def js_number(x: float) -> str:
    """How JavaScript prints a number: the shortest round-trip digits, integers without ".0"."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def reporter(env: dict[str, str], runners: str) -> tuple[str, bool, list[str]]:
    """The reporter's reading: the check run's text, whether the job fails, the tests it shows passed."""
    results = [json.loads(base64.b64decode(env[f"{r.strip().upper()}_RESULTS"])) for r in runners.split(",")]
    total = maximum = 0
    for r in results:
        if not r.get("max_score"):
            continue
        maximum += r["max_score"]
        for t in r["tests"]:
            total += t["score"]
    failed = any(r["status"] in ("fail", "error") for r in results)
    return f"Points {js_number(total)}/{js_number(maximum)}", failed, [t["name"] for r in results for t in r["tests"]
                                                                       if t["status"] == "pass"]


def submission(**statuses) -> SubmissionResult:
    out = []
    for i in IDS:
        status = statuses.get(i, "passed")
        if status == "partial":
            out.append(ExerciseResult(i, "partial", 0.75, 1.0, cases=(CaseOutcome("a", True), CaseOutcome("b", False))))
        elif status == "provided":
            out.append(ExerciseResult(i, "provided", 0.0, 0.0, starter="the course's notebook"))
        else:
            out.append(ExerciseResult(i, status, 1.0 if status == "passed" else 0.0, 1.0, "why"))
    return SubmissionResult("s.ipynb", tuple(out))


def test_the_reporter_reads_our_points_and_fails_the_check_for_what_did_not_pass():
    env = {}
    cases = {"all": submission(LN_hook_names="provided", embedding="provided"),
             "mixed": submission(get_WOV="failed", get_ln_fit="partial", get_attn_probs="timeout",
                                 LN_hook_names="provided")}
    for name, result in cases.items():
        env[f"{name.upper()}_RESULTS"] = base64.b64encode(classroom_json(result).encode()).decode()
    text, failed, passed = reporter(env, "all")
    assert (text, failed) == ("Points 21/21", False)  # provided items count neither way
    assert len(passed) == 23
    text, failed, passed = reporter(env, "mixed")
    assert (text, failed) == (f"Points {js_number(cases['mixed'].score)}/22", True)
    assert BY_ID["get_WOV"].title not in passed and BY_ID["get_ln_fit"].title not in passed and len(passed) == 20
    text, _, _ = reporter(env, "all, mixed")  # two runners: their sums
    assert text == f"Points {js_number(21 + cases['mixed'].score)}/43"
