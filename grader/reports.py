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
from dataclasses import asdict
from pathlib import Path
from typing import Iterable
from xml.etree import ElementTree as ET

from grader.catalogue import BY_ID, IDS
from grader.feedback import all_notes, failure_key, feedback, headline, late_text
from grader.inert import inert
from grader.results import SCHEMA, ExerciseResult, SubmissionResult

MARKS = {"passed": "PASS", "partial": "PART", "failed": "FAIL", "error": "ERR ", "timeout": "TIME",
         "missing": "MISS", "not_attempted": "TODO", "provided": "GIVN", "not_autograded": "----"}
NOT_SCORED = ("passed", "provided", "not_autograded")  # statuses that are nobody's failure


def _first_line(text: str, width: int) -> str:
    line = next((ln for ln in inert(text).splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def score_text(r: SubmissionResult) -> str:
    """A submission's total as every output shows it: a file that is not a submission has none."""
    if r.not_gradable:
        return "not gradable"
    late = f" (late: {r.raw_score:.4g} before a {r.late.percent:g}% penalty)" if r.late else ""
    kept = f" (an earlier submission's, kept: this one scored {r.own_score:.4g})" if r.kept else ""
    return f"{r.score:.4g} / {r.max_score:g}{late}{kept}"


def full_marks_by_hand(e: ExerciseResult) -> bool:
    """An item an instructor's override gave its full points: a pass wherever pass or fail is shown."""
    return e.override is not None and e.score >= e.max_score


def gradable(results: Iterable[SubmissionResult]) -> list[SubmissionResult]:
    return [r for r in results if not r.not_gradable]


def terminal_table(result: SubmissionResult, width: int = 120) -> str:
    """A per-exercise table for one submission, with the gist of each item's verdict: its likely
    cause or what differs, and the failing case. Nothing a submission wrote reaches the terminal
    as a control character (grader.inert). A file that is not a submission gets one line, why."""
    out = [f"{inert(result.path)}: {score_text(result)}"]
    if result.not_gradable:
        return "\n".join(out + [f"  {_first_line(n, width - 2)}" for n in all_notes(result)])
    name_w = max(len(i) for i in IDS)
    for e in result.exercises:
        score = f"{e.score:.3g}/{e.max_score:g}"
        room = max(width - name_w - 18, 20)
        out.append(f"  {MARKS[e.status]} {e.id:<{name_w}} {score:>8}  {headline(e, room)}".rstrip())
    for note in all_notes(result):
        out.append(f"  note: {_first_line(note, width - 8)}")
    return "\n".join(out)


def summary_line(results: list[SubmissionResult]) -> str:
    if not results:
        return "no submissions graded"
    scored = gradable(results)
    apart = f"; {len(results) - len(scored)} not gradable" if len(scored) < len(results) else ""
    if not scored:
        return f"{len(results)} file(s), none gradable"
    full = sum(r.score == r.max_score for r in scored)
    mean = sum(r.score for r in scored) / len(scored)
    return f"{len(scored)} submission(s) graded; mean score {mean:.2f}; {full} with full marks{apart}"


def exercise_json(e: ExerciseResult) -> dict:
    """One item's result as the JSON report holds it: the words and every fact behind them
    (docs/how-grading-works.md, schema 3); grader.results.exercise_from_json reads it back."""
    out = {"id": e.id, "status": e.status, "score": e.score, "max_score": e.max_score, "feedback": feedback(e)}
    if e.likely_cause:
        out["cause"] = e.likely_cause
    if e.failing:
        out["case"] = e.failing.label
    if e.condition:
        out["condition"] = asdict(e.condition)
    if e.taken_from_course:
        out["taken_from_course"] = True
    if e.starter:
        out["starter"] = e.starter
    if e.replaced:
        out["replaced"] = asdict(e.replaced)
    if e.override:
        out["override"] = asdict(e.override)
    if e.detail:
        out["detail"] = e.detail
    if e.category:
        out["category"] = e.category
    if e.cases:
        out["cases"] = [{k: v for k, v in asdict(c).items() if v not in ("", False) or k == "passed"} for c in e.cases]
    return out


def submission_json(r: SubmissionResult) -> dict:
    out = {"path": r.path, "score": r.score, "max_score": r.max_score, "exercises": [exercise_json(e) for e in r.exercises],
           "notes": list(r.notes), "cell_errors": [asdict(c) for c in r.cell_errors], "seconds": round(r.seconds, 3)}
    if r.not_gradable:
        out["not_gradable"] = asdict(r.not_gradable)
    if r.late:
        out["raw_score"], out["late"] = r.raw_score, asdict(r.late)
    if r.kept:
        out["own_score"], out["kept"] = r.own_score, asdict(r.kept)
    return out


def to_json(results: Iterable[SubmissionResult], run: dict | None = None, similar: list | None = None) -> dict:
    """`run`: how the batch was graded (grader.engine.Grader.run_info), recorded when given;
    `similar`: the pairs of submissions that share code (grader.similarity), when computed."""
    from grader.similarity import pair_json

    return {"schema": SCHEMA, **({"run": run} if run else {}), "submissions": [submission_json(r) for r in results],
            **({"similarity": [pair_json(p) for p in similar]} if similar is not None else {})}


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


def json_text(results: Iterable[SubmissionResult], run: dict | None = None, similar: list | None = None) -> str:
    return json.dumps(to_json(results, run, similar), indent=1) + "\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def md_text(text: str) -> str:
    """A student's string (a file name, an exception message) as inert Markdown text: HTML tags and
    entities are escaped, Markdown punctuation backslash-escaped, lines joined (a table cell or a
    heading cannot be ended early, no Markdown link or image can be written), and a bare URL is
    not made a link by GitHub's autolinks (`\\://`, `www\\.`; an e-mail address still may be)."""
    import html
    import re

    text = html.escape(" ".join(inert(text).split()), quote=False)
    text = re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)
    return re.sub(r"(?i)(www)\.", r"\1\\.", text.replace("://", "\\://"))  # also after `_`: GitHub links it


def md_fenced(text: str) -> list[str]:
    """A block of a student's text as a Markdown code block no backtick run inside it can close
    (and no control character inside it can act on a terminal that shows the file)."""
    import re

    text = inert(text)
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return [fence, text, fence]


def spreadsheet_text(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs: one that would start a formula gets a
    leading apostrophe (OWASP's advice on CSV injection). File names are the student's to choose."""
    text = inert(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(results: Iterable[SubmissionResult]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "score", "max_score", *IDS, "not_gradable", "raw_score", "late_percent"])
    for r in results:
        by_id = {e.id: e for e in r.exercises}
        w.writerow([spreadsheet_text(r.path), "" if r.not_gradable else f"{r.score:g}", f"{r.max_score:g}",
                    *("" if r.not_gradable else f"{by_id[i].score:g}" for i in IDS),
                    r.not_gradable.reason if r.not_gradable else "", f"{r.raw_score:g}" if r.late else "",
                    f"{r.late.percent:g}" if r.late else ""])
    return buf.getvalue()


def junit_text(results: Iterable[SubmissionResult], run: dict | None = None) -> str:
    suites = ET.Element("testsuites")
    warning = not_enforced(run)
    for r in results:
        if r.not_gradable:  # one error, not 23 items that were never run
            suite = ET.SubElement(suites, "testsuite", name=inert(r.path), tests="1", failures="0", errors="1",
                                  skipped="0", time=f"{r.seconds:.3f}")
            case = ET.SubElement(suite, "testcase", classname=inert(Path(r.path).stem), name="not_gradable")
            ET.SubElement(case, "error", message=f"not gradable: {r.not_gradable.reason}").text = \
                inert(all_notes(r)[0])
            continue
        failures = sum(e.status in ("failed", "partial", "missing", "not_attempted") and not full_marks_by_hand(e)
                       for e in r.exercises)
        errors = sum(e.status in ("error", "timeout") and not full_marks_by_hand(e) for e in r.exercises)
        skipped = sum(e.status in ("not_autograded", "provided") for e in r.exercises)
        suite = ET.SubElement(suites, "testsuite", name=inert(r.path), tests=str(len(r.exercises)),
                              failures=str(failures), errors=str(errors), skipped=str(skipped), time=f"{r.seconds:.3f}")
        if warning or r.late:
            props = ET.SubElement(suite, "properties")
            if warning:
                ET.SubElement(props, "property", name="isolation", value=warning)
            if r.late:
                ET.SubElement(props, "property", name="late", value=late_text(r.late, r.raw_score))
        for e in r.exercises:
            case = ET.SubElement(suite, "testcase", classname=inert(Path(r.path).stem), name=e.id)
            text = inert(feedback(e))  # XML 1.0 cannot hold most control characters; a viewer must not act on them
            if full_marks_by_hand(e):
                ET.SubElement(case, "system-out").text = text
            elif e.status in ("failed", "partial", "missing", "not_attempted"):
                ET.SubElement(case, "failure", message=f"{e.status}: {e.score:g}/{e.max_score:g}").text = text
            elif e.status in ("error", "timeout"):
                ET.SubElement(case, "error", message=e.status).text = text
            elif e.status in ("not_autograded", "provided"):
                ET.SubElement(case, "skipped", message=text)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def the_submission(results: list[SubmissionResult]) -> SubmissionResult:
    """The one submission a one-submission report (Gradescope, Classroom) is about, where the
    student's upload held several files: the gradable one that scored most (the first on a tie)."""
    return max(gradable(results) or results[:1], key=lambda r: r.score)


def gradescope_json(result: SubmissionResult, run: dict | None = None, visibility=None) -> str:
    """Gradescope's results.json: score, and per test name, score, max_score, status, output (as
    Markdown) and visibility (`visibility(item id)`: the course file's, grader.course_file; all
    visible by default). A late penalty is the score's, said in the output, raw score included."""
    def shown(item: str) -> str:
        return visibility(item) if visibility else "visible"

    tests = []
    for e in () if result.not_gradable else result.exercises:
        if e.status == "not_autograded":
            continue
        tests.append({"name": BY_ID[e.id].title, "name_format": "text", "score": e.score, "max_score": e.max_score,
                      "status": "passed" if e.status in ("passed", "provided") or full_marks_by_hand(e) else "failed",
                      "output": "\n".join(md_fenced(feedback(e))), "output_format": "md", "visibility": shown(e.id)})
    output = "\n\n".join(md_text(n) for n in filter(None, [not_enforced(run), *all_notes(result)]))[:4000]
    return json.dumps({"score": result.score, "output": output, "output_format": "md", "tests": tests,
                       "visibility": shown("default")}, indent=1) + "\n"


def classroom_json(result: SubmissionResult) -> str:
    """GitHub Classroom's autograding reporter format (a runner's `result`, before base64):
    version, status (pass/fail/error), max_score, and per test name, status, message, score."""
    if result.not_gradable:
        tests = [{"name": "not gradable", "status": "error", "message": inert(all_notes(result)[0]), "score": 0,
                  "max_score": result.max_score, "line_no": 0, "execution_time": "0"}]
        return json.dumps({"version": 1, "status": "error", "max_score": result.max_score, "tests": tests},
                          indent=1) + "\n"
    tests = []
    for e in result.exercises:
        if e.status == "not_autograded":
            continue
        status = "pass" if e.status in ("passed", "provided") or full_marks_by_hand(e) else "error" if e.status in ("error", "timeout") else "fail"
        tests.append({"name": BY_ID[e.id].title, "status": status, "message": inert(feedback(e)), "score": e.score,
                      "max_score": e.max_score, "line_no": 0, "execution_time": "0"})
    if result.late:  # the reporter's points are the tests' sum: the penalty is a test of its own
        tests.append({"name": "late penalty", "status": "pass", "message": late_text(result.late, result.raw_score),
                      "score": round(result.own_score - result.raw_score, 4), "max_score": 0, "line_no": 0,
                      "execution_time": "0"})
    statuses = {t["status"] for t in tests}
    overall = "fail" if "fail" in statuses else "error" if "error" in statuses else "pass"
    return json.dumps({"version": 1, "status": overall, "max_score": result.max_score, "tests": tests}, indent=1) + "\n"


def student_name(path: str) -> str:
    """One row per student in the gradebook: the file's stem, or its folder when the file has a
    generic name (alice/exercises.ipynb -> alice)."""
    p = Path(path)
    return p.parent.name if p.stem in ("exercises", "solutions", "submission", "notebook") and p.parent.name else p.stem


def feedback_file_name(path: str) -> str:
    """A submission's feedback file: named by the student and the file, with nothing in the name
    that a terminal listing the folder would act on."""
    return inert(f"{student_name(path)}-{Path(path).stem}.md").replace("\\", "_")


def gradebook_csv(results: Iterable[SubmissionResult]) -> str:
    from grader.results import STATUSES

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "path", *IDS, "total", "max_total", *STATUSES, "not_gradable", "overridden", "raw_total",
                "late_percent", "days_late"])
    for r in results:  # a file that is not a submission: no scores, its reason
        by_id = {e.id: e for e in r.exercises}
        counts = r.status_counts()
        w.writerow([spreadsheet_text(student_name(r.path)), spreadsheet_text(r.path),
                    *("" if r.not_gradable else f"{by_id[i].score:g}" for i in IDS),
                    "" if r.not_gradable else f"{r.score:g}", f"{r.max_score:g}",
                    *("" if r.not_gradable else counts[s] for s in STATUSES),
                    r.not_gradable.reason if r.not_gradable else "",
                    " ".join(e.id for e in r.exercises if e.override),
                    *((f"{r.raw_score:g}", f"{r.late.percent:g}", f"{r.late.days_late:g}") if r.late else ("", "", ""))])
    return buf.getvalue()


def item_summary_markdown(results: list[SubmissionResult], run: dict | None = None) -> str:
    """Per item: how many passed, and the most common failure, which is what the class got wrong."""
    from collections import Counter

    warning = not_enforced(run)
    apart = len(results) - len(gradable(results))
    results = gradable(results)
    out = ([f"> {warning}", ""] if warning else []) + (
        [f"{apart} file(s) not gradable, left out of the counts below.", ""] if apart else []) + [
        "| item | passed | partial | failed | error/timeout | missing | not attempted | provided | most common failure |",
        "|---|---|---|---|---|---|---|---|---|"]
    for i in IDS:
        entries = [next(e for e in r.exercises if e.id == i) for r in results]
        c = Counter(e.status for e in entries)
        fails = Counter(failure_key(e) for e in entries if e.status not in NOT_SCORED)
        common = f"{md_text(fails.most_common(1)[0][0])} ({fails.most_common(1)[0][1]})" if fails else ""
        out.append(f"| {i} | {c['passed']} | {c['partial']} | {c['failed']} | {c['error'] + c['timeout']} | "
                   f"{c['missing']} | {c['not_attempted']} | {c['provided']} | {common} |")
    return "\n".join(out) + "\n"


def feedback_markdown(result: SubmissionResult, run: dict | None = None) -> str:
    """One file per submission, to hand back to the student."""
    warning = not_enforced(run)
    out = [f"# Feedback: {md_text(Path(result.path).name)}", "", f"**Score: {md_text(score_text(result))}**", "",
           *([f"> {warning}", ""] if warning else []), "| item | status | score |", "|---|---|---|"]
    if result.not_gradable:
        return "\n".join(out[:2] + ["**Not gradable**", "", md_text(all_notes(result)[0])]) + "\n"
    for e in result.exercises:
        out.append(f"| {BY_ID[e.id].title} | {e.status} | {e.score:g}/{e.max_score:g} |")
    for e in result.exercises:
        if e.status not in ("passed", "not_autograded"):
            out += ["", f"## {BY_ID[e.id].title}: {e.status.replace('_', ' ')}", "", *md_fenced(feedback(e))]
    if all_notes(result):
        out += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in all_notes(result)]
    return "\n".join(out) + "\n"


