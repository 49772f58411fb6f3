"""Benchmark: grading speed against plain notebook execution, and our overhead.

    python benchmarks/bench_grading.py [--n 40] [--examples 1000] [--out results.json]

Builds N notebooks and N modules in the course's layout (mixed correct, wrong and hanging), then
reports, all from this one run on this machine:
- seconds per submission (median, 90th percentile) with --workers 1 and with all cores;
- the same notebooks executed top to bottom with plain nbclient (what nbgrader and Otter do before
  grading), and the ratio of our time to theirs, with our fast notebook mode; and whether the fast
  mode's verdicts equal the full (kernel) mode's;
- the floor: the time the student functions take called in-process on the same inputs;
- peak memory (max RSS) of a worker.
Ratios, not absolute targets, are what carry between machines.
"""
from __future__ import annotations

import argparse
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


def floor_seconds(config) -> float:
    """The student functions alone, called in this process on the grader's inputs (the reference
    solutions stand in for a correct student)."""
    import reference.solutions as sol
    from grader.inputs import InputFactory

    factory = InputFactory(config.weights, config.data, config.device)
    started = time.monotonic()
    for ex in EXERCISES:
        if ex.kind != "function":
            continue
        fn = getattr(sol, ex.id)
        for case in ex.cases:
            for each in case.each or [None]:
                args, kwargs = factory.build(list(each) if each is not None else list(case.args), case.kwargs)
                fn(*args, **kwargs)
    return time.monotonic() - started


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=40, help="notebooks (and as many modules)")
    p.add_argument("--examples", type=int, default=1000, help="size of the data a submission's own code loads")
    p.add_argument("--timeout", type=float, default=20, help="per-item limit (the hanging ones hit it)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    limits = Limits(item_seconds=a.timeout, case_seconds=a.timeout / 2, notebook_examples=a.examples)
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    paths = make_corpus(folder, a.n)
    notebooks = [x for x in paths if x.suffix == ".ipynb"]
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "n_notebooks": a.n,
                    "n_modules": a.n, "examples": a.examples}
    cores = os.cpu_count() or 1
    for workers in sorted({1, cores}):
        results, wall = grade(paths, workers, limits, mode="fast")
        secs = [r.seconds for r in results]
        report[f"fast_workers_{workers}"] = {"wall_s": round(wall, 1), "per_submission_median_s": round(statistics.median(secs), 2),
                                             "per_submission_p90_s": round(pct(secs, 0.9), 2),
                                             "throughput_per_min": round(60 * len(paths) / wall, 1)}
        print(workers, report[f"fast_workers_{workers}"], flush=True)
    fast, fast_wall = grade(notebooks, cores, limits, mode="fast")
    full, full_wall = grade(notebooks, cores, limits, mode="kernel")
    same = {r.path: [(e.id, e.status, e.score) for e in r.exercises] for r in fast} == \
           {r.path: [(e.id, e.status, e.score) for e in r.exercises] for r in full}
    plain = plain_nbclient(notebooks, Grader(GradeConfig(limits=limits)).config, timeout=a.timeout * 3)
    report["notebooks"] = {"ours_fast_wall_s": round(fast_wall, 1), "ours_kernel_wall_s": round(full_wall, 1),
                           "plain_nbclient_serial_s": round(sum(plain), 1),
                           "plain_nbclient_median_s": round(statistics.median(plain), 2),
                           "ratio_plain_serial_to_ours_fast": round(sum(plain) / fast_wall, 2),
                           "fast_verdicts_equal_kernel_verdicts": same}
    floor = floor_seconds(Grader(GradeConfig(limits=limits)).config)
    correct = [r for r in fast if r.score == r.max_score]
    report["floor"] = {"student_functions_in_process_s": round(floor, 2),
                       "ours_median_correct_submission_s": round(statistics.median(r.seconds for r in correct), 2) if correct else None}
    report["peak_rss_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
