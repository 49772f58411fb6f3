"""Benchmark: grading speed against plain notebook execution, our overhead, and worker memory.

    python benchmarks/bench_grading.py [--n 40] [--w1 10] [--compare 2] [--timeout 5] [--out FILE]

Builds N notebooks and N modules in the course's layout (half correct, four in ten with a wrong
function, one in ten hanging), starts the warm pool, and reports from this one run:
- seconds per submission (median, 90th percentile) grading all 2N with all cores, and a spread
  sample (--w1, the same mix) with --workers 1;
- plain nbclient executing notebooks top to bottom (what nbgrader and Otter do before they can
  grade), one thread each and as many at once as our workers, on the course's files as shipped
  (the notebook takes its first 5,000 examples) and, for comparison, on the truncated data file
  our workers get; our median time for notebooks of the same kind in the all-cores run; and
  whether our lean verdicts equal our full-execution (kernel) mode's for every kind of notebook;
- the floor: the correct submission's own work (the statements a lean run executes, then its
  functions on every grading input) timed in a fresh process set up like a worker, against our
  median for correct submissions;
- each worker's peak resident memory.
Ratios, not absolute figures, are what carry between machines.

    python benchmarks/bench_grading.py --class-of 300 [--out FILE]

A class on one machine instead: N course-layout notebooks of the same mix, graded with all cores,
against the floor (N times the correct notebook's own work, shared out over the workers) and the
hanging tenth's limits: the wall time, the floor, and what is left, the grader's own.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import attempts  # noqa: E402
from grader.catalogue import EXERCISES  # noqa: E402
from grader.config import usable_cores  # noqa: E402
from grader.engine import GradeConfig, Grader  # noqa: E402
from grader.config import Limits  # noqa: E402
from grader.worker_run import MALLOC_ENV  # noqa: E402

COURSE = ROOT / "grader" / "examples" / "course_layout_correct.py"
EDITS = {  # kind -> (text in the correct submission, replacement)
    "correct": None,
    "wrong_WOV": ("return model.W_V[layer, head] @ model.W_O[layer, head]",
                  "return model.W_O[layer, head].T @ model.W_V[layer, head].T"),
    "wrong_ln_fit": ("    if seq_pos is None:\n        inputs = einops", "    if not seq_pos:\n        inputs = einops"),
    "hangs": ("    return get_activations(model, data.toks, utils.get_act_name(\"pattern\", layer))[:, head, :, :]",
              "    while True:\n        pass"),
}
# one in ten hangs, four in ten are wrong; the first 5 (the --workers 1 sample) hold every kind
CYCLE = ["correct", "wrong_WOV", "correct", "wrong_ln_fit", "hangs",
         "correct", "correct", "wrong_WOV", "correct", "wrong_ln_fit"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def kind_of(path: Path) -> str:
    return CYCLE[int(re.findall(r"\d+", path.stem)[-1]) % len(CYCLE)]


def notebook_json(source: str) -> str:
    cells = [c for c in re.split(r"^# %%.*$", source, flags=re.M) if c.strip()]
    return json.dumps({"cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": c.strip("\n")} for i, c in enumerate(cells)],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                       "nbformat": 4, "nbformat_minor": 5})


def make_corpus(folder: Path, n: int) -> tuple[list[Path], list[Path]]:
    """n notebooks and n modules; the k-th of each has kind CYCLE[k % 10]."""
    src = COURSE.read_text()
    for edit in EDITS.values():
        assert edit is None or edit[0] in src, f"the example no longer contains {edit[0]!r}"
    notebooks, modules = [], []
    for k in range(n):
        edit = EDITS[CYCLE[k % len(CYCLE)]]
        text = src.replace(*edit) if edit else src
        (folder / f"nb_{k:02d}.ipynb").write_text(notebook_json(text))
        (folder / f"mod_{k:02d}.py").write_text(text)
        notebooks.append(folder / f"nb_{k:02d}.ipynb")
        modules.append(folder / f"mod_{k:02d}.py")
    return notebooks, modules


class PeakMemory:
    """Each worker's peak RSS, from the `done` message it sends (grader.worker.main)."""

    def __init__(self) -> None:
        self.kib: list[int] = []
        self._real = attempts.run_worker

    def __enter__(self) -> "PeakMemory":
        def spy(*args, **kwargs):
            run = self._real(*args, **kwargs)
            self.kib += [int(m["max_rss_kb"]) for m in run.messages if m["kind"] == "done" and "max_rss_kb" in m]
            return run

        attempts.run_worker = spy
        return self

    def __exit__(self, *exc) -> None:
        attempts.run_worker = self._real


