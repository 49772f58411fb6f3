"""Results as frozen values: one per case, per exercise, per submission. Every failure is a result,
so a score always exists. Reports read these and hold no scoring logic."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passed", "partial", "failed", "error", "timeout", "missing", "not_autograded"]
STATUSES: tuple[str, ...] = ("passed", "partial", "failed", "error", "timeout", "missing", "not_autograded")


@dataclass(frozen=True)
class CaseOutcome:
    """One argument combination: passed, or why not (`kind`: wrong, error, timeout, not_implemented, skipped)."""

    label: str
    passed: bool
    kind: str = "pass"
    message: str = ""


@dataclass(frozen=True)
class ExerciseResult:
    id: str
    status: Status
    score: float
    max_score: float
    feedback: str
    cases: tuple[CaseOutcome, ...] = ()

    def to_json(self) -> dict:
        return {"id": self.id, "status": self.status, "score": self.score, "max_score": self.max_score,
                "feedback": self.feedback}


@dataclass(frozen=True)
class SubmissionResult:
    path: str
    exercises: tuple[ExerciseResult, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)  # submission-level remarks (cell errors, limits)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.exercises), 6)

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score for e in self.exercises), 6)

    def to_json(self) -> dict:
        return {"path": self.path, "score": self.score, "max_score": self.max_score,
                "exercises": [e.to_json() for e in self.exercises], "notes": list(self.notes),
                "seconds": round(self.seconds, 3)}

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for e in self.exercises:
            counts[e.status] += 1
        return counts


def submission_from_json(data: dict) -> SubmissionResult:
    """Inverse of SubmissionResult.to_json (for resumed and merged reports)."""
    exercises = tuple(ExerciseResult(e["id"], e["status"], float(e["score"]), float(e["max_score"]), e["feedback"])
                      for e in data["exercises"])
    return SubmissionResult(data["path"], exercises, tuple(data.get("notes", ())), float(data.get("seconds", 0.0)))
