"""Every known mistake (grader.mistakes) made on purpose: the feedback must name it. And no
diagnosis may fire on a right answer, or on an answer that is merely wrong (noise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch as t

from grader import compare, mistakes
from grader.catalogue import BY_ID, EXERCISES
from grader.feedback import case_text
from grader.inputs import InputFactory
from grader.protocol import LinearFit, encode
from grader.results import CaseOutcome
from grader.verdicts import judge_case


@pytest.fixture(scope="module")
def ref(reference):
    return reference


@pytest.fixture(scope="module")
def factory(reference):
    return InputFactory(reference.weights, reference.data)


def judged(ref, item: str, label: str, value) -> CaseOutcome:
    ex = BY_ID[item]
    expected = ref.for_exercise(ex)
    msg = {"kind": "case", "case": label, "ok": True, "value": encode(value)}
    outcome = judge_case(ex, msg, expected[label], expected, lambda lab: ref.alternatives(ex, lab))
    assert not outcome.passed, (item, label)
    return outcome


def expected(ref, item: str, label: str):
    return ref.for_exercise(BY_ID[item])[label]


def student(factory, item: str, label: str, fn):
    """What a student's (wrong) function returns on one case's inputs."""
    case = next(c for c in BY_ID[item].cases if c.label == label)
    args, kwargs = factory.build(list(case.args), case.kwargs)
    with t.inference_mode():
        return fn(*args, **kwargs)


FIT = "240 short strings of data[0:1000]"


def _pre_final(model, data, pos, transpose):
    from reference.solutions import get_ln_fit, get_post_final_ln_dir

    coef = t.from_numpy(get_ln_fit(model, data, model.ln_final, pos)[0].coef_)
    return (coef.T if transpose else coef) @ get_post_final_ln_dir(model)


def _left_to_right(toks):
    altitude = t.cumsum(t.tensor([0, 0, 0, 1, -1])[toks], -1)
    return altitude[:, -1] != 0, altitude.max(-1).values > 0


def _fit_transposed(fit: LinearFit, r2: float, probe, *r2_double):
    from sklearn.linear_model import LinearRegression

    lr = LinearRegression()
    lr.coef_, lr.intercept_ = fit.coef.T.copy(), fit.intercept
    return lr, r2


def make(mistake_id, ref, factory):
    """(item, label, wrong answer) for each known mistake."""
    e = lambda item, label: expected(ref, item, label)  # noqa: E731
    return {
        "sign_flipped": ("get_post_final_ln_dir", "model", -e("get_post_final_ln_dir", "model")),
        "transposed": ("get_WOV", "layer=0, head=0", e("get_WOV", "layer=0, head=0").T),
        "axes_swapped": ("get_attn_probs", "layer=0, head=0", np.swapaxes(e("get_attn_probs", "layer=0, head=0"), -1, -2)),
        "batch_reversed": ("get_attn_probs", "layer=1, head=1", e("get_attn_probs", "layer=1, head=1")[::-1]),
        "sequence_flipped": ("get_out_by_components", "data[0:60]", np.flip(e("get_out_by_components", "data[0:60]"), -2)),
        "centred": ("get_post_final_ln_dir", "model", e("get_post_final_ln_dir", "model")
                    - e("get_post_final_ln_dir", "model").mean()),
        "scaled": ("get_post_final_ln_dir", "model", 2.5 * e("get_post_final_ln_dir", "model")),
        "opposite": ("get_post_final_ln_dir", "model", -0.5 * e("get_post_final_ln_dir", "model")),
        "left_to_right": ("is_balanced_vectorized_return_both", "data[0:60].toks",
                          student(factory, "is_balanced_vectorized_return_both", "data[0:60].toks", _left_to_right)),
        "wrong_position": ("get_pre_final_ln_dir", FIT,
                           student(factory, "get_pre_final_ln_dir", FIT, lambda m, d: _pre_final(m, d, 1, True))),
        "coef_not_transposed": ("get_pre_final_ln_dir", FIT,
                                student(factory, "get_pre_final_ln_dir", FIT, lambda m, d: _pre_final(m, d, 0, False))),
        "outputs_swapped": ("get_q_and_k_for_given_input", "parens='(()())', layer=1",
                            tuple(reversed(e("get_q_and_k_for_given_input", "parens='(()())', layer=1")))),
        "names_reversed": ("LN_hook_names", "layernorm=model.ln_final",
                           tuple(reversed(e("LN_hook_names", "layernorm=model.ln_final")))),
        "coef_transposed": ("get_ln_fit", "layernorm=model.ln_final, seq_pos=0",
                            _fit_transposed(*e("get_ln_fit", "layernorm=model.ln_final, seq_pos=0"))),
        "not_normalised": ("avg_squared_cos_sim", "v of dimension 56, n_samples=2000", 1.0),
        "sum_not_mean": ("avg_squared_cos_sim", "v of dimension 56, n_samples=2000", 2000 / 56),
        "not_squared": ("avg_squared_cos_sim", "v of dimension 56, n_samples=2000", 0.0003),
        "expectation_written_in": ("avg_squared_cos_sim", "v of dimension 56, n_samples=2000", np.float32(1 / 56)),
        "ignored_argument": ("get_WOV", "layer=1, head=1", e("get_WOV", "layer=0, head=0")),
    }[mistake_id]


FUNCTION_MISTAKES = [m.id for m in mistakes.MISTAKES if m.id != "not_centred"]


@pytest.mark.parametrize("mistake_id", FUNCTION_MISTAKES)
def test_each_known_mistake_is_named(mistake_id, ref, factory):
    item, label, wrong = make(mistake_id, ref, factory)
    m = mistakes.BY_ID[mistake_id]
    assert not m.items or item in m.items
    outcome = judged(ref, item, label, wrong)
    named = outcome.same_as if mistake_id == "ignored_argument" else outcome.cause == mistake_id
    assert named and m.says in case_text(outcome), (mistake_id, outcome)


def test_an_object_not_centred_is_named(ref):
    from reference.model import parameter_hash, read_state_dict

    strs = [s for s, _ in InputFactory(ref.weights, ref.data).tuples([0, 200])]
    state = read_state_dict(ref.weights)
    right = ref.objects_for(parameter_hash(state), state, strs)["out_by_component_in_unbalanced_dir"]
    offsets = np.linspace(-2, 3, right.shape[0])[:, None]
    problem = compare.tensor(right + offsets, right, BY_ID["out_by_component_in_unbalanced_dir"].tolerance)
    assert problem.cause == "not_centred"
    assert compare.tensor(right, right, BY_ID["out_by_component_in_unbalanced_dir"].tolerance) is None


def test_every_mistake_has_a_test_here():
    assert set(FUNCTION_MISTAKES) | {"not_centred"} == set(mistakes.BY_ID)


NUMERIC = [(ex.id, c.label) for ex in EXERCISES if ex.kind == "function" and ex.expect in ("tensor", "tensor_pair")
           for c in ex.cases]


@pytest.mark.parametrize("item, label", NUMERIC)
def test_no_diagnosis_fires_on_a_right_answer_or_on_noise(item, label, ref):
    right = expected(ref, item, label)
    ex = BY_ID[item]
    assert compare.COMPARATORS[ex.expect](right, right, ex.tolerance) is None
    rng = np.random.default_rng(0)
    noisy = lambda a: a + rng.standard_normal(a.shape).astype(a.dtype) * (np.abs(a).max() + 1) * 0.3  # noqa: E731
    wrong = tuple(noisy(a) for a in right) if isinstance(right, tuple) else noisy(right)
    outcome = judged(ref, item, label, wrong)
    assert not outcome.cause and not outcome.same_as, outcome
    assert "likely cause" not in case_text(outcome) and mistakes.says("ignored_argument") not in case_text(outcome)
