"""The third red team (issue 22), through the real command line: each attack graded between two
honest classmates in the same slot (one worker, one after another), with the bound it tests
measured and asserted. Attacks whose outcome could depend on the set-up (uids, files, processes,
limits) run in all three set-ups (tests/hostile/setups.py), the others as root only."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.hostile.neighbours import ATTACKS, ITEMS, LOOKS, Attack, attack_source
from tests.hostile.setups import SETUPS, make_runner, require

# a group of its own: it runs beside the older red team (every set-up sandboxes each slot on its own)
pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("neighbours")]

# the trusted process (the command line grading the whole class) may not grow past this, whatever a
# submission sends or asks (README, security model: measured there)
TRUSTED_PEAK_MIB = 1600


def honest_source(tmp: Path) -> str:
    from reference.make_template import write_solved

    tmp.mkdir(parents=True, exist_ok=True)
    write_solved(tmp)
    return (tmp / "exercises.py").read_text() + LOOKS


def grade_class(setup: str, attacks: list[Attack]) -> tuple[dict, dict, subprocess.CompletedProcess, Path]:
    """Honest, attack, honest, attack, ..., honest: graded in this order in one slot."""
    folder = Path(tempfile.mkdtemp(prefix="bracket-neighbours-"))  # where another user can reach it
    os.chmod(folder, 0o755)
    runner = make_runner(setup, folder / "grader")
    subs, out = folder / "class", folder / "out"
    subs.mkdir(mode=0o755)
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    honest = honest_source(folder / "solved")
    names = {}
    for n, attack in enumerate(attacks):
        names[f"{2 * n:02d}_honest.py"] = honest
        names[f"{2 * n + 1:02d}_{attack.file_name or attack.name + '.py'}"] = attack_source(attack)
    names[f"{2 * len(attacks):02d}_honest.py"] = honest
    for name, text in names.items():
        (subs / name).write_text(text)
        os.chmod(subs / name, 0o644)
    proc = runner.run(str(subs), "--only", ",".join(ITEMS), "--workers", "1", "--timeout", "60", "--json",
                      str(out / "report.json"), "--junit", str(out / "junit.xml"), "--feedback-dir", str(out / "feedback"),
                      "--summary", str(out / "summary.md"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    return report["run"], {Path(s["path"]).name: s for s in report["submissions"]}, proc, folder


def check(setup: str, attacks: list[Attack]) -> None:
    run, by_name, proc, folder = grade_class(setup, attacks)
    try:
        _check(run, by_name, proc, folder / "out", attacks)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check(run: dict, by_name: dict, proc, out: Path, attacks: list[Attack]) -> None:
    honest = {name: {e["id"]: e for e in s["exercises"] if e["id"] in ITEMS} for name, s in by_name.items()
              if name.endswith("_honest.py")}
    assert len(honest) == len(attacks) + 1
    problems = [f"{name} {i}: {e['status']}: {e['feedback'][:300]}" for name, items in honest.items()
                for i, e in items.items() if e["status"] != "passed"]
    assert not problems, "\n".join(problems)  # before and after every attacker, in its slot
    for attack in attacks:
        name = next(n for n in by_name if n[3:] == (attack.file_name or attack.name + ".py"))
        got = {e["id"]: e for e in by_name[name]["exercises"] if e["id"] in ITEMS}
        for item, e in got.items():
            allowed = attack.expected.get(item, ("passed",))
            assert e["status"] in allowed, (attack.name, item, e["status"], allowed, e["feedback"][:400])
            assert e["status"] == "passed" or e["score"] == 0, (attack.name, item, e["score"])
        for item, words in attack.says.items():
            assert words in got[item]["feedback"], (attack.name, item, got[item]["feedback"][:400])
    assert run["trusted_peak_mib"] <= TRUSTED_PEAK_MIB, run["trusted_peak_mib"]
    assert run["warm_workers_replaced"] == 0  # no child ended its warm worker: nobody paid a cold start
    # nothing a submission wrote reaches a terminal, a viewer or a parser as a control character
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    for path in [*out.rglob("*")]:
        if path.is_file():
            assert "\x1b" not in path.name and "\x1b" not in path.read_text(errors="replace"), path.name
    ET.parse(out / "junit.xml")


@pytest.mark.parametrize("setup", SETUPS)
def test_attacks_that_could_depend_on_the_set_up_are_contained_in_each(setup, reference):
    require(setup)
    check(setup, [a for a in ATTACKS if a.setup_bound])


def test_attacks_on_the_trusted_side_are_contained(reference):
    require("root")
    check("root", [a for a in ATTACKS if not a.setup_bound])


def test_the_reference_bytecode_is_not_in_a_workers_view_editable_or_installed(tmp_path):
    """With Python's default bytecode writing (the trusted side writes reference/__pycache__ as it
    imports the solutions), on a fresh copy of the project run from its folder (as an editable
    install is) and installed into a folder of its own (pip compiles bytecode there): a submission
    that loads the solutions' bytecode finds nothing, in either."""
    from tests.conftest import ROOT
    from tests.hostile.neighbours import BYTECODE

    require("root")
    copy = tmp_path / "fresh"
    for package in ("grader", "reference"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copy(ROOT / "README.md", copy / "README.md")
    installed = tmp_path / "installed"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                          "--target", str(installed), str(copy)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert list(installed.glob("reference/__pycache__/solutions*.pyc")), "pip did not compile the installed copy"
    sub = tmp_path / "thief.py"
    from tests.hostile.cases import BASE

    sub.write_text(BASE + "\n\n# %%\n" + BYTECODE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for where in (copy, installed):
        env.update(PYTHONPATH=str(where), BRACKET_GRADER_CACHE=str(tmp_path / f"cache-{where.name}"))
        proc = subprocess.run([sys.executable, "-c", "import grader, sys; assert grader.__file__.startswith(sys.argv[1])"
                               "; from grader.cli import main; sys.exit(main(sys.argv[2:]))", str(where), str(sub),
                               "--only", "get_post_final_ln_dir,get_WOV", "--json", str(tmp_path / "r.json"), "--quiet"],
                              capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list(where.glob("reference/__pycache__/solutions*.pyc")), "the trusted side wrote no bytecode"
        got = {e["id"]: e["status"] for e in json.loads((tmp_path / "r.json").read_text())["submissions"][0]["exercises"]}
        assert got["get_post_final_ln_dir"] == "missing" and got["get_WOV"] == "passed", (where.name, got)
