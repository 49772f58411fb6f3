"""Grade submissions: run each in workers, judge every item, return results. The one engine
behind both the CLI and the pytest plugin."""
from __future__ import annotations

import atexit
import shutil
import threading
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

from grader.catalogue import BY_ID, EXERCISES, IDS, Exercise, exercise_job
from grader.reference_results import ReferenceResults, harden, public_data, truncated_data, weights_as_pt
from grader.results import ExerciseResult, SubmissionResult
from grader.sandbox import Limits, WorkerRun, run_worker
from grader import verdicts

MAX_RESTARTS = 3
RETRY_STATUSES = ("failed", "error", "missing")  # a lean run's verdicts worth a full run's second look
SUBMISSION_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class GradeConfig:
    weights: str | None = None  # our shipped model when None
    data: str | None = None
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    points: dict[str, float] = field(default_factory=dict)
    only: tuple[str, ...] = ()  # grade these ids only (the rest are reported as not graded)
    extra_models: tuple[str, ...] = ()  # other weights object items may have been computed with
    warm_pool: bool = True  # fork workers from a process that has imported torch & co. once
    # "lean": only the statements grading needs, in the worker (items that do not pass are graded
    # again with every cell run); "fast": every cell, in the worker; "kernel": every cell of a
    # notebook in a real Jupyter kernel (modules as "fast")
    notebook_mode: str = "lean"

    def resolved(self) -> "GradeConfig":
        from reference.model import DEFAULT_DATA, DEFAULT_WEIGHTS

        device = self.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return GradeConfig(str(self.weights or DEFAULT_WEIGHTS), str(self.data or DEFAULT_DATA), device,
                           self.limits, dict(self.points), tuple(self.only), tuple(self.extra_models), self.warm_pool,
                           self.notebook_mode)


def helper_closure(item: str) -> set[str]:
    """The function items `item` calls, directly or through others (declared in the catalogue)."""
    out: set[str] = set()
    todo = list(BY_ID[item].calls)
    while todo:
        h = todo.pop()
        if h not in out and h in BY_ID and BY_ID[h].kind == "function":
            out.add(h)
            todo += list(BY_ID[h].calls)
    return out


def find_submissions(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expand to every .py and .ipynb inside (sorted, checkpoints skipped)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix in SUBMISSION_SUFFIXES and f.is_file()
                            and ".ipynb_checkpoints" not in f.parts and not f.name.startswith(("conftest", ".")))
        else:
            found.append(p)
    return found


