"""One file graded in a new process: what is cached on disk is read back without computing, a warm
worker started before torch is loaded is the one used, one submission starts one warm worker, and
the first pass split across cores gives the verdicts it gives in one piece."""
from __future__ import annotations

import subprocess
import sys

import pytest

from grader.catalogue import BY_ID
from grader.feedback import all_notes
from grader.config import GradeConfig
from grader.reference_results import ReferenceResults
from tests.conftest import ROOT, with_config


def test_a_second_process_reads_every_kind_of_answer_from_disk_without_computing(reference):
    from reference.model import parameter_hash, read_state_dict

    ref = reference
    ex = BY_ID["get_WOV"]
    label = ex.cases[0].label
    state = read_state_dict(ref.weights)
    strs = [s for s, _ in ref.factory.tuples([0, 50])]
    question = ("get_activations", [{"$model": "main"}, {"$toks": [0, 4]}, "hook_embed"], {})
    first = (ref.for_exercise(ex), ref.alternatives(ex, label), ref.objects_for(parameter_hash(state), state, strs),
             ref.helper_answer(*question))
    again = ReferenceResults(ref.weights, ref.data, ref.device)  # a new process's view
    second = (again.for_exercise(ex), again.alternatives(ex, label),
              again.objects_for(parameter_hash(state), state, strs), again.helper_answer(*question))
    assert again._factory is None, "something was computed again instead of read from the disk cache"
    assert second[3][1] is False  # the helper's answer came from disk, not from the reference
    assert first[0].keys() == second[0].keys()
    assert all((first[0][k] == second[0][k]).all() for k in first[0] if hasattr(first[0][k], "all"))
    assert [m for m, _ in first[1]] == [m for m, _ in second[1]]
    assert all((first[2][k] == second[2][k]).all() for k in first[2])
    assert first[3][0] == second[3][0]


def test_submissions_graded_at_once_on_the_same_data_compute_an_objects_answer_once(reference, monkeypatch, tmp_path):
    """Many students write the course's 5,000 into their code: the submissions graded beside each
    other then ask for the same object on the same data, and it is computed once."""
    import threading
    import time

    from grader.disk_cache import DiskCache

    ref = ReferenceResults(reference.weights, reference.data, reference.device)
    ref.disk = DiskCache(tmp_path / "cache")  # its made-up answer kept out of the shared cache
    made = []

    def compute(item, state, strs):
        made.append(item)
        time.sleep(0.3)  # the others ask while this one computes
        return {item: [1.0, 2.0]}

    monkeypatch.setattr(ref, "_compute_object", compute)
    strs = [f"({i})" for i in range(3)]
    got = []
    threads = [threading.Thread(target=lambda: got.append(ref.objects_for("m", {}, strs, ("v_L_v_R",))))
               for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert made == ["v_L_v_R"] and len(got) == 4 and all(list(g["v_L_v_R"]) == [1.0, 2.0] for g in got)
    assert not ref._computing  # nothing kept per data set once its answer is


def test_the_cache_folder_holds_one_file_per_item_and_only_the_graders_user_can_read_it(reference):
    ref = reference
    ref.for_exercise(BY_ID["embedding"])
    folder = ref.disk.folder
    assert (folder / "expected" / "embedding.json").is_file()
    assert folder.parent.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.rglob("*") if p.is_dir())


