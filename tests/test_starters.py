"""Starter awareness without a worker: fingerprints, what counts as unchanged, and how the verdicts
and every renderer show `provided` and `not_attempted`."""
from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree as ET

import pytest

from grader import reports, starters
from grader.catalogue import IDS
from grader.config import ConfigError, configured, read_points
from grader.feedback import feedback
from grader.results import ExerciseResult, SubmissionResult, submission_from_json
from tests.conftest import COURSE_DIR, COURSE_NOTEBOOK_PROVIDES, ROOT

STUB = '''
def get_WOV(model, layer, head):
    """Return the OV matrix."""
    raise NotImplementedError()
'''
WRITTEN = '''
def get_WOV(model, layer, head):
    """Return the OV matrix."""
    return model.W_V[layer, head] @ model.W_O[layer, head]
'''
OBJECT = '''
# %%
adversarial_examples = ["()", "(())"]
'''


def prints(text: str) -> dict:
    return starters.fingerprints(text, ".py")


def test_formatting_comments_and_docstrings_do_not_change_a_fingerprint_and_code_does():
    base = prints(WRITTEN)["get_WOV"]
    reformatted = WRITTEN.replace('"""Return the OV matrix."""', '"""Other words."""').replace(
        "return model", "# a comment\n    return (model") + ")"
    assert prints(reformatted)["get_WOV"] == base
    assert prints(WRITTEN.replace("W_V[layer, head] @ model.W_O", "W_O[layer, head] @ model.W_V"))["get_WOV"].digest \
        != base.digest


def test_stubs_and_complete_code_are_told_apart():
    assert prints(STUB)["get_WOV"].provides is False
    assert prints(WRITTEN)["get_WOV"].provides is True
    assert prints(OBJECT)["adversarial_examples"].provides is False  # a literal is a placeholder
    assert prints("x = 1\nadversarial_examples = make(x)\n")["adversarial_examples"].provides is True


def test_the_last_binding_is_the_items_code_and_a_reassignment_is_the_students():
    later = STUB + "\n# %%\n" + WRITTEN
    assert prints(later)["get_WOV"] == prints(WRITTEN)["get_WOV"]
    rebound = STUB + "\n# %%\nget_WOV = my_wov\n"
    assert prints(rebound)["get_WOV"].digest != prints(STUB)["get_WOV"].digest


def test_an_object_changed_in_place_later_is_not_the_starters():
    appended = OBJECT + "\n# %%\nadversarial_examples.append('(((')\n"
    same_cell = OBJECT + "adversarial_examples.append('(((')\n"
    assert prints(appended)["adversarial_examples"] == prints(same_cell)["adversarial_examples"]
    assert prints(appended)["adversarial_examples"].digest != prints(OBJECT)["adversarial_examples"].digest


def test_cells_that_do_not_parse_are_left_out_not_fatal():
    text = "# %%\ndef broken(:\n# %%\n" + STUB
    assert prints(text)["get_WOV"] == prints(STUB)["get_WOV"]
    assert starters.fingerprints(b"{not json", ".ipynb") == {}


