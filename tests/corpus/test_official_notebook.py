"""The course's own current exercises notebook, as a student hands it in: downloaded, every stub
filled in, the Colab-aware setup cell first. 23/23 in every mode, with nothing graded again.

Built at test time from ../shared/arena-1.5.1 (never committed); skipped, saying why, without it.
"""
from __future__ import annotations

import pytest

from grader.catalogue import IDS
from tests.conftest import COURSE_DIR, with_config
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
    assert {e.id: e.status for e in result.exercises} == dict.fromkeys(IDS, "passed"), \
        [(e.id, feedback(e)[:300]) for e in result.exercises if e.status != "passed"]
    # nothing graded a second time: not with every cell run, not given a correct helper, not on
    # the course's data size
    assert not any("graded again" in n for n in result.notes), result.notes
    assert not any("given a correct" in feedback(e) or "examples (your code" in feedback(e) for e in result.exercises)


def test_the_filled_in_course_notebook_scores_full_marks_on_our_model(grader, tmp_path, official):
    from reference.adversarial import KNOWN

    result = _graded(grader, tmp_path, next(iter(KNOWN.values()))[0], "lean")
    assert result.score == 23, [(e.id, feedback(e)[:300]) for e in result.exercises if e.status != "passed"]
    assert not any("graded again" in n for n in result.notes), result.notes
