"""Time `grader.check()` in a real Jupyter kernel, as a student meets it.

    .venv/bin/python benchmarks/bench_check.py [--out benchmarks/last_check.json]

A notebook in the course's layout (the course's setup, our model's files under the course's
names, one right and one wrong function, an object item) runs through nbclient twice, each time in
a new kernel: first with an empty reference cache (a new machine), then with the cache the first
run left (a new notebook session). In each kernel it times the first `grader.check()` (every item),
then `grader.check("get_WOV")` and `grader.check()` again (warm: same kernel), and, for scale, the
item's own calls (get_WOV on every layer and head) in the same kernel.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMING = '''
import json, time
import grader
t0 = time.perf_counter(); grader.check(); first = time.perf_counter() - t0
t0 = time.perf_counter(); one = grader.check("get_WOV"); warm_one = time.perf_counter() - t0
verdict = {e.id: e.status for e in one.exercises}["get_WOV"]
t0 = time.perf_counter(); grader.check(); warm_all = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(10):
    [get_WOV(model, l, h) for l in range(3) for h in range(2)]
own = (time.perf_counter() - t0) / 10
print("TIMES" + json.dumps({"first check (every item)": first, "warm check of one item": warm_one,
                            "warm check (every item)": warm_all, "get_WOV's own calls": own,
                            "get_WOV's verdict": verdict}))
'''


def session(folder: Path, cache: Path) -> dict:
    from tests.test_notebook_check import COURSE_MODEL, COURSE_SETUP, FUNCTIONS, OBJECT, run_notebook

    os.environ["BRACKET_GRADER_CACHE"] = str(cache)
    cells = run_notebook([COURSE_SETUP, COURSE_MODEL, FUNCTIONS, OBJECT, TIMING], folder)
    text = "".join(o.get("text", "") for o in cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.split("TIMES", 1)[1].splitlines()[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None)
    args = p.parse_args()
    from grader.engine import GradeConfig, Grader
    from tests.test_notebook_check import course_folder

    base = Path(tempfile.mkdtemp(prefix="bench-check-"))
    section = course_folder(base, Grader(GradeConfig(warm_pool=False)))
    cache = base / "cache"
    report = {"new machine (empty cache)": session(section, cache), "cache warm, new kernel": session(section, cache)}
    for name, times in report.items():
        print(name)
        for what, value in times.items():
            print(f"  {what:<28} {value:7.2f} s" if isinstance(value, float) else f"  {what:<28} {value}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
