"""The red-team suite: every attack gets exactly its verdict, the honest items in the same file keep
full marks, nothing outside the workers' folders changes, no worker reaches the network, and all of
it holds the same way in the three setups a grader is started in (tests/hostile/setups.py):
as root, as an ordinary user, and as root over a checkout another user owns.

Each setup grades every attack through the real command line, as an instructor grades a folder.
Where this machine cannot provide a setup, its test skips saying why; `.ci/run` provides all three.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from tests.conftest import skip_unless_sandbox_required
from tests.hostile.cases import BASE, CASES, HONEST, Hostile
from tests.hostile.setups import SETUPS, listing, make_runner, require

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.kernel, pytest.mark.xdist_group("hostile")]

ITEMS = sorted({c.target for c in CASES} | set(HONEST))
VERDICTS: dict[str, dict[str, dict]] = {}  # setup -> case name -> {item: status}
FEEDBACK: dict[str, dict[str, dict]] = {}  # setup -> case name -> {item: feedback}, for the message


def notebook_of(code: str) -> str:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": part}
             for part in code.split("\n\n\n")]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
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


def write_attacks(folder: Path, port: int, canary: Path, checkout: Path,
                  cases: list[Hostile] | None = None) -> dict[str, list[Hostile]]:
    """Every attack (of `cases`) as a submission in the course's way (the honest items first, the
    attack in a cell of its own), or as a symbolic link; grouped by how notebooks run."""
    groups: dict[str, list[Hostile]] = {}
    for case in CASES if cases is None else cases:
        code = BASE + f"\n\nPORT = {port}\nCANARY = {str(canary)!r}\n\n\n# %%\n" + case.code
        sub = folder / case.mode / f"{case.name}.{'ipynb' if case.notebook else 'py'}"
        sub.parent.mkdir(parents=True, exist_ok=True)
        if case.link_to:
            where, path = case.link_to
            sub.symlink_to((checkout if where == "checkout" else sub.parent) / path)
        else:
            sub.write_text(notebook_of(code) if case.notebook else code)
            os.chmod(sub, 0o644)
        groups.setdefault(case.mode, []).append(case)
    return groups


def verdict_problems(case: Hostile, exercises: dict[str, dict]) -> list[str]:
    if case.link_to:  # refused, never followed: every item an error that says why
        return [f"{case.name}: {item} {e['status']} {e['score']}: {e['feedback'][:200]}" for item, e in exercises.items()
                if item in ITEMS and (e["status"] != "error" or e["score"] != 0 or "symbolic link" not in e["feedback"])]
    return _attack_problems(case, exercises)


def _attack_problems(case: Hostile, exercises: dict[str, dict]) -> list[str]:
    target = exercises[case.target]
    problems = []
    if target["status"] not in case.expected:
        problems.append(f"{case.name}: {case.target} {target['status']} (expected {case.expected}): {target['feedback'][:300]}")
    if target["status"] != "passed" and target["score"] != 0:
        problems.append(f"{case.name}: scored {target['score']} without passing")
    for item in HONEST:
        if exercises[item]["status"] != "passed":
            problems.append(f"{case.name}: the honest {item} lost its marks: {exercises[item]['feedback'][:300]}")
    return problems


@pytest.mark.parametrize("setup", SETUPS)
def test_every_attack_gets_its_verdict(setup, listener, reference):
    require(setup)
    port, hits = listener
    folder = Path(tempfile.mkdtemp(prefix="bracket-setup-"))  # where another user can reach it
    os.chmod(folder, 0o755)
    try:
        _attack(setup, folder, port, hits)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cases_for(setup: str) -> list[Hostile]:
    """Every attack as root; in the other set-ups, those whose outcome could depend on the set-up."""
    return CASES if setup == "root" else [c for c in CASES if c.setup_bound]


def _attack(setup: str, folder: Path, port: int, hits: list) -> None:
    runner = make_runner(setup, folder / "grader")
    subs, reports = folder / "class", folder / "reports"
    canary = folder / "canary.txt"
    canary.write_text("the grader's own file\n")
    cases = cases_for(setup)
    groups = write_attacks(subs, port, canary, runner.checkout, cases)
    for path in [subs, *subs.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    reports.mkdir(mode=0o777)
    os.chmod(reports, 0o777)
    before = listing(subs, *runner.code(), canary)
    canary_stat = os.lstat(canary)
    found: dict[str, dict] = {}
    notes: dict[str, list[str]] = {}
    for mode, group in groups.items():
        report = reports / f"{mode}.json"
        proc = runner.run(str(subs / mode), "--only", ",".join(ITEMS), "--mode", mode, "--workers", "2",
                          "--timeout", "16", "--submission-timeout", "300", "--memory", "6", "--quiet",
                          # demo statements that hang cost this, four times (kernel mode keeps the default:
                          # there it is each cell's limit, imports included)
                          *(["--statement-timeout", "8"] if mode == "lean" else []),
                          "--json", str(report))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        for sub in json.loads(report.read_text())["submissions"]:
            found[Path(sub["path"]).stem] = {e["id"]: e for e in sub["exercises"]}
            notes[Path(sub["path"]).stem] = sub.get("notes") or []
    assert set(found) == {c.name for c in cases}
    problems = [p for case in cases for p in verdict_problems(case, found[case.name])]
    assert not problems, "\n".join(problems)
    # absurd values shaped like the answer reach the comparison, and are judged there
    if "absurd_objects" in found:
        assert "NaN" in found["absurd_objects"]["out_by_component_in_unbalanced_dir"]["feedback"]
        assert "differ" in found["absurd_objects"]["out_by_component_in_pre_20_unbalanced_dir"]["feedback"]
    # a statement that hung on the first pass's data is left out on the course's, not waited for
    # again with five times its limit
    for name in {"hangs_at_module_level", "hangs_and_swallows_at_module_level"} & set(notes):
        assert any("course-size" in n and "fewer examples" in n for n in notes[name]), notes[name]
        assert not any("course-size" in n and "ran past its limit" in n for n in notes[name]), notes[name]
    VERDICTS[setup] = {name: {i: e["status"] for i, e in items.items()} for name, items in found.items()}
    FEEDBACK[setup] = {name: {i: e["feedback"][:300] for i, e in items.items()} for name, items in found.items()}
    # nothing outside the workers' folders changed: the submissions, the grader's code, the canary
    assert listing(subs, *runner.code(), canary) == before
    # nothing the grader writes for a worker (its folder, the submission's copy, pipes, answers)
    # was written where a worker's link pointed: the reports folder holds the reports only
    assert [p.name for p in reports.iterdir() if p.is_dir() or not p.name.endswith((".json", ".jsonl"))] == []
    assert canary.read_text() == "the grader's own file\n"
    after = os.lstat(canary)
    assert (after.st_uid, after.st_mode) == (canary_stat.st_uid, canary_stat.st_mode)
    assert not hits, f"a worker reached 127.0.0.1 in setup {setup!r}"


def test_every_setup_gives_every_attack_the_same_verdict():
    ran = {setup: v for setup, v in VERDICTS.items()}
    if len(ran) < 2:
        skip_unless_sandbox_required(f"fewer than two setups ran here ({', '.join(ran) or 'none'}); .ci/run runs all three")
    first, *others = ran.items()
    cases = {c.name: c for c in CASES}

    def timing(case: str, item: str, a: str, b: str) -> bool:
        """An attack whose verdict depends on the machine's load (a fork bomb may finish or run out
        its item's time): any two of the verdicts it allows are the same verdict here."""
        return item == cases[case].target and {a, b} <= set(cases[case].expected)

    for setup, verdicts in others:
        common = set(verdicts) & set(first[1])
        assert common >= {c.name for c in CASES if c.setup_bound}, (first[0], setup)
        assert {c: set(verdicts[c]) for c in common} == {c: set(first[1][c]) for c in common}, (first[0], setup)
        differ = [f"{case} {item}: {first[0]} {status} ({FEEDBACK[first[0]][case][item]}), {setup} "
                  f"{verdicts[case][item]} ({FEEDBACK[setup][case][item]})"
                  for case in common for item, status in first[1][case].items()
                  if verdicts[case][item] != status and not timing(case, item, status, verdicts[case][item])]
        assert not differ, "\n".join(differ)


def test_suite_has_the_attacks_of_both_red_team_rounds():
    assert len(CASES) >= 45
    assert len({c.name for c in CASES}) == len(CASES)
