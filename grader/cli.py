"""`bracket-grade PATH...`: grade submissions and write reports.

Exit status 0 when grading completed, whatever the scores; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from grader.catalogue import IDS
from grader.sandbox import Limits

EXAMPLE = Path(__file__).resolve().parent / "examples" / "example_submission.py"


class UsageError(Exception):
    pass


def read_points(path: str) -> dict[str, float]:
    """Points per item from a JSON object (`{"get_ln_fit": 2, "embedding": 0}`) or `id = points` lines."""
    text = Path(path).read_text()
    try:
        raw = json.loads(text)
    except ValueError:
        raw = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line and ":" not in line:
                raise UsageError(f"{path}:{n}: expected `id = points`")
            key, value = line.replace(":", "=", 1).split("=", 1)
            raw[key.strip().strip('"')] = value.strip()
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping from item id to points")
    points = {}
    for key, value in raw.items():
        if key not in IDS:
            raise UsageError(f"{path}: unknown item id {key!r}")
        try:
            points[key] = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{path}: points for {key} must be a number") from None
        if points[key] < 0:
            raise UsageError(f"{path}: points for {key} must not be negative")
    return points


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bracket-grade", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help=".py or .ipynb submissions, or folders of them (default: a bundled example)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--csv", metavar="FILE", help="write one row per submission, one column per item")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per item)")
    p.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json (one submission)")
    p.add_argument("--weights", metavar="FILE", help="model weights: our .safetensors or the course's .pt")
    p.add_argument("--data", metavar="FILE", help="data JSON: ours or the course's brackets_data.json")
    p.add_argument("--also-model", metavar="FILE", action="append", default=[],
                   help="other weights that object items may have been computed with")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--timeout", type=float, default=Limits.item_seconds, metavar="SECONDS",
                   help=f"wall-clock limit per item (default {Limits.item_seconds:g})")
    p.add_argument("--submission-timeout", type=float, default=Limits.submission_seconds, metavar="SECONDS")
    p.add_argument("--memory", type=float, default=Limits.memory_bytes / 1024**3, metavar="GIB",
                   help="address-space limit per worker")
    p.add_argument("--points", metavar="FILE", help="points per item (JSON or `id = points` lines)")
    p.add_argument("--only", metavar="IDS", help="comma-separated item ids to grade")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"bracket-grade: error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from grader import reports
    from grader.engine import GradeConfig, Grader, find_submissions

    points = read_points(args.points) if args.points else {}
    only = tuple(s.strip() for s in args.only.split(",")) if args.only else ()
    unknown = [i for i in only if i not in IDS]
    if unknown:
        raise UsageError(f"unknown item id(s): {', '.join(unknown)}")
    for flag, value in (("--weights", args.weights), ("--data", args.data), *(("--also-model", m) for m in args.also_model)):
        if value and not Path(value).is_file():
            raise UsageError(f"{flag}: no such file: {value}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    paths = args.paths or [str(EXAMPLE)]
    if not args.paths:
        print(f"No submission given: grading the bundled example {EXAMPLE.name}\n")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    submissions = find_submissions(paths)
    if not submissions:
        raise UsageError("no .py or .ipynb submissions found")
    if args.gradescope and len(submissions) != 1:
        raise UsageError("--gradescope writes one submission's results: give exactly one")
    limits = Limits(item_seconds=args.timeout, submission_seconds=args.submission_timeout,
                    memory_bytes=int(args.memory * 1024**3))
    grader = Grader(GradeConfig(args.weights, args.data, args.device, limits, points, only, tuple(args.also_model)))
    results = []
    for result in grader.grade_many(submissions, args.workers):
        results.append(result)
        if not args.quiet:
            print(reports.terminal_table(result) + "\n", flush=True)
    order = {str(p): i for i, p in enumerate(submissions)}
    results.sort(key=lambda r: order.get(r.path, len(order)))
    print(reports.summary_line(results))
    if args.json:
        reports.write_atomic(args.json, reports.json_text(results))
    if args.csv:
        reports.write_atomic(args.csv, reports.csv_text(results))
    if args.junit:
        reports.write_atomic(args.junit, reports.junit_text(results))
    if args.gradescope:
        reports.write_atomic(args.gradescope, reports.gradescope_json(results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