def test_parses_on_several_threads_take_turns_and_a_spurious_system_error_is_tried_again(monkeypatch):
    """A batch fingerprints submissions on several threads; CPython 3.11's syntax-tree builder shares
    one depth counter between threads and fails with SystemError when two parses overlap."""
    import ast
    import threading
    import time

    real, inside, most, failed_once = ast.parse, [], [0], []

    def parse(text, *args, **kwargs):
        inside.append(1)
        most[0] = max(most[0], len(inside))
        time.sleep(0.002)  # long enough for the other thread to come in, were it let
        inside.pop()
        if not failed_once:
            failed_once.append(1)
            raise SystemError("AST constructor recursion depth mismatch (before=3, after=9)")
        return real(text, *args, **kwargs)

    expected = prints(STUB + "\n# %%\n" + OBJECT)
    monkeypatch.setattr(starters.ast, "parse", parse)
    got = []
    threads = [threading.Thread(target=lambda: got.append(prints(STUB + "\n# %%\n" + OBJECT))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed_once and most[0] == 1
    assert got == [expected] * 3


def test_the_template_is_a_built_in_starter_of_stubs_only():
    kept = starters.BUILT_IN / "bracket-grader-template.json"
    fresh = starters.starter_json(starters.starter_from_file(starters.TEMPLATE, starters.TEMPLATE_NAME))
    assert json.loads(kept.read_text()) == fresh, (  # the template is generated: keep its prints with it
        f"run: python -m grader.starters {starters.TEMPLATE.relative_to(ROOT)} '{starters.TEMPLATE_NAME}' > "
        f"{kept.relative_to(ROOT)}")
    template = starters.built_in()[0]  # read from the kept prints: an installed grader has no student_template/
    assert template.name == starters.TEMPLATE_NAME
    assert set(template.items) == set(IDS) and not any(p.provides for p in template.items.values())
    from reference.make_template import TEMPLATE_DIR

    for name in ("exercises.py", "exercises.ipynb"):
        path = TEMPLATE_DIR / name
        given = starters.unchanged(starters.fingerprints(path.read_bytes(), path.suffix), starters.built_in())
        assert set(given) == set(IDS), name


@pytest.mark.course_weights
def test_the_kept_course_fingerprints_are_the_course_notebooks():
    notebook = COURSE_DIR / "1.5.1_Balanced_Bracket_Classifier_exercises.ipynb"
    if not notebook.exists():
        pytest.skip(f"the course's notebook is not at {COURSE_DIR}")
    kept = starters.starter_from_json(next(starters.BUILT_IN.glob("arena-1.5.1*.json")))
    assert kept.items == starters.starter_from_file(notebook).items
    assert {i for i, p in kept.items.items() if p.provides} == set(COURSE_NOTEBOOK_PROVIDES)


def graded(status: str, score: float) -> ExerciseResult:
    return ExerciseResult("get_WOV", status, score, 1.0)


def test_own_work_marks_stubs_not_attempted_and_given_code_provided():
    stub, given = starters.Print("a", False), starters.Print("b", True)
    out = starters.own_work([graded("failed", 0.0)], {"get_WOV": ("tmpl", stub)})
    assert (out[0].status, out[0].score, out[0].max_score, out[0].starter) == ("not_attempted", 0.0, 1.0, "tmpl")
    out = starters.own_work([graded("passed", 1.0)], {"get_WOV": ("course", given)})
    assert (out[0].status, out[0].score, out[0].max_score) == ("provided", 0.0, 0.0)
    out = starters.own_work([graded("partial", 0.5)], {"get_WOV": ("course", given)}, provided_points=2)
    assert (out[0].status, out[0].score, out[0].max_score) == ("provided", 1.0, 2.0)
    assert starters.own_work([graded("passed", 1.0)], {}) == [graded("passed", 1.0)]


def test_points_can_value_provided_items_and_a_starter_must_define_items(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"provided": 0.5, "get_WOV": 2}))
    assert read_points(str(tmp_path / "p.json")) == {"provided": 0.5, "get_WOV": 2.0}
    (tmp_path / "notes.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="--starter"):
        configured(starters=(str(tmp_path / "notes.py"),))
    (tmp_path / "mine.py").write_text(STUB)
    assert configured(starters=(str(tmp_path / "mine.py"),)).starters == (str(tmp_path / "mine.py"),)


def class_of_two() -> list[SubmissionResult]:
    def one(path, special):
        return SubmissionResult(path, tuple(special.get(i) or ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS))

    return [one("alice.ipynb", {"embedding": ExerciseResult("embedding", "provided", 0.0, 0.0, starter="course"),
                                "get_WOV": ExerciseResult("get_WOV", "not_attempted", 0.0, 1.0, starter="course")}),
            one("bob.py", {"get_WOV": ExerciseResult("get_WOV", "failed", 0.0, 1.0, "wrong")})]


def test_every_renderer_shows_provided_and_not_attempted_apart_from_failed():
    alice, bob = class_of_two()
    assert alice.score == 21 and alice.max_score == 22
    table = reports.terminal_table(alice)
    assert "GIVN embedding" in table and "TODO get_WOV" in table and "FAIL" not in table
    data = json.loads(reports.json_text([alice]))
    by_id = {e["id"]: e for e in data["submissions"][0]["exercises"]}
    assert by_id["embedding"]["status"] == "provided" and by_id["embedding"]["starter"] == "course"
    back = submission_from_json(data["submissions"][0])
    assert [(e.status, e.starter, e.max_score) for e in back.exercises] == [(e.status, e.starter, e.max_score) for e in alice.exercises]
    rows = list(csv.DictReader(io.StringIO(reports.gradebook_csv([alice, bob]))))
    assert (rows[0]["not_attempted"], rows[0]["provided"], rows[0]["failed"], rows[0]["max_total"]) == ("1", "1", "0", "22")
    assert (rows[1]["not_attempted"], rows[1]["failed"], rows[1]["max_total"]) == ("0", "1", "23")
    suite = ET.fromstring(reports.junit_text([alice])).find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "1")
    gradescope = {t["name"]: t for t in json.loads(reports.gradescope_json(alice))["tests"]}
    assert gradescope["19. embedding"]["max_score"] == 0 and gradescope["19. embedding"]["status"] == "passed"
    summary = reports.item_summary_markdown([alice, bob])
    assert "| not attempted | provided |" in summary
    wov = next(ln for ln in summary.splitlines() if ln.startswith("| get_WOV "))
    assert "| 0 | 0 | 1 | 0 | 0 | 1 | 0 |" in wov
    assert "not attempted: `get_WOV` is the starter's stub, unchanged (course)" in feedback(alice.exercises[IDS.index("get_WOV")])
    assert "worth no points" in feedback(alice.exercises[IDS.index("embedding")])


