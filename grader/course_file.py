"""The course file, `bracket-grader.toml`: one place for how a course is graded (trusted side).

Found in the class folder being graded, or given with `--config FILE`; a flag given on the command
line wins over the file. Every key is checked when the file is read, and a mistake is a usage
error that names the file, the line and the key. `bracket-grade --write-config FILE` writes
EXAMPLE, which documents every key.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.catalogue import IDS
from grader.config import PROVIDED, ConfigError
from grader.earlier import KEEPS

NAME = "bracket-grader.toml"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's
MODES = ("lean", "fast", "kernel")

EXAMPLE = '''\
# bracket-grader.toml: how this course is graded. bracket-grade reads it from the class folder it
# grades (or --config FILE); a command-line flag wins over the value here. Paths are relative to
# this file. Every key is optional; remove the "#" to set one.

[course]
name = "ARENA 1.5.1 Balanced Bracket Classifier"
# starter = "exercises.ipynb"          # the blank notebook or module the class was given (--starter)
# weights = "brackets_model_state_dict.pt"   # the model to grade on (--weights; default: ours)
# data = "brackets_data.json"          # its data (--data)
# mode = "lean"                        # lean, fast or kernel (--mode)

[limits]
# item_seconds = 120                   # one item's calls (--timeout)
# statement_seconds = 60               # one top-level statement of the student's code (--statement-timeout)
# submission_seconds = 900             # everything for one submission (--submission-timeout)
# memory_gib = 8                       # a worker's memory (--memory)

[points]                               # points per item (--points); 1 each by default
# provided = 0                         # an item the starter gives complete, unchanged
# get_ln_fit = 2
# embedding = 0

[visibility]                           # Gradescope: visible, hidden, after_due_date, after_published
# default = "visible"
# get_out_by_neuron = "after_due_date"

[gradescope]
# keep = "latest"                      # "best": a student's earlier submission with a higher score
#                                      # keeps it (from submission_metadata.json), said in the output

[late]                                 # no [late] due date: no late policy
# due = 2026-12-10T23:59:00+00:00      # a TOML date-time, with its offset
# percent_per_day = 10                 # taken off the score per day late
# part_of_a_day = "whole"              # "whole": part of a day counts as a day; "hours": by the hour
# cap_percent = 50                     # at most this much is taken off
# zero_after = 2026-12-17T23:59:00+00:00   # after this, the score is 0
# extensions = "extensions.csv"        # columns student,due (a date-time) or student,days
# times = "submitted.csv"              # when each student handed in: a CSV (student,time),
#                                      # "gradescope" (submission_metadata.json) or "git" (last commit)
'''

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "course": {"name": str, "starter": str, "weights": str, "data": str, "mode": str},
    "limits": {"item_seconds": (int, float), "statement_seconds": (int, float), "submission_seconds": (int, float),
               "memory_gib": (int, float)},
    "points": {i: (int, float) for i in (*IDS, PROVIDED)},
    "visibility": {i: str for i in (*IDS, "default")},
    "gradescope": {"keep": str},
    "late": {"due": dt.datetime, "percent_per_day": (int, float), "part_of_a_day": str, "cap_percent": (int, float),
             "zero_after": dt.datetime, "extensions": str, "times": str},
}


@dataclass(frozen=True)
class LateRules:
    """The course file's [late] table, checked (grader.late applies it)."""

    due: dt.datetime
    percent_per_day: float = 0.0
    by_hours: bool = False  # part of a day counted pro rata (else as a whole day)
    cap_percent: float = 100.0
    zero_after: dt.datetime | None = None
    extensions: Path | None = None
    times: str = ""  # a CSV's path, "gradescope" or "git"


@dataclass(frozen=True)
class CourseFile:
    path: Path
    name: str = ""
    starter: str | None = None
    weights: str | None = None
    data: str | None = None
    mode: str | None = None
    limits: dict[str, float] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    visibility: dict[str, str] = field(default_factory=dict)
    late: LateRules | None = None
    keep: str = "latest"  # "best": an earlier submission's higher score stands (grader.earlier)

    def visibility_of(self, item: str) -> str:
        return self.visibility.get(item) or self.visibility.get("default") or "visible"


def find(paths: list[str]) -> Path | None:
    """The course file of the class folder being graded: in the first folder given that has one."""
    for p in map(Path, paths):
        if p.is_dir() and (p / NAME).is_file():
            return p / NAME
    return None


