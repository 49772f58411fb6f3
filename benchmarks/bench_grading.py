"""Benchmark: grading speed against plain notebook execution, and our overhead.

    python benchmarks/bench_grading.py [--n 40] [--compare 8] [--examples 1000] [--out results.json]

Builds N notebooks and N modules in the course's layout (mixed correct, wrong and hanging), then
reports, all from this one run on this machine:
- seconds per submission (median, 90th percentile) with --workers 1 and with all cores;
- notebooks executed top to bottom with plain nbclient (what nbgrader and Otter do before grading)
  against our lean runs of the same notebooks, one at a time each, and whether lean verdicts equal
  our full-execution (kernel) mode's (a spread sample: --compare);
- the floor: a correct submission's own code (what a lean run executes, then every function item
  on the grader's inputs) in this process on one thread, against our time for it with a warm pool;
- peak memory (max RSS) of a worker.
Ratios, not absolute targets, are what carry between machines.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.catalogue import EXERCISES  # noqa: E402
from grader.engine import GradeConfig, Grader  # noqa: E402
from grader.sandbox import Limits  # noqa: E402

COURSE = ROOT / "grader" / "examples" / "course_layout_correct.py"
WRONG = [("return model.W_V[layer, head] @ model.W_O[layer, head]", "return model.W_O[layer, head].T @ model.W_V[layer, head].T"),
         ("    if seq_pos is None:\n        inputs = einops", "    if not seq_pos:\n        inputs = einops")]
HANG = ("    return get_activations(model, data.toks, utils.get_act_name(\"pattern\", layer))[:, head, :, :]",
        "    while True:\n        pass")


def make_corpus(folder: Path, n: int) -> list[Path]:
    src = COURSE.read_text()
    paths = []
    for i in range(2 * n):
        text = src
        if i % 10 == 9:
            text = text.replace(*HANG)
        elif i % 3 == 1:
            text = text.replace(*WRONG[i % 2])
        if i < n:
            cells = [c for c in re.split(r"^# %%.*$", text, flags=re.M) if c.strip()]
            nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                             "source": c.strip("\n")} for c in cells],
                  "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}
            path = folder / f"nb_{i:02d}.ipynb"
            path.write_text(json.dumps(nb))
        else:
            path = folder / f"mod_{i:02d}.py"
            path.write_text(text)
        paths.append(path)
    return paths


def grade(paths, workers, limits, mode="kernel"):
    g = Grader(GradeConfig(limits=limits, notebook_mode=mode))
    g.reference.warm()
    started = time.monotonic()
    results = list(g.grade_many(paths, workers))
    wall = time.monotonic() - started
    g.close()
    return results, wall


def plain_nbclient(paths, grader_config, timeout):
    """Top-to-bottom execution as notebook graders do, in the same course folders our workers get."""
    import nbformat
    from nbclient import NotebookClient

    from grader.reference_results import truncated_data, weights_as_pt
    from grader.worker import course_env

    times = []
    for p in paths:
        scratch = Path(tempfile.mkdtemp())
        workdir, shims = course_env.build(scratch, weights_as_pt(grader_config.weights),
                                          truncated_data(grader_config.data, grader_config.limits.notebook_examples), p.read_text())
        os.environ["PYTHONPATH"] = f"{shims}{os.pathsep}{ROOT}"
        nb = nbformat.read(p, as_version=4)
        started = time.monotonic()
        NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
        times.append(time.monotonic() - started)
        shutil.rmtree(scratch, ignore_errors=True)
    return times


def floor_seconds(config, examples: int) -> float:
    """The floor: what a correct submission's own code costs, called in this process on one thread
    with no grader around it. The statements a lean run executes (definitions, and the demo lines
    the object items are computed by, on the same truncated data), then every function item on
    the grader's inputs. The reference solutions stand in for the functions."""
    import torch

    import reference.solutions as sol
    from grader.inputs import InputFactory
    from grader.reference_results import truncated_data, weights_as_pt
    from grader.worker import course_env
    from grader.worker.lean import lean_statements
    from grader.worker.source import read_cells

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker has
    cwd, path = os.getcwd(), list(sys.path)
    scratch = Path(tempfile.mkdtemp())
    cells = read_cells(COURSE)
    workdir, shims = course_env.build(scratch, weights_as_pt(config.weights), truncated_data(config.data, examples),
                                      "\n".join(cells))
    objects = [n for ex in EXERCISES for n in ex.names]
    functions = {ex.id for ex in EXERCISES if ex.kind == "function"}
    statements, _, _ = lean_statements(cells, True, objects, functions)
    factory = InputFactory(config.weights, config.data, config.device)
    try:
        os.chdir(workdir)
        sys.path.insert(0, str(shims))
        started = time.monotonic()
        namespace = {"__name__": "__main__"}
        with contextlib.redirect_stdout(io.StringIO()):
            for st in statements:
                exec(st.code("floor"), namespace)  # noqa: S102 - measuring the student's own code
        for ex in EXERCISES:
            if ex.kind != "function":
                continue
            fn = getattr(sol, ex.id)
            for case in ex.cases:
                for each in case.each or [None]:
                    args, kwargs = factory.build(list(each) if each is not None else list(case.args), case.kwargs)
                    fn(*args, **kwargs)
        return time.monotonic() - started
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        torch.set_num_threads(threads)
        shutil.rmtree(scratch, ignore_errors=True)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def verdicts(results) -> dict:
    return {Path(r.path).name: [(e.id, e.status, e.score) for e in r.exercises] for r in results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=40, help="notebooks (and as many modules)")
    p.add_argument("--compare", type=int, default=8,
                   help="notebooks also run top to bottom by plain nbclient and graded in full-execution (kernel) "
                        "mode; both cost a minute a notebook, so a spread sample of the N")
    p.add_argument("--examples", type=int, default=1000, help="size of the data a submission's own code loads")
    p.add_argument("--timeout", type=float, default=20, help="per-item limit (the hanging ones hit it)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    limits = Limits(item_seconds=a.timeout, case_seconds=a.timeout / 2, notebook_examples=a.examples)
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    paths = make_corpus(folder, a.n)
    notebooks = [x for x in paths if x.suffix == ".ipynb"]
    sample = notebooks[:: max(1, len(notebooks) // max(1, a.compare))][: a.compare]
    started = time.monotonic()
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "torch_threads_per_worker": 1},
                    "n_notebooks": a.n, "n_modules": a.n, "examples": a.examples, "item_timeout_s": a.timeout}
    cores = os.cpu_count() or 1
    lean = {}
    for workers in sorted({1, cores}):
        results, wall = grade(paths, workers, limits, mode="lean")
        lean[workers] = results
        secs = [r.seconds for r in results]
        report[f"lean_workers_{workers}"] = {"wall_s": round(wall, 1), "per_submission_median_s": round(statistics.median(secs), 2),
                                             "per_submission_p90_s": round(pct(secs, 0.9), 2),
                                             "throughput_per_min": round(60 * len(paths) / wall, 1)}
        print(workers, report[f"lean_workers_{workers}"], flush=True)
    ours = {Path(r.path).name: r for r in lean[1]}
    ours_sample = [ours[x.name].seconds for x in sample]
    full, full_wall = grade(sample, cores, limits, mode="kernel")
    same = verdicts(full) == {k: v for k, v in verdicts(lean[1]).items() if k in {x.name for x in sample}}
    plain = plain_nbclient(sample, Grader(GradeConfig(limits=limits)).config, timeout=a.timeout * 3)
    report["notebooks_compared"] = {
        "n": len(sample), "plain_nbclient_serial_s": round(sum(plain), 1), "ours_lean_serial_s": round(sum(ours_sample), 1),
        "plain_nbclient_median_s": round(statistics.median(plain), 2),
        "ours_lean_median_s": round(statistics.median(ours_sample), 2),
        "ratio_plain_to_ours": round(sum(plain) / sum(ours_sample), 2),
        "ours_kernel_mode_wall_s": round(full_wall, 1),
        "lean_verdicts_equal_full_execution_verdicts": same}
    print(report["notebooks_compared"], flush=True)
    floor = floor_seconds(Grader(GradeConfig(limits=limits)).config, a.examples)
    correct = [r.seconds for r in lean[1] if r.score == r.max_score and r.path.endswith(".py")]
    report["floor"] = {"correct_submission_in_process_s": round(floor, 2),
                       "ours_median_correct_module_s": round(statistics.median(correct), 2) if correct else None,
                       "ratio_ours_to_floor": round(statistics.median(correct) / floor, 2) if correct else None}
    report["peak_rss_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    report["benchmark_wall_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