def test_the_class_page_and_the_notebook_table_count_them():
    from grader.notebook import summary, table_html
    from grader.report_page import page_html

    alice, bob = class_of_two()
    page = page_html([alice, bob])
    assert "not attempted" in page and "provided" in page
    assert "TODO" in table_html(alice) and "GIVN" in table_html(alice)
    assert "1 not attempted yet; 1 provided by the starter" in summary(alice)


def test_code_written_inside_a_block_later_is_the_students():
    """`if MAIN:` (the course's style), a loop, a try: the stub left above it is not what counts."""
    stub = "v_L = None\nv_R = None\n"
    written = stub + "\n# %%\nif MAIN:\n    v_L = make(0)\n    v_R = make(1)\n"
    assert prints(written)["v_L_v_R"].digest != prints(stub)["v_L_v_R"].digest
    assert prints(written)["v_L_v_R"].provides  # computed, not a placeholder
    looped = "adversarial_examples = []\n\n# %%\nfor c in candidates:\n    adversarial_examples.append(c)\n"
    assert prints(looped)["adversarial_examples"].digest != prints("adversarial_examples = []\n")["adversarial_examples"].digest
    tried = STUB + "\n# %%\ntry:\n" + "\n".join("    " + ln for ln in WRITTEN.splitlines()) + "\nexcept ImportError:\n    pass\n"
    assert prints(tried)["get_WOV"].digest != prints(STUB)["get_WOV"].digest


def test_a_stub_that_scored_was_written_elsewhere_and_keeps_its_score():
    stub = starters.Print("a", False)
    out = starters.own_work([graded("passed", 1.0)], {"get_WOV": ("tmpl", stub)})
    assert out == [graded("passed", 1.0)]


def test_fingerprints_are_the_same_text_on_every_python():
    """ast.dump differs between Pythons (3.13 leaves out empty fields); the fingerprint's own text
    does not, so the course's kept fingerprints match on Colab's 3.13 as on 3.11. Checked here
    against the digest 3.10, 3.11, 3.12 and 3.13 all gave for this code."""
    assert prints(WRITTEN)["get_WOV"].digest == "25202df9b3f5771b1c890872"


def test_a_file_too_large_to_parse_here_has_no_fingerprints():
    big = STUB + "\n# %%\nx = [" + "0," * (starters.MAX_CODE // 2) + "]\n"
    assert starters.fingerprints(big, ".py") == {}
