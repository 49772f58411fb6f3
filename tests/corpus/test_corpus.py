"""Grade the whole corpus and hold every verdict to its hand-written label.

The measure of the grader's judgement: zero correct items rejected, zero wrong items accepted.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.catalogue import IDS
from grader.results import STATUSES
from grader.config import Limits
from tests.conftest import with_config
from tests.corpus.field import ALL as CORPUS, FIELD, OWN_WORK
from tests.corpus.submissions import build, given_unchanged
from grader.feedback import all_notes, feedback

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("corpus")]

# a hang should not cost a minute here; the slowest correct item takes a few seconds
CORPUS_LIMITS = Limits(item_seconds=20, case_seconds=10, submission_seconds=900)


def on_model(model: str) -> list:
    """What each model grades, each cause shown once where one model shows it: on the course's
    (the one real students use) the field submissions, written for it as students write them, and
    the corpus's mistakes where its dead neurons or its other fit could change a verdict (the
    LayerNorm fits, the neuron items, v_L and v_R), wrong or written another way, and the
    student's own answers and the last cascades (OWN_WORK, found on the course's model); on ours
    the rest of the corpus and those mistakes again. Where the course's files are absent, ours
    grades all. CORPUS_ONLY=name,name grades only those (to look at one)."""
    from tests.conftest import COURSE_WEIGHTS

    course = [s for s in CORPUS if s in FIELD or s in OWN_WORK or _model_sensitive(s)]
    if model == "our model":
        subs = [s for s in CORPUS if s not in FIELD and (s not in OWN_WORK or _model_sensitive(s))] \
            if COURSE_WEIGHTS.exists() else list(CORPUS)
    else:
        subs = course
    only = [n for n in os.environ.get("CORPUS_ONLY", "").split(",") if n]
    return [s for s in subs if s.name in only] if only else subs


# each model's half of the corpus in a group of its own: the two run at once on two test processes
@pytest.fixture(scope="module", params=[pytest.param("our model", marks=pytest.mark.xdist_group("ours")),
                                        pytest.param("the course's model", marks=pytest.mark.xdist_group("course"))])
def graded(request, tmp_path_factory) -> dict:
    """The corpus graded on each model (`on_model` says which submissions on which); the
    course's is skipped, saying why, where its files are absent."""
    base = request.getfixturevalue("grader" if request.param == "our model" else "course_grader")
    subs = on_model(request.param)
    if not subs:
        pytest.skip(f"CORPUS_ONLY names no submission graded on {request.param}")
    paths = build(tmp_path_factory.mktemp("corpus"), subs)
    # on our model each submission's first pass runs in two parts at once, as a single file is
    # graded where cores are spare (the student's and CI's case); on the course's, in one
    g = with_config(base, limits=CORPUS_LIMITS, split_first_pass=request.param == "our model")
    return {Path(r.path).name: r for r in g.grade_many(list(paths.values()), workers=2)}


MODEL_SENSITIVE = ("get_ln_fit", "get_pre_final_ln_dir", "get_out_by_neuron", "cos_sim_with_MLP_weights", "v_L_v_R",
                   "adversarial_examples")


def _model_sensitive(sub) -> bool:
    """A mistake in an item the model can change, or one written another way than the reference
    (loops, numpy, float64, divided after the matmul: where the course model's dead neurons make
    formulations differ, every correct one must still pass). A hang is not: no model makes a loop
    that never returns return."""
    rewritten = {edit[1] for edit in sub.edits if edit[0] in ("replace", "after")}
    return any(item.startswith(MODEL_SENSITIVE) and status not in ("passed", "timeout")
               for item, (status, _) in sub.expect.items()) \
        or any(name.startswith(MODEL_SENSITIVE) for name in rewritten)


def test_the_class_report_of_the_corpus_in_a_browser(graded, tmp_path, request):
    """A real report: the corpus graded, as one class, in the page instructors open (its screenshot,
    on our model, is the README's)."""
    from grader.report_page import page_html
    from tests.browser import ARTIFACTS, show, start_or_skip

    results = sorted(graded.values(), key=lambda r: r.path)
    ours = "our model" in request.node.callspec.id
    run = request.getfixturevalue("grader" if ours else "course_grader").run_info(
        workers=2, seconds=sum(r.seconds for r in results) / 2)  # the batch's time on two workers, about
    page = tmp_path / "corpus.html"
    page.write_text(page_html(results, run))
    browser = start_or_skip()
    try:
        show(browser, page)
        assert browser.errors() == []
        shown = browser.evaluate("document.body.innerText")
        assert all(Path(r.path).stem in shown for r in results)
        assert browser.evaluate("document.querySelectorAll('#rates g.point path').length") >= len(IDS)
        if ours:
            browser.screenshot(ARTIFACTS / "corpus-report.png")
    finally:
        browser.close()


