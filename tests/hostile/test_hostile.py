"""The red-team suite: each hostile submission gets exactly its verdict, the honest items in the
same file keep full marks, nothing is written outside the worker's scratch folder, and the
grader's own process carries on unharmed."""
from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from grader.engine import Grader
from grader.sandbox import Limits, isolation
from tests.hostile.cases import BASE, CASES, HONEST, Hostile

pytestmark = pytest.mark.slow


def notebook_of(code: str) -> str:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": part}
             for part in code.split("\n\n\n")]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def hostile_grader(grader) -> Grader:
    g = Grader.__new__(Grader)
    g.__dict__.update(grader.__dict__)
    limits = Limits(item_seconds=25, case_seconds=8, submission_seconds=240, memory_bytes=6 * 1024**3,
                    output_bytes=32 * 1024)
    g.config = replace(grader.config, limits=limits)
    return g


@pytest.fixture()
def listener():
    """A TCP listener on 127.0.0.1 that records whether anything connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            hits.append(conn.recv(16))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join(2)
    server.close()


def snapshot(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_submission(case: Hostile, hostile_grader, tmp_path, listener, monkeypatch):
    port, hits = listener
    code = BASE + "\n\nPORT = %d\n\n\n# %%%%\n" % port + case.code  # the attack in cells of its own
    sub = tmp_path / "subs" / ("hostile.ipynb" if case.notebook else "hostile.py")
    sub.parent.mkdir()
    sub.write_text(notebook_of(code) if case.notebook else code)
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    before = snapshot(tmp_path)
    g = Grader.__new__(Grader)
    g.__dict__.update(hostile_grader.__dict__)
    g.config = replace(hostile_grader.config, only=(case.target, *HONEST), notebook_mode=case.mode)
    result = g.grade(sub)
    by_id = {e.id: e for e in result.exercises}
    target = by_id[case.target]
    # the exact verdict, and never credit the attack did not earn
    allowed = case.expected + (() if isolation()["own_user"] else case.without_own_user)
    assert target.status in allowed, (case.name, target.status, target.feedback, result.notes)
    if target.status != "passed":
        assert target.score == 0
    # honest items of the same submission kept their marks
    for item in HONEST:
        assert by_id[item].status == "passed", (case.name, item, by_id[item].feedback, result.notes)
    # nothing written outside the worker's scratch folder (which is gone), the grader unaffected
    assert snapshot(tmp_path) == before, case.name
    assert not hits, f"{case.name}: a worker reached 127.0.0.1"
    assert os.getcwd() and Path(os.getcwd()).exists()


def test_reference_solutions_are_unreadable_to_workers_where_enforced(hostile_grader):
    iso = isolation()
    if not iso["own_user"]:
        pytest.skip(f"workers run as the grader's own user here: {iso['why_not']}")
    import reference.solutions

    mode = Path(reference.solutions.__file__).stat().st_mode
    assert not mode & 0o044


def test_suite_has_at_least_25_attacks():
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)