class Grader:
    """Holds what is shared across submissions: reference answers and known models."""

    def __init__(self, config: GradeConfig | None = None):
        self.config = (config or GradeConfig()).resolved()
        self.reference = ReferenceResults(self.config.weights, self.config.data, self.config.device)
        # what workers read: copies in a folder any user can read (the originals may be private)
        self.weights_pt = weights_as_pt(self.config.weights)
        self.data_public = public_data(self.config.data)
        self.notebook_data = truncated_data(self.config.data, self.config.limits.notebook_examples)
        self.hardened = harden()
        self._known: dict[str, dict] | None = None
        self._pool = None
        self._pool_lock = threading.Lock()
        self.stopping = threading.Event()  # set by stop(): runs in flight end now, none start

    def pool(self):
        """The warm worker pool, started on first use (None when disabled)."""
        if not self.config.warm_pool or self.stopping.is_set():
            return None
        with self._pool_lock:
            if self._pool is None or not self._pool.alive():
                from grader.sandbox import WarmPool

                self._pool = WarmPool(prepare=self._inputs_to_prepare())
                atexit.register(self._pool.close)
            return self._pool

    def _inputs_to_prepare(self) -> dict:
        """What the warm pool builds ahead for its children: a grading's worth of models for the
        selected items (a run needing more builds the rest)."""
        from grader.inputs import models_per_grading

        return {"weights": self.weights_pt, "data": self.data_public, "device": self.config.device,
                "models": models_per_grading([exercise_job(e) for e in self.selected()])}

    def stop(self) -> None:
        """An interrupt: workers in flight are killed, and nothing more is started."""
        self.stopping.set()
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ---------------------------------------------------------------- known models (object items)

    def known_models(self) -> dict[str, dict]:
        if self._known is None:
            from reference.model import parameter_hash, read_state_dict

            self._known = {}
            for path in (self.config.weights, *self.config.extra_models):
                state = read_state_dict(path)
                self._known[parameter_hash(state)] = state
        return self._known

    def _object_reference(self, model_hash: str | None, strs: list[str] | None) -> tuple[dict | None, str]:
        if model_hash is None:
            return None, "no `model` was found in the submission's namespace, so the object cannot be judged"
        state = self.known_models().get(model_hash)
        if state is None:
            return None, "computed with a model the grader does not know (neither our model nor the course's)"
        if not strs:
            return None, "no `data` was found in the submission's namespace, so the object cannot be judged"
        return self.reference.objects_for(state, strs), ""

    def _classify(self, model_hash: str | None, strs: list[str]) -> tuple[list[bool] | None, str]:
        from reference.datagen import is_balanced
        from reference.model import build_model, predict_balanced

        state = self.known_models().get(model_hash) if model_hash else self.known_models()[next(iter(self.known_models()))]
        if state is None:
            return None, "aimed at a model the grader does not know"
        preds = predict_balanced(build_model(state, self.config.device), strs).tolist()
        return [p != is_balanced(s) for s, p in zip(strs, preds)], ""

    # ---------------------------------------------------------------- grading

    def points(self, ex: Exercise) -> float:
        return float(self.config.points.get(ex.id, ex.points))

    def selected(self) -> list[Exercise]:
        return [e for e in EXERCISES if not self.config.only or e.id in self.config.only]

    def grade(self, path: str | Path) -> SubmissionResult:
        started = time.monotonic()
        path = Path(path)
        exercises = self.selected()
        if not path.is_file():
            return self._all(path, exercises, "error", f"submission not found: {path}", started)
        if path.suffix not in SUBMISSION_SUFFIXES:
            return self._all(path, exercises, "error", "a submission is a .py or .ipynb file", started)
        scratch = Path(tempfile.mkdtemp(prefix="bracket-worker-"))
        scratch.chmod(0o711)  # workers (other uids) pass through to the folder each is given, and list nothing
        try:
            return self._grade_in(path, scratch, exercises, started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _grade_in(self, path: Path, scratch: Path, exercises: list[Exercise], started: float) -> SubmissionResult:
        deadline = started + self.config.limits.submission_seconds
        mode = self.config.notebook_mode
        results, notes, dropped = self._run(path, scratch / "first", exercises, deadline, mode)
        retry = [ex for ex, r in zip(exercises, results) if self._worth_a_full_run(ex, r, path)]
        if mode == "lean" and dropped and retry and time.monotonic() < deadline and not self.stopping.is_set():
            # the lean run skipped statements; grade what did not pass again with every cell run, so
            # a statement it should have kept costs time, never a verdict
            again, more_notes, _ = self._run(path, scratch / "full", retry, deadline, "fast")
            by_id = {r.id: r for r in again}
            results = [by_id.get(r.id, r) for r in results]
            notes += [n for n in more_notes if n not in notes]
            notes.append(f"{len(retry)} item(s) that did not pass were graded again with every cell run")
            mode = "fast"
        if time.monotonic() < deadline and not self.stopping.is_set():
            results = self._given_correct_helpers(path, scratch, exercises, results, deadline,
                                                  "fast" if mode == "fast" else "lean")
        return SubmissionResult(str(path), tuple(self._pad(results)), tuple(notes), time.monotonic() - started)

    @staticmethod
    def _worth_a_full_run(ex: Exercise, r: ExerciseResult, path: Path) -> bool:
        """Could a statement the lean run skipped explain this verdict? An exception (a name or
        an attribute that was never set), or a value not found whose name the source assigns; not
        a function or object that is there and wrong, or a function not written yet. (A wrong
        value from a skipped statement would need one that changes a value in place without
        naming it, `np.subtract(x, m, out=x)`: grade such work with --mode fast.)"""
        if r.status not in RETRY_STATUSES:
            return False
        if ex.kind == "object":
            return r.status in ("missing", "error")
        if r.status == "missing":
            source = path.read_text(errors="replace")  # read only here: most results never need it
            return any(name in source for name in (ex.names or (ex.id,)))
        return any(o.kind == "error" for o in r.cases)

    def _given_correct_helpers(self, path: Path, scratch: Path, exercises: list[Exercise],
                               results: list[ExerciseResult], deadline: float, mode: str) -> list[ExerciseResult]:
        """Score each mistake once: an item that did not pass while items it calls did not pass
        either is graded again with the reference's answers standing in for those helpers (the
        worker asks for them, see grader.worker.helpers). If it passes then, it gets its points,
        with feedback that says on what condition."""
        not_passed = {r.id for r in results if r.status != "passed" and BY_ID[r.id].kind == "function"}
        timed_out = {r.id for r in results if r.status == "timeout"}
        helpers: dict[str, list[str]] = {}
        for r in results:
            through_a_hang = r.status == "timeout" and helper_closure(r.id) & timed_out  # it waited on a helper
            if r.id in not_passed and (r.status in ("failed", "partial", "error") or through_a_hang):
                chain = sorted((helper_closure(r.id) & not_passed) - {r.id})
                if chain:
                    helpers[r.id] = chain
        if not helpers:
            return results
        allowed = {h for chain in helpers.values() for h in chain}

        def answer(msg: dict) -> dict:
            if msg.get("function") not in allowed:
                return {"ok": False, "error": "not a helper of the item being graded"}
            return {"ok": True, "value": self.reference.helper_answer(msg["function"], msg.get("args"), msg.get("kwargs"))}

        again, _, _ = self._run(path, scratch / "helpers", [BY_ID[i] for i in helpers], deadline, mode,
                                helpers=helpers, answer=answer)
        better = {r.id: r for r in again if r.score > 0}
        out = []
        for r in results:
            new = better.get(r.id)
            if new is None or new.score <= r.score:
                out.append(r)
                continue
            given = " and ".join(helpers[r.id])
            what = "correct" if new.status == "passed" else new.feedback
            out.append(replace(new, feedback=f"{what}, given a correct {given} (graded with the reference's {given} "
                                             f"in place of yours; your {given} is scored on its own)"))
        return out

    def _run(self, path: Path, scratch: Path, exercises: list[Exercise], deadline: float, mode: str,
             helpers: dict[str, list[str]] | None = None,
             answer=None) -> tuple[list[ExerciseResult], list[str], int]:
        """Run the submission in workers (restarting after a crash) until every item has a verdict.
        Returns the verdicts in catalogue order, submission-level notes, and how many statements a
        lean run skipped. `scratch` gets the submission's copy and one folder per worker."""
        limits = self.config.limits
        scratch.mkdir()
        copy = scratch / ("submission" + path.suffix)
        shutil.copyfile(path, copy)
        messages: dict[str, list[dict]] = {e.id: [] for e in exercises}
        finished: dict[str, ExerciseResult] = {}
        notes: list[str] = []
        dropped = 0
        remaining = list(exercises)
        for attempt in range(MAX_RESTARTS + 1):
            if not remaining or self.stopping.is_set():
                break
            run_dir = scratch / f"run{attempt}"
            run_dir.mkdir()
            job = {"submission": str(copy), "weights": self.weights_pt, "weights_pt": self.weights_pt,
                   "data": self.data_public, "device": self.config.device, "notebook_data": self.notebook_data,
                   "notebook_mode": mode,
                   "items": [{**exercise_job(e), "reference_helpers": (helpers or {}).get(e.id, [])} for e in remaining]}
            run = run_worker(job, run_dir, limits, deadline, self.pool(), answer, self.stopping)
            self._collect(run, messages, notes, attempt)
            dropped = max([dropped] + [int(m.get("dropped") or 0) for m in run.messages if m["kind"] == "ready"])
            done_ids = {m["item"] for m in run.messages if m["kind"] == "end"}
            for ex in remaining:
                if ex.id in done_ids:
                    continue
                if run.current_item == ex.id:  # the item it was on when it stopped
                    status, why = self._why(run, limits)
                    finished[ex.id] = verdicts.judge_unfinished(ex, self.points(ex), status, why)
            remaining = [e for e in remaining if e.id not in done_ids and e.id not in finished]
            graded_any = any(m["kind"] == "start" for m in run.messages)
            if remaining and not graded_any:  # it fails before grading begins: a restart would too
                status, why = self._why(run, limits, before_items=True)
                for ex in remaining:
                    finished[ex.id] = verdicts.judge_unfinished(ex, self.points(ex), status, why)
                remaining = []
            if time.monotonic() >= deadline:
                for ex in remaining:
                    finished[ex.id] = verdicts.judge_unfinished(
                        ex, self.points(ex), "timeout",
                        f"not graded: the submission ran past its limit of {limits.submission_seconds:g} s")
                remaining = []
        if self.stopping.is_set():
            for ex in remaining:
                finished.setdefault(ex.id, verdicts.judge_unfinished(ex, self.points(ex), "error", "grading was interrupted"))
        results = [finished[ex.id] if ex.id in finished else self._judge(ex, messages[ex.id]) for ex in exercises]
        return results, notes, dropped

    def _collect(self, run: WorkerRun, messages: dict[str, list[dict]], notes: list[str], attempt: int) -> None:
        """File each message under its item; note submission-level events."""
        for msg in run.messages:
            if msg["kind"] == "ready" and attempt == 0:
                for err in (msg.get("cell_errors") or [])[:5]:
                    if isinstance(err, dict):
                        notes.append(f"cell {err.get('cell')} raised {err.get('type')}: {str(err.get('message'))[:200]}")
            elif msg["kind"] in ("case", "object", "missing") and msg.get("item") in messages:
                messages[msg["item"]].append(msg)
            elif msg["kind"] == "crash":
                notes.append(str(msg.get("detail"))[:300])
            elif msg["kind"] == "oversize":
                messages.get(str(msg.get("item")), []).append(
                    {"kind": "case", "case": msg.get("case"), "ok": False,
                     "error": {"kind": "protocol", "type": "ResultTooLarge",
                               "message": f"the result was {msg.get('bytes')} bytes, over the limit"}})
        if run.output_dropped:
            notes.append(f"output truncated: {run.output_dropped} bytes past the first {len(run.output)} were dropped")
        if run.protocol_errors:
            notes.append(f"{len(run.protocol_errors)} malformed messages from the worker were ignored")

    @staticmethod
    def _why(run: WorkerRun, limits: Limits, before_items: bool = False) -> tuple[str, str]:
        crash = next((str(m.get("detail"))[:300] for m in run.messages if m["kind"] == "crash"), "")
        if run.ended_by == "submission_timeout" and before_items:
            return "timeout", (f"not graded: running the submission's own code took longer than "
                               f"{limits.submission_seconds:g} s")
        if crash:
            return "error", crash
        if before_items:
            tail = run.output.strip().splitlines()[-3:]
            return "error", "the worker stopped before grading began" + (": " + " | ".join(tail)[-300:] if tail else "")
        if run.ended_by == "item_timeout":
            return "timeout", f"stopped: this item ran past its limit of {limits.item_seconds:g} s"
        if run.ended_by == "submission_timeout":
            return "timeout", f"stopped: the submission ran past its limit of {limits.submission_seconds:g} s"
        code = run.returncode
        if code is not None and code < 0:
            import signal

            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = " (likely the memory limit)" if name in ("SIGKILL", "SIGSEGV", "SIGABRT") else ""
            if name == "SIGXCPU":
                hint = " (the CPU-time limit)"
            return "error", f"the worker process was killed by {name}{hint} while running this item"
        return "error", f"the worker process exited (code {code}) while running this item"

    def _judge(self, ex: Exercise, msgs: list[dict]) -> ExerciseResult:
        points = self.points(ex)
        if ex.id == "adversarial_examples":
            return verdicts.judge_adversarial(ex, next(iter(msgs), None), points, self._classify)
        if ex.kind == "object":
            return verdicts.judge_object(ex, next(iter(msgs), None), points, self._object_reference)
        if not msgs:
            return verdicts.judge_unfinished(ex, points, "error", "no result came back for this item")
        return verdicts.judge_function(ex, msgs, self.reference.for_exercise(ex), points,
                                       lambda label: self.reference.alternatives(ex, label))

    def _pad(self, results: list[ExerciseResult]) -> list[ExerciseResult]:
        """Always report all 23 ids in catalogue order; unselected ones as not graded in this run."""
        by_id = {r.id: r for r in results}
        return [by_id.get(i) or ExerciseResult(i, "not_autograded", 0.0, 0.0, "not selected in this run") for i in IDS]

    def _all(self, path: Path, exercises: list[Exercise], status: str, why: str, started: float) -> SubmissionResult:
        results = [verdicts.judge_unfinished(e, self.points(e), status, why) for e in exercises]
        return SubmissionResult(str(path), tuple(self._pad(results)), (why,), time.monotonic() - started)

    def grade_many(self, paths: Iterable[str | Path], workers: int = 1) -> Iterator[SubmissionResult]:
        """Grade submissions `workers` at a time, yielding each result as soon as it is done (in
        completion order). Each submission has its own worker process; a failure in one is only
        that submission's result."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        self.reference.warm()  # before the threads start, so it is computed once
        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            futures = [pool.submit(self.grade, p) for p in find_submissions(paths)]
            for future in as_completed(futures):
                yield future.result()
        finally:  # also when the caller stops early (an interrupt): nothing queued starts
            pool.shutdown(wait=False, cancel_futures=True)
