"""Results as frozen values: one per case, per exercise, per submission (trusted side).

Every failure is a result, so a score always exists. A result holds facts as fields (the likely
cause, the failing case, the condition a pass was given on, the cells that raised); the words a
student reads are made from them by the renderers (grader.feedback, grader.reports), never stored
here and never parsed back. JSON (`to_json` / `submission_from_json`) carries every field, so a
resumed or merged report renders exactly as the run that graded it (the JSON is written by
grader.reports, which has the words too; it is read back here).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

# not_attempted: the starter's stub, unchanged; provided: code the starter gives complete, unchanged
# (grader.starters): neither is the student's work
Status = Literal["passed", "partial", "failed", "error", "timeout", "missing", "not_attempted", "provided",
                 "not_autograded"]
STATUSES: tuple[str, ...] = ("passed", "partial", "failed", "error", "timeout", "missing", "not_attempted", "provided",
                             "not_autograded")
SCHEMA = 5  # of the JSON report: 2 added the fields below (cases, cause, condition, cell errors, starter); 3,
# replaced; 4, a submission's not_gradable, raw_score and late, and an item's override; 5, kept and own_score


# an object's category when it was computed with a model the grader does not know (the submission's
# own code changed the model in place): a second look computes it again on an unchanged one
UNKNOWN_MODEL = "unknown_model"


@dataclass(frozen=True)
class Difference:
    """What a comparator found wrong with an answer."""

    detail: str  # what differs, in words ("wrong shape: expected [10, 1000], got [7, 1000]")
    category: str = "values"  # type | shape | values | nonfinite | length | names | range
    cause: str = ""  # the likely cause: a grader.mistakes id ("" when none is recognised)


@dataclass(frozen=True)
class CaseOutcome:
    """One argument combination: passed, or why not."""

    label: str  # the arguments, as the catalogue names them ("layer=2, head=1")
    passed: bool
    kind: str = "pass"  # pass | wrong | error | timeout | not_implemented | skipped | side_effect | memory
    detail: str = ""  # what differs, the error and its traceback, or what the call changed
    category: str = ""  # a wrong value's Difference.category, an error's exception type
    cause: str = ""  # a grader.mistakes id
    same_as: str = ""  # the case whose right answer this wrong one equals (an argument ignored)
    also: str = ""  # a wrong value that also changed what it was given: what it changed


@dataclass(frozen=True)
class Condition:
    """What a pass (or a raised score) was given on."""

    helpers: tuple[str, ...] = ()  # the reference stood in for these helpers (each scored on its own)
    recomputed: bool = False  # an object computed again by the submission's code (else a function graded)
    course_examples: int = 0  # computed again on the course's data size (code written for it)


@dataclass(frozen=True)
class Replaced:
    """An object judged on the value its own exercise cell gave it, which a later statement of the
    submission replaced (a scratch line two exercises on must not cost the answer)."""

    cell: int  # the exercise's cell, whose value was judged
    by_cell: int  # the cell of the later statement that bound the name to another value
    tested: bool = False  # the course's test call in the exercise cell was given that value


@dataclass(frozen=True)
class Overridden:
    """An instructor's regrade of an item (grader.overrides): the points they gave, and why."""

    points: float
    graded_score: float  # what the grader gave
    reason: str
    who: str = ""


@dataclass(frozen=True)
class ExerciseResult:
    id: str
    status: Status
    score: float
    max_score: float
    detail: str = ""  # a result not made of cases: what happened, in words
    cases: tuple[CaseOutcome, ...] = ()
    cause: str = ""  # an object item's likely cause (a function item's are on its cases)
    category: str = ""  # an object item's kind of difference (Difference.category), or UNKNOWN_MODEL
    condition: Condition | None = None
    taken_from_course: bool = False  # the function came from the course's solutions: not the student's work
    starter: str = ""  # not_attempted / provided: the starter whose code this item is, unchanged
    replaced: Replaced | None = None  # judged on the exercise cell's value, replaced later
    override: Overridden | None = None  # an instructor's regrade: `score` is theirs

    @property
    def failing(self) -> CaseOutcome | None:
        """The first case that did not pass and was run."""
        return next((c for c in self.cases if not c.passed and c.kind != "skipped"), None) or \
            next((c for c in self.cases if c.kind == "memory"), None)

    @property
    def likely_cause(self) -> str:
        """The mistake id the verdict names first ("" when none)."""
        case = self.failing
        return self.cause or (case.cause if case else "")