def github_summary_markdown(results: list[SubmissionResult], run: dict | None = None) -> str:
    """The per-exercise table for a GitHub Actions job summary (after the isolation warning, if any)."""
    warning = not_enforced(run)
    out = [f"> {warning}", ""] if warning else []
    for r in results:
        if r.not_gradable:
            out += [f"### {md_text(Path(r.path).name)}: not gradable", "", md_text(all_notes(r)[0]), ""]
            continue
        out += [f"### {md_text(Path(r.path).name)}: {md_text(score_text(r))}", "",
                "| item | status | score | feedback |", "|---|---|---|---|"]
        for e in r.exercises:
            note = "" if e.status == "passed" else md_text(_first_line(feedback(e), 120))
            out.append(f"| {e.id} | {MARKS[e.status].strip()} | {e.score:g}/{e.max_score:g} | {note} |")
        out.append("")
    return "\n".join(out)


def github_annotations(results: list[SubmissionResult], run: dict | None = None) -> str:
    """One `::error` workflow command per failed item, on the submission file, and a `::warning`
    where isolation was not complete. Student-controlled text is escaped so it cannot end the
    annotation or start another command."""
    def esc(text: str) -> str:
        return inert(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))

    def esc_property(text: str) -> str:
        return esc(text).replace(":", "%3A").replace(",", "%2C")

    warning = not_enforced(run)
    lines = [f"::warning title=isolation::{esc(warning)}"] if warning else []
    for r in results:
        if r.not_gradable:
            lines.append(f"::error file={esc_property(r.path)},title=not gradable::{esc(all_notes(r)[0])}")
            continue
        for e in r.exercises:
            if e.status not in NOT_SCORED:
                lines.append(f"::error file={esc_property(r.path)},title={esc_property(e.id + ' ' + e.status)}::"
                             f"{esc(feedback(e)[:1000])}")
    return "\n".join(lines) + ("\n" if lines else "")
