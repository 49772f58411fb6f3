"""One student's file never ends a class's batch: values that break judging are that item's error,
whatever escapes that is the submission's error, and `--resume` goes past it.

Each poison (tests/hostile/cases.py, where the red-team suite grades them in all three set-ups)
ended a whole batch on an earlier main (the CLI exited 1 with no report). Here: the batch goes on,
the feedback says why, and a resumed run grades none of them again."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.feedback import feedback
from tests.hostile.cases import BASE
from tests.hostile.cases import POISONS as CASE_POISONS

pytestmark = [pytest.mark.slow, pytest.mark.worker]

ITEMS = ("avg_squared_cos_sim", "out_by_component_in_unbalanced_dir", "get_WOV")

HONEST = BASE + '''
import einops
def avg_squared_cos_sim(v, n_samples=1000):
    r = t.randn(n_samples, v.shape[0])
    return ((r / r.norm(dim=1, keepdim=True)) @ (v / v.norm())).pow(2).mean().item()
'''

POISONS = {f"{case.name}.py": (case.target, case.expected, BASE + case.code) for case in CASE_POISONS}


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def test_poisoned_values_are_their_items_verdict_and_the_batch_goes_on(tmp_path, grader):
    folder = tmp_path / "class"
    folder.mkdir()
    for name, (_, _, code) in POISONS.items():
        (folder / name).write_text(code)
    for i in range(2):
        (folder / f"honest_{i}.py").write_text(HONEST)
    report = tmp_path / "grades.json"
    common = [folder, "--only", ",".join(ITEMS), "--workers", "2", "--quiet", "--timeout", "20", "--json", report]
    proc = run_cli(*common)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    subs = {Path(s["path"]).name: {e["id"]: e for e in s["exercises"]} for s in json.loads(report.read_text())["submissions"]}
    assert set(subs) == set(POISONS) | {"honest_0.py", "honest_1.py"}
    for name, (item, allowed, _) in POISONS.items():
        verdict = subs[name][item]
        assert verdict["status"] in allowed and verdict["score"] == 0, (name, verdict)
        assert verdict["feedback"].strip(), name
        assert subs[name]["get_WOV"]["status"] == "passed", (name, subs[name]["get_WOV"])  # the rest still graded
    assert "bracket strings" in subs["words_in_data.py"]["out_by_component_in_unbalanced_dir"]["feedback"] or \
        "brackets" in subs["words_in_data.py"]["out_by_component_in_unbalanced_dir"]["feedback"]
    assert "5,000" in subs["too_many_in_data.py"]["out_by_component_in_unbalanced_dir"]["feedback"]
    assert "NaN" in subs["all_unbalanced_data.py"]["out_by_component_in_unbalanced_dir"]["feedback"]
    for name in ("honest_0.py", "honest_1.py"):
        assert subs[name]["avg_squared_cos_sim"]["status"] == subs[name]["get_WOV"]["status"] == "passed", subs[name]
    # a resumed run finds every file in the log, poisoned ones included, and grades none again
    first = json.loads(report.read_text())
    again = run_cli(*common, "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming: {len(POISONS) + 2} already graded, 0 to go" in again.stderr
    resumed = json.loads(report.read_text())["submissions"]
    assert [s["path"] for s in resumed] == [s["path"] for s in first["submissions"]]
    for before, after in zip(first["submissions"], resumed):
        assert after == before, (before["path"], [(a, b) for a, b in zip(before["exercises"], after["exercises"]) if a != b],
                                 before["notes"], after["notes"], before["seconds"], after["seconds"])


def test_an_exception_while_judging_is_the_submissions_result_not_the_batchs(grader, tmp_path, monkeypatch):
    """The last barrier: whatever escapes item-level judging (here, a fault planted in the engine)
    becomes that submission's error result, and the next submission is graded as usual."""
    from tests.conftest import with_config

    g = with_config(grader, only=("get_WOV",))
    bad, good = tmp_path / "bad.py", tmp_path / "good.py"
    bad.write_text(HONEST + "\n# bad\n")
    good.write_text(HONEST)
    from grader import attempts

    real = attempts.run

    def faulty(setting, judge, sub, plan):
        if sub.path.name == "bad.py":
            raise RuntimeError("planted fault")
        return real(setting, judge, sub, plan)

    monkeypatch.setattr(attempts, "run", faulty)
    results = {Path(r.path).name: r for r in g.grade_many([bad, good], workers=1)}
    wov = {name: next(e for e in r.exercises if e.id == "get_WOV") for name, r in results.items()}
    assert wov["bad.py"].status == "error" and "planted fault" in feedback(wov["bad.py"])
    assert "the rest of the batch is not affected" in feedback(wov["bad.py"])
    assert wov["good.py"].status == "passed"