@dataclass(frozen=True)
class Late:
    """A submission handed in after its due date, and what the course's policy takes off (grader.late)."""

    submitted: str  # ISO 8601, with its offset
    due: str  # the student's own due date (an extension included)
    days_late: float
    percent: float  # of the score taken off
    after_zero: bool = False  # handed in after the date beyond which it scores 0


@dataclass(frozen=True)
class Kept:
    """An earlier submission's higher score, which stands (a course that keeps each student's best:
    grader.earlier)."""

    score: float
    submitted: str  # ISO 8601, as Gradescope gave it
    of: int  # how many earlier submissions there were


NOT_GRADABLE_REASONS = ("empty", "binary", "not_a_notebook", "no_items", "unreadable")


@dataclass(frozen=True)
class NotGradable:
    """A file that is not a submission (grader.gradable): reported apart from a score of 0."""

    reason: str  # one of NOT_GRADABLE_REASONS
    detail: str = ""  # the fact behind it ("0 bytes", the JSON error)


@dataclass(frozen=True)
class CellError:
    """A cell (or statement) of the submission's own code that raised, was stopped or skipped."""

    cell: int
    type: str
    message: str


@dataclass(frozen=True)
class SubmissionResult:
    path: str
    exercises: tuple[ExerciseResult, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)  # submission-level remarks (skipped statements, limits)
    seconds: float = 0.0
    cell_errors: tuple[CellError, ...] = ()  # the first run's cells that raised
    not_gradable: NotGradable | None = None  # not a submission at all: its items are errors, its score none
    late: Late | None = None  # handed in late: `score` is after the penalty, `raw_score` before
    kept: Kept | None = None  # an earlier submission's higher score stands: `score` is it, `own_score` this one's

    @property
    def raw_score(self) -> float:
        return round(sum(e.score for e in self.exercises), 6)

    @property
    def own_score(self) -> float:
        """This submission's score (after a late penalty), whatever an earlier one scored."""
        return round(self.raw_score * (1 - self.late.percent / 100), 6) if self.late else self.raw_score

    @property
    def score(self) -> float:
        return max(self.own_score, self.kept.score) if self.kept else self.own_score

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score for e in self.exercises), 6)

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for e in self.exercises:
            counts[e.status] += 1
        return counts


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def exercise_from_json(e: dict) -> ExerciseResult:
    """Inverse of grader.reports.exercise_json. A report of schema 1 (feedback text only) keeps
    its text as the result's detail."""
    cases = tuple(CaseOutcome(**_known(CaseOutcome, c)) for c in e.get("cases", ()))
    condition = e.get("condition")
    detail = e.get("detail", "")
    replaced = e.get("replaced")
    override = e.get("override")
    if not {"cases", "detail", "condition", "starter", "replaced", "override"} & set(e):  # schema 1: the words are all there is
        detail = e.get("feedback", "")
    return ExerciseResult(e["id"], e["status"], float(e["score"]), float(e["max_score"]), detail, cases,
                          e.get("cause", "") if not cases else "", e.get("category", ""),
                          Condition(**{**_known(Condition, condition), "helpers": tuple(condition.get("helpers", ()))})
                          if condition else None, bool(e.get("taken_from_course")), str(e.get("starter", "")),
                          Replaced(**_known(Replaced, replaced)) if isinstance(replaced, dict) else None,
                          Overridden(**_known(Overridden, override)) if isinstance(override, dict) else None)


def submission_from_json(data: dict) -> SubmissionResult:
    """Inverse of grader.reports.submission_json (for resumed and merged reports)."""
    cells = tuple(CellError(**_known(CellError, c)) for c in data.get("cell_errors", ()))
    ng, late, kept = data.get("not_gradable"), data.get("late"), data.get("kept")
    return SubmissionResult(data["path"], tuple(exercise_from_json(e) for e in data["exercises"]),
                            tuple(data.get("notes", ())), float(data.get("seconds", 0.0)), cells,
                            NotGradable(**_known(NotGradable, ng)) if isinstance(ng, dict) else None,
                            Late(**_known(Late, late)) if isinstance(late, dict) else None,
                            Kept(**_known(Kept, kept)) if isinstance(kept, dict) else None)
