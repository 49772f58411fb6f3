"""Shared fixtures: one Grader (reference answers computed once), solved submissions, paths."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
COURSE_DIR = ROOT.parent / "shared" / "arena-1.5.1"
COURSE_WEIGHTS = COURSE_DIR / "brackets_model_state_dict.pt"
# the functions the course's notebook gives complete that grader/examples/course_layout_correct.py
# (and every file made from it) has as given: `provided`, not its author's work (grader.starters)
COURSE_LAYOUT_PROVIDED = ("LN_hook_names", "embedding")
# what the course's current notebook gives complete (its other exercises are stubs)
COURSE_NOTEBOOK_PROVIDES = ("get_activations", "LN_hook_names", "out_by_component_in_pre_20_unbalanced_dir", "embedding")
COURSE_DATA = COURSE_DIR / "brackets_data.json"

pytest_plugins = ["pytester"]

# Under pytest-xdist, test processes share the cores with each other and with the workers they
# start: torch's OpenMP threads, one per core in each process by default, then spin waiting for
# each other (the reference's answers took ten times as long). One thread each, for the tests and
# for every process they start (the workers already run on one).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    if "torch" in __import__("sys").modules:  # already imported by a plugin: its pool is running
        __import__("torch").set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


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
def _cache_dir() -> Path:
    """Where the tests keep the reference's answers: shared by a run's pytest-xdist workers (each
    entry is written atomically), and kept between runs, as a grader's cache is (its key changes
    with the reference code, the model, the data and the libraries). .ci/run gives a fresh folder
    (BRACKET_GRADER_TEST_CACHE), so CI computes everything from nothing."""
    path = Path(os.environ.get("BRACKET_GRADER_TEST_CACHE") or Path.home() / ".cache" / "bracket-grader-tests")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    os.environ["BRACKET_GRADER_CACHE"] = str(path)
    return path


@contextmanager
def one_at_a_time(cache: Path, what: str):
    """Across this run's pytest-xdist workers: the first computes, the others then read its cache."""
    with open(cache / f".{what}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def warm(reference, cache: Path) -> None:
    """The reference's answers for every item, computed once for the run: each item by the first
    pytest-xdist worker to reach it (the workers take the items in opposite orders, so they share
    the work), the others read it from the cache."""
    from grader.catalogue import EXERCISES

    items = [ex for ex in EXERCISES if ex.kind == "function"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    if worker.isdigit() and int(worker) % 2:
        items.reverse()
    for ex in items:
        with one_at_a_time(cache, f"{reference.key}-{ex.id}"):
            reference.for_exercise(ex)


def pytest_collection_modifyitems(config, items):
    """A test that starts real workers says so (the `worker` mark), so that a contributor can tell
    which tests are cheap: every test using a grader fixture does."""
    unmarked = [item.nodeid for item in items if {"grader", "course_grader"} & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("worker") is None]
    if unmarked:
        raise pytest.UsageError("tests that start real workers must be marked `worker`: " + ", ".join(unmarked[:5]))


@pytest.fixture(scope="session")
def reference(_cache_dir):
    """The reference's answers on our model and data (computed once per session, no worker)."""
    from grader.config import GradeConfig
    from grader.reference_results import ReferenceResults

    config = GradeConfig().resolved()
    reference = ReferenceResults(config.weights, config.data, config.device)
    warm(reference, _cache_dir)
    return reference


@pytest.fixture(scope="session")
def grader(_cache_dir):
    from grader.engine import GradeConfig, Grader

    g = Grader(GradeConfig())
    warm(g.reference, _cache_dir)
    g.start(2)  # started now, so every copy of this grader (with_config) shares its slots
    return g


@pytest.fixture(scope="session")
def course_grader(_cache_dir):
    from grader.engine import GradeConfig, Grader

    weights, data = course_files_or_skip()
    g = Grader(GradeConfig(str(weights), str(data)))
    warm(g.reference, _cache_dir)
    return g


@pytest.fixture(scope="session")
def solved_dir(tmp_path_factory) -> Path:
    from reference.make_template import write_solved

    folder = tmp_path_factory.mktemp("solved")
    write_solved(folder)
    return folder


def with_config(grader, **changes):
    """The session's grader (its reference answers, its slots) under another configuration."""
    return grader.reconfigured(**changes)


def statuses(result) -> dict[str, str]:
    return {e.id: e.status for e in result.exercises}
