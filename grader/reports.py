"""Reports read results and format them; they hold no scoring logic.

Terminal table, JSON (`{"submissions": [...]}`), CSV (one row per submission, one column per
item), JUnit XML (one testcase per item) and Gradescope's results.json.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable
from xml.etree import ElementTree as ET

from grader.catalogue import BY_ID, IDS
from grader.results import SubmissionResult

MARKS = {"passed": "PASS", "partial": "PART", "failed": "FAIL", "error": "ERR ", "timeout": "TIME",
         "missing": "MISS", "not_autograded": "----"}


def _first_line(text: str, width: int) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    line = lines[1] if len(lines) > 1 and lines[0].endswith("cases passed.") else (lines[0] if lines else "")
    line = line.lstrip("- ")
    return line if len(line) <= width else line[: width - 3] + "..."


def _headline(text: str, width: int) -> str:
    """The most useful part of an item's feedback in one line: the likely cause when there is one,
    else what differs, then the argument combination in brackets."""
    line = _first_line(text, 10_000)
    m = re.match(r"^[A-Za-z_]\w*\((.*?)\): (.*)$", line)
    case, msg = (m.group(1), m.group(2)) if m else ("", line)
    if "; likely cause: " in msg:
        msg = "likely cause: " + msg.split("; likely cause: ", 1)[1]
    tail = f" [{case}]" if case else ""
    if len(tail) > width // 2:
        tail = tail[: width // 2 - 4] + "...]"
    if len(msg) + len(tail) > width:  # shorten the message, keep which case it was
        msg = msg[: max(width - len(tail) - 3, 0)] + "..."
    return msg + tail


def terminal_table(result: SubmissionResult, width: int = 120) -> str:
    """A per-exercise table for one submission, with the gist of the feedback for each item."""
    out = [f"{result.path}: {result.score:.4g} / {result.max_score:g}"]
    name_w = max(len(i) for i in IDS)
    for e in result.exercises:
        score = f"{e.score:.3g}/{e.max_score:g}"
        room = max(width - name_w - 18, 20)
        conditional = e.status == "passed" and ", given a correct " in e.feedback
        note = _headline(e.feedback, room) if e.status != "passed" or conditional else ""
        out.append(f"  {MARKS[e.status]} {e.id:<{name_w}} {score:>8}  {note}".rstrip())
    for note in result.notes:
        out.append(f"  note: {_first_line(note, width - 8)}")
    return "\n".join(out)


def summary_line(results: list[SubmissionResult]) -> str:
    if not results:
        return "no submissions graded"
    full = sum(r.score == r.max_score for r in results)
    mean = sum(r.score for r in results) / len(results)
    return f"{len(results)} submission(s) graded; mean score {mean:.2f}; {full} with full marks"


def to_json(results: Iterable[SubmissionResult], run: dict | None = None) -> dict:
    """`run`: how the batch was graded (grader.engine.Grader.run_info), recorded when given."""
    return {**({"run": run} if run else {}), "submissions": [r.to_json() for r in results]}


def not_enforced(run: dict | None) -> str:
    """The isolation warning of a run ("" where everything was enforced)."""
    missing = ((run or {}).get("isolation") or {}).get("not_enforced") or []
    return ("Not enforced while grading: " + "; ".join(missing)) if missing else ""


def write_atomic(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def json_text(results: Iterable[SubmissionResult], run: dict | None = None) -> str:
    return json.dumps(to_json(results, run), indent=1) + "\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def md_text(text: str) -> str:
    """A student's string (a file name, an exception message) as inert Markdown text: HTML tags and
    entities are escaped, Markdown punctuation backslash-escaped, lines joined (a table cell or a
    heading cannot be ended early, no Markdown link or image can be written), and a bare URL is
    not made a link by GitHub's autolinks (`\\://`, `www\\.`; an e-mail address still may be)."""
    import html
    import re

    text = html.escape(" ".join(str(text).split()), quote=False)
    text = re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)
    return re.sub(r"(?i)(www)\.", r"\1\\.", text.replace("://", "\\://"))  # also after `_`: GitHub links it


