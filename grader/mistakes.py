"""The known mistakes: what students get wrong in these exercises, and how a wrong answer is
recognised as one of them, so the feedback can name it. Next to the exercise catalogue, as data.

Four ways to recognise one:
- transform: the answer is a simple function of the right one (negated, transposed, reversed);
- alternative: the answer equals a known wrong formulation, computed by the trusted process on the
  case's own inputs (a fit at the wrong position, elevation counted left to right);
- comparator: a shape-specific check inside grader.compare (outputs swapped, coef_ transposed);
- cross-case: the answer equals the right answer of another argument combination (an argument is
  ignored, or the wrong layer or head is read).
Each has a test in tests/test_mistakes.py that makes the mistake and checks that the feedback
names it, and that no diagnosis fires on a correct answer or on noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Mistake:
    id: str
    says: str  # the words the feedback uses after "likely cause: "
    how: str  # "transform" | "alternative" | "comparator" | "cross-case"
    items: tuple[str, ...] = ()  # where it is looked for; () = any numeric item


MISTAKES: tuple[Mistake, ...] = (
    Mistake("sign_flipped", "the sign is flipped", "transform"),
    Mistake("transposed", "the matrix is transposed", "transform"),
    Mistake("axes_swapped", "the last two dimensions are swapped", "transform"),
    Mistake("batch_reversed", "the batch order is reversed", "transform"),
    Mistake("sequence_flipped", "the sequence is flipped", "transform"),
    Mistake("centred", "it looks centred (mean subtracted) where it should not be", "transform"),
    Mistake("not_centred", "not centred: subtract the mean over the balanced examples", "transform"),
    Mistake("scaled", "it points the right way but is scaled differently", "transform"),
    Mistake("opposite", "it points the opposite way (a sign or order of subtraction)", "transform"),
    Mistake("left_to_right", "elevation counted left to right (the model reads right to left: flip first)",
            "alternative", ("is_balanced_vectorized_return_both",)),
    Mistake("wrong_position", "the fit is taken at the wrong sequence position", "alternative",
            ("get_pre_final_ln_dir", "get_pre_20_dir")),
    Mistake("coef_not_transposed", "the LayerNorm fit's coef_ is used without transposing it", "alternative",
            ("get_pre_final_ln_dir", "get_pre_20_dir")),
    Mistake("outputs_swapped", "the two outputs are swapped", "comparator",
            ("is_balanced_vectorized_return_both", "get_q_and_k_for_given_input", "v_L_v_R")),
    Mistake("names_reversed", "the two names are in the wrong order (input first, then output)", "comparator",
            ("LN_hook_names",)),
    Mistake("coef_transposed", "coef_ is transposed", "comparator", ("get_ln_fit",)),
    Mistake("not_normalised", "the random vectors are not normalised", "comparator", ("avg_squared_cos_sim",)),
    Mistake("sum_not_mean", "a sum where a mean is needed", "comparator", ("avg_squared_cos_sim",)),
    Mistake("not_squared", "cosine similarities are not squared", "comparator", ("avg_squared_cos_sim",)),
    Mistake("expectation_written_in", "the expectation 1/d is written in, not estimated from random vectors",
            "comparator", ("avg_squared_cos_sim",)),
    Mistake("ignored_argument", "is an argument ignored or mixed up", "cross-case"),
)
BY_ID: dict[str, Mistake] = {m.id: m for m in MISTAKES}


def says(mistake_id: str) -> str:
    return BY_ID[mistake_id].says


# ---------------------------------------------------------------- transforms

def _centred(e: np.ndarray) -> np.ndarray | None:
    return e - e.mean(axis=-1, keepdims=True) if e.ndim >= 1 else None


TRANSFORMS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray | None]], ...] = (
    ("sign_flipped", lambda e: -e),
    ("transposed", lambda e: e.T if e.ndim == 2 else None),
    ("axes_swapped", lambda e: np.swapaxes(e, -1, -2) if e.ndim >= 3 else None),
    ("batch_reversed", lambda e: e[::-1] if e.ndim >= 1 and len(e) > 1 else None),
    ("sequence_flipped", lambda e: np.flip(e, -2) if e.ndim >= 2 else None),
    ("centred", _centred),
)


def likely_cause(got: np.ndarray, expected: np.ndarray, close: Callable[[np.ndarray], bool]) -> str:
    """The id of the known mistake a wrong numeric answer matches ("" if none)."""
    for mistake_id, make in TRANSFORMS:
        candidate = make(expected)
        if candidate is not None and candidate.shape == got.shape and close(candidate):
            return mistake_id
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return ""
    if expected.ndim == 2 and expected.shape[1] > 1:  # [component, batch]: off by a constant per row
        offset = got - expected
        if np.abs(offset).max() > 0 and close(expected + offset.mean(axis=1, keepdims=True)):
            return "not_centred"
    e = expected.astype(np.float64)
    if float((e * e).sum()) > 0:  # got = c * expected for one number c: a scale (or a sign and a scale)
        c = float((got.astype(np.float64) * e).sum() / (e * e).sum())
        if abs(c - 1) > 0.01 and close(c * e):
            return "scaled" if c > 0 else "opposite"
    return ""


# ---------------------------------------------------------------- alternatives (trusted side)

def _left_to_right(toks) -> list[tuple]:
    import torch as t

    change = t.tensor([0, 0, 0, 1, -1])[toks.cpu()]
    altitude = t.cumsum(change, -1)
    total = altitude[:, -1] != 0
    return [(total, altitude.max(-1).values > 0), (total, altitude.min(-1).values < 0)]


def _pre_final_dir(model, data, seq_pos: int, transpose: bool):
    from reference.solutions import get_ln_fit, get_post_final_ln_dir
    import torch as t

    coef = t.from_numpy(get_ln_fit(model, data, model.ln_final, seq_pos)[0].coef_).to(model.W_U.device)
    return (coef.T if transpose else coef) @ get_post_final_ln_dir(model)


def _pre_20_dir(model, data, seq_pos: int, transpose: bool, final_pos: int = 0, final_transpose: bool = True):
    from reference.solutions import get_ln_fit, get_WOV
    import torch as t

    coef = t.from_numpy(get_ln_fit(model, data, model.blocks[2].ln1, seq_pos)[0].coef_).to(model.W_U.device)
    return (coef.T if transpose else coef) @ get_WOV(model, 2, 0) @ _pre_final_dir(model, data, final_pos, final_transpose)


ALTERNATIVES: dict[str, Callable[..., list[tuple[str, Any]]]] = {
    "is_balanced_vectorized_return_both": lambda toks: [("left_to_right", v) for v in _left_to_right(toks)],
    "get_pre_final_ln_dir": lambda model, data: [
        ("wrong_position", _pre_final_dir(model, data, 1, True)),
        ("coef_not_transposed", _pre_final_dir(model, data, 0, False))],
    "get_pre_20_dir": lambda model, data: [
        ("wrong_position", _pre_20_dir(model, data, 0, True)),
        ("coef_not_transposed", _pre_20_dir(model, data, 1, False)),
        ("coef_not_transposed", _pre_20_dir(model, data, 1, False, 0, False))],
}
