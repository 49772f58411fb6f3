"""The class report page (`--report`): from a JSON report and from shard reports (written while
grading: tests/test_worlds.py, in both worlds); self-contained and offline; checked in headless
Chromium as an instructor sees it; every string a student controls shown as inert text there and
in the Markdown, job-summary and CSV outputs."""
from __future__ import annotations

import csv
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import reports
from grader.catalogue import IDS
from grader.report_page import page_html
from grader.results import ExerciseResult, SubmissionResult
from tests.browser import ARTIFACTS, show, start_or_skip
from tests.conftest import ROOT

HOSTILE = ('<script>window.pwned=1</script><img src=x onerror="window.pwned=2"></table></td>'
           '**bold** [link](javascript:alert(1)) =HYPERLINK("http://evil.invalid","x") see www.evil.invalid/login and _www.evil.invalid/b')
HOSTILE_NAME = '<img src=x onerror="window.pwned=3">=HYPERLINK("evil")'  # a file name holds no slash


def _bench():
    spec = importlib.util.spec_from_file_location("bench_report_page", ROOT / "benchmarks" / "bench_report_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def class_results(n: int) -> list[SubmissionResult]:
    """n submissions as a batch gives them (the report benchmark's mix: failed with a diagnosed
    cause, passed given a correct helper, errors, notes), the first one's name, an error message
    and a note hostile."""
    results = _bench().batch(n)
    first = results[0]
    exercises = tuple(ExerciseResult(e.id, "error", 0.0, 1.0, f"ValueError: {HOSTILE}") if k == 3 else e
                      for k, e in enumerate(first.exercises))
    results[0] = SubmissionResult(f"/class/{HOSTILE_NAME}.py", exercises, (f"cell 3 raised RuntimeError: {HOSTILE}",),
                                  first.seconds)
    return results


def run_info() -> dict:
    return {"grader_version": "0.1.0", "model": "brackets_model.safetensors", "model_sha256": "ab" * 32,
            "data": "brackets_data.json", "data_sha256": "cd" * 32, "device": "cpu", "workers": 2, "seconds": 61.5,
            "date": "2026-12-02T08:00:00+00:00", "isolation": {"not_enforced": []}}


def write_json(path: Path, results: list[SubmissionResult]) -> Path:
    path.write_text(reports.json_text(results, run_info()))
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


# ---------------------------------------------------------------------- the page as a file

def test_the_page_is_self_contained_and_loads_nothing_from_the_network(tmp_path):
    text = page_html(class_results(5), run_info())
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"(?:src|href)=['\"]?(?:https?:)?//", text)
    assert "default-src 'none'" in text and "connect-src 'none'" in text  # the browser enforces it


def test_student_strings_are_escaped_in_the_markup():
    text = page_html(class_results(3), run_info())
    body = text.split("<script type=\"application/json\"")[0]
    assert "<script>window.pwned" not in body and "<img src=x" not in body
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in body and "&lt;img src=x onerror=" in body


def test_a_300_submission_page_stays_under_5_mb():
    text = page_html(class_results(300), run_info())
    assert len(text.encode()) < 5 * 1024**2  # its time is measured by benchmarks/bench_report_page.py


def test_from_a_json_report_and_from_shards_without_grading(tmp_path):
    results = class_results(6)
    one = write_json(tmp_path / "grades.json", results)
    proc = cli("--report", str(tmp_path / "class.html"), "--from", str(one))
    assert proc.returncode == 0, proc.stderr
    shards = [write_json(tmp_path / "a.json", results[:3]), write_json(tmp_path / "b.json", results[3:])]
    proc = cli("--report", str(tmp_path / "merged.html"), "--from", *map(str, shards))
    assert proc.returncode == 0, proc.stderr
    for page in ("class.html", "merged.html"):
        text = (tmp_path / page).read_text()
        assert all(f"student_{k:04d}" in text for k in range(1, 6)) and text.count("<tr data-status=") == 6
    assert "<th>workers</th><td>4</td>" in (tmp_path / "merged.html").read_text()  # the shards' workers added up (2 + 2)


