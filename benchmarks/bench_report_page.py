"""Benchmark: the class report page for a large batch: seconds to write it and its size.

    python benchmarks/bench_report_page.py [--n 300] [--out FILE]

Builds n submissions' results the way a batch reports them (a mix of passed, failed with a
diagnosed cause, given a correct helper, errors, notes), then times `page_html` (median of five,
the first call, which also compresses plotly.js once per process, reported apart) and reports the
page's size. Targets (issue 15): under 2 s and under 5 MB for 300 submissions.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.catalogue import IDS  # noqa: E402
from grader.report_page import page_html  # noqa: E402
from grader.results import ExerciseResult, SubmissionResult  # noqa: E402


def batch(n: int) -> list[SubmissionResult]:
    out = []
    for k in range(n):
        exercises = []
        for j, i in enumerate(IDS):
            if (j + k) % 7 == 0:
                exercises.append(ExerciseResult(i, "failed", 0.0, 1.0, f"0 of 7 cases passed.\n- {i}(layer=0): 3080 of "
                                                "3136 elements differ (first at index [0, 1]); largest difference 0.426 "
                                                "(allowed 0.00027); likely cause: the matrix is transposed"))
            elif (j + k) % 11 == 0:
                exercises.append(ExerciseResult(i, "passed", 1.0, 1.0, "correct, given a correct get_activations"))
            elif (j * k) % 13 == 5:
                exercises.append(ExerciseResult(i, "error", 0.0, 1.0, "Traceback ...\nValueError: shapes differ " * 5))
            else:
                exercises.append(ExerciseResult(i, "passed", 1.0, 1.0, ""))
        notes = ("cell 12 raised NameError: name 'x' is not defined",) if k % 5 == 0 else ()
        out.append(SubmissionResult(f"/class/student_{k:04d}/exercises.ipynb", tuple(exercises), notes, 8.0 + k % 13))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--out")
    a = p.parse_args()
    results = batch(a.n)
    run = {"grader_version": "0.1.0", "device": "cpu", "workers": 2, "seconds": 3600.0}
    started = time.monotonic()
    text = page_html(results, run, "feedback", "class.html")
    first = time.monotonic() - started
    times = []
    for _ in range(5):
        started = time.monotonic()
        page_html(results, run, "feedback", "class.html")
        times.append(time.monotonic() - started)
    report = {"submissions": a.n, "first_call_s": round(first, 3), "median_s": round(statistics.median(times), 3),
              "bytes": len(text.encode()), "mb": round(len(text.encode()) / 1024**2, 2)}
    print(json.dumps(report, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
