"""Grade submissions (trusted side): the one engine behind the command line, the pytest plugin and
`grader.check()`.

A Grader holds what is shared across submissions (the reference's answers, the known models, the
slots its workers run in) and grades each submission in passes: a first pass, then the second
looks grader.second_looks plans from its verdicts, each run in workers (grader.attempts) and
judged (grader.judging).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

from grader import attempts, gradable, second_looks, starters
from grader.answers import Answerer
from grader.catalogue import IDS, Exercise
from grader.config import PROVIDED, GradeConfig, usable_cores
from grader.isolation import Uids, detect
from grader.judging import Judge
from grader.public import public_data, public_dir, truncated_data, weights_as_pt
from grader.reference_results import ReferenceResults, harden
from grader.feedback import not_gradable_text
from grader.results import ExerciseResult, NotGradable, SubmissionResult
from grader.slot_pool import GradingStopped, SlotPool
from grader.slots import Slot, warm_inputs
from grader.worker_run import MessageBudget

SUBMISSION_SUFFIXES = (".py", ".ipynb")
__all__ = ["Grader", "GradeConfig", "GradingStopped", "find_submissions"]


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


class Grader:
    """Grades submissions with one configuration; close() ends its workers."""

    def __init__(self, config: GradeConfig | None = None, *, at_once: int = 1,
                 early: tuple[Slot, Uids] | None = None):
        """`at_once`: submissions graded at the same time (a first pass may take two cores where
        cores are spare); `early`: a slot started before this process loaded torch
        (grader.slots.early_slot)."""
        self.config = (config or GradeConfig()).resolved()
        self.reference = ReferenceResults(self.config.weights, self.config.data, self.config.device)
        self.judge = Judge(self.config, self.reference)
        # what workers read: copies in a folder any user can read (the originals may be private)
        weights_pt = weights_as_pt(self.config.weights)
        data = public_data(self.config.data)
        self.notebook_data = truncated_data(self.config.data, self.config.limits.notebook_examples)
        self.course_data = truncated_data(self.config.data, self.config.limits.course_examples)
        self.isolation = detect()
        # without bubblewrap, a worker of another uid is kept from the answers by file modes alone
        if not self.isolation.bwrap:
            harden()
        prepare = warm_inputs(self.config, weights_pt, data) if self.config.warm_pool else None
        self.pool = SlotPool(self.isolation, [public_dir()], prepare, self.config.limits, early)
        self.setting = attempts.Setting(self.config.limits, self.config.device, weights_pt, data, self.pool.stopping)
        self.spare_cores = usable_cores() >= 2 * at_once
        self.starters = starters.built_in() + tuple(starters.starter_from_file(f) for f in self.config.starters)

    def reconfigured(self, **changes) -> "Grader":
        """This grader (its reference answers, known models and slots) under another configuration
        of the same model, data and device: other items, limits, mode or points."""
        from copy import copy

        config = replace(self.config, **changes)
        if (config.weights, config.data, config.device) != (self.config.weights, self.config.data, self.config.device):
            raise ValueError("another model, data or device needs a grader of its own")
        other = copy(self)
        other.config = config
        other.judge = Judge(config, self.reference, self.judge.known_models())
        other.setting = replace(self.setting, limits=config.limits)
        return other

    # ---------------------------------------------------------------- lifetime

    def start(self, n: int = 1) -> None:
        """Have `n` slots ready (their warm workers start importing now)."""
        self.pool.start(n)

    def stop(self) -> None:
        """An interrupt: workers in flight are killed, and nothing more is started."""
        self.pool.stop()

    def close(self) -> None:
        self.pool.close()

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
                "isolation": self.isolation.to_json(), "warm_workers_replaced": self.pool.replaced,
                "trusted_peak_mib": peak_mib()}

    # ---------------------------------------------------------------- grading

    def selected(self) -> list[Exercise]:
        return self.config.exercises()

    def grade(self, path: str | Path, only: tuple[str, ...] = ()) -> SubmissionResult:
        """One submission's result: every item of the configuration (or those of `only`)."""
        started = time.monotonic()
        path = Path(path)
        exercises = [e for e in self.selected() if not only or e.id in only]
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
            return self._not_gradable(path, exercises, NotGradable("unreadable", e.strerror or str(e)), started)
        not_a_submission = gradable.check(source, path.suffix)
        if not_a_submission:
            return self._not_gradable(path, exercises, not_a_submission, started)
        limits = self.config.limits
        try:
            with self.pool.lend() as slot:
                sub = attempts.Submission(path, source, slot, started + limits.submission_seconds,
                                          Answerer(self.reference, self.judge.known_models),
                                          MessageBudget(limits.message_bytes, limits.submission_message_bytes))
                prints = self._fingerprints(sub)
                given = starters.unchanged(prints, self.starters)
                provided_points = self.config.points.get(PROVIDED, 0.0)
                settled = starters.beyond_a_second_look(exercises, source.decode("utf-8", "replace"), given,
                                                        provided_points, path.suffix)
                results = starters.own_work(self._passes(sub, exercises, given, settled), given, provided_points)
                return SubmissionResult(str(path), tuple(self._pad(results)), tuple(sub.notes),
                                        time.monotonic() - started, tuple(sub.cell_errors))
        except Exception as e:  # the barrier: whatever goes wrong judging one submission is its own result
            return self._all(path, exercises, "error", f"the grader could not judge this submission "
                             f"({type(e).__name__}: {str(e)[:300]}); the rest of the batch is not affected", started)

    def _passes(self, sub: attempts.Submission, exercises: list[Exercise],
                given: dict[str, tuple[str, starters.Print]], settled: set[str]) -> list[ExerciseResult]:
        """A first pass, then the second looks its verdicts call for (grader.second_looks), none
        of them at a `settled` item. A stub the student left as the starter has it, and that scored
        nothing, is settled as not attempted first: no look can make it the student's work."""
        mode = self.config.notebook_mode
        first = second_looks.Plan("first", tuple(exercises), mode, self.notebook_data, record_cell_errors=True)
        outcome = self._first_pass(sub, first)
        results = starters.unwritten(self._verdicts(first, outcome), given)
        source = sub.source.decode("utf-8", "replace")
        full = second_looks.without(second_looks.full_run(results, source, outcome.dropped, mode, self.notebook_data),
                                    settled)
        if full is not None and self._time_left(sub):
            # the lean run skipped statements; grade what did not pass again with every statement
            # run, so a statement it should have kept costs time, never a verdict
            again = attempts.run(self.setting, self.judge, sub, full)
            # a full run's verdict is the truer one, unless that run never reached the item
            by_id = {r.id: r for r in self._verdicts(full, again) if r.id not in again.unreached or r.score > 0}
            results = [by_id.get(r.id, r) for r in results]
            sub.notes.append(f"{len(full.exercises)} item(s) that did not pass were graded again with every cell run")
            mode = "fast"
        # the second looks stand the reference in for helpers, in the warm worker's namespace: a
        # kernel-mode submission gets them with every cell run there ("fast"), not in a Jupyter
        # kernel, which has no stand-ins
        mode = "fast" if mode == "kernel" else mode
        for plan in second_looks.helper_passes(results, sub.answerer.taken, mode, self.notebook_data):
            plan = second_looks.without(plan, settled)
            if plan is not None and self._time_left(sub):
                results = self._second_look(sub, plan, results)
        limits = self.config.limits
        plan = second_looks.without(second_looks.course_size(
            results, outcome.statement_errors, sub.answerer.taken, mode, self.course_data, limits.course_examples,
            limits.notebook_examples), settled)
        if plan is not None and self._time_left(sub):
            results = self._second_look(sub, plan, results)
        return second_looks.taken_from_course(results, sub.answerer.taken)

    def _fingerprints(self, sub: attempts.Submission) -> dict[str, starters.Print]:
        """Each item's code in the submission, to tell the starter's from the student's (grader.starters)."""
        try:
            return starters.fingerprints(sub.source, sub.path.suffix)
        except Exception as e:  # RecursionError, MemoryError on a pathological file: judged as it is
            sub.notes.append(f"the grader could not compare this file with the starters ({type(e).__name__}): "
                             "every item is judged as the student's work")
            return {}

    def _second_look(self, sub: attempts.Submission, plan: second_looks.Plan,
                     results: list[ExerciseResult]) -> list[ExerciseResult]:
        """A second look, and once more for what its run lost: an item the first verdict judged a
        value of that this run could not produce (a statement failed here and not before: the
        run, not the code, until it fails again). What it still lost, and the cells that raised
        in it, are said in the notes."""
        outcome = attempts.run(self.setting, self.judge, sub, plan)
        again = self._verdicts(plan, outcome)
        errors = list(outcome.errors)
        lost = second_looks.lost(results, again)
        if lost and self._time_left(sub):
            retry = replace(plan, exercises=tuple(e for e in plan.exercises if e.id in lost))
            outcome = attempts.run(self.setting, self.judge, sub, retry)
            by_id = {r.id: r for r in self._verdicts(retry, outcome)}
            again, errors = [by_id.get(r.id, r) for r in again], list(outcome.errors)
        still = second_looks.lost(results, again)
        sub.notes.extend(f"the second look at {r.id} ({plan.name}) could not compute it: {r.detail[:200]}"
                         for r in again if r.id in still)
        known = set(sub.cell_errors)
        sub.notes.extend(f"in the second look ({plan.name}), cell {c.cell} raised {c.type}: {c.message}"
                         for c in dict.fromkeys(errors) if c not in known)
        return second_looks.better(results, again, plan)

    def _first_pass(self, sub: attempts.Submission, plan: second_looks.Plan) -> attempts.Outcome:
        """The first pass, in two parts at once when cores are spare (one file at a time: the
        student's and CI's case)."""
        split = self.config.split_first_pass
        parts = second_looks.split(plan) if (self.spare_cores if split is None else split) else None
        if parts is None:
            return attempts.run(self.setting, self.judge, sub, plan)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as pool:
            outcomes = list(pool.map(lambda part: attempts.run(self.setting, self.judge, sub, part), parts))
        sub.notes[:] = list(dict.fromkeys(sub.notes))  # both parts ran the definitions: say each thing once
        sub.cell_errors[:] = list(dict.fromkeys(sub.cell_errors))
        return attempts.merged(outcomes)

    def _time_left(self, sub: attempts.Submission) -> bool:
        return time.monotonic() < sub.deadline and not self.pool.stopping.is_set()

    def _verdicts(self, plan: second_looks.Plan, outcome: attempts.Outcome) -> list[ExerciseResult]:
        return [outcome.finished.get(ex.id) or self.judge.judge(ex, outcome.messages[ex.id]) for ex in plan.exercises]

    def _pad(self, results: list[ExerciseResult]) -> list[ExerciseResult]:
        """Always report all 23 ids in catalogue order; unselected ones as not graded in this run."""
        by_id = {r.id: r for r in results}
        return [by_id.get(i) or ExerciseResult(i, "not_autograded", 0.0, 0.0, "not selected in this run") for i in IDS]

    def _not_gradable(self, path: Path, exercises: list[Exercise], why: NotGradable, started: float) -> SubmissionResult:
        text = not_gradable_text(why)
        return replace(self._all(path, exercises, "error", text, started), notes=(), not_gradable=why)

    def _all(self, path: Path, exercises: list[Exercise], status: str, why: str, started: float) -> SubmissionResult:
        results = [self.judge.unfinished(e, status, why) for e in exercises]
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


def peak_mib() -> int:
    """This process's peak resident memory, in MiB: VmHWM, its own address space's high-water
    mark. Not getrusage's ru_maxrss, which Linux carries across exec from the process that started
    it (a grader started by a 2 GB pytest worker would report 2 GB)."""
    own = vm_hwm_mib(Path("/proc/self/status"))
    if own is not None:
        return own
    import resource  # elsewhere (macOS: bytes, not KiB)
    import sys

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1024))


def vm_hwm_mib(status: Path) -> int | None:
    """VmHWM from a /proc/PID/status file, in MiB; None where there is none (not Linux, or ended)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None