def md_fenced(text: str) -> list[str]:
    """A block of a student's text as a Markdown code block no backtick run inside it can close."""
    import re

    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return [fence, text, fence]


def spreadsheet_text(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs: one that would start a formula gets a
    leading apostrophe (OWASP's advice on CSV injection). File names are the student's to choose."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(results: Iterable[SubmissionResult]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "score", "max_score", *IDS])
    for r in results:
        by_id = {e.id: e for e in r.exercises}
        w.writerow([spreadsheet_text(r.path), f"{r.score:g}", f"{r.max_score:g}", *(f"{by_id[i].score:g}" for i in IDS)])
    return buf.getvalue()


def junit_text(results: Iterable[SubmissionResult], run: dict | None = None) -> str:
    suites = ET.Element("testsuites")
    warning = not_enforced(run)
    for r in results:
        failures = sum(e.status in ("failed", "partial", "missing") for e in r.exercises)
        errors = sum(e.status in ("error", "timeout") for e in r.exercises)
        skipped = sum(e.status == "not_autograded" for e in r.exercises)
        suite = ET.SubElement(suites, "testsuite", name=r.path, tests=str(len(r.exercises)),
                              failures=str(failures), errors=str(errors), skipped=str(skipped), time=f"{r.seconds:.3f}")
        if warning:
            ET.SubElement(ET.SubElement(suite, "properties"), "property", name="isolation", value=warning)
        for e in r.exercises:
            case = ET.SubElement(suite, "testcase", classname=Path(r.path).stem, name=e.id)
            if e.status in ("failed", "partial", "missing"):
                ET.SubElement(case, "failure", message=f"{e.status}: {e.score:g}/{e.max_score:g}").text = e.feedback
            elif e.status in ("error", "timeout"):
                ET.SubElement(case, "error", message=e.status).text = e.feedback
            elif e.status == "not_autograded":
                ET.SubElement(case, "skipped", message=e.feedback)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def gradescope_json(result: SubmissionResult, run: dict | None = None) -> str:
    """Gradescope's results.json: score, and per test name, score, max_score, status, output."""
    tests = []
    for e in result.exercises:
        if e.status == "not_autograded":
            continue
        tests.append({"name": BY_ID[e.id].title, "name_format": "text", "score": e.score, "max_score": e.max_score,
                      "status": "passed" if e.status == "passed" else "failed", "output": e.feedback,
                      "output_format": "text", "visibility": "visible"})
    output = "; ".join(filter(None, [not_enforced(run), *result.notes]))[:2000]
    return json.dumps({"score": result.score, "output": output, "tests": tests, "visibility": "visible"}, indent=1) + "\n"


def classroom_json(result: SubmissionResult) -> str:
    """GitHub Classroom's autograding reporter format (a runner's `result`, before base64):
    version, status (pass/fail/error), max_score, and per test name, status, message, score."""
    tests = []
    for e in result.exercises:
        if e.status == "not_autograded":
            continue
        status = "pass" if e.status == "passed" else "error" if e.status in ("error", "timeout") else "fail"
        tests.append({"name": BY_ID[e.id].title, "status": status, "message": e.feedback, "score": e.score,
                      "max_score": e.max_score, "line_no": 0, "execution_time": "0"})
    statuses = {t["status"] for t in tests}
    overall = "fail" if "fail" in statuses else "error" if "error" in statuses else "pass"
    return json.dumps({"version": 1, "status": overall, "max_score": result.max_score, "tests": tests}, indent=1) + "\n"


def student_name(path: str) -> str:
    """One row per student in the gradebook: the file's stem, or its folder when the file has a
    generic name (alice/exercises.ipynb -> alice)."""
    p = Path(path)
    return p.parent.name if p.stem in ("exercises", "solutions", "submission", "notebook") and p.parent.name else p.stem


def gradebook_csv(results: Iterable[SubmissionResult]) -> str:
    from grader.results import STATUSES

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "path", *IDS, "total", "max_total", *STATUSES])
    for r in results:
        by_id = {e.id: e for e in r.exercises}
        counts = r.status_counts()
        w.writerow([spreadsheet_text(student_name(r.path)), spreadsheet_text(r.path),
                    *(f"{by_id[i].score:g}" for i in IDS), f"{r.score:g}", f"{r.max_score:g}",
                    *(counts[s] for s in STATUSES)])
    return buf.getvalue()


