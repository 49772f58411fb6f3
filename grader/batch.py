"""Batch grading helpers (trusted side): a results log for resuming, progress, merging shards (grader.shards)."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterable, TextIO

from grader import __version__
from grader.inert import inert
from grader.reports import submission_json
from grader.results import SubmissionResult, submission_from_json


def submission_key(path: Path, context: str) -> str:
    """Identifies a grading: the file (its path, so that two students who hand in the same bytes
    keep a result each, and its bytes), the grader version, the model/data/options. A file that
    cannot be read (a link the grader refuses) is keyed by its path alone: its result is logged
    like any other, and a resumed batch goes past it."""
    try:
        h = hashlib.sha256(path.read_bytes() if not path.is_symlink() else b"symbolic link")
    except OSError:
        h = hashlib.sha256(b"unreadable")
    h.update(f"{__version__}|{path}|{context}".encode())
    return h.hexdigest()


class ResultsLog:
    """Results appended one JSON line per submission as each finishes: an interrupted batch keeps
    what it finished, and `--resume` skips what is already there with the same key."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, SubmissionResult] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    self.done[record["key"]] = submission_from_json(record["result"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interrupt

    def append(self, key: str, result: SubmissionResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # students' marks: readable by the grader's user only, whatever the umask
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(json.dumps({"key": key, "result": submission_json(result)}) + "\n")
            f.flush()
        self.done[key] = result


class Progress:
    """done/total, rate, ETA and failures so far: one updating line on a terminal, plain log lines
    otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total, self.done, self.failures = total, 0, 0
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def update(self, result: SubmissionResult) -> None:
        self.done += 1
        self.failures += any(e.status in ("error", "timeout") for e in result.exercises)
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        line = (f"[{self.done}/{self.total}] {rate * 60:.1f}/min, ETA {eta:.0f}s, "
                f"{self.failures} with errors or timeouts; last: {inert(Path(result.path).name)} {result.score:g}/{result.max_score:g}")
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def merge_reports(paths: Iterable[Path]) -> list[SubmissionResult]:
    """Shard reports (JSON) into one list, sorted by path as a single run's report is."""
    merged: dict[str, SubmissionResult] = {}
    for p in paths:
        for sub in json.loads(Path(p).read_text())["submissions"]:
            merged[sub["path"]] = submission_from_json(sub)
    return [merged[k] for k in sorted(merged)]


def merged_run(paths: Iterable[Path]) -> dict:
    """The shards' run records as one: every shard's workers and seconds added up, the highest of
    their trusted processes' peaks, and whatever was not enforced on any of them."""
    runs = [json.loads(Path(p).read_text()).get("run") or {} for p in paths]
    runs = [r for r in runs if r]
    if not runs:
        return {}
    missing = sorted({m for r in runs for m in (r.get("isolation") or {}).get("not_enforced", [])})
    merged = {**runs[0], "shards": len(runs), "workers": sum(r.get("workers", 0) for r in runs),
              "seconds": round(sum(r.get("seconds", 0) for r in runs), 1),
              "isolation": {**(runs[0].get("isolation") or {}), "not_enforced": missing}}
    peaks = [r["trusted_peak_mib"] for r in runs if "trusted_peak_mib" in r]
    if peaks:
        merged["trusted_peak_mib"] = max(peaks)
    return merged
