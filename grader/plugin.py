"""pytest plugin: `pytest --submission PATH` runs one test per exercise, named by its id.

The tests are thin: the first one of a submission grades it through the same engine as the CLI
(only the selected items, so `-k get_ln_fit` grades one), and each test reports its item. Results
travel on each report's `user_properties`, so the score table also works under pytest-xdist, where
each submission is one `xdist_group` and its items stay on one worker (`--dist loadgroup`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grader.catalogue import EXERCISES, IDS, Exercise

RESULT_KEY = pytest.StashKey[dict]()  # submission path -> SubmissionResult
SELECTED_KEY = pytest.StashKey[dict]()  # submission path -> ids selected after -k / -m
GRADER_KEY = pytest.StashKey[object]()  # the Grader, made on first use
PROPERTY = "bracket_grader_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bracket-grader", "grading ARENA [1.5.1] submissions")
    group.addoption("--submission", action="append", default=[], metavar="PATH",
                    help="grade this .py/.ipynb submission (or every one in a folder); repeatable")
    group.addoption("--bracket-weights", metavar="FILE", help="model weights (default: our shipped model)")
    group.addoption("--bracket-data", metavar="FILE", help="data JSON (default: our shipped data)")
    group.addoption("--bracket-device", choices=("cpu", "cuda", "auto"), default="cpu")
    group.addoption("--bracket-timeout", type=float, default=None, metavar="SECONDS", help="limit per item")
    group.addoption("--bracket-points", metavar="FILE", help="points per item (JSON or `id = points` lines)")
    group.addoption("--bracket-starter", action="append", default=[], metavar="FILE",
                    help="a file students began from (besides our template and the course's notebook)")
    group.addoption("--bracket-json", metavar="FILE", help="also write the JSON report here")
    parser.addini("bracket_submission", "default submission for plain `pytest` (auto: the newer of "
                  "exercises.py and exercises.ipynb next to the ini file)", default="")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, keep each submission's items on one worker (one xdist group each), so a
    submission is graded once: `-n auto` implies `--dist loadgroup` here."""
    if config.getoption("submission", None) and getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"


def _submissions(config: pytest.Config) -> list[Path]:
    from grader.engine import find_submissions

    given = list(config.getoption("submission") or [])
    if not given and config.getini("bracket_submission"):
        value = config.getini("bracket_submission")
        root = Path(config.inipath).parent if config.inipath else Path.cwd()
        if value == "auto":
            candidates = [root / "exercises.py", root / "exercises.ipynb"]
            existing = [c for c in candidates if c.exists()]
            given = [str(max(existing, key=lambda c: c.stat().st_mtime))] if existing else []
        else:
            given = [str(root / value)]
    for g in given:
        if not Path(g).exists():
            raise pytest.UsageError(f"--submission: no such file or folder: {g}")
    return find_submissions(given)


class SubmissionNode(pytest.Collector):
    def __init__(self, *, submission: Path, **kwargs):
        super().__init__(**kwargs)
        self.submission = submission

    def collect(self):  # items are made directly in pytest_collection_modifyitems
        return []


class ExerciseItem(pytest.Item):
    def __init__(self, *, exercise: Exercise, **kwargs):
        super().__init__(**kwargs)
        self.exercise = exercise
        self.add_marker(pytest.mark.xdist_group(name=str(self.parent.submission)))

    def runtest(self) -> None:
        from grader.feedback import all_notes, feedback
        from grader.reports import exercise_json

        result = _grade(self.config, self.parent.submission)
        ex = next(e for e in result.exercises if e.id == self.exercise.id)
        self.user_properties.append((PROPERTY, json.dumps({"path": result.path, "exercise": exercise_json(ex),
                                                           "notes": all_notes(result)})))
        if ex.status in ("not_autograded", "provided"):
            pytest.skip(feedback(ex))
        if ex.status != "passed":
            raise ExerciseFailed(ex)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ExerciseFailed):
            from grader.feedback import feedback
            from grader.inert import inert

            ex = excinfo.value.exercise
            return f"{ex.id}: {ex.status} ({ex.score:g}/{ex.max_score:g})\n{inert(feedback(ex))}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.parent.submission, None, f"{self.parent.submission.name}::{self.exercise.id}"


class ExerciseFailed(Exception):
    def __init__(self, exercise):
        super().__init__(exercise.id)
        self.exercise = exercise


def _grader(config: pytest.Config):
    from grader.config import ConfigError, configured
    from grader.engine import Grader

    if GRADER_KEY not in config.stash:
        try:
            settings = configured(weights=config.getoption("bracket_weights"), data=config.getoption("bracket_data"),
                                  device=config.getoption("bracket_device"), timeout=config.getoption("bracket_timeout"),
                                  points=config.getoption("bracket_points"),
                                  starters=tuple(config.getoption("bracket_starter") or ()))
        except ConfigError as e:
            raise pytest.UsageError(str(e)) from None
        # one submission at a time per process: its first pass may take two cores when no other
        # pytest-xdist worker needs them (a student's `pytest` on their own file)
        config.stash[GRADER_KEY] = Grader(settings, at_once=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
    return config.stash[GRADER_KEY]


def _grade(config: pytest.Config, submission: Path):
    results = config.stash.setdefault(RESULT_KEY, {})
    key = str(submission)
    if key not in results:
        selected = config.stash.get(SELECTED_KEY, {}).get(key) or IDS
        results[key] = _grader(config).grade(submission, only=tuple(selected))
    return results[key]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    for submission in _submissions(config):
        node = SubmissionNode.from_parent(session, name=submission.name, submission=submission)
        for ex in EXERCISES:
            items.append(ExerciseItem.from_parent(node, name=ex.id, exercise=ex))


def pytest_collection_finish(session: pytest.Session) -> None:
    selected: dict[str, list[str]] = {}
    for item in session.items:
        if isinstance(item, ExerciseItem):
            selected.setdefault(str(item.parent.submission), []).append(item.exercise.id)
    session.config.stash[SELECTED_KEY] = selected


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Controller side (also under xdist): gather each item's result for the final table."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == PROPERTY:
            data = json.loads(value)
            table = _TABLES.setdefault(data["path"], {"exercises": {}, "notes": data["notes"]})
            table["exercises"][data["exercise"]["id"]] = data["exercise"]


_TABLES: dict[str, dict] = {}


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not _TABLES:
        return
    from grader import reports
    from grader.results import ExerciseResult, SubmissionResult, exercise_from_json

    results = []
    for path, table in _TABLES.items():
        exercises = tuple(exercise_from_json(table["exercises"][i]) if i in table["exercises"]
                          else ExerciseResult(i, "not_autograded", 0.0, 0.0, "not selected in this run") for i in IDS)
        results.append(SubmissionResult(path, exercises, tuple(table["notes"])))
    terminalreporter.section("bracket-grader scores")
    for r in results:
        terminalreporter.write_line(reports.terminal_table(r))
    terminalreporter.write_line(reports.summary_line(results))
    if config.getoption("bracket_json"):
        reports.write_atomic(config.getoption("bracket_json"), reports.json_text(results))
    _TABLES.clear()