def test_the_cache_key_is_printed_for_ci_and_names_the_folder(reference):
    out = subprocess.run([sys.executable, "-m", "grader.cli", "--cache-key"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == reference.disk.folder.name


@pytest.mark.slow
@pytest.mark.worker
def test_a_warm_worker_started_before_torch_is_adopted_when_made_for_the_same_run(grader):
    from grader.engine import Grader
    from grader.slots import early_slot

    config = GradeConfig(only=("get_WOV",))
    early = early_slot(config)
    assert early is not None, "the public model and data exist after the session's first grading"
    g = Grader(config, early=early)
    try:
        assert g.pool.slots == [early[0]] and early[0].warm.alive()
    finally:
        g.close()
    other = early_slot(GradeConfig(only=("embedding",)))
    g = Grader(config, early=other)  # made for other items: closed, not used
    try:
        assert g.pool.slots == [] and not other[0].warm.alive()
    finally:
        g.close()


@pytest.mark.slow
@pytest.mark.worker
def test_a_new_machine_with_a_restored_cache_starts_its_warm_worker_before_torch(grader, tmp_path):
    """CI restores the grader's cache, not the temporary folder: the model's public `.pt` is copied
    back from the cache (without torch), so the warm worker still starts before torch is loaded."""
    import os

    code = ("import sys, tempfile\n"
            "tempfile.tempdir = sys.argv[1]  # a new machine: nothing public yet\n"
            "from grader.config import GradeConfig\n"
            "from grader.public import weights_pt_path\n"
            "from grader.slots import early_slot\n"
            "config = GradeConfig(only=('get_WOV',)).resolved()\n"
            "assert not weights_pt_path(config.weights).exists()\n"
            "early = early_slot(config)\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformer_lens'))\n"
            "assert early is not None and early[0].warm.alive() and not loaded, loaded[:5]\n"
            "early[0].close()\n"
            "print(open(weights_pt_path(config.weights), 'rb').read() == open(sys.argv[2], 'rb').read())\n")
    fresh = tmp_path / "tmp"
    fresh.mkdir()
    proc = subprocess.run([sys.executable, "-c", code, str(fresh), grader.setting.weights_pt], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "BRACKET_GRADER_CACHE": os.environ["BRACKET_GRADER_CACHE"]},
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]


@pytest.mark.worker
def test_the_bundled_example_end_to_end_in_one_warm_worker_with_its_first_pass_split(reference, tmp_path, monkeypatch):
    """The fast tier's one real grading: the example `./grade` grades, as the README shows it."""
    from grader import second_looks
    from grader.engine import Grader
    from grader.examples import example_submission

    g = Grader(GradeConfig())
    seen = []
    real = second_looks.split
    monkeypatch.setattr(second_looks, "split", lambda plan: seen.append(plan.name) or real(plan))
    try:
        [result] = list(g.grade_many([example_submission(tmp_path)], workers=8))
        assert len(g.pool.slots) == 1
    finally:
        g.close()
    if (__import__("os").cpu_count() or 1) >= 2:
        assert seen == ["first"]
    assert result.score == pytest.approx(18.77, abs=0.01) and result.max_score == 21  # the README's figures
    got = {e.id: e.status for e in result.exercises if e.status != "passed"}
    assert got == {"get_ln_fit": "partial", "get_WOV": "failed", "avg_squared_cos_sim": "missing",
                   "LN_hook_names": "provided", "embedding": "provided"}  # the last two as the course gives them
    by_id = {e.id: e for e in result.exercises}
    assert by_id["get_WOV"].likely_cause == "transposed" and by_id["get_ln_fit"].failing.same_as
    assert by_id["get_pre_20_dir"].condition.helpers == ("get_WOV", "get_ln_fit", "get_pre_final_ln_dir")


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.parametrize("name", ["example", "hangs_at_module_level"])
def test_a_split_first_pass_gives_the_verdicts_of_one_piece(grader, tmp_path, name):
    """The corpus on our model runs split throughout; here the same files both ways, side by side."""
    from grader.examples import example_submission
    from grader.config import Limits

    path = example_submission(tmp_path)
    if name == "hangs_at_module_level":  # a demo statement that hangs, and an item that hangs
        text = path.read_text().replace("    return model.W_E[idx]", "    while True:\n        pass")
        path.write_text(text + "\nif MAIN:\n    while True:\n        pass\n")
    limits = Limits(item_seconds=10, case_seconds=5, statement_seconds=5, submission_seconds=600)
    # the items the hangs reach, of both parts: each hang costs every pass its limit, and a pass on
    # the course's data size five times it (an object that fails, out_by_component_in_unbalanced_dir
    # here, would add one: the course-size look is shown elsewhere)
    only = ("get_WOV", "embedding", "v_L_v_R") if name != "example" else ()
    whole = with_config(grader, split_first_pass=False, limits=limits, only=only).grade(path)
    parts = with_config(grader, split_first_pass=True, limits=limits, only=only).grade(path)
    assert [(e.id, e.status, e.score) for e in parts.exercises] == [(e.id, e.status, e.score) for e in whole.exercises]
    # how a hang was stopped (the alarm inside the worker, or a kill and a rerun without it) depends
    # on the machine's load, not on the split: both say that statement was stopped
    stopped = [any("ran past its limit" in n for n in all_notes(result)) for result in (whole, parts)]
    assert stopped == [name == "hangs_at_module_level"] * 2, (all_notes(whole), all_notes(parts))
