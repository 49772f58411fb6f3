"""Running one submission in workers until every item of a pass has a verdict (trusted side).

A pass (a `Plan`, grader.second_looks) is one way of running the submission: lean or every
statement, with or without the reference standing in for some helpers, on the 1,000 examples or
the course's 5,000. Each pass starts a worker and reads what it sends; when the worker stops early
it is started again:
- while the submission's own code runs (before Kind.READY), the statement it was on is skipped
  from then on, in every pass of this submission: a statement that hangs, ends the process or
  writes past the storage limit costs only what depends on it;
- while an item is graded, that item gets its verdict (timeout, error) and the next worker grades
  the rest.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.answers import Answerer, Grants
from grader.catalogue import EXERCISES, Exercise, exercise_job
from grader.config import Limits
from grader.folders import Folder
from grader.judging import Judge
from grader.protocol import ITEM_RESULTS, Kind
from grader.results import CellError, ExerciseResult
from grader.second_looks import Plan
from grader.worker_run import MessageBudget, RunTerms, WorkerRun, run_worker

MAX_RESTARTS = 3  # workers that stop without finishing any item, per pass (one that stops on an item
# costs that item only, and the submission's time limit bounds the rest)
MAX_SKIPPED = 12  # statements skipped because they stopped a worker, per submission
MAX_CELL_ERRORS = 5  # the first run's cells that raised, kept as the submission's notes
FUNCTION_IDS = [e.id for e in EXERCISES if e.kind == "function"]


@dataclass(frozen=True)
class Setting:
    """What every run of every submission shares (from the grader's configuration)."""

    limits: Limits
    device: str
    weights_pt: str  # the model as workers read it (grader.public)
    data_public: str
    stopping: threading.Event


@dataclass
class Submission:
    """What every pass over one submission shares."""

    path: Path  # as given (reports name it)
    source: bytes  # read once, without following a link
    slot: object  # where its workers run (grader.slots.Slot)
    deadline: float
    answerer: Answerer
    budget: MessageBudget
    # statements that stopped a worker, by pass: a pass that stands in the reference for helpers
    # runs them again (the student's helper may have been what hung or exited)
    skips: dict[str, set[str]] = field(default_factory=dict)
    # statements that ran past their time limit, by the helpers stood in while they ran: a pass on
    # more data with the same stand-ins (whose statements get as many times the time as they get
    # data) leaves them out instead of waiting for them again
    slow: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cell_errors: list[CellError] = field(default_factory=list)


@dataclass
class Outcome:
    messages: dict[str, list[dict]]  # item -> its result messages
    finished: dict[str, ExerciseResult]  # items decided without messages (timeouts, crashes)
    done: set[str] = field(default_factory=set)  # items whose messages are all in
    unreached: set[str] = field(default_factory=set)  # items this run never started (decided by _finish)
    dropped: int = 0  # statements a lean run left out
    statement_errors: int = 0  # statements that raised, were stopped or skipped
    errors: list[CellError] = field(default_factory=list)  # a second look's: the cells that raised in it


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


def run(setting: Setting, judge: Judge, sub: Submission, plan: Plan) -> Outcome:
    """Run `plan` to its end: every item has messages or a verdict."""
    limits = plan_limits(setting.limits, plan)
    out = Outcome({e.id: [] for e in plan.exercises}, {})
    remaining = list(plan.exercises)
    skip = sub.skips.setdefault(plan.skips, set())
    on_less_data = plan.statement_scale == 1
    slow = sub.slow.setdefault(plan.module_helpers, set()) if on_less_data else set()
    known_slow = frozenset() if on_less_data else frozenset(sub.slow.get(plan.module_helpers, ()))
    restarts = attempt = 0
    while remaining and not setting.stopping.is_set():
        if time.monotonic() >= sub.deadline:
            _finish(judge, out, remaining, "timeout",
                    f"not graded: the submission ran past its limit of {limits.submission_seconds:g} s")
            break
        answered = sub.answerer.answered()
        tainted = [e for e in remaining if e.id in answered]
        if tainted:
            # the grader has already answered for it (a run that claimed it finished, then ended):
            # whatever it returns now may be that answer, so it is taken from the course's solutions
            sub.answerer.taken.update(e.id for e in tainted)
            _finish(judge, out, tainted, "missing", "taken from the course's solutions")
            remaining = [e for e in remaining if e.id not in answered]
            continue
        name = f"{plan.name}-{attempt}"
        job, result = _one_run(setting, sub, plan, name, remaining, skip, known_slow)
        attempt += 1
        ready = _collect(result, out, sub, first=plan.record_cell_errors and attempt == 1, slow=slow)
        if not ready:
            key = (result.current_statement or {}).get("key")
            if result.ended_by == "statement_timeout" and key:
                slow.add(key)
            if _skip_the_statement(sub, skip, job, result, limits):
                continue
            _finish(judge, out, remaining, *why_unfinished(result, limits, before_items=True))
            break
        for ex in remaining:
            if ex.id not in out.done and result.current_item == ex.id:  # the item it was on when it stopped
                out.finished[ex.id] = judge.unfinished(ex, *why_unfinished(result, limits))
        before = len(remaining)
        remaining = [e for e in remaining if e.id not in out.done and e.id not in out.finished]
        restarts += bool(remaining) and len(remaining) == before  # a worker that stopped on an item finished it
        if remaining and restarts > MAX_RESTARTS:
            _finish(judge, out, remaining, "error", f"not graded: the worker stopped {restarts} times before finishing an item")
            break
    if setting.stopping.is_set():
        _finish(judge, out, remaining, "error", "grading was interrupted")
    return out


MEMORY_SCALE = 2.0  # the most a pass on more data multiplies the memory limit by (torch and the model do not grow)


def plan_limits(limits: Limits, plan: Plan) -> Limits:
    """The limits of a pass: a statement on the course's data size has as many times the time as it
    has examples, and up to twice the memory (the size is the point of that pass: the course's own
    get_out_by_components builds a 2.6 GB tensor on 5,000 examples, and whether that fits under
    the first pass's limit depends on what else the process has mapped; a loaded machine or a
    fragmented heap must not cost a verdict)."""
    if plan.statement_scale == 1:
        return limits
    from dataclasses import replace

    return replace(limits, statement_seconds=limits.statement_seconds * plan.statement_scale,
                   memory_bytes=int(limits.memory_bytes * min(plan.statement_scale, MEMORY_SCALE)))


def _one_run(setting: Setting, sub: Submission, plan: Plan, name: str, remaining: list[Exercise],
             skip: set[str], slow: frozenset[str] = frozenset()) -> tuple[dict, WorkerRun]:
    """One worker in a new folder of its own: the submission's copy, the job, answers to its
    questions (within the pass's grants); whatever was written there is removed once it is over."""
    grants = Grants(dict(plan.helpers), tuple(plan.module_helpers), frozenset(e.id for e in remaining))
    if plan.name not in ("first", "first-objects"):  # the first pass's two parts may run at once
        sub.slot.forget()
    with sub.slot.run_folder(name) as run_dir:
        try:
            copy = run_dir.write("submission" + sub.path.suffix, sub.source)
            job = _job(setting, sub, plan, copy, remaining, skip, slow)
            terms = RunTerms(frozenset(e.id for e in remaining), sub.answerer.for_run(name, run_dir.here, grants),
                             sub.budget, sub.slot.root, setting.stopping)
            return job, run_worker(job, run_dir, plan_limits(setting.limits, plan), sub.deadline, sub.slot, terms)
        finally:
            run_dir.empty()


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


def _job(setting: Setting, sub: Submission, plan: Plan, copy: Path, remaining: list[Exercise], skip: set[str],
         slow: frozenset[str] = frozenset()) -> dict:
    return {"submission": str(copy), "name": sub.path.name, "weights": setting.weights_pt,
            "weights_pt": setting.weights_pt, "data": setting.data_public, "device": setting.device,
            "notebook_data": plan.examples, "notebook_mode": plan.mode, "functions": FUNCTION_IDS,
            "skip": sorted(skip), "slow": sorted(slow), "module_helpers": list(plan.module_helpers),
            "items": [{**exercise_job(e), "reference_helpers": list(plan.helpers.get(e.id, ()))} for e in remaining]}


def _finish(judge: Judge, out: Outcome, remaining: list[Exercise], status: str, why: str) -> None:
    """The items still without a verdict get this one."""
    for ex in remaining:
        if ex.id not in out.finished and ex.id not in out.done:
            out.finished[ex.id] = judge.unfinished(ex, status, why)
            out.unreached.add(ex.id)
    remaining.clear()


def _collect(run: WorkerRun, out: Outcome, sub: Submission, first: bool, slow: set[str] | None = None) -> bool:
    """File each message under its item; note submission-level events; add the statements that
    ran past their limit to `slow`. Returns whether the submission's own code ran to its end
    (Kind.READY)."""
    ready = False
    for msg in run.messages:
        kind, item = msg["kind"], msg.get("item")
        if kind == Kind.READY:
            ready = True
            errors = [e for e in (msg.get("cell_errors") or []) if isinstance(e, dict)]
            out.statement_errors += len(errors)
            if slow is not None:
                slow |= {e["key"] for e in errors if e.get("kind") == "timeout" and type(e.get("key")) is str
                         and len(e["key"]) <= 40}
            out.dropped = max(out.dropped, int(msg.get("dropped") or 0))
            cells = [CellError(err["cell"] if type(err.get("cell")) is int else 0, str(err.get("type"))[:100],
                               str(err.get("message"))[:200]) for err in errors[:MAX_CELL_ERRORS]]
            (sub.cell_errors if first else out.errors).extend(cells)
        elif kind == Kind.END and item in out.messages:
            out.done.add(item)
        elif kind in ITEM_RESULTS and item in out.messages:
            out.messages[item].append(msg)
        elif kind == Kind.CRASH:
            sub.notes.append(str(msg.get("detail"))[:300])
        elif kind == Kind.OVERSIZE and str(item) in out.messages:
            out.messages[str(item)].append(
                {"kind": Kind.CASE, "case": msg.get("case"), "ok": False,
                 "error": {"kind": "protocol", "type": "ResultTooLarge",
                           "message": f"the result was {msg.get('bytes')} bytes, over the limit"}})
    if run.output_dropped:
        sub.notes.append(f"output truncated: {run.output_dropped} bytes past the first {len(run.output)} were dropped")
    if run.dropped:
        sub.notes.append(f"{run.dropped} malformed or out-of-turn messages from the worker were ignored")
    return ready


def _over(run: WorkerRun, limits: Limits) -> str:
    """What a worker was stopped for going over, in words ("" for anything else)."""
    if run.ended_by == "storage":
        return (f"wrote more than {limits.storage_bytes / 1024**2:,.0f} MB into its folders (the storage limit); "
                "what it wrote was removed")
    if run.ended_by == "message_budget":
        return (f"sent more results than the grader reads (over {limits.message_bytes / 1024**2:,.0f} MB in one run, "
                f"{limits.submission_message_bytes / 1024**2:,.0f} MB in all its runs, or too many values)")
    if run.ended_by == "message_error":
        return "sent a message larger than the protocol allows"
    return ""


def _stopped(run: WorkerRun, limits: Limits) -> str:
    """How a statement stopped its worker, in words."""
    if run.ended_by == "statement_timeout":
        return f"ran past its limit of {limits.statement_seconds:g} s"
    if _over(run, limits):
        return _over(run, limits)
    return "ended the worker process (" + _exit_words(run.returncode) + ")"


def _exit_words(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (likely the memory limit)" if name in ("SIGKILL", "SIGSEGV", "SIGABRT") else ""
        return f"killed by {name}{hint}" if name != "SIGXCPU" else "killed by SIGXCPU (the CPU-time limit)"
    return f"exit code {code}"


def why_unfinished(run: WorkerRun, limits: Limits, before_items: bool = False) -> tuple[str, str]:
    crash = next((str(m.get("detail"))[:300] for m in run.messages if m["kind"] == Kind.CRASH), "")
    over = _over(run, limits)
    if over:
        return "error", (f"the worker was stopped: it {over}" if before_items
                         else f"the worker was stopped while running this item: it {over}")
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
    import os

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()
