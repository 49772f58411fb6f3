"""A class graded on a real Slurm cluster through the shipped recipe (`--write-recipe slurm`): a
single-node cluster started here (tests/slurm_cluster.py), 12 submissions in a 3-task array and a
merge job started with --dependency=afterok. The merged report is the report of one run on one
machine, times aside, with a task of the array requeued mid-way (`scontrol requeue`): it resumes
its shard and changes nothing. Skips, saying why, where Slurm cannot run, except where BRACKET_GRADER_REQUIRE_SLURM is
set (.ci/run), where it must run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.slurm_cluster import Cluster, missing

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.xdist_group("slurm")]

ONLY = "is_balanced_forloop,get_post_final_ln_dir,get_WOV"
SLOW = "    import time\n    time.sleep(0.4)  # a slow student: long enough to requeue a task mid-shard\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = missing()
    if why:
        if os.environ.get("BRACKET_GRADER_REQUIRE_SLURM"):
            pytest.fail(f"BRACKET_GRADER_REQUIRE_SLURM is set, and {why}")
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("slurm")
    os.chmod(folder, 0o755)
    c = Cluster(folder).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def course(tmp_path_factory, solved_dir, cluster):
    """The class (12 submissions: modules and notebooks, right and wrong), the recipe written by the
    CLI, and the report of one run on one machine."""
    from tests.corpus.submissions import notebook_of

    folder = tmp_path_factory.mktemp("course")
    os.chmod(folder, 0o755)
    text = (solved_dir / "exercises.py").read_text()
    slow = text.replace("def get_post_final_ln_dir(model: HookedTransformer) -> Tensor:\n",
                        "def get_post_final_ln_dir(model: HookedTransformer) -> Tensor:\n" + SLOW, 1)
    assert slow != text
    wrong = slow.replace("model.W_V[layer, head] @ model.W_O[layer, head]",
                         "model.W_O[layer, head].T @ model.W_V[layer, head].T")
    assert wrong != slow
    (folder / "class").mkdir()
    for i in range(12):
        source = wrong if i % 3 == 0 else slow
        name = f"student{i:02d}." + ("ipynb" if i % 4 == 1 else "py")
        (folder / "class" / name).write_text(notebook_of(source) if name.endswith(".ipynb") else source)
    grade = [sys.executable, "-m", "grader.cli"]
    assert subprocess.run([*grade, "--write-recipe", "slurm", str(folder / "recipe")], cwd=folder).returncode == 0
    single = subprocess.run([*grade, str(folder / "class"), "--only", ONLY, "--workers", "2", "--quiet",
                             "--json", str(folder / "single.json")], capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    return folder, grade


def submit(cluster: Cluster, folder: Path, grade: list[str], out: str) -> tuple[str, str]:
    env = {"CLASS": str(folder / "class"), "OUT": str(folder / out), "SHARDS": "3", "BRACKET_GRADE": " ".join(grade),
           "GRADE_OPTIONS": f"--only {ONLY}", "PYTHONPATH": str(ROOT)}
    proc = cluster.run(str(folder / "recipe" / "submit.sh"), env=env, cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    array, merge = re.search(r"array job (\S+) \(shards\), merge job (\S+):", proc.stdout).groups()
    return array, merge


def same_report(merged: Path, single: Path) -> None:
    def plain(path: Path) -> list[dict]:
        subs = json.loads(path.read_text())["submissions"]
        return sorted(({k: v for k, v in s.items() if k != "seconds"} for s in subs), key=lambda s: s["path"])

    got, want = plain(merged), plain(single)
    assert len(got) == 12 and got == want
    assert json.loads(merged.read_text())["similarity"] == json.loads(single.read_text())["similarity"]


def test_a_class_graded_by_the_slurm_recipe_with_a_task_requeued_mid_way_is_the_report_of_one_machine(cluster, course):
    """One array (a task of it requeued part-way through its shard, as a preempted node's is) and
    its merge: every shard written, the requeued one resumed with nothing graded twice, and the
    merged report the single machine's."""
    from grader import shards

    folder, grade = course
    class_files = sorted((folder / "class").iterdir())
    totals = [len(part) for part in shards.deal(class_files, 3)]
    array, merge = submit(cluster, folder, grade, "grades")
    requeued, end = None, time.monotonic() + 600
    while requeued is None and time.monotonic() < end:  # a running task with part of its shard done
        for task in cluster.run("squeue", "-h", "-j", array, "-t", "R", "-o", "%i").stdout.split():
            index = int(task.split("_")[1])
            log = folder / "grades" / f"shard-{index + 1}-of-3.json.log.jsonl"
            done = len(log.read_text().splitlines()) if log.exists() else 0
            if 1 <= done < totals[index]:
                assert cluster.run("scontrol", "requeue", task).returncode == 0
                requeued = (task, index, done)
                # Slurm holds a requeued task back two minutes (its begin time): once it is pending
                # again, let it start now
                for _ in range(150):
                    if "JobState=PENDING" in cluster.run("scontrol", "show", "job", task).stdout:
                        assert cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now").returncode == 0
                        break
                    time.sleep(0.2)
                break
        time.sleep(0.2)
    assert requeued is not None, "no task was caught part-way through its shard"
    assert cluster.wait_for(array, 900) == {"COMPLETED"} and cluster.wait_for(merge) == {"COMPLETED"}
    written = sorted((folder / "grades").glob("shard-*-of-3.json"))
    assert [p.name for p in written] == [f"shard-{i}-of-3.json" for i in (1, 2, 3)]
    assert [len(json.loads(p.read_text())["submissions"]) for p in written] == totals and sum(totals) == 12
    task, index, done = requeued
    output = (folder / f"slurm-bracket-grade-{array}_{index}.out").read_text()
    assert re.search(rf"resuming: {done}|resuming: [1-9]", output), output[-2000:]
    log = folder / "grades" / f"shard-{index + 1}-of-3.json.log.jsonl"
    paths = [json.loads(line)["result"]["path"] for line in log.read_text().splitlines()]
    assert len(paths) == len(set(paths)) == totals[index]  # nothing graded twice
    same_report(folder / "grades" / "grades.json", folder / "single.json")
    assert (folder / "grades" / "gradebook.csv").is_file() and (folder / "grades" / "class.html").is_file()
