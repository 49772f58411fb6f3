"""Benchmark: how far the slowest shard is from the mean on a mixed class, with shards dealt by
expected cost (grader.shards) against a split by file name (what --shard did before).

    python benchmarks/bench_shards.py [--copies 2] [--shards 3 4 6] [--out FILE]

Builds a mixed class from the corpus (notebooks and modules of every layout, short and long, right
and wrong; --copies of each), grades it once with two workers, keeping each submission's own
seconds (after one submission, not counted, that fills the reference's cache, as the recipes
prepare it before the shards), then adds up each shard's seconds under both splits. A shard's
time is the sum of its submissions' (one worker per shard, as the recipes run): the ratio
slowest / mean is the figure (target: within 1.15 for the cost-dealt split).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import shards  # noqa: E402
from grader.engine import GradeConfig, Grader  # noqa: E402
from tests.corpus.field import ALL  # noqa: E402
from tests.corpus.submissions import build  # noqa: E402


def by_name(paths: list[Path], n: int) -> list[list[Path]]:
    """The old split: a hash of each file's name."""
    out = [[] for _ in range(n)]
    for p in paths:
        out[int(hashlib.sha256(p.name.encode()).hexdigest(), 16) % n].append(p)
    return out


def imbalance(split: list[list[Path]], seconds: dict[Path, float]) -> float:
    loads = [sum(seconds[p] for p in shard) for shard in split]
    return max(loads) / statistics.fmean(loads)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--shards", type=int, nargs="+", default=[3, 4, 6])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    paths: list[Path] = []
    subs = [s for s in ALL if s.base != "colab"]
    for copy in range(args.copies):
        built = build(folder / f"copy{copy}", subs)
        for path in built.values():  # a class has one file per student: names that do not repeat
            renamed = folder / f"{path.stem}-{copy}{path.suffix}"
            path.rename(renamed)
            paths.append(renamed)
    grader = Grader(GradeConfig())
    try:
        # one course-layout submission first, not counted: it starts the warm pool and fills the
        # reference's cache, as a shard finds it after the recipes' --prepare-cache step
        warm_up = build(folder / "warm-up", [next(s for s in subs if "course_module" in s.name)])
        grader.grade(next(iter(warm_up.values())))
        started = time.monotonic()
        results = list(grader.grade_many(paths, workers=2))
    finally:
        grader.close()
    wall = time.monotonic() - started
    seconds = {Path(r.path): r.seconds for r in results}
    predicted = {p: shards.cost(p) for p in paths}
    report = {"submissions": len(paths), "wall_seconds": round(wall, 1),
              "seconds_median": round(statistics.median(seconds.values()), 2),
              "cost_vs_seconds_correlation": round(statistics.correlation([predicted[p] for p in paths],
                                                                          [seconds[p] for p in paths]), 3),
              "shards": {}}
    for n in args.shards:
        report["shards"][n] = {"by_name": round(imbalance(by_name(paths, n), seconds), 3),
                               "by_cost": round(imbalance(shards.deal(paths, n), seconds), 3)}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps({**report, "per_submission": {p.name: seconds[p] for p in paths}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