def grade(grader: Grader, paths: list[Path], workers: int) -> tuple[list, float]:
    started = time.monotonic()
    results = list(grader.grade_many(paths, workers))
    return results, time.monotonic() - started


def per_submission(results, wall: float) -> dict:
    secs = [r.seconds for r in results]
    return {"submissions": len(results), "wall_s": round(wall, 1), "median_s": round(statistics.median(secs), 2),
            "p90_s": round(pct(secs, 0.9), 2), "per_minute": round(60 * len(results) / wall, 1),
            "each_s": {Path(r.path).name: round(r.seconds, 2) for r in results}}


def brief(figures: dict) -> dict:
    """A per_submission dict without its per-file times, for the progress print."""
    return {k: v for k, v in figures.items() if k != "each_s"}


def plain_nbclient(path: Path, weights_pt: str, data: str, timeout: float) -> float:
    """A notebook executed top to bottom by nbclient, as notebook graders do, in a course folder
    holding `data`, its kernel on one thread like our workers. Seconds, kernel start included.
    Runs in a process of its own (--plain-only): it sets the environment the kernel inherits."""
    import nbformat
    from nbclient import NotebookClient

    from grader.worker import course_env

    scratch = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    try:
        workdir, shims = course_env.build(scratch, weights_pt, data, path.read_text())
        os.environ.update({**ONE_THREAD, "PYTHONPATH": f"{shims}{os.pathsep}{ROOT}", "MPLBACKEND": "Agg"})
        nb = nbformat.read(path, as_version=4)
        # the course's plotting and display modules quiet, its files and modules served (what a
        # course folder with circuitsvis & co. installed gives a notebook, at no plotting cost)
        setup = (f"from pathlib import Path\nfrom grader.worker import course_env\n"
                 f"course_env.install_fallbacks(Path({str(scratch)!r}), Path({str(workdir)!r}), Path({str(shims)!r}))")
        nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
        started = time.monotonic()
        NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
        return time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def plain_runs(jobs: list[tuple[Path, str, str]], at_once: int) -> list[float]:
    """plain_nbclient for each (notebook, weights, data), `at_once` processes at a time, as our
    workers run: each on one thread, so on as many cores as run at once."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job: tuple[Path, str, str]) -> float:
        out = subprocess.run([sys.executable, __file__, "--plain-only", *map(str, job)], capture_output=True,
                             text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return list(pool.map(one, jobs))


def floor_in_subprocess(examples: int) -> dict:
    """The floor, measured in a fresh process with a worker's settings (one thread, the same
    allocator settings), so it is what the student's own code costs where we run it."""
    env = {**os.environ, **ONE_THREAD, **MALLOC_ENV}
    out = subprocess.run([sys.executable, __file__, "--floor-only", "--examples", str(examples)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor_seconds(examples: int) -> dict:
    """The correct submission's own work, in this process, with no grader around it: the
    statements a lean run executes (its definitions and the demo lines the object items come
    from, on the same truncated data), then each of its functions on every grading input (the
    inputs are built outside the timing)."""
    import torch

    from grader.inputs import InputFactory
    from grader.public import truncated_data, weights_as_pt
    from grader.worker import course_env
    from grader.worker.lean import lean_statements
    from grader.worker.source import read_cells

    config = GradeConfig().resolved()
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    cells = read_cells(COURSE)
    workdir, shims = course_env.build(scratch, weights_as_pt(config.weights), truncated_data(config.data, examples),
                                      "\n".join(cells))
    objects = [n for ex in EXERCISES for n in ex.names]
    functions = {ex.id for ex in EXERCISES if ex.kind == "function"}
    statements, _, _ = lean_statements(cells, True, objects, functions)
    factory = InputFactory(config.weights, config.data, config.device)
    os.chdir(workdir)
    sys.path.insert(0, str(shims))
    course_env.install_fallbacks(scratch, workdir, shims)  # quiet plotting modules, as in a worker
    namespace = {"__name__": "__main__"}
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        for st in statements:
            exec(st.code("floor"), namespace)  # noqa: S102 - timing the student's own code
    own_code = time.monotonic() - started
    calls = 0.0
    for ex in EXERCISES:
        if ex.kind != "function":
            continue
        fn = namespace[ex.id]
        for case in ex.cases:
            for each in case.each or [None]:
                torch.set_grad_enabled(False)
                args, kwargs = factory.build(list(each) if each is not None else list(case.args), case.kwargs)
                begun = time.monotonic()
                fn(*args, **kwargs)
                calls += time.monotonic() - begun
    shutil.rmtree(scratch, ignore_errors=True)
    return {"own_code_s": round(own_code, 3), "function_calls_s": round(calls, 3), "total_s": round(own_code + calls, 3)}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def verdicts(results) -> dict:
    return {Path(r.path).name: [(e.id, e.status, e.score) for e in r.exercises] for r in results}


def one_class(n: int, limits: Limits, timeout: float, out: str | None) -> None:
    """A class of n notebooks (the mix of CYCLE) graded with all cores, as an instructor's batch:
    its wall time against its floor, the students' own compute shared out over the workers (every
    notebook does the correct one's work; a hanging one also waits out its call's limit, half of
    --timeout, once in its first pass)."""
    begun = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="bench-class-"))
    notebooks, _ = make_corpus(folder, n)
    for module in folder.glob("mod_*.py"):
        module.unlink()
    cores = usable_cores()
    grader = Grader(GradeConfig(limits=limits))
    grader.grade(notebooks[0])  # starts the warm pool and fills the reference cache; not counted
    results, wall = grade(grader, notebooks, cores)
    grader.close()
    floor = floor_in_subprocess(limits.notebook_examples)
    hanging = sum(kind_of(nb) == "hangs" for nb in notebooks)
    floor_wall = (n * floor["total_s"] + hanging * timeout / 2) / cores
    figures = per_submission(results, wall)
    report = {"machine": {"cpus": cores, "python": sys.version.split()[0], "torch_threads_per_worker": 1},
              "class_of": n, "mix": {k: CYCLE.count(k) / len(CYCLE) for k in EDITS}, "item_timeout_s": timeout,
              "workers": cores, **figures,
              "by_kind_median_s": {k: round(statistics.median(secs), 2) for k in EDITS
                                   if (secs := [r.seconds for r in results if kind_of(Path(r.path)) == k])},
              "floor_per_notebook": floor, "floor_wall_s": round(floor_wall, 1),
              "ratio_wall_to_floor": round(wall / floor_wall, 2),
              "grader_own_s_per_notebook": round((wall - floor_wall) * cores / n, 2),
              "benchmark_wall_s": round(time.monotonic() - begun, 1)}
    text = json.dumps(report, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "each_s"}, indent=1))
    if out:
        Path(out).write_text(text + "\n")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=40, help="notebooks (and as many modules)")
    p.add_argument("--w1", type=int, default=10, help="submissions also graded with --workers 1 (a spread sample)")
    p.add_argument("--compare", type=int, default=2,
                   help="notebooks also executed by plain nbclient (a minute and a half each on the course's data)")
    p.add_argument("--examples", type=int, default=None, help="size of the data file our workers give a submission")
    p.add_argument("--timeout", type=float, default=5,
                   help="per-item limit; a call may take half of it (where the hanging ones stop)")
    p.add_argument("--out", default=None, help="also write the JSON report here")
    p.add_argument("--class-of", type=int, default=None, metavar="N",
                   help="only grade a class of N course-layout notebooks with all cores, against the floor")
    p.add_argument("--floor-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--plain-only", nargs=3, metavar=("NOTEBOOK", "WEIGHTS", "DATA"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.plain_only:
        notebook, weights, data = a.plain_only
        print(plain_nbclient(Path(notebook), weights, data, timeout=300))
        return
    limits = Limits.per_item(a.timeout, **({"notebook_examples": a.examples} if a.examples else {}))
    if a.floor_only:
        print(json.dumps(floor_seconds(limits.notebook_examples)))
        return
    if a.class_of:
        return one_class(a.class_of, limits, a.timeout, a.out)
    begun = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    notebooks, modules = make_corpus(folder, a.n)
    cores = usable_cores()
    report: dict = {"machine": {"cpus": cores, "python": sys.version.split()[0], "torch_threads_per_worker": 1},
                    "notebooks": a.n, "modules": a.n, "mix": {k: CYCLE.count(k) / len(CYCLE) for k in EDITS},
                    "examples_given_to_submissions": limits.notebook_examples, "item_timeout_s": a.timeout}
    grader = Grader(GradeConfig(limits=limits))
    warm_started = time.monotonic()
    grader.grade(modules[0])  # starts the warm pool and fills the reference cache; not counted
    report["warm_up_s"] = round(time.monotonic() - warm_started, 1)

    with PeakMemory() as memory:
        everything, wall = grade(grader, notebooks + modules, cores)
    report[f"workers_{cores}"] = per_submission(everything, wall)
    report[f"workers_{cores}"]["by_kind_median_s"] = {
        k: round(statistics.median([r.seconds for r in everything if kind_of(Path(r.path)) == k]), 2) for k in EDITS}
    print("all cores", brief(report[f"workers_{cores}"]), flush=True)
    half = max(1, a.w1 // 2)
    sample = notebooks[:half] + modules[:half]
    one, wall1 = grade(grader, sample, 1)
    report["workers_1"] = per_submission(one, wall1)
    print("one worker", brief(report["workers_1"]), flush=True)
    grader.close()
    report["worker_peak_rss_mb"] = {"median": round(statistics.median(memory.kib) / 1024),
                                    "max": round(max(memory.kib) / 1024), "workers": len(memory.kib)}

    # plain runs go as many at a time as our workers did, each on one thread; ours is the median
    # of the all-cores run's notebooks of the same kind (identical notebooks: the first wrong
    # one also pays for work cached for the rest, such as the reference's answers for helpers)
    ours_by_kind = {k: statistics.median([r.seconds for r in everything
                                          if kind_of(Path(r.path)) == k and r.path.endswith(".ipynb")]) for k in EDITS}
    compared = [x for x in notebooks[:half] if kind_of(x) in ("correct", "wrong_WOV", "wrong_ln_fit")][: a.compare]
    course_data, ours_data = grader.config.data, grader.notebook_data
    jobs = [(nb, grader.setting.weights_pt, d) for d in (course_data, ours_data) for nb in compared]
    times = plain_runs(jobs, cores)
    rows = []
    for i, nb in enumerate(compared):
        rows.append({"notebook": nb.name, "kind": kind_of(nb), "plain_course_data_s": round(times[i], 1),
                     "plain_our_data_s": round(times[len(compared) + i], 1),
                     "ours_median_of_kind_s": round(ours_by_kind[kind_of(nb)], 2)})
        print(rows[-1], flush=True)
    plain, plain_ours, ours = (sum(r[k] for r in rows) for k in ("plain_course_data_s", "plain_our_data_s",
                                                                 "ours_median_of_kind_s"))
    report["plain_nbclient"] = {"notebooks": rows, "ratio_plain_to_ours": round(plain / ours, 2),
                                "ratio_plain_on_our_data_to_ours": round(plain_ours / ours, 2)}

    kinds = {}
    for nb in notebooks:
        kinds.setdefault(kind_of(nb), nb)
    full_grader = Grader(GradeConfig(limits=limits, notebook_mode="kernel"))
    full, full_wall = grade(full_grader, list(kinds.values()), cores)
    full_grader.close()
    lean_verdicts = verdicts(everything)
    differ = {k: v for k, v in verdicts(full).items() if lean_verdicts[k] != v}
    report["lean_vs_full_execution"] = {"notebooks": sorted(kinds[k].name for k in kinds), "identical": not differ,
                                        "differences": differ, "full_execution_wall_s": round(full_wall, 1)}
    print("lean vs full", report["lean_vs_full_execution"], flush=True)

    floor = floor_in_subprocess(limits.notebook_examples)
    correct = [r.seconds for r in one if kind_of(Path(r.path)) == "correct"]
    report["floor"] = {**floor, "ours_median_correct_s": round(statistics.median(correct), 2),
                       "ratio_ours_to_floor": round(statistics.median(correct) / floor["total_s"], 2)}
    report["benchmark_wall_s"] = round(time.monotonic() - begun, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
