"""Late work: the course file's [late] policy applied to each submission's score (trusted side).

When each student handed in comes from a CSV (student,time), from Gradescope's
`submission_metadata.json` (its `created_at`, and the due date Gradescope gives that student, an
extension included), or from the last commit of the student's repository (GitHub Classroom). The
penalty is a fact of the submission (grader.results.Late): the raw score stays beside it in every
output.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

from grader.course_file import LateRules
from grader.results import Late, SubmissionResult

DAY = 86400.0


class LateError(ValueError):
    """A times or extensions file that cannot be used: the message names the line."""


def parse_time(text: str, where: str) -> dt.datetime:
    """An ISO 8601 date-time with its offset; `Z` and any number of digits of a second's fraction
    (Gradescope writes six, git none) on every supported Python."""
    clean = re.sub(r"[zZ]$", "+00:00", text.strip())
    clean = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], clean, count=1)
    try:
        t = dt.datetime.fromisoformat(clean)
    except ValueError:
        raise LateError(f"{where}: {text!r} is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise LateError(f"{where}: {text!r} has no offset (write 2026-12-10T23:59:00+00:00 or ...Z)")
    return t


def _rows(path: Path, second: tuple[str, ...]) -> list[tuple[int, str, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in reader.fieldnames or ()]
        if "student" not in header or not set(second) & set(header):
            raise LateError(f"{path}: line 1 must name the columns student and {' or '.join(second)}")
        out = []
        for row in reader:
            cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            if cells.get("student"):
                out.append((reader.line_num, cells["student"], cells))
        return out


def read_times(path: Path) -> dict[str, dt.datetime]:
    """student -> when they handed in, from a CSV (student,time)."""
    return {student: parse_time(cells.get("time", ""), f"{path}: line {n}") for n, student, cells in _rows(path, ("time",))}


def read_extensions(path: Path, due: dt.datetime) -> dict[str, dt.datetime]:
    """student -> their own due date, from a CSV (student,due or student,days)."""
    out = {}
    for n, student, cells in _rows(path, ("due", "days")):
        if cells.get("due"):
            out[student] = parse_time(cells["due"], f"{path}: line {n}")
            continue
        try:
            days = float(cells.get("days", ""))
        except ValueError:
            raise LateError(f"{path}: line {n}: `days` is {cells.get('days')!r}, not a number") from None
        if not (math.isfinite(days) and days >= 0):
            raise LateError(f"{path}: line {n}: `days` must be 0 or more")
        out[student] = due + dt.timedelta(days=days)
    return out


def gradescope_times(metadata: Path) -> tuple[dt.datetime, dt.datetime | None]:
    """(when this submission was made, the due date Gradescope gives its student) from
    submission_metadata.json: `created_at`, and the student's `users[].assignment.due_date` (an
    extension) or the assignment's `due_date`."""
    data = json.loads(metadata.read_text())
    made = parse_time(data["created_at"], f"{metadata}: created_at")
    dues = [u.get("assignment", {}).get("due_date") for u in data.get("users", []) if isinstance(u, dict)]
    due = next((d for d in dues if d), None) or (data.get("assignment") or {}).get("due_date")
    return made, parse_time(due, f"{metadata}: due_date") if due else None


def git_time(path: Path) -> dt.datetime | None:
    """The last commit's time (the committer's date, which the student's own git wrote: evidence,
    not proof) of the repository whose top folder holds `path` (a GitHub Classroom repository
    cloned by the instructor); None where there is none. Git runs with nothing of the student's
    able to run a program: no signature checks, no fsmonitor, no pager, none of the user's or
    system's configuration, and only on a repository the grader's user owns (git's own check)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                "GIT_CEILING_DIRECTORIES": str(path.resolve().parent.parent)})
    try:
        proc = subprocess.run(["git", "-c", "core.fsmonitor=", "-c", "log.showSignature=false", "-c", "gpg.program=false",
                               "-c", "core.hooksPath=/dev/null", "--no-pager", "log", "-1", "--no-show-signature",
                               "--format=%cI", "--", path.name], cwd=path.parent, capture_output=True, text=True,
                              timeout=30, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.strip()
    return parse_time(text, f"git log of {path}") if proc.returncode == 0 and text else None


def penalty(rules: LateRules, submitted: dt.datetime, due: dt.datetime) -> Late:
    """What the policy takes off for a submission at `submitted`, due at `due`."""
    seconds = max(0.0, (submitted - due).total_seconds())
    days = seconds / DAY if rules.by_hours else float(math.ceil(seconds / DAY))
    percent = min(rules.cap_percent, days * rules.percent_per_day)
    # an extension moves the last date as far as it moves the due date
    last = rules.zero_after + max(dt.timedelta(0), due - rules.due) if rules.zero_after is not None else None
    after_zero = last is not None and submitted > last
    return Late(submitted.isoformat(), due.isoformat(), round(seconds / DAY, 4), round(100.0 if after_zero else percent, 4),
                after_zero)


def apply(results: list[SubmissionResult], rules: LateRules, times: dict[str, dt.datetime],
          dues: dict[str, dt.datetime], student_of) -> tuple[list[SubmissionResult], list[str]]:
    """Each submission with its late penalty (none when on time); a warning for each student
    without a submission time (no penalty is applied to them)."""
    out, warnings = [], []
    for r in results:
        student = student_of(r.path)
        submitted = times.get(r.path) or times.get(student)
        if r.not_gradable:
            out.append(r)
            continue
        if submitted is None:
            warnings.append(f"late: no submission time for {student} ({r.path}): no late penalty applied")
            out.append(r)
            continue
        due = dues.get(r.path) or dues.get(student) or rules.due
        late = penalty(rules, submitted, due)
        out.append(replace(r, late=late if submitted > due else None))
    return out, warnings


def times_for(rules: LateRules, results: list[SubmissionResult], metadata: Path | None) -> tuple[dict, dict]:
    """(submission times, due dates) by path or student, from where the rules say."""
    dues: dict[str, dt.datetime] = {}
    if rules.extensions:
        dues.update(read_extensions(rules.extensions, rules.due))
    if rules.times == "gradescope":
        if metadata is None or not metadata.is_file():
            raise LateError(f"late: times = \"gradescope\" needs submission_metadata.json (not found: {metadata})")
        made, due = gradescope_times(metadata)
        if due:
            dues.update({r.path: due for r in results})
        return {r.path: made for r in results}, dues
    if rules.times == "git":
        found = {r.path: git_time(Path(r.path)) for r in results}
        return {p: t for p, t in found.items() if t is not None}, dues
    if rules.times:
        return read_times(Path(rules.times)), dues
    return {}, dues