def _failure_key(feedback: str) -> str:
    """A failure message without its numbers, so the same mistake counts once across students."""
    import re

    lines = [ln.lstrip("- ") for ln in feedback.splitlines() if ln.strip() and not ln.endswith("cases passed.")]
    first = lines[0] if lines else feedback
    first = re.sub(r"^\S+\((.*?)\): ", "", first)  # drop "item(case): "
    return re.sub(r"(?<![A-Za-z_\d])[-+]?\d[\d.e+-]*", "N", first)[:160]


def item_summary_markdown(results: list[SubmissionResult], run: dict | None = None) -> str:
    """Per item: how many passed, and the most common failure, which is what the class got wrong."""
    from collections import Counter

    warning = not_enforced(run)
    out = ([f"> {warning}", ""] if warning else []) + ["| item | passed | partial | failed | error/timeout | missing | most common failure |", "|---|---|---|---|---|---|---|"]
    for i in IDS:
        entries = [next(e for e in r.exercises if e.id == i) for r in results]
        c = Counter(e.status for e in entries)
        fails = Counter(_failure_key(e.feedback) for e in entries if e.status not in ("passed", "not_autograded"))
        common = f"{md_text(fails.most_common(1)[0][0])} ({fails.most_common(1)[0][1]})" if fails else ""
        out.append(f"| {i} | {c['passed']} | {c['partial']} | {c['failed']} | {c['error'] + c['timeout']} | "
                   f"{c['missing']} | {common} |")
    return "\n".join(out) + "\n"


def feedback_markdown(result: SubmissionResult, run: dict | None = None) -> str:
    """One file per submission, to hand back to the student."""
    warning = not_enforced(run)
    out = [f"# Feedback: {md_text(Path(result.path).name)}", "", f"**Score: {result.score:g} / {result.max_score:g}**", "",
           *([f"> {warning}", ""] if warning else []), "| item | status | score |", "|---|---|---|"]
    for e in result.exercises:
        out.append(f"| {BY_ID[e.id].title} | {e.status} | {e.score:g}/{e.max_score:g} |")
    for e in result.exercises:
        if e.status not in ("passed", "not_autograded"):
            out += ["", f"## {BY_ID[e.id].title}: {e.status}", "", *md_fenced(e.feedback)]
    if result.notes:
        out += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in result.notes]
    return "\n".join(out) + "\n"


def github_summary_markdown(results: list[SubmissionResult], run: dict | None = None) -> str:
    """The per-exercise table for a GitHub Actions job summary (after the isolation warning, if any)."""
    warning = not_enforced(run)
    out = [f"> {warning}", ""] if warning else []
    for r in results:
        out += [f"### {md_text(Path(r.path).name)}: {r.score:g} / {r.max_score:g}", "",
                "| item | status | score | feedback |", "|---|---|---|---|"]
        for e in r.exercises:
            note = "" if e.status == "passed" else md_text(_first_line(e.feedback, 120))
            out.append(f"| {e.id} | {MARKS[e.status].strip()} | {e.score:g}/{e.max_score:g} | {note} |")
        out.append("")
    return "\n".join(out)


def github_annotations(results: list[SubmissionResult], run: dict | None = None) -> str:
    """One `::error` workflow command per failed item, on the submission file, and a `::warning`
    where isolation was not complete. Student-controlled text is escaped so it cannot end the
    annotation or start another command."""
    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def esc_property(text: str) -> str:
        return esc(text).replace(":", "%3A").replace(",", "%2C")

    warning = not_enforced(run)
    lines = [f"::warning title=isolation::{esc(warning)}"] if warning else []
    for r in results:
        for e in r.exercises:
            if e.status not in ("passed", "not_autograded"):
                lines.append(f"::error file={esc_property(r.path)},title={esc_property(e.id + ' ' + e.status)}::"
                             f"{esc(e.feedback[:1000])}")
    return "\n".join(lines) + ("\n" if lines else "")