def test_from_refuses_what_is_not_a_report(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    proc = cli("--report", str(tmp_path / "r.html"), "--from", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "not a bracket-grade JSON report" in proc.stderr
    proc = cli("--report", str(tmp_path / "r.html"), "--from", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "not found" in proc.stderr


# ---------------------------------------------------------------------- the other outputs

def test_hostile_strings_are_inert_in_markdown_job_summary_csv_and_gradebook():
    import cmarkgfm
    import cmarkgfm.cmark

    results = class_results(2)
    for text in (reports.item_summary_markdown(results), reports.github_summary_markdown(results),
                 reports.feedback_markdown(results[0])):
        outside_code = re.sub(r"(`{3,})\n.*?\n\1", "", text, flags=re.S)  # a code block shows its text as is
        assert "<script" not in outside_code and "<img" not in outside_code and "](javascript" not in outside_code
        assert "**bold**" not in outside_code
        # as GitHub shows it (its own renderer, cmark-gfm, with its autolinks and tables): no
        # element of the student's, and no link at all (none of ours, and a bare URL is not made one)
        shown = cmarkgfm.github_flavored_markdown_to_html(text, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE)
        assert not re.search(r"<(a|script|img|em)\b", shown) and "<strong>bold" not in shown, shown
    block = reports.feedback_markdown(results[0])
    shown = cmarkgfm.github_flavored_markdown_to_html(block, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE)
    assert "window.pwned=1" in shown and "www.evil.invalid/login" in shown  # shown, as text
    assert HOSTILE in block  # the message itself, inside a fence it cannot close
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in block  # and in a note, escaped
    for table in (reports.csv_text(results), reports.gradebook_csv(results)):
        cells = [c for row in csv.reader(io.StringIO(table)) for c in row]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells if not re.fullmatch(r"-?[\d.]+", c))


# ---------------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def browser():
    b = start_or_skip()
    yield b
    b.close()


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_in_headless_chromium(browser, tmp_path):
    results = class_results(12)
    page = tmp_path / "class.html"
    page.write_text(page_html(results, run_info(), str(tmp_path / "feedback"), page))
    show(browser, page)
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith(("file:", "data:"))] == []
    # both plots drawn: an SVG with a bar for every submission score and for every item
    assert browser.evaluate("document.querySelectorAll('#histogram .main-svg').length") >= 1
    assert browser.evaluate("document.querySelectorAll('#histogram g.point path').length") >= 1
    assert browser.evaluate("document.querySelectorAll('#rates g.point path').length") >= len(IDS)
    shown = browser.evaluate("document.body.innerText")
    assert all(i in shown for i in IDS) and all(reports.student_name(r.path) in shown for r in results)
    # hostile strings: shown as text, nothing ran, nothing injected
    assert browser.evaluate("typeof window.pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('body img, #submissions script, #submissions a[href^=javascript]').length") == 0
    assert "<script>window.pwned=1</script>" in shown and HOSTILE_NAME in shown
    # sorting: by score, one way and the other
    names = "Array.from(document.querySelectorAll('#submissions tbody tr')).map(r => r.cells[0].innerText)"
    scores = "Array.from(document.querySelectorAll('#submissions tbody tr')).map(r => parseFloat(r.cells[1].innerText))"
    before = browser.evaluate(names)
    browser.evaluate("document.querySelector(\"th[data-key='score']\").click()")
    ascending = browser.evaluate(scores)
    assert ascending == sorted(ascending) and browser.evaluate(names) != before
    browser.evaluate("document.querySelector(\"th[data-key='score']\").click()")
    assert browser.evaluate(scores) == sorted(ascending, reverse=True)
    browser.evaluate("const f = document.getElementById('filter'); f.value = 'student_0003'; "
                     "f.dispatchEvent(new Event('input'))")
    assert browser.evaluate("Array.from(document.querySelectorAll('#submissions tbody tr')).filter(r => !r.hidden).length") == 1
    browser.evaluate("const g = document.getElementById('filter'); g.value = ''; g.dispatchEvent(new Event('input'))")
    browser.screenshot(ARTIFACTS / "report-page.png")
    assert (ARTIFACTS / "report-page.png").stat().st_size > 10_000
    assert browser.errors() == []


def test_a_feedback_link_is_never_a_script_url(tmp_path):
    """A student's folder named like a URL scheme must not make the link run anything."""
    [result] = class_results(1)
    evil = SubmissionResult("/class/javascript:window.pwned=4/exercises.ipynb", result.exercises, (), 1.0)
    text = page_html([evil], run_info(), str(tmp_path), tmp_path / "class.html")
    href = re.search(r"<a href='([^']+)'>", text).group(1)
    assert href.startswith("./") and ":" not in href