def test_the_corpus_is_labelled_in_full():
    assert len(CORPUS) >= 50 and len(FIELD) >= 20
    assert len({s.name for s in CORPUS}) == len(CORPUS)
    for sub in CORPUS:
        for item, (status, why) in sub.expect.items():
            assert item in IDS and status in STATUSES and why, (sub.name, item)
    kinds = {s.name.rsplit(".", 1)[1] for s in CORPUS}
    assert kinds == {"py", "ipynb"}
    versions = {s.base for s in FIELD}
    assert {"colab_current", "colab_2024", "2023_full", "part7", "course"} <= versions


def test_every_verdict_agrees_with_its_label(graded):
    wrong_rejected, wrong_accepted, other = [], [], []
    for sub in (s for s in CORPUS if s.name in graded):
        result = graded[sub.name]
        given = given_unchanged(sub)
        for e in result.exercises:
            want, why = sub.expect.get(e.id, ("provided", "the course gives it complete; unchanged") if e.id in given
                                       else ("passed", "correct"))
            if e.status == want:
                continue
            line = f"{sub.name} {e.id}: got {e.status} ({feedback(e)[:160]!r}), labelled {want}: {why}" + \
                "".join(f"\n    note: {n[:200]}" for n in all_notes(result))
            if want == "passed":
                wrong_rejected.append(line)
            elif e.status == "passed":
                wrong_accepted.append(line)
            else:
                other.append(line)
    assert not (wrong_rejected or wrong_accepted or other), "\n".join(
        [f"{len(wrong_rejected)} correct item(s) rejected:"] + wrong_rejected
        + [f"{len(wrong_accepted)} wrong item(s) accepted:"] + wrong_accepted
        + [f"{len(other)} with another status:"] + other)


def test_credit_through_a_wrong_helper_says_so(graded):
    for sub in (s for s in CORPUS if s.name in graded):
        for item, (status, why) in sub.expect.items():
            if status == "passed" and "given a correct" in why:
                e = {e.id: e for e in graded[sub.name].exercises}[item]
                assert e.condition is not None and e.condition.helpers, (sub.name, item, feedback(e))
                assert ", given a correct " in feedback(e), (sub.name, item, feedback(e))


def test_the_corpus_shows_every_cause_on_some_model():
    """Each model grades part of the corpus (`on_model`): together they grade all of it, the
    mistakes a model could change on both, and the items taken from the course on at least one."""
    from tests.conftest import COURSE_WEIGHTS

    ours, course = on_model("our model"), on_model("the course's model")
    assert {s.name for s in ours} | ({s.name for s in course} if COURSE_WEIGHTS.exists() else set()) == \
        {s.name for s in CORPUS}
    both = {s.name for s in ours} & {s.name for s in course}
    assert {s.name for s in CORPUS if _model_sensitive(s) and s not in FIELD} <= both
    taken = [i for s in (course if COURSE_WEIGHTS.exists() else ours) for i, (st, why) in s.expect.items()
             if st == "missing" and "course's solutions" in why]
    assert len(taken) >= 5


def test_an_item_taken_from_the_course_says_so(graded):
    """Scored nothing, and told why: the function came from the course's solutions."""
    seen = 0
    for sub in (s for s in CORPUS if s.name in graded):
        for item, (status, why) in sub.expect.items():
            if status == "missing" and "course's solutions" in why:
                text = {e.id: feedback(e) for e in graded[sub.name].exercises}[item]
                assert "from the course's solutions" in text, (sub.name, item, text)
                seen += 1
    assert seen == sum(st == "missing" and "course's solutions" in why
                       for s in CORPUS if s.name in graded for st, why in s.expect.values())


def test_submissions_whose_items_all_pass_score_full_marks(graded):
    for sub in (s for s in CORPUS if s.name in graded):
        result = graded[sub.name]
        if all(status == "passed" for status, _ in sub.expect.values()):
            assert result.score == result.max_score, (sub.name, [(e.id, feedback(e)) for e in result.exercises
                                                                 if e.status != "passed"])
