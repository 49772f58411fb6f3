"""The course's own current exercises notebook, as a student hands it in: downloaded, every stub
filled in, the Colab-aware setup cell first. 23/23 in every mode, with nothing graded again.

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


def _graded(grader, folder, adversarial: str, mode: str):
    from tests.fixtures.official_notebook import write_filled

    (folder / mode).mkdir()
    return with_config(grader, notebook_mode=mode).grade(write_filled(folder / mode, adversarial))


@pytest.mark.parametrize("mode", ["lean", "fast", "kernel"])
def test_the_filled_in_course_notebook_scores_full_marks_on_the_course_model(course_grader, official, mode):
    from reference.adversarial import COURSE_EXAMPLE

    result = _graded(course_grader, official, COURSE_EXAMPLE, mode)
    # what the course gives complete is there as given: provided, worth nothing, out of the maximum
    assert {e.id: e.status for e in result.exercises} == {
        i: "provided" if i in COURSE_NOTEBOOK_PROVIDES else "passed" for i in IDS}, \
        [(e.id, feedback(e)[:300]) for e in result.exercises if e.status != "passed"]
    assert result.score == result.max_score == 23 - len(COURSE_NOTEBOOK_PROVIDES)
    # nothing graded a second time: not with every cell run, not given a correct helper, not on
    # the course's data size
    assert not any("graded again" in n for n in result.notes), result.notes
    assert not any("given a correct" in feedback(e) or "examples (your code" in feedback(e) for e in result.exercises)


def test_the_filled_in_course_notebook_scores_full_marks_on_our_model(grader, tmp_path, official):
    from reference.adversarial import KNOWN

    result = _graded(grader, tmp_path, next(iter(KNOWN.values()))[0], "lean")
    assert result.score == result.max_score == 23 - len(COURSE_NOTEBOOK_PROVIDES), \
        [(e.id, feedback(e)[:300]) for e in result.exercises if e.status != "passed"]
    assert not any("graded again" in n for n in result.notes), result.notes


@pytest.mark.parametrize("mode", ["lean", "fast", pytest.param("kernel", marks=pytest.mark.kernel)])
def test_the_untouched_course_notebook_earns_nothing(course_grader, official, mode):
    """As downloaded: the stubs are not attempted, what the course gives complete is provided (0
    points, out of the maximum), and the two objects it leaves to the student are missing."""
    import shutil

    from tests.fixtures.official_notebook import OFFICIAL

    (official / f"blank-{mode}").mkdir()
    path = shutil.copy(OFFICIAL, official / f"blank-{mode}" / OFFICIAL.name)
    result = with_config(course_grader, notebook_mode=mode).grade(path)
    left_to_write = ("out_by_component_in_unbalanced_dir", "v_L_v_R")
    assert {e.id: e.status for e in result.exercises} == {
        i: "provided" if i in COURSE_NOTEBOOK_PROVIDES else "missing" if i in left_to_write else "not_attempted"
        for i in IDS}, [(e.id, e.status, feedback(e)[:200]) for e in result.exercises]
    assert result.score == 0 and result.max_score == 23 - len(COURSE_NOTEBOOK_PROVIDES)


@pytest.mark.parametrize("upto", [11, 17, 24], ids=["after-is_balanced", "after-unbalanced-dir", "after-pre_20_dir"])
def test_a_half_finished_course_notebook_earns_only_what_was_written(course_grader, official, upto):
    """Done up to a point, the rest as downloaded: each exercise done passes, each stub after it is
    not attempted, and the pre-filled object cell earns nothing even where its helpers are done."""
    from reference.adversarial import COURSE_EXAMPLE
    from tests.fixtures.official_notebook import item_cell, write_filled

    (official / f"half-{upto}").mkdir()
    result = course_grader.grade(write_filled(official / f"half-{upto}", COURSE_EXAMPLE, upto=upto))
    want = {}
    for i in IDS:
        if i in COURSE_NOTEBOOK_PROVIDES:
            want[i] = "provided"
        elif item_cell(i) < upto:
            want[i] = "passed"
        else:
            want[i] = "missing" if i in ("out_by_component_in_unbalanced_dir", "v_L_v_R") else "not_attempted"
    assert {e.id: e.status for e in result.exercises} == want, \
        [(e.id, e.status, feedback(e)[:200]) for e in result.exercises if e.status != want[e.id]]
    assert result.score == sum(s == "passed" for s in want.values())
