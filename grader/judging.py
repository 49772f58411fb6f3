"""Judging (trusted side): what a worker sent about an item, against the reference, as a verdict.

A function item against the reference's answers on the same inputs; an object item against the
reference computed on the submission's own model (one the grader knows, by the hash of its
weights) and data; adversarial examples by running the model they were aimed at. What came from a
worker is untrusted input: a value that makes judging fail is that item's error, never an
exception that escapes the submission.
"""
from __future__ import annotations

import numpy as np

from grader import verdicts
from reference.brackets import is_balanced
from grader.catalogue import Exercise
from grader.config import GradeConfig
from grader.reference_results import ReferenceResults
from grader.results import UNKNOWN_MODEL, ExerciseResult

MAX_DATA_STRINGS = 5_000  # the course's `data`: the most the trusted side computes object references on


def bracket_strings_problem(strs: object, what: str, most: int) -> str:
    """Why `strs` (from a worker: untrusted) is not a list of at most `most` bracket strings the
    model can read (1 to 40 brackets each), or "" when it is."""
    if not isinstance(strs, list):
        return f"{what} is not a list of strings"
    if len(strs) > most:
        return (f"{what} holds {len(strs):,} strings, more than the {most:,} the grader computes references on "
                f"(the course's data size)")
    bad = next((s for s in strs if not isinstance(s, str) or not 0 < len(s) <= 40 or set(s) - {"(", ")"}), None)
    if bad is not None or any(not isinstance(s, str) for s in strs):
        shown = repr(bad)[:40] if isinstance(bad, str) else type(bad).__name__
        return f"{what} holds something that is not a string of 1 to 40 brackets (for example {shown})"
    return ""


class Judge:
    """Verdicts for one run's configuration: its reference answers, its known models, its points."""

    def __init__(self, config: GradeConfig, reference: ReferenceResults, known: dict[str, dict] | None = None):
        self.config, self.reference = config, reference
        self._known = known

    def points(self, ex: Exercise) -> float:
        return float(self.config.points.get(ex.id, ex.points))

    def known_models(self) -> dict[str, dict]:
        """The weights object items may have been computed with, by the hash of their parameters."""
        if self._known is None:
            from reference.model import parameter_hash, read_state_dict

            self._known = {}
            for path in (self.config.weights, *self.config.extra_models):
                state = read_state_dict(path)
                self._known[parameter_hash(state)] = state
        return self._known

    def object_reference(self, ex: Exercise, model_hash: str | None, strs: list[str] | None) -> tuple:
        """The reference values of object item `ex` on the submission's model and data, or why
        there are none (and, for a model the grader does not know, UNKNOWN_MODEL)."""
        if model_hash is None:
            return None, "no `model` was found in the submission's namespace, so the object cannot be judged"
        state = self.known_models().get(model_hash)
        if state is None:
            return None, "computed with a model the grader does not know (neither our model nor the course's)", \
                UNKNOWN_MODEL
        if not strs:
            return None, "no `data` was found in the submission's namespace, so the object cannot be judged"
        problem = bracket_strings_problem(strs, "the submission's `data`", MAX_DATA_STRINGS)
        if problem:
            return None, f"{problem}, so the object cannot be judged on it"
        expected = self.reference.objects_for(model_hash, state, strs, (ex.id,))
        # the right answer of items 9 and 14 is a mean over the balanced strings: NaN without one,
        # and then no object is judged on that data (v_L and v_R neither: judged on data alike)
        if not all(np.all(np.isfinite(v)) for v in expected.values()) or not any(map(is_balanced, strs)):
            return None, ("on the submission's `data` the right answer is not a number (NaN: for example no "
                          "balanced string to take the mean over), so the object cannot be judged on that data")
        return expected, ""

    def classify(self, model_hash: str | None, strs: list[str]) -> tuple:
        """Which of `strs` the model they were aimed at misclassifies."""
        from reference.datagen import is_balanced
        from reference.model import build_model, predict_balanced

        known = self.known_models()
        state = known.get(model_hash) if model_hash else known[next(iter(known))]
        if state is None:
            return None, "aimed at a model the grader does not know", UNKNOWN_MODEL
        preds = predict_balanced(build_model(state, self.config.device), strs).tolist()
        return [p != is_balanced(s) for s, p in zip(strs, preds)], ""

    def unfinished(self, ex: Exercise, status: str, why: str) -> ExerciseResult:
        return verdicts.judge_unfinished(ex, self.points(ex), status, why)

    def judge(self, ex: Exercise, msgs: list[dict]) -> ExerciseResult:
        """One item's verdict from its messages."""
        try:
            return self._judge(ex, msgs)
        except Exception as e:
            return self.unfinished(ex, "error", f"what it returned could not be judged ({type(e).__name__}: "
                                                f"{str(e)[:200]})")

    def _judge(self, ex: Exercise, msgs: list[dict]) -> ExerciseResult:
        points = self.points(ex)
        if ex.id == "adversarial_examples":
            return verdicts.judge_adversarial(ex, next(iter(msgs), None), points, self.classify)
        if ex.kind == "object":
            return verdicts.judge_object(ex, next(iter(msgs), None), points,
                                         lambda h, strs: self.object_reference(ex, h, strs))
        if not msgs:
            return verdicts.judge_unfinished(ex, points, "error", "no result came back for this item")
        return verdicts.judge_function(ex, msgs, self.reference.for_exercise(ex), points,
                                       lambda label: self.reference.alternatives(ex, label))
