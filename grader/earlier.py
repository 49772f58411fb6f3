"""A course that keeps each student's best: Gradescope's `submission_metadata.json` lists the
student's earlier submissions (`previous_submissions`: submission_time, score, results), and where
the course file says `keep = "best"` ([gradescope]), an earlier submission's higher score stands,
said as such (results.Kept) beside this submission's own verdicts and score.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from grader.results import Kept, SubmissionResult

KEEPS = ("latest", "best")  # Gradescope's own rule (the active submission counts), or the best so far


def best_earlier(metadata: Path) -> Kept | None:
    """The highest-scoring earlier submission in submission_metadata.json (the earliest of equal
    ones); None where there is none with a score. A malformed entry is left out."""
    data = json.loads(metadata.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{metadata}: not a JSON object")
    earlier = data.get("previous_submissions") or []
    if not isinstance(earlier, list):
        raise ValueError(f"{metadata}: previous_submissions is not a list")
    best: Kept | None = None
    for entry in earlier:
        if not isinstance(entry, dict):
            continue
        try:
            score = float(entry.get("score"))
        except (TypeError, ValueError):
            continue
        if not math.isfinite(score) or score < 0:
            continue
        if best is None or score > best.score:
            best = Kept(round(score, 6), str(entry.get("submission_time") or "")[:40], len(earlier))
    return best


def keep_best(result: SubmissionResult, metadata: Path) -> SubmissionResult:
    """The result, with an earlier submission's score kept (at most this assignment's maximum) where
    it is higher than this one's: a file that is not a submission at all keeps it too (an upload of
    the wrong file does not undo the best)."""
    result = replace(result, kept=None)
    best = best_earlier(metadata)
    if best is not None:
        best = replace(best, score=min(best.score, result.max_score))
    return replace(result, kept=best) if best is not None and best.score > result.own_score else result
