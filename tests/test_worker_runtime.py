"""What a worker runs with and reports: allocator settings, cheap resets between calls, peak memory,
where a hang stops, and the inputs the warm process prepares for it."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from grader import attempts
from grader.catalogue import EXERCISES, exercise_job
from grader.examples import COURSE_LAYOUT_CORRECT
from grader.catalogue import models_per_grading
from grader.inputs import InputFactory, factory_for, prepare
from grader.config import Limits
from grader.worker_run import MALLOC_ENV, worker_env
from grader.worker.harvest import call_case, run_item
from tests.conftest import with_config


class PlainArgs:
    """An input factory for arguments that are plain values."""

    def build(self, args, kwargs):
        return list(args), dict(kwargs)


def test_workers_keep_freed_memory_for_reuse(tmp_path):
    env = worker_env(tmp_path, {"weights": "w.pt", "notebook_data": "d.json"})
    assert {k: env[k] for k in MALLOC_ENV} == MALLOC_ENV
    assert env["MALLOC_MMAP_MAX_"] == "0" and int(env["MALLOC_TRIM_THRESHOLD_"]) >= 1 << 30
    assert env["OMP_NUM_THREADS"] == "1"


def test_each_call_starts_from_the_same_seed_and_leaves_no_queued_work():
    queues = [getattr(m, "_queued_calls", None) for m in (torch.cuda, getattr(torch, "xpu", None), getattr(torch, "mtia", None))]
    queues = [q for q in queues if isinstance(q, list)]
    before = [len(q) for q in queues]
    case = {"each": [[i] for i in range(200)], "args": [], "kwargs": {}}
    reply = call_case(lambda i: round(torch.rand(1).item(), 6), case, PlainArgs(), 10)
    assert reply["ok"], reply
    values = reply["value"]
    assert len(set(values)) == 1, "every call must see the same random state"
    assert [len(q) for q in queues] == before, "a reset between calls queued device work (it grows per call)"


def _messages(monkeypatch, kind: str) -> list[dict]:
    """Every message of `kind` the workers send from now on (in this test)."""
    seen: list[dict] = []
    real = attempts.run_worker

    def spy(*args, **kwargs):
        run = real(*args, **kwargs)
        seen.extend(m for m in run.messages if m["kind"] == kind)
        return run

    monkeypatch.setattr(attempts, "run_worker", spy)
    return seen


@pytest.mark.slow
@pytest.mark.worker
def test_a_worker_reports_its_peak_memory(grader, monkeypatch):
    seen = _messages(monkeypatch, "done")
    result = with_config(grader, only=("get_WOV",)).grade(COURSE_LAYOUT_CORRECT)
    assert {e.id: e.status for e in result.exercises}["get_WOV"] == "passed"
    assert seen and all(m["max_rss_kb"] > 100 * 1024 for m in seen), seen  # torch and the model are resident


def _item(partial: bool) -> dict:
    cases = [{"label": f"case {i}", "each": None, "args": [], "kwargs": {}} for i in range(4)]
    return {"id": "f", "is_object": False, "names": [], "partial": partial, "cases": cases}


def test_an_all_or_nothing_item_stops_at_its_first_case_past_the_limit():
    calls = []

    def hangs():
        calls.append(1)
        while True:
            pass

    sent: list[dict] = []
    run_item({"f": hangs}, _item(partial=False), PlainArgs(), 0.2, lambda kind, **m: sent.append(m))
    assert len(calls) == 1, "after one case timed out, the rest of an all-or-nothing item must not be called"
    kinds = [m["error"]["kind"] for m in sent]
    assert kinds == ["timeout", "skipped", "skipped", "skipped"]
    assert "'case 0' ran past its limit" in sent[1]["error"]["message"]


def test_an_item_with_partial_credit_runs_every_case_after_a_timeout():
    calls = []

    def slow_first():
        calls.append(1)
        while len(calls) == 1:
            pass
        return 1

    sent: list[dict] = []
    run_item({"f": slow_first}, _item(partial=True), PlainArgs(), 0.2, lambda kind, **m: sent.append(m))
    assert len(calls) == 4
    assert [m["ok"] for m in sent] == [False, True, True, True]


def test_a_per_item_limit_puts_the_call_limit_under_it():
    # so a hang is stopped inside the worker (next item, no restart) before the item's hard limit
    assert Limits.per_item(5).case_seconds == 2.5 < Limits.per_item(5).item_seconds
    assert Limits.per_item(600).case_seconds == Limits.case_seconds
    assert Limits.per_item(5, memory_bytes=1).memory_bytes == 1


@pytest.fixture(scope="module")
def inputs_paths(reference):
    from grader.public import public_data, weights_as_pt

    return weights_as_pt(reference.weights), public_data(reference.data)


def test_models_built_ahead_are_pristine_and_each_handed_out_once(inputs_paths):
    factory = InputFactory(*inputs_paths)
    factory.prebuild({"main": 2})
    assert factory.spare() == {"main": 2}
    first, second = factory.model("main"), factory.model("main")
    assert factory.spare() == {"main": 0}
    third = factory.model("main")  # built on demand
    assert len({id(first), id(second), id(third)}) == 3
    with torch.no_grad():
        first.W_E.add_(1.0)  # a call that edits its model spoils only that one
    toks = factory.dataset([0, 8]).toks
    fresh = InputFactory(*inputs_paths).model("main")
    for model in (second, third):
        assert torch.equal(model(toks), fresh(toks))
    assert not torch.equal(first(toks), fresh(toks))


def test_a_grading_s_worth_of_models_is_counted_exactly(inputs_paths, monkeypatch):
    factory = InputFactory(*inputs_paths)
    built: Counter = Counter()
    real = factory.model
    monkeypatch.setattr(factory, "model", lambda which: (built.update([which]), real(which))[1])
    items = [exercise_job(e) for e in EXERCISES]
    for item in items:
        for case in item["cases"]:
            for args in case["each"] or [case["args"]]:
                factory.build(args, case["kwargs"])
    assert dict(built) == models_per_grading(items) and built["alt"] > 0


def test_the_warm_process_hands_its_prepared_inputs_to_one_worker_only(inputs_paths):
    prepare(*inputs_paths, "cuda", {"main": 1})  # never on CUDA: a forked child could not use it
    assert factory_for(*inputs_paths, "cuda").spare() == {}
    prepare(*inputs_paths, "cpu", {"main": 1, "alt": 1})
    assert factory_for(*inputs_paths, "cpu").spare() == {"main": 1, "alt": 1}
    assert factory_for(*inputs_paths, "cpu").spare() == {}


@pytest.mark.slow
@pytest.mark.worker
def test_workers_forked_from_the_warm_pool_start_with_their_models_built(grader, monkeypatch):
    grader.start(2)  # the session's warm workers, prepared for every item
    ready = _messages(monkeypatch, "ready")
    result = with_config(grader, only=("get_WOV", "get_ln_fit")).grade(COURSE_LAYOUT_CORRECT)
    assert {e.id: e.status for e in result.exercises if e.status != "not_autograded"} == {
        "get_WOV": "passed", "get_ln_fit": "passed"}, result
    expected = sum(models_per_grading([exercise_job(e) for e in EXERCISES]).values())
    assert ready and all(m["prepared_models"] == expected for m in ready), (expected, [m["prepared_models"] for m in ready])


@pytest.mark.slow
@pytest.mark.worker
def test_a_warm_pool_whose_inputs_cannot_be_prepared_still_grades(grader, tmp_path, monkeypatch):
    import threading

    from grader.slot_pool import SlotPool

    g = with_config(grader, only=("get_WOV",))
    prepare = {"weights": str(tmp_path / "missing.pt"), "data": grader.setting.data_public, "device": "cpu",
               "models": {"main": 1}}
    g.pool = SlotPool(grader.isolation, grader.pool.readable, prepare, g.config.limits)  # slots of its own
    ready = _messages(monkeypatch, "ready")
    try:
        result = g.grade(COURSE_LAYOUT_CORRECT)
        assert g.pool.slots and all(s.warm.alive() and not s.restarts for s in g.pool.slots), \
            "the warm worker died instead of forking workers that build their own inputs"
    finally:
        g.close()
    assert {e.id: e.status for e in result.exercises}["get_WOV"] == "passed"
    assert ready and all(m["prepared_models"] == 0 for m in ready), ready  # it built its own


def test_a_warm_worker_that_does_not_answer_is_ended_and_then_reported_gone():
    """A late answer must never give the next request the previous one's child: the warm worker
    that missed its time is ended, and asking it again says it is gone (both RuntimeError, which
    sends the run to a new interpreter)."""
    import subprocess
    import sys
    import threading

    from grader.slots import WarmWorker

    pool = WarmWorker.__new__(WarmWorker)  # a "warm worker" that reads its requests and never answers
    pool._proc = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(60)"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pool._lock, pool._cond, pool._pids, pool._exits = threading.Lock(), threading.Condition(), [], {}
    pool._reader = threading.Thread(target=pool._read, daemon=True)
    pool._reader.start()
    with pytest.raises(RuntimeError, match="did not answer"):
        pool.fork({"job": {}}, timeout=0.5)
    assert pool._proc.wait(timeout=10) is not None and not pool.alive()
    with pytest.raises(RuntimeError, match="gone"):
        pool.fork({"job": {}}, timeout=0.5)


@pytest.mark.slow
@pytest.mark.worker
def test_a_run_whose_warm_worker_does_not_answer_is_graded_in_a_new_interpreter(grader, monkeypatch):
    from grader.slots import WarmWorker

    asked = []

    def stuck(self, request, timeout=60.0):
        asked.append(request["job"]["submission"])
        raise RuntimeError("the warm worker did not answer")

    monkeypatch.setattr(WarmWorker, "fork", stuck)
    monkeypatch.setattr(WarmWorker, "alive", lambda self: True)
    result = with_config(grader, only=("get_WOV",)).grade(COURSE_LAYOUT_CORRECT)
    assert asked, "the run went to the warm worker first"
    assert {e.id: e.status for e in result.exercises}["get_WOV"] == "passed"


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.parametrize("by_descriptor", [True, False], ids=["bubblewrap 0.8+", "older bubblewrap"])
def test_without_a_warm_worker_each_run_is_a_new_sandboxed_interpreter(grader, monkeypatch, by_descriptor):
    """--no-warm-pool: every run a new interpreter, its folder bound by descriptor where bubblewrap
    can (--bind-fd), by path where it is older."""
    from grader import isolation
    from grader.config import GradeConfig
    from grader.engine import Grader

    monkeypatch.setattr(isolation, "binds_by_descriptor", lambda bwrap: by_descriptor)
    cold = Grader(GradeConfig(only=("get_WOV",), warm_pool=False))
    try:
        result = cold.grade(COURSE_LAYOUT_CORRECT)
        assert all(slot.warm is None for slot in cold.pool.slots)
    finally:
        cold.close()
    assert {e.id: e.status for e in result.exercises}["get_WOV"] == "passed", result.exercises


def test_no_slot_is_made_once_grading_is_stopped_and_one_made_meanwhile_is_removed(tmp_path, monkeypatch):
    """An interrupt (Grader.stop) empties the slots; a submission whose thread reaches for a slot
    after it, or while one is being made, must not leave a slot folder behind the run (the batch
    test found one in the temporary folder after an interrupted run)."""
    import tempfile

    import grader.slot_pool as slot_pool
    from grader.isolation import detect

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pool = slot_pool.SlotPool(detect(), [], None, Limits())
    real = slot_pool.Slot

    def made_while_stopping(*args, **kwargs):
        slot = real(*args, **kwargs)
        pool.stop()  # the interrupt arrives while the slot is being made
        return slot

    monkeypatch.setattr(slot_pool, "Slot", made_while_stopping)
    with pytest.raises(slot_pool.GradingStopped):
        with pool.lend():
            pass
    with pytest.raises(slot_pool.GradingStopped):  # and after it, no slot at all
        with pool.lend():
            pass
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bracket-slot-")] == []
    assert pool.slots == []


def test_each_object_keeps_the_value_its_exercise_cell_gave_and_the_latest_only(monkeypatch):
    """In the worker, after each statement: a name bound again in the same cell keeps that cell's
    last value; a later cell's value is the latest; values in between are freed; the value the
    course's test call was given is the exercise cell's, whatever came after."""
    from grader.worker import harvest, quiet

    monkeypatch.setattr(harvest, "_ASSIGNED", {})
    monkeypatch.setattr(harvest, "_TESTED", {})
    monkeypatch.setattr(quiet, "RECORDED", {})
    name, ns = "out_by_component_in_unbalanced_dir", {}
    values = [torch.full((2,), float(i)) for i in range(5)]
    for value, cell in zip(values, (3, 3, 5, 8, 9)):
        ns[name] = value
        harvest.note_assignments(ns, [name], cell)
    assert [(v[0] is values[i], v[2]) for v, i in zip(harvest._ASSIGNED[name], (1, 4))] == [(True, 3), (True, 9)]
    assert harvest.exercise_version(name)[0] is values[1]  # the first cell's last value
    sent = harvest.object_values(ns, [name])
    assert (sent["cell"], sent["exercise"]["cell"], sent["exercise"]["tested"]) == (9, 3, False)
    quiet.RECORDED["test_" + name] = ((values[2], None, None), {})  # the test call of cell 5 was given this one
    harvest.note_assignments(ns, [name], 5)
    assert harvest.exercise_version(name)[0] is values[2]
    assert harvest.object_values(ns, [name])["exercise"]["tested"] is True
    ns[name] = values[2]  # the tested value is the last one: nothing else to judge
    harvest.note_assignments(ns, [name], 10)
    assert "exercise" not in harvest.object_values(ns, [name])
