"""Running one submission in workers until every item of a pass has a verdict (trusted side).

A pass (a `Plan`) is one way of running the submission: lean or every statement, with or without
the reference standing in for some helpers, on the 1,000 examples or the course's 5,000. Each pass
starts a worker and reads what it sends; when the worker stops early it is started again:
- while the submission's own code runs (before "ready"), the statement it was on is skipped from
  then on, in every pass of this submission: a statement that hangs or ends the process costs only
  what depends on it;
- while an item is graded, that item gets its verdict (timeout, error) and the next worker grades
  the rest.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader import verdicts
from grader.answers import Questions
from grader.catalogue import EXERCISES, Exercise, exercise_job
from grader.folders import Folder
from grader.results import ExerciseResult
from grader.sandbox import Limits, WorkerRun, run_worker

MAX_RESTARTS = 3  # workers that stop without finishing any item, per pass (one that stops on an item
# costs that item only, and the submission's time limit bounds the rest)
MAX_SKIPPED = 12  # statements skipped because they stopped a worker, per submission
FUNCTION_IDS = [e.id for e in EXERCISES if e.kind == "function"]


@dataclass
class Submission:
    """What every pass over one submission shares."""

    path: Path  # as given (reports name it)
    source: bytes  # read once, without following a link
    slot: object  # where its workers run (grader.slots.Slot)
    deadline: float
    questions: Questions
    # statements that stopped a worker, by pass: a pass that stands in the reference for helpers
    # runs them again (the student's helper may have been what hung or exited)
    skips: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    name: str  # its folder under the submission's scratch
    exercises: tuple[Exercise, ...]
    mode: str  # "lean" | "fast" | "kernel"
    examples: str  # the data file the submission's own code loads
    helpers: dict[str, list[str]] = field(default_factory=dict)  # item -> helpers stood in while grading it
    module_helpers: tuple[str, ...] = ()  # helpers stood in while the submission's own code runs
    cell_errors_as_notes: bool = False

    @property
    def skips(self) -> str:
        """Which set of statements-to-skip it uses: the first (both its parts, when split) and full
        runs share one; a pass with stand-ins or other data starts afresh (what hung may have been
        the student's helper)."""
        return "own code" if self.name in ("first", "first-objects", "full") else self.name


def split(plan: Plan) -> tuple[Plan, Plan] | None:
    """The first pass in two parts that can run at once on two cores: the object items (the
    submission's own demo code builds them: most of its statements) and the function items (its
    definitions, then every grading call). None when one part would be empty."""
    objects = tuple(e for e in plan.exercises if e.kind != "function")
    functions = tuple(e for e in plan.exercises if e.kind == "function")
    if not objects or not functions:
        return None
    return replace(plan, exercises=functions), replace(plan, name=f"{plan.name}-objects", exercises=objects)


def merged(outcomes: list[Outcome]) -> Outcome:
    """One outcome from the parts of a split pass (their items are disjoint)."""
    out = Outcome({}, {})
    for o in outcomes:
        out.messages.update(o.messages)
        out.finished.update(o.finished)
        out.done |= o.done
        out.unreached |= o.unreached
        out.dropped = max(out.dropped, o.dropped)
        out.statement_errors = max(out.statement_errors, o.statement_errors)  # both ran the definitions
    return out


@dataclass
class Outcome:
    messages: dict[str, list[dict]]  # item -> its result messages
    finished: dict[str, ExerciseResult]  # items decided without messages (timeouts, crashes)
    done: set[str] = field(default_factory=set)  # items whose messages are all in
    unreached: set[str] = field(default_factory=set)  # items this run never started (decided by _finish)
    dropped: int = 0  # statements a lean run left out
    statement_errors: int = 0  # statements that raised, were stopped or skipped


def run(grader, sub: Submission, plan: Plan) -> Outcome:
    """Run `plan` to its end: every item has messages or a verdict."""
    limits: Limits = grader.config.limits
    out = Outcome({e.id: [] for e in plan.exercises}, {})
    remaining = list(plan.exercises)
    chosen = {h for chain in plan.helpers.values() for h in chain} | set(plan.module_helpers)
    skip = sub.skips.setdefault(plan.skips, set())
    restarts = attempt = 0
    while remaining and not grader.stopping.is_set():
        if time.monotonic() >= sub.deadline:
            _finish(grader, out, remaining, "timeout",
                    f"not graded: the submission ran past its limit of {limits.submission_seconds:g} s")
            break
        job, result = _one_run(grader, sub, plan, sub.slot.run_folder(f"{plan.name}-{attempt}"), remaining, skip, chosen)
        attempt += 1
        ready = _collect(result, out, sub.notes, first=plan.cell_errors_as_notes and attempt == 1)
        if not ready:
            if _skip_the_statement(sub, skip, job, result, limits):
                continue
            _finish(grader, out, remaining, *why_unfinished(result, limits, before_items=True))
            break
        for ex in remaining:
            if ex.id not in out.done and result.current_item == ex.id:  # the item it was on when it stopped
                out.finished[ex.id] = verdicts.judge_unfinished(ex, grader.points(ex), *why_unfinished(result, limits))
        before = len(remaining)
        remaining = [e for e in remaining if e.id not in out.done and e.id not in out.finished]
        restarts += bool(remaining) and len(remaining) == before  # a worker that stopped on an item finished it
        if remaining and restarts > MAX_RESTARTS:
            _finish(grader, out, remaining, "error", f"not graded: the worker stopped {restarts} times before finishing an item")
            break
    if grader.stopping.is_set():
        _finish(grader, out, remaining, "error", "grading was interrupted")
    return out


def _one_run(grader, sub: Submission, plan: Plan, run_dir: Folder, remaining: list[Exercise], skip: set[str],
             chosen: set[str]) -> tuple[dict, WorkerRun]:
    """One worker in a new folder of its own: the submission's copy, the job, answers to its questions."""
    with run_dir:
        copy = run_dir.write("submission" + sub.path.suffix, sub.source)
        job = _job(grader, sub, plan, copy, remaining, skip)
        return job, run_worker(job, run_dir, grader.config.limits, sub.deadline, sub.slot,
                               sub.questions.answerer(run_dir.here, chosen), grader.stopping)


def _skip_the_statement(sub: Submission, skip: set[str], job: dict, result: WorkerRun, limits: Limits) -> bool:
    """A run that stopped before grading began, on a statement of the submission's own code: whether
    to run again without that statement (skipped from now on, unless this run was already told to
    skip it: `job["skip"]`; the other part of a split pass may have added it since, and then this
    run needs a rerun too)."""
    statement = result.current_statement
    key = statement["key"] if statement else None
    if not key or key in job["skip"] or result.ended_by in ("submission_timeout", "interrupted"):
        return False
    if key in skip:
        return True
    if len(skip) >= MAX_SKIPPED:
        return False
    skip.add(key)
    sub.notes.append(f"the statement at {statement['where']} {_stopped(result, limits)}: it was "
                     "skipped, and the submission run again without it")
    return True


def _job(grader, sub: Submission, plan: Plan, copy: Path, remaining: list[Exercise], skip: set[str]) -> dict:
    return {"submission": str(copy), "name": sub.path.name, "weights": grader.weights_pt,
            "weights_pt": grader.weights_pt, "data": grader.data_public, "device": grader.config.device,
            "notebook_data": plan.examples, "notebook_mode": plan.mode, "functions": FUNCTION_IDS,
            "skip": sorted(skip), "module_helpers": list(plan.module_helpers),
            "items": [{**exercise_job(e), "reference_helpers": plan.helpers.get(e.id, [])} for e in remaining]}


def _finish(grader, out: Outcome, remaining: list[Exercise], status: str, why: str) -> None:
    """The items still without a verdict get this one."""
    for ex in remaining:
        if ex.id not in out.finished and ex.id not in out.done:
            out.finished[ex.id] = verdicts.judge_unfinished(ex, grader.points(ex), status, why)
            out.unreached.add(ex.id)
    remaining.clear()


def _collect(run: WorkerRun, out: Outcome, notes: list[str], first: bool) -> bool:
    """File each message under its item; note submission-level events. Returns whether the
    submission's own code ran to its end ("ready")."""
    ready = False
    for msg in run.messages:
        if msg["kind"] == "ready":
            ready = True
            errors = [e for e in (msg.get("cell_errors") or []) if isinstance(e, dict)]
            out.statement_errors += len(errors)
            out.dropped = max(out.dropped, int(msg.get("dropped") or 0))
            for err in errors[:5] if first else ():
                notes.append(f"cell {err.get('cell')} raised {err.get('type')}: {str(err.get('message'))[:200]}")
        elif msg["kind"] == "end" and msg.get("item") in out.messages:
            out.done.add(msg["item"])
        elif msg["kind"] in ("case", "object", "missing") and msg.get("item") in out.messages:
            out.messages[msg["item"]].append(msg)
        elif msg["kind"] == "crash":
            notes.append(str(msg.get("detail"))[:300])
        elif msg["kind"] == "oversize" and str(msg.get("item")) in out.messages:
            out.messages[str(msg.get("item"))].append(
                {"kind": "case", "case": msg.get("case"), "ok": False,
                 "error": {"kind": "protocol", "type": "ResultTooLarge",
                           "message": f"the result was {msg.get('bytes')} bytes, over the limit"}})
    if run.output_dropped:
        notes.append(f"output truncated: {run.output_dropped} bytes past the first {len(run.output)} were dropped")
    if run.protocol_errors:
        notes.append(f"{len(run.protocol_errors)} malformed messages from the worker were ignored")
    return ready


def _stopped(run: WorkerRun, limits: Limits) -> str:
    """How a statement stopped its worker, in words."""
    if run.ended_by == "statement_timeout":
        return f"ran past its limit of {limits.statement_seconds:g} s"
    return "ended the worker process (" + _exit_words(run.returncode) + ")"


def _exit_words(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (likely the memory limit)" if name in ("SIGKILL", "SIGSEGV", "SIGABRT") else ""
        return f"killed by {name}{hint}" if name != "SIGXCPU" else "killed by SIGXCPU (the CPU-time limit)"
    return f"exit code {code}"


def why_unfinished(run: WorkerRun, limits: Limits, before_items: bool = False) -> tuple[str, str]:
    crash = next((str(m.get("detail"))[:300] for m in run.messages if m["kind"] == "crash"), "")
    if run.ended_by == "submission_timeout" and before_items:
        return "timeout", (f"not graded: running the submission's own code took longer than "
                           f"{limits.submission_seconds:g} s")
    if crash:
        return "error", crash
    if before_items:
        tail = run.output.strip().splitlines()[-3:]
        how = f" ({_exit_words(run.returncode)}, {run.ended_by})" if run.ended_by else f" ({_exit_words(run.returncode)})"
        return "error", "the worker stopped before grading began" + how + (": " + " | ".join(tail)[-300:] if tail else "")
    if run.ended_by == "item_timeout":
        return "timeout", f"stopped: this item ran past its limit of {limits.item_seconds:g} s"
    if run.ended_by == "submission_timeout":
        return "timeout", f"stopped: the submission ran past its limit of {limits.submission_seconds:g} s"
    words = _exit_words(run.returncode)
    if words.startswith("killed"):
        return "error", f"the worker process was {words} while running this item"
    return "error", f"the worker process exited ({words}) while running this item"


def read_submission(path: Path) -> bytes:
    """The submission's bytes, refusing a symbolic link (it could point at the reference solutions
    or a classmate's file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()