def line_of(text: str, table: str, key: str | None = None) -> int:
    """The line of `key` in `[table]` (or of the table's header): for messages."""
    current = ""
    for n, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
        if header:
            current = header.group(1)
            if key is None and current == table:
                return n
            continue
        if key is not None and current == table and re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", line):
            return n
    return 0


def read(path: str | Path) -> CourseFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from None
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"{path}: reading a course file needs Python 3.11 or `pip install tomli`") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None

    def error(table: str, key: str | None, message: str) -> ConfigError:
        line = line_of(text, table, key)
        where = f"[{table}]" + (f" {key}" if key else "")
        return ConfigError(f"{path}:{line}: {where}: {message}" if line else f"{path}: {where}: {message}")

    for table, values in raw.items():
        if table not in SCHEMA:
            raise error(table, None, f"unknown table (the tables are {', '.join(SCHEMA)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}:{line_of(text, '', table)}: `{table}` must be a table ([{table}])")
        for key, value in values.items():
            want = SCHEMA[table].get(key)
            if want is None:
                hint = " (an item id)" if table in ("points", "visibility") else ""
                raise error(table, key, f"unknown key{hint}")
            if isinstance(value, bool) or not isinstance(value, want):
                names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
                raise error(table, key, f"expected {names.replace('datetime', 'a date-time with its offset')}, "
                                        f"got {value!r}")
            if isinstance(value, float) and not math.isfinite(value) or isinstance(value, (int, float)) and value < 0:
                raise error(table, key, f"expected a number of at least 0, got {value!r}")
    course, limits, late = raw.get("course", {}), raw.get("limits", {}), raw.get("late", {})
    if course.get("mode") is not None and course["mode"] not in MODES:
        raise error("course", "mode", f"one of {', '.join(MODES)}, not {course['mode']!r}")
    for key, value in limits.items():
        if value <= 0:
            raise error("limits", key, f"expected a number above 0, got {value!r}")
    keep = raw.get("gradescope", {}).get("keep", "latest")
    if keep not in KEEPS:
        raise error("gradescope", "keep", f"one of {', '.join(KEEPS)}, not {keep!r}")
    for key, value in raw.get("visibility", {}).items():
        if value not in VISIBILITIES:
            raise error("visibility", key, f"one of {', '.join(VISIBILITIES)}, not {value!r}")
    here = path.resolve().parent

    def file(table: str, key: str, value: str | None) -> str | None:
        if value is None:
            return None
        target = (here / value).resolve()
        if not target.is_file():
            raise error(table, key, f"no such file: {target}")
        return str(target)

    return CourseFile(path, course.get("name", ""), file("course", "starter", course.get("starter")),
                      file("course", "weights", course.get("weights")), file("course", "data", course.get("data")),
                      course.get("mode"), {k: float(v) for k, v in limits.items()},
                      {k: float(v) for k, v in raw.get("points", {}).items()}, dict(raw.get("visibility", {})),
                      _late(late, error, file) if late else None, keep)


def _late(late: dict, error, file) -> LateRules:
    for key in ("due", "zero_after"):
        if key in late and late[key].tzinfo is None:
            raise error("late", key, "give the date-time's offset (2026-12-10T23:59:00+00:00): a class spans time zones")
    if "due" not in late:
        raise error("late", None, "a late policy needs `due`")
    if late.get("part_of_a_day", "whole") not in ("whole", "hours"):
        raise error("late", "part_of_a_day", f"\"whole\" or \"hours\", not {late['part_of_a_day']!r}")
    if late.get("cap_percent", 100) > 100 or late.get("percent_per_day", 0) > 100:
        raise error("late", "cap_percent" if late.get("cap_percent", 100) > 100 else "percent_per_day",
                    "a percentage of the score: at most 100")
    if "zero_after" in late and late["zero_after"] < late["due"]:
        raise error("late", "zero_after", "is before `due`")
    times = late.get("times", "")
    if times and times not in ("gradescope", "git"):
        times = file("late", "times", times)
    extensions = file("late", "extensions", late.get("extensions"))
    return LateRules(late["due"], float(late.get("percent_per_day", 0)), late.get("part_of_a_day") == "hours",
                     float(late.get("cap_percent", 100)), late.get("zero_after"),
                     Path(extensions) if extensions else None, times)
