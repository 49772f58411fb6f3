"""Benchmark: one file graded in a new process, the student's and the pull request's case.

    python benchmarks/bench_one_file.py [--repeat 3] [--out FILE]

Every row is a new process started by this script, one after the other on an idle machine, and
every figure is compared with a baseline measured in the same run:
- `python -c "import torch, transformer_lens"`: what any tool that runs this course's code pays
  before it does anything;
- plain nbclient executing the notebook top to bottom on the course's files as shipped (what
  nbgrader and Otter do before they can grade; the course's plotting modules quiet);
- `bracket-grade NOTEBOOK` and `bracket-grade NOTEBOOK --only get_WOV`, the disk caches warm
  (after one run that fills them, not counted);
- `bracket-grade NOTEBOOK` on a new machine: empty reference cache and an empty public folder
  (a temporary folder of its own), and, in a process of its own, how much of that is computing
  the reference's answers.
The notebook is the bundled correct course-layout submission. Targets (issue 16): the notebook at
most a sixth of plain nbclient; one item at most 1.5 times the import.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_grading import COURSE, notebook_json  # noqa: E402

from grader.config import usable_cores  # noqa: E402

GRADE = [sys.executable, "-m", "grader.cli", "--quiet"]


CHECKOUT = ROOT  # the grader measured: this one, or another checkout's (--checkout)


def seconds(cmd: list[str], env: dict | None = None) -> float:
    started = time.monotonic()
    subprocess.run(cmd, cwd=CHECKOUT, env={**os.environ, **(env or {})}, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def median_of(n: int, cmd: list[str], env: dict | None = None) -> float:
    return round(statistics.median(seconds(cmd, env) for _ in range(n)), 2)


def plain(notebook: Path) -> float:
    """bench_grading's plain nbclient run, on the course's data as shipped."""
    from grader.public import weights_as_pt
    from reference.paths import DEFAULT_DATA, DEFAULT_WEIGHTS

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_grading.py"), "--plain-only", str(notebook),
                          weights_as_pt(str(DEFAULT_WEIGHTS)), str(DEFAULT_DATA)], capture_output=True, text=True,
                         check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def new_machine(notebook: Path) -> dict:
    """The first run anywhere: nothing cached, nothing public made yet; and the reference's
    answers for every item computed alone, in a process of its own, on the same empty state."""
    with tempfile.TemporaryDirectory(prefix="bench-new-machine-") as empty:
        env = {"BRACKET_GRADER_CACHE": f"{empty}/cache", "TMPDIR": f"{empty}/tmp"}
        os.chmod(empty, 0o755)  # workers of their own uid read the public folder inside it
        os.mkdir(env["TMPDIR"])
        total = seconds(GRADE + [str(notebook)], env)
    with tempfile.TemporaryDirectory(prefix="bench-new-machine-") as empty:
        env = {"BRACKET_GRADER_CACHE": f"{empty}/cache", "TMPDIR": f"{empty}/tmp"}
        os.chmod(empty, 0o755)  # workers of their own uid read the public folder inside it
        os.mkdir(env["TMPDIR"])
        code = ("import time; from grader.engine import Grader; g = Grader(); t = time.monotonic(); "
                "g.reference.warm(); print(time.monotonic() - t); g.close()")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                             text=True, check=True)
        answers = float(out.stdout.strip().splitlines()[-1])
    return {"total_s": round(total, 1), "reference_answers_s": round(answers, 1),
            "rest_s": round(total - answers, 1)}


def restored_cache(notebook: Path, repeat: int) -> float:
    """A CI runner after the first: the grader's cache restored (this machine's, warm), the
    temporary folder new and empty (no public copies: the `.pt` comes back from the cache)."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-runner-") as empty:
            os.chmod(empty, 0o755)  # workers of their own uid read the public folder inside it
            os.mkdir(f"{empty}/tmp")
            times.append(seconds(GRADE + [str(notebook)], {"TMPDIR": f"{empty}/tmp"}))
    return round(statistics.median(times), 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="runs per row (the median is reported)")
    p.add_argument("--out", help="also write the JSON report here")
    p.add_argument("--rows", choices=("all", "warm"), default="all",
                   help="warm: only the import and the two warm-cache rows (what a change of the grader moves)")
    p.add_argument("--checkout", type=Path, help="measure the grader of this checkout (benchmarks/against_commit.sh)")
    a = p.parse_args()
    global CHECKOUT
    CHECKOUT = (a.checkout or ROOT).resolve()
    folder = Path(tempfile.mkdtemp(prefix="bench-one-file-"))
    notebook = folder / "correct.ipynb"
    notebook.write_text(notebook_json(COURSE.read_text()))
    report: dict = {"machine": {"cpus": usable_cores(), "python": sys.version.split()[0]}}
    report["import_torch_transformer_lens_s"] = median_of(a.repeat, [sys.executable, "-c", "import torch, transformer_lens"])
    seconds(GRADE + [str(notebook)])  # fills the caches; not counted
    report["notebook_warm_caches_s"] = median_of(a.repeat, GRADE + [str(notebook)])
    report["one_item_warm_caches_s"] = median_of(a.repeat, GRADE + [str(notebook), "--only", "get_WOV"])
    report["ratio_one_item_to_import"] = round(report["one_item_warm_caches_s"]
                                               / report["import_torch_transformer_lens_s"], 2)
    if a.rows == "warm":
        print(json.dumps(report))
        return
    report["plain_nbclient_s"] = plain(notebook)
    report["notebook_cache_restored_temp_empty_s"] = restored_cache(notebook, a.repeat)
    report["notebook_new_machine"] = new_machine(notebook)
    report["ratio_plain_to_notebook"] = round(report["plain_nbclient_s"] / report["notebook_warm_caches_s"], 2)
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
