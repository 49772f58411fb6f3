"""Shared fixtures: one Grader (reference answers computed once), solved submissions, paths."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
COURSE_DIR = ROOT.parent / "shared" / "arena-1.5.1"
COURSE_WEIGHTS = COURSE_DIR / "brackets_model_state_dict.pt"
COURSE_DATA = COURSE_DIR / "brackets_data.json"

pytest_plugins = ["pytester"]


def course_files_or_skip() -> tuple[Path, Path]:
    if not (COURSE_WEIGHTS.exists() and COURSE_DATA.exists()):
        pytest.skip(f"the course's published weights are not at {COURSE_DIR} (compatibility check only)")
    return COURSE_WEIGHTS, COURSE_DATA


def skip_unless_sandbox_required(why: str) -> None:
    """Skip an isolation test, saying why; or fail, where BRACKET_GRADER_REQUIRE_SANDBOX is set
    (.ci/run sets it: there bubblewrap and every setup of the red-team suite must be provided)."""
    if os.environ.get("BRACKET_GRADER_REQUIRE_SANDBOX"):
        pytest.fail(f"{why}; this run requires every isolation test (.ci/run provides what they need)")
    pytest.skip(why)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory) -> Path:
    """Reference answers are cached per test session, in a fresh folder."""
    path = tmp_path_factory.mktemp("grader-cache")
    os.environ["BRACKET_GRADER_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def grader(_cache_dir):
    from grader.engine import GradeConfig, Grader

    g = Grader(GradeConfig())
    g.reference.warm()
    g.start(2)  # started now, so every copy of this grader (with_config) shares its slots
    return g


@pytest.fixture(scope="session")
def course_grader(_cache_dir):
    from grader.engine import GradeConfig, Grader

    weights, data = course_files_or_skip()
    return Grader(GradeConfig(str(weights), str(data)))


@pytest.fixture(scope="session")
def solved_dir(tmp_path_factory) -> Path:
    from reference.make_template import write_solved

    folder = tmp_path_factory.mktemp("solved")
    write_solved(folder)
    return folder


def with_config(grader, **changes):
    """The session's grader (its reference answers, its warm pool) under another configuration."""
    from dataclasses import replace

    g = type(grader).__new__(type(grader))
    g.__dict__.update(grader.__dict__)
    g.config = replace(grader.config, **changes)
    return g


def statuses(result) -> dict[str, str]:
    return {e.id: e.status for e in result.exercises}
