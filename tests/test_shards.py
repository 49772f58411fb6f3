"""Shards (grader.shards): read from the scheduler that started the process, and dealt by expected
cost so that every shard computes the same split and none straggles."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import shards
from grader.cli import build_parser, main, shard_of


def test_i_of_n_is_parsed_and_checked():
    assert shards.parse("2/5") == (2, 5)
    for bad in ("0/3", "4/3", "x", "1/0", "auto/2"):
        with pytest.raises(shards.ShardError):
            shards.parse(bad)


@pytest.mark.parametrize("env, count, shard, where", [
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, None, (1, 4), "slurm"),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4",
      "SLURM_ARRAY_TASK_COUNT": "4"}, None, (4, 4), "slurm"),
    ({"SLURM_ARRAY_TASK_ID": "20", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "30",
      "SLURM_ARRAY_TASK_STEP": "10"}, None, (2, 3), "slurm"),  # --array=10-30:10
    ({"JOB_COMPLETION_INDEX": "2"}, 3, (3, 3), "kubernetes"),
    ({"JOB_COMPLETION_INDEX": "0", "BRACKET_GRADER_SHARDS": "5"}, None, (1, 5), "kubernetes"),
    ({"BRACKET_GRADER_JOB_INDEX": "1", "BRACKET_GRADER_JOB_TOTAL": "2", "GITHUB_ACTIONS": "true"}, None, (2, 2),
     "github"),
])
def test_the_shard_comes_from_the_scheduler(env, count, shard, where):
    assert shards.from_environment(env, count) == (shard, where)


@pytest.mark.parametrize("env, count, message", [
    ({}, None, "found no scheduler"),
    ({"JOB_COMPLETION_INDEX": "1"}, None, "give --shard-count N"),
    ({"JOB_COMPLETION_INDEX": "3"}, 3, "shard 4 of 3"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "1"}, None, "not a whole number"),
])
def test_no_scheduler_or_a_wrong_one_is_a_clear_error(env, count, message):
    with pytest.raises(shards.ShardError, match=message):
        shards.from_environment(env, count)


def test_auto_on_the_command_line_names_this_shards_files_and_resumes(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "2")
    args = build_parser().parse_args(["class", "--shard", "auto", "--json", "out/shard-{shard}.json"])
    assert shard_of(args) == (2, 3) and args.json == "out/shard-2-of-3.json" and args.resume
    assert "shard 2 of 3 (from the slurm scheduler)" in capsys.readouterr().err
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX"):
        monkeypatch.delenv(name)
    (tmp_path / "a.py").write_text("v_L = 1\n")
    assert main([str(tmp_path), "--shard", "auto"]) == 2  # nothing found: a usage error, nothing graded
    assert "found no scheduler" in capsys.readouterr().err


def notebook(path: Path, cells: int) -> Path:
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": f"x{i} = {i}\n" * 20, "metadata": {},
                                           "outputs": [], "execution_count": None} for i in range(cells)],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def mixed_class(folder: Path) -> list[Path]:
    """A class as instructors get it: short modules, long notebooks, and files named so that a split
    by name puts the long ones together."""
    files = [notebook(folder / f"a-long-{i:02d}.ipynb", 120) for i in range(8)]
    for i in range(40):
        (folder / f"b-short-{i:02d}.py").write_text("# %%\nv_L = 1\n" * 5)
    files += sorted(folder.glob("b-*.py"))
    return files


def test_dealt_by_cost_deterministic_disjoint_complete_and_balanced(tmp_path):
    files = mixed_class(tmp_path)
    dealt = shards.deal(files, 4)
    assert sorted(sum(dealt, [])) == sorted(files) and all(dealt)
    assert shards.deal(list(reversed(files)), 4) == dealt  # from the file list alone, whatever its order
    loads = [sum(shards.cost(f) for f in d) for d in dealt]
    assert max(loads) <= 1.15 * (sum(loads) / 4)
    assert {len([f for f in d if f.suffix == ".ipynb"]) for d in dealt} == {2}  # the long ones spread out
    mine = [shards.mine(files, (i, 4), [tmp_path]) for i in range(1, 5)]
    assert [set(m) for m in mine] == [set(d) for d in dealt]


def test_a_notebook_costs_more_than_a_module_of_the_same_code(tmp_path):
    nb = notebook(tmp_path / "a.ipynb", 10)
    py = tmp_path / "a.py"
    py.write_text("".join(f"# %%\n{'x = 1' * 20}\n" for _ in range(10)))
    assert shards.cost(nb) > shards.cost(py) > shards.cost(tmp_path / "missing.py") == shards.FIXED


def test_code_that_runs_to_its_limit_or_on_the_course_size_costs_more_than_its_length(tmp_path):
    """What the benchmark found time going to: a loop that never ends by its own test waits for the
    statement's limit; the course's 5,000 written into the code brings a course-size second look."""
    def module(name: str, body: str) -> Path:
        (tmp_path / name).write_text(f"# %%\nN_SAMPLES = 5000\n# %%\n{body}\n")
        return tmp_path / name

    plain = shards.cost(module("plain.py", "x = sum(range(10))"))
    looping = shards.cost(module("loop.py", "while True:\n    x = 1"))
    bounded = shards.cost(module("bounded.py", "while x < 3:\n    x += 1"))
    for way_out in ("if x:\n        break", "return 1", "raise StopIteration", "for i in y:\n        pass\n    else:\n        break"):
        ends = module("ends.py", f"def f():\n  while True:\n    x = 1\n    {way_out}")
        assert abs(shards.cost(ends) - plain) < 1, way_out  # a loop with a way out is not a hang
    for no_way_out in ("for i in y:\n        break", "def g():\n        return 1", "z = lambda: 1"):
        stuck = module("stuck.py", f"while True:\n    x = 1\n    {no_way_out}")
        assert shards.cost(stuck) - plain > 30, no_way_out  # an inner loop's break, an inner function's return
    with_bom = tmp_path / "bom.py"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "loop.py").read_bytes())
    assert abs(shards.cost(with_bom) - looping) < 1  # saved with a byte-order mark: parsed all the same
    continued = module("continued.py", "x = (3\n    % 2)\nwhile True:\n    pass")
    assert shards.cost(continued) - plain > 30  # a module's line that starts with % is code, not a magic
    huge = module("huge.py", "while True:\n    pass\n" + "x = 1\n" * (shards.MAX_CODE // 6))
    assert shards._costly_code([huge.read_text()]) == 0  # too large to parse in every shard: its size only
    course = shards.cost(module("course.py", "y = repeat(m, 'c -> c b', b=5000)"))
    assert looping - plain > 30 and abs(bounded - plain) < 1  # a loop with a test of its own is not charged
    assert 5 < course - plain < looping - plain
    unparsable = shards.cost(module("broken.py", "while True:\n x = (  # never closed"))
    assert abs(unparsable - plain) < 1  # a file that does not parse is costed by its size only
    nb = tmp_path / "loop.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["%time 1\n", "while 1:\n", "    pass\n"],
                                         "metadata": {}, "outputs": [], "execution_count": None}],
                              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert shards.cost(nb) > shards.UNENDING_LOOP  # cell magics stripped, then parsed


def test_the_recipes_the_cli_writes_start_each_shard_with_auto_and_validate(tmp_path, capsys):
    """The shipped recipes, written by the CLI: what each scheduler sets is what --shard auto
    reads; the Kubernetes manifests against Kubernetes' published schemas, the workflow against
    GitHub's (the Slurm one runs on a real cluster: tests/test_slurm.py)."""
    import subprocess
    import sys

    import kubernetes_validate
    import yaml

    for kind in ("slurm", "kubernetes", "github"):
        assert main(["--write-recipe", kind, str(tmp_path / kind)]) == 0
    assert main(["--write-recipe", "slurm", str(tmp_path / "slurm")]) == 2  # never over files
    assert main(["--write-recipe", "pbs", str(tmp_path / "pbs")]) == 2
    assert "no recipe 'pbs' (there are: github, kubernetes, slurm)" in capsys.readouterr().err
    slurm = tmp_path / "slurm"
    for script in ("submit.sh", "grade-array.sbatch", "merge.sbatch"):
        assert subprocess.run(["bash", "-n", str(slurm / script)]).returncode == 0 and (slurm / script).stat().st_mode & 0o100
    submit, array = (slurm / "submit.sh").read_text(), (slurm / "grade-array.sbatch").read_text()
    assert "--prepare-cache" in submit and "--dependency=\"afterok:" in submit and "--array=" in submit
    assert "#SBATCH --requeue" in array and "--shard auto" in array
    job, merge = (yaml.safe_load((tmp_path / "kubernetes" / f).read_text()) for f in ("grade-job.yaml", "merge-job.yaml"))
    for manifest in (job, merge):
        kubernetes_validate.validate(manifest, "1.31", strict=True)
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["completionMode"] == "Indexed" and "auto" in container["command"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert shards.from_environment({"JOB_COMPLETION_INDEX": "0", **env}) == ((1, spec["completions"]), "kubernetes")
    assert "nvidia.com/gpu" in (tmp_path / "kubernetes" / "grade-job.yaml").read_text()  # the GPU option, commented
    assert "--merge /results/shard-*.json" in merge["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    workflow = tmp_path / "github" / "grade-class.yml"
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flow = yaml.safe_load(workflow.read_text())
    shard_job = flow["jobs"]["shard"]
    assert shard_job["env"] == {"BRACKET_GRADER_JOB_INDEX": "${{ strategy.job-index }}",
                                "BRACKET_GRADER_JOB_TOTAL": "${{ strategy.job-total }}"}
    assert any("--shard auto" in step.get("run", "") for step in shard_job["steps"])
    merged = next(s for s in flow["jobs"]["merge"]["steps"] if "--merge shard-*.json" in s.get("run", ""))
    assert "--gradebook" in merged["run"] and "--report class.html" in merged["run"]


def test_merged_run_adds_up_time_and_workers_keeps_the_highest_peak_and_every_gap(tmp_path):
    """A merged report's run record: the shards' seconds and workers summed, the trusted processes'
    highest peak (not the first shard's), and isolation missing on any shard shown as missing."""
    from grader.batch import merged_run

    runs = [{"model": "m", "seconds": 10.0, "workers": 2, "trusted_peak_mib": 280,
             "isolation": {"not_enforced": []}},
            {"model": "m", "seconds": 5.5, "workers": 2, "trusted_peak_mib": 310,
             "isolation": {"not_enforced": ["network"]}}]
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f"shard{i}.json")
        paths[-1].write_text(json.dumps({"run": run, "submissions": []}))
    merged = merged_run(paths)
    assert (merged["seconds"], merged["workers"], merged["shards"]) == (15.5, 4, 2)
    assert merged["trusted_peak_mib"] == 310
    assert merged["isolation"]["not_enforced"] == ["network"]
    del runs[1]["trusted_peak_mib"], runs[0]["trusted_peak_mib"]
    for path, run in zip(paths, runs):
        path.write_text(json.dumps({"run": run, "submissions": []}))
    assert "trusted_peak_mib" not in merged_run(paths)  # reports from before the figure existed
