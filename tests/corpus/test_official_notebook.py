"""The course's own current exercises notebook, as a student hands it in: downloaded, every stub
filled in, the Colab-aware setup cell first, full marks with nothing graded again; as downloaded,
nothing; half finished, what was written. On both models, each mode at least once.

Built at test time from ../shared/arena-1.5.1 (never committed); skipped, saying why, without it.
"""
from __future__ import annotations

import pytest

from grader.catalogue import IDS
from tests.conftest import COURSE_DIR, COURSE_NOTEBOOK_PROVIDES, with_config
from grader.feedback import feedback

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.course_weights]


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    from tests.fixtures.official_notebook import OFFICIAL

    if not OFFICIAL.exists():
        pytest.skip(f"the course's exercises notebook is not at {COURSE_DIR} (compatibility check only)")
    return tmp_path_factory.mktemp("official")


MODELS = {"course": "course_grader", "ours": "grader"}


def _on(request, model: str, mode: str):
    """The session's grader for `model` in `mode`, and the adversarial example that model needs."""
    from reference.adversarial import COURSE_EXAMPLE, KNOWN

    grader = with_config(request.getfixturevalue(MODELS[model]), notebook_mode=mode)
    return grader, COURSE_EXAMPLE if model == "course" else next(iter(KNOWN.values()))[0]


@pytest.mark.parametrize("model,mode", [("course", "lean"), ("ours", "fast"),
                                        pytest.param("course", "kernel", marks=pytest.mark.kernel)])
def test_the_filled_in_course_notebook_scores_full_marks(request, official, model, mode):
    from tests.fixtures.official_notebook import write_filled

    grader, adversarial = _on(request, model, mode)
    (official / f"filled-{model}-{mode}").mkdir()
    result = grader.grade(write_filled(official / f"filled-{model}-{mode}", adversarial))
    # what the course gives complete is there as given: provided, worth nothing, out of the maximum
    assert {e.id: e.status for e in result.exercises} == {
        i: "provided" if i in COURSE_NOTEBOOK_PROVIDES else "passed" for i in IDS}, \
        [(e.id, feedback(e)[:300]) for e in result.exercises if e.status != "passed"]
    assert result.score == result.max_score == 23 - len(COURSE_NOTEBOOK_PROVIDES)
    # nothing graded a second time: not with every cell run, not given a correct helper, not on
    # the course's data size
    assert not any("graded again" in n for n in result.notes), result.notes
    assert not any("given a correct" in feedback(e) or "examples (your code" in feedback(e) for e in result.exercises)


LEFT_TO_WRITE = ("out_by_component_in_unbalanced_dir", "v_L_v_R")  # the objects the course's cells leave out


@pytest.mark.parametrize("model,mode", [("course", "lean"), ("ours", "fast"),
                                        pytest.param("ours", "kernel", marks=pytest.mark.kernel)])
def test_the_untouched_course_notebook_earns_nothing(request, official, model, mode):
    """As downloaded: the stubs are not attempted, what the course gives complete is provided (0
    points, out of the maximum), and the two objects it leaves to the student are missing."""
    import shutil

    from tests.fixtures.official_notebook import OFFICIAL

    grader, _ = _on(request, model, mode)
    (official / f"blank-{model}-{mode}").mkdir()
    result = grader.grade(shutil.copy(OFFICIAL, official / f"blank-{model}-{mode}" / OFFICIAL.name))
    assert {e.id: e.status for e in result.exercises} == {
        i: "provided" if i in COURSE_NOTEBOOK_PROVIDES else "missing" if i in LEFT_TO_WRITE else "not_attempted"
        for i in IDS}, [(e.id, e.status, feedback(e)[:200]) for e in result.exercises]
    assert result.score == 0 and result.max_score == 23 - len(COURSE_NOTEBOOK_PROVIDES)
    # no second look at a stub: only the objects left to write (their names are in the course's
    # text, so a statement of the student's could set them) are looked at again
    again = [int(n.split()[0]) for n in result.notes if "graded again" in n]
    assert all(k <= len(LEFT_TO_WRITE) for k in again), result.notes


@pytest.mark.parametrize("model,upto", [("ours", 11), ("course", 17), ("course", 24)],
                         ids=["after-is_balanced-ours", "after-unbalanced-dir-course", "after-pre_20_dir-course"])
def test_a_half_finished_course_notebook_earns_only_what_was_written(request, official, model, upto):
    """Done up to a point, the rest as downloaded: each exercise done passes, each stub after it is
    not attempted, and the pre-filled object cell earns nothing even where its helpers are done."""
    from tests.fixtures.official_notebook import item_cell, write_filled

    grader, adversarial = _on(request, model, "lean")
    (official / f"half-{upto}").mkdir()
    result = grader.grade(write_filled(official / f"half-{upto}", adversarial, upto=upto))
    want = {}
    for i in IDS:
        if i in COURSE_NOTEBOOK_PROVIDES:
            want[i] = "provided"
        elif item_cell(i) < upto:
            want[i] = "passed"
        else:
            want[i] = "missing" if i in LEFT_TO_WRITE else "not_attempted"
    assert {e.id: e.status for e in result.exercises} == want, \
        [(e.id, e.status, feedback(e)[:200]) for e in result.exercises if e.status != want[e.id]]
    assert result.score == sum(s == "passed" for s in want.values())
