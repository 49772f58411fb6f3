"""Grade submissions: run each in workers, judge every item, return results. The one engine
behind both the CLI and the pytest plugin."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from grader import attempts, verdicts
from grader.answers import Questions
from grader.catalogue import BY_ID, IDS, Exercise
from grader.isolation import Uids, detect
from grader.public import public_data, public_dir, truncated_data, weights_as_pt
from grader.reference_results import ReferenceResults, harden
from grader.results import ExerciseResult, SubmissionResult
from grader.config import GradeConfig, usable_cores
from grader.slots import Slot, warm_inputs

MAX_DATA_STRINGS = 5_000  # the course's `data`: the most the trusted side computes object references on
RETRY_STATUSES = ("failed", "error", "missing")  # a lean run's verdicts worth a full run's second look
SUBMISSION_SUFFIXES = (".py", ".ipynb")


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


def bracket_strings_problem(strs: object, what: str, most: int) -> str:
    """Why `strs` (from a worker: untrusted) is not a list of at most `most` bracket strings the
    model can read (1 to 40 brackets each), or "" when it is."""
    if not isinstance(strs, list):
        return f"{what} is not a list of strings"
    if len(strs) > most:
        return (f"{what} holds {len(strs):,} strings, more than the {most:,} the grader computes references on "
                f"(the course's data size)")
    bad = next((s for s in strs if not isinstance(s, str) or not 0 < len(s) <= 40 or set(s) - {"(", ")"}), None)
    if bad is not None or any(not isinstance(s, str) for s in strs):
        shown = repr(bad)[:40] if isinstance(bad, str) else type(bad).__name__
        return f"{what} holds something that is not a string of 1 to 40 brackets (for example {shown})"
    return ""


def find_submissions(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expand to every .py and .ipynb inside (sorted, checkpoints skipped)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # links are listed (and refused when graded, never followed); linked folders are not entered
            found += sorted(f for f in p.rglob("*") if f.suffix in SUBMISSION_SUFFIXES and (f.is_file() or f.is_symlink())
                            and ".ipynb_checkpoints" not in f.parts and not f.name.startswith(("conftest", ".")))
        else:
            found.append(p)
    return found


class GradingStopped(Exception):
    """Grading was interrupted: no new slot is made (its result is never reported)."""


class Grader:
    """Holds what is shared across submissions: reference answers and known models."""

    def __init__(self, config: GradeConfig | None = None, early: tuple[Slot, Uids] | None = None):
        """`early`: a slot started before this process loaded torch (grader.slots.early_slot)."""
        self.config = (config or GradeConfig()).resolved()
        self.reference = ReferenceResults(self.config.weights, self.config.data, self.config.device)
        # what workers read: copies in a folder any user can read (the originals may be private)
        self.weights_pt = weights_as_pt(self.config.weights)
        self.data_public = public_data(self.config.data)
        self.notebook_data = truncated_data(self.config.data, self.config.limits.notebook_examples)
        self.course_data = truncated_data(self.config.data, self.config.limits.course_examples)
        self.isolation = detect()
        # without bubblewrap, a worker of another uid is kept from the answers by file modes alone
        if not self.isolation.bwrap:
            harden()
        self._known: dict[str, dict] | None = None
        self._slots: list[Slot] = []  # every slot made (closed at the end)
        self._free: list[Slot] = []  # those not grading a submission now
        self._slots_lock = threading.Lock()
        self._uids = early[1] if early else Uids()
        if early:
            self._adopt(early[0])
        self.stopping = threading.Event()  # set by stop(): runs in flight end now, none start
        self.spare_cores = False  # set by grade_many: a submission's first pass may use two cores

    def start(self, n: int = 1) -> None:
        """Make `n` slots ready now (their warm workers import and prepare in the background), so
        that the first submissions do not wait for them one after the other."""
        with self._slots_lock:
            missing = max(0, n - len(self._slots))
        for _ in range(missing):
            slot = self._new_slot()
            with self._slots_lock:
                self._free.append(slot)

    def _adopt(self, slot: Slot) -> None:
        """Grade in a slot started early, if it was made for this run's inputs."""
        if slot.prepare == (self._inputs_to_prepare() if self.config.warm_pool else None):
            self._slots.append(slot)
            self._free.append(slot)
        else:
            slot.close()
            if slot.uid is not None:
                self._uids.release(slot.uid)

    def _new_slot(self) -> Slot:
        uid = self._uids.claim() if self.isolation.own_uid else None
        prepare = self._inputs_to_prepare() if self.config.warm_pool else None
        slot = Slot(self.isolation, uid, [public_dir()], prepare, self.config.warm_pool)
        with self._slots_lock:
            if not self.stopping.is_set():
                self._slots.append(slot)
                return slot
        # stopped while it was being made (an interrupt): the last close() has run or is running,
        # and would never see it; its folder must not outlive the run
        slot.close()
        if uid is not None:
            self._uids.release(uid)
        raise GradingStopped()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A slot for one submission: a free one, or a new one."""
        with self._slots_lock:
            if self.stopping.is_set():  # a submission whose thread starts after an interrupt
                raise GradingStopped()
            slot = self._free.pop() if self._free else None
        if slot is None or slot.pool is not None and not slot.pool.alive():
            slot = self._new_slot()
        try:
            yield slot
        finally:
            slot.clean()
            with self._slots_lock:
                if not self.stopping.is_set() and slot in self._slots:
                    self._free.append(slot)

    def _inputs_to_prepare(self) -> dict:
        return warm_inputs(self.config, self.weights_pt, self.data_public)

    def run_info(self, workers: int, seconds: float) -> dict:
        """How a batch was graded, for its reports: version, model and data, device, isolation."""
        import datetime

        from grader import __version__
        from grader.public import file_sha256

        return {"grader_version": __version__, "model": Path(self.config.weights).name,
                "model_sha256": file_sha256(self.config.weights), "data": Path(self.config.data).name,
                "data_sha256": file_sha256(self.config.data), "device": self.config.device,
                "mode": self.config.notebook_mode, "workers": workers, "seconds": round(seconds, 1),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "isolation": self.isolation.to_json()}

    def stop(self) -> None:
        """An interrupt: workers in flight are killed, and nothing more is started."""
        self.stopping.set()
        self.close()

    def close(self) -> None:
        with self._slots_lock:
            slots, self._slots, self._free = self._slots, [], []
        for slot in slots:
            slot.close()
            if slot.uid is not None:
                self._uids.release(slot.uid)

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
        problem = bracket_strings_problem(strs, "the submission's `data`", MAX_DATA_STRINGS)
        if problem:
            return None, f"{problem}, so the object cannot be judged on it"
        expected = self.reference.objects_for(model_hash, state, strs)
        if not all(np.all(np.isfinite(v)) for v in expected.values()):
            return None, ("on the submission's `data` the right answer is not a number (NaN: for example no "
                          "balanced string to take the mean over), so the object cannot be judged on that data")
        return expected, ""

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
        return self.config.exercises()

    def grade(self, path: str | Path) -> SubmissionResult:
        started = time.monotonic()
        path = Path(path)
        exercises = self.selected()
        if path.is_symlink():
            return self._all(path, exercises, "error", "a submission must be a file, not a symbolic link "
                             "(the grader never follows one: it could point at another student's work)", started)
        if not path.is_file():
            return self._all(path, exercises, "error", f"submission not found: {path}", started)
        if path.suffix not in SUBMISSION_SUFFIXES:
            return self._all(path, exercises, "error", "a submission is a .py or .ipynb file", started)
        try:
            source = attempts.read_submission(path)
        except OSError as e:
            return self._all(path, exercises, "error", f"the submission could not be read: {e.strerror or e}", started)
        try:
            with self.slot() as slot:
                sub = attempts.Submission(path, source, slot, started + self.config.limits.submission_seconds,
                                          Questions(self.reference, self.known_models))
                return SubmissionResult(str(path), tuple(self._pad(self._passes(sub, exercises))), tuple(sub.notes),
                                        time.monotonic() - started)
        except Exception as e:  # the barrier: whatever goes wrong judging one submission is its own result
            return self._all(path, exercises, "error", f"the grader could not judge this submission "
                             f"({type(e).__name__}: {str(e)[:300]}); the rest of the batch is not affected", started)

    def _passes(self, sub: attempts.Submission, exercises: list[Exercise]) -> list[ExerciseResult]:
        """Grade, then give each item the fairest second look its verdict calls for: every
        statement run (a lean run skipped one the item needed), the reference standing in for
        helpers that are wrong (each mistake scored once), the course's data size (code written for
        5,000 examples). A second look can only raise a score."""
        mode = self.config.notebook_mode
        first = attempts.Plan("first", tuple(exercises), mode, self.notebook_data, cell_errors_as_notes=True)
        outcome = self._first_pass(sub, first)
        results = self._verdicts(first, outcome)
        retry = [ex for ex, r in zip(exercises, results) if self._worth_a_full_run(ex, r, sub)]
        if mode == "lean" and outcome.dropped and retry and self._time_left(sub):
            # the lean run skipped statements; grade what did not pass again with every statement
            # run, so a statement it should have kept costs time, never a verdict
            full = attempts.Plan("full", tuple(retry), "fast", self.notebook_data)
            again = attempts.run(self, sub, full)
            # a full run's verdict is the truer one, unless that run never reached the item
            by_id = {r.id: r for r in self._verdicts(full, again) if r.id not in again.unreached or r.score > 0}
            results = [by_id.get(r.id, r) for r in results]
            sub.notes.append(f"{len(retry)} item(s) that did not pass were graded again with every cell run")
            mode = "fast"
        # the second looks stand the reference in for helpers, in the warm worker's namespace: a
        # kernel-mode submission gets them with every cell run there ("fast"), not in a Jupyter
        # kernel, which has no stand-ins
        mode = "fast" if mode == "kernel" else mode
        if self._time_left(sub):
            results = self._given_correct_helpers(sub, results, mode)
        if self._time_left(sub):
            results = self._course_size(sub, results, mode, outcome.statement_errors)
        return [self._taken_from_the_course(r, sub) for r in results]

    def _first_pass(self, sub: attempts.Submission, plan: attempts.Plan) -> attempts.Outcome:
        """The first pass, in two parts at once when cores are spare (grade_many grading fewer
        submissions at a time than there are cores: one file, the student's and CI's case)."""
        split = self.config.split_first_pass
        parts = attempts.split(plan) if (self.spare_cores if split is None else split) else None
        if parts is None:
            return attempts.run(self, sub, plan)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as pool:
            outcomes = list(pool.map(lambda part: attempts.run(self, sub, part), parts))
        sub.notes[:] = list(dict.fromkeys(sub.notes))  # both parts ran the definitions: say each thing once
        return attempts.merged(outcomes)

    def _time_left(self, sub: attempts.Submission) -> bool:
        return time.monotonic() < sub.deadline and not self.stopping.is_set()

    def _verdicts(self, plan: attempts.Plan, outcome: attempts.Outcome) -> list[ExerciseResult]:
        return [outcome.finished.get(ex.id) or self._judge(ex, outcome.messages[ex.id]) for ex in plan.exercises]

    @staticmethod
    def _better(results: list[ExerciseResult], again: list[ExerciseResult], say=None) -> list[ExerciseResult]:
        """Each result replaced by its second look when that scores more (`say` rewrites its feedback)."""
        by_id = {r.id: r for r in again}
        out = []
        for r in results:
            new = by_id.get(r.id)
            out.append(r if new is None or new.score <= r.score else replace(new, feedback=say(new)) if say else new)
        return out

    @staticmethod
    def _worth_a_full_run(ex: Exercise, r: ExerciseResult, sub: attempts.Submission) -> bool:
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
            source = sub.source.decode("utf-8", "replace")
            return any(name in source for name in (ex.names or (ex.id,)))
        return any(o.kind == "error" for o in r.cases)

    def _given_correct_helpers(self, sub: attempts.Submission, results: list[ExerciseResult],
                               mode: str) -> list[ExerciseResult]:
        """Score each mistake once: an item that did not pass while items it calls did not pass
        either is graded again with the reference's answers standing in for those helpers (the
        worker asks for them, see grader.worker.helpers): a function while it is called, an object
        while the submission's own code computes it. If it passes then, it gets its points, with
        feedback that says on what condition."""
        not_passed = {r.id for r in results if r.status != "passed" and BY_ID[r.id].kind == "function"}
        timed_out = {r.id for r in results if r.status == "timeout"}
        helpers: dict[str, list[str]] = {}
        for r in results:
            is_object = BY_ID[r.id].kind == "object"
            through_a_hang = r.status == "timeout" and helper_closure(r.id) & timed_out  # it waited on a helper
            if r.status in ("failed", "partial", "error") or through_a_hang or (is_object and r.status == "missing"):
                chain = sorted((helper_closure(r.id) & not_passed) - {r.id} - sub.questions.asked)
                if chain:
                    helpers[r.id] = chain
        if not helpers:
            return results
        objects = [i for i in helpers if BY_ID[i].kind == "object"]
        plan = attempts.Plan("helpers", tuple(BY_ID[i] for i in helpers), mode, self.notebook_data,
                             helpers={i: c for i, c in helpers.items() if i not in objects},
                             module_helpers=tuple(sorted({h for i in objects for h in helpers[i]})))

        def say(new: ExerciseResult) -> str:
            names = helpers[new.id]
            given = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            function = BY_ID[new.id].kind == "function"
            what = "correct" if function and new.status == "passed" else new.feedback
            how = "graded" if function else "computed again"
            if len(names) == 1:
                return (f"{what}, given a correct {given} ({how} with the reference's {given} in place of yours; "
                        f"your {given} is scored on its own)")
            return f"{what}, given a correct {given} ({how} with the reference's in place of yours; each is scored on its own)"

        return self._better(results, self._verdicts(plan, attempts.run(self, sub, plan)), say)

    def _course_size(self, sub: attempts.Submission, results: list[ExerciseResult], mode: str,
                     statement_errors: int) -> list[ExerciseResult]:
        """Submissions get 1,000 examples to run on, but students write the course's 5,000 into
        their code (`einops.repeat(mean, "comp -> comp b", b=5000)`). An object item that did not
        pass for a reason the size could explain (a statement raised, the object is missing or has
        the wrong shape) is computed again on the course's data size."""
        again = [r for r in results if BY_ID[r.id].kind == "object" and r.status != "passed"
                 and (statement_errors or r.status in ("missing", "error") or "wrong shape" in r.feedback)]
        if not again:
            return results
        not_passed = {r.id for r in results if r.status != "passed" and BY_ID[r.id].kind == "function"}
        stand_in = sorted({h for r in again for h in helper_closure(r.id) & not_passed} - sub.questions.asked)
        plan = attempts.Plan("course-size", tuple(BY_ID[r.id] for r in again), mode, self.course_data,
                             module_helpers=tuple(stand_in))
        examples = f"{self.config.limits.course_examples:,}"
        given = f", given a correct {' and '.join(stand_in)}" if stand_in else ""
        return self._better(results, self._verdicts(plan, attempts.run(self, sub, plan)),
                            lambda new: f"{new.feedback}{given}, on the course's {examples} examples (your code "
                                        f"depends on the data size; submissions run on fewer first)")

    def _taken_from_the_course(self, r: ExerciseResult, sub: attempts.Submission) -> ExerciseResult:
        """A function the trusted process answered for outside a helper pass was imported from the
        course's solutions: it is not the student's work."""
        if r.id not in sub.questions.asked:
            return r
        return ExerciseResult(r.id, "missing", 0.0, r.max_score, f"`{r.id}` was taken from the course's solutions (the "
                              "grader answered for it), so it is not graded as your work; your own functions that "
                              "call it are graded on your own code")

    def _judge(self, ex: Exercise, msgs: list[dict]) -> ExerciseResult:
        """One item's verdict. What came from the worker is untrusted input: a value that makes
        judging fail is that item's error, never an exception that escapes the submission."""
        try:
            return self._judge_unguarded(ex, msgs)
        except Exception as e:
            return verdicts.judge_unfinished(ex, self.points(ex), "error", f"what it returned could not be judged "
                                             f"({type(e).__name__}: {str(e)[:200]})")

    def _judge_unguarded(self, ex: Exercise, msgs: list[dict]) -> ExerciseResult:
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

        paths = find_submissions(paths)
        workers = max(1, min(workers, len(paths)))  # one submission needs one warm worker, not one per core
        self.spare_cores = usable_cores() >= 2 * workers
        self.reference.warm(self.selected())  # before the threads start, so it is computed once
        self.start(workers if self.config.warm_pool else 0)
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(self.grade, p): p for p in paths}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as e:  # grade() has its own barrier; this one is for what it missed
                    yield self._all(Path(futures[future]), self.selected(), "error",
                                    f"the grader could not judge this submission ({type(e).__name__})", time.monotonic())
        finally:  # also when the caller stops early (an interrupt): nothing queued starts
            pool.shutdown(wait=False, cancel_futures=True)
