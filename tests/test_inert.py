"""Text a submission wrote, inert wherever it is shown: no control character or escape sequence
reaches a terminal, a feedback file, JUnit or the CI summary as itself (fakes: no worker)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from grader import reports
from grader.catalogue import IDS
from grader.inert import inert
from grader.results import CaseOutcome, CellError, ExerciseResult, SubmissionResult

ESCAPES = "\x1b[2J\x1b[H\x1b]0;graded by me\x07\x1b[10A\r\x08\u202e\x00"


def hostile_result() -> SubmissionResult:
    case = CaseOutcome("model", False, "error", f"RuntimeError: the screen is mine{ESCAPES}\nline two", "RuntimeError")
    exercises = tuple(ExerciseResult(i, "error", 0.0, 1.0, cases=(case,)) if i == "get_WOV"
                      else ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS)
    return SubmissionResult(f"class/mallory{ESCAPES}.py", exercises, (f"output: {ESCAPES}",), 1.0,
                            (CellError(3, "ValueError", f"boom{ESCAPES}"),))


def test_each_control_character_is_shown_as_its_escape():
    assert inert("a\x1b[31mb\tc\nd\u202e") == "a\\x1b[31mb\tc\nd\\u202e"
    assert inert("\r\x08\x07\x7f\x9b") == "\\x0d\\x08\\x07\\x7f\\x9b"
    assert inert("plain text, (brackets) and ümlauts") == "plain text, (brackets) and ümlauts"


def test_no_report_carries_a_control_character_of_the_submissions():
    r = hostile_result()
    texts = {"terminal": reports.terminal_table(r), "feedback": reports.feedback_markdown(r),
             "summary": reports.item_summary_markdown([r]), "github": reports.github_summary_markdown([r]),
             "annotations": reports.github_annotations([r]), "junit": reports.junit_text([r]),
             "gradescope": reports.gradescope_json(r), "classroom": reports.classroom_json(r),
             "gradebook": reports.gradebook_csv([r]), "csv": reports.csv_text([r])}
    for name, text in texts.items():
        assert not any(c in text for c in "\x1b\x07\x08\x00\u202e"), name
        assert "\r" not in text.replace("\r\n", "\n"), name
    assert "\\x1b[2J" in texts["terminal"] and "\\x1b[2J" in texts["feedback"]  # shown, as text
    ET.fromstring(texts["junit"].split("?>", 1)[1])  # XML 1.0 holds it
    assert json.loads(texts["gradescope"])["tests"]
    assert "\x1b" not in reports.feedback_file_name(r.path)


def test_the_class_page_and_the_notebook_table_show_it_as_text():
    from grader.notebook import table_html
    from grader.report_page import page_html

    r = hostile_result()
    for text in (page_html([r], {}), table_html(r)):
        assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J" in text
