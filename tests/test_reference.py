"""The reference solutions against independent facts (never against themselves)."""
from __future__ import annotations

import itertools
import random

import pytest
import torch as t

import reference.solutions as sol
from reference.brackets import BracketsDataset, SimpleTokenizer
from reference.model import load_data_tuples, load_model
from tests.conftest import course_files_or_skip

t.set_grad_enabled(False)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def data():
    return BracketsDataset(load_data_tuples()[:300])


def brute_force_balanced(s: str) -> bool:
    """Another algorithm entirely: delete "()" pairs until none is left."""
    while "()" in s:
        s = s.replace("()", "")
    return s == ""


def all_strings(max_len: int):
    return ["".join(p) for n in range(1, max_len + 1) for p in itertools.product("()", repeat=n)]


def test_classifiers_agree_with_brute_force_up_to_length_12():
    strs = all_strings(12)
    truth = [brute_force_balanced(s) for s in strs]
    assert [sol.is_balanced_forloop(s) for s in strs] == truth
    tokenizer = SimpleTokenizer("()")
    toks = tokenizer.tokenize(strs)  # padded rows: pads must count as zero
    assert [sol.is_balanced_vectorized(row) for row in toks] == truth
    total, negative = sol.is_balanced_vectorized_return_both(toks)
    assert (~(total | negative)).tolist() == truth
    assert total.tolist() == [s.count("(") != s.count(")") for s in strs]


def test_components_plus_attention_biases_sum_to_final_layernorm_input(model, data):
    out = sol.get_out_by_components(model, data)
    assert out.shape == (10, len(data), data.seq_length, model.cfg.d_model)
    _, cache = model.run_with_cache(data.toks)
    t.testing.assert_close(out.sum(0) + model.b_O.sum(0), cache["blocks.2.hook_resid_post"], atol=1e-4, rtol=1e-4)


def test_attention_rows_sum_to_one_and_pads_get_no_weight(model, data):
    pad = data.toks == SimpleTokenizer.PAD_TOKEN
    for layer, head in itertools.product(range(3), range(2)):
        p = sol.get_attn_probs(model, data, layer, head)
        t.testing.assert_close(p.sum(-1), t.ones(p.shape[:-1]))
        assert p.masked_select(pad[:, None, :].expand_as(p)).abs().max() < 1e-6


@pytest.mark.slow
def test_low_memory_neuron_function_matches_and_allocates_less(model):
    from grader.worker.memory import PeakTensorMemory

    rng = random.Random(0)
    short = BracketsDataset([(s, brute_force_balanced(s)) for s in
                             ("".join(rng.choice("()") for _ in range(rng.choice([2, 4]))) for _ in range(4000))])
    with PeakTensorMemory() as full:
        a = sol.get_out_by_neuron_in_20_dir(model, short, 1)
    with PeakTensorMemory() as low:
        b = sol.get_out_by_neuron_in_20_dir_less_memory(model, short, 1)
    t.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    big = len(short) * model.cfg.d_mlp * model.cfg.d_model * 4  # the [batch, neuron, d_model] tensor
    assert low.peak_bytes + big // 2 < full.peak_bytes, (low.peak_bytes, full.peak_bytes, big)


def test_layernorm_fits_are_nearly_linear_where_the_course_uses_them(model, data):
    for ln, pos in ((model.ln_final, 0), (model.blocks[2].ln1, 1), (model.blocks[0].ln1, None)):
        _, r2 = sol.get_ln_fit(model, data, ln, seq_pos=pos)
        assert r2 > 0.95, (ln.name, pos, r2)


def test_hook_names_exist_in_the_model(model):
    for ln in [model.ln_final] + [b.ln1 for b in model.blocks] + [b.ln2 for b in model.blocks]:
        before, after = sol.LN_hook_names(ln)
        assert before in model.hook_dict and after in model.hook_dict


def test_get_wov_maps_like_value_then_output(model):
    x = t.randn(model.cfg.d_model)
    for layer, head in itertools.product(range(3), range(2)):
        t.testing.assert_close(x @ sol.get_WOV(model, layer, head), (x @ model.W_V[layer, head]) @ model.W_O[layer, head])


def test_pre_final_ln_dir_predicts_the_logit_difference(model, data):
    """The direction dotted with ln_final's input (centred) tracks logit0 - logit1 at position 0."""
    d = sol.get_pre_final_ln_dir(model, data)
    logits, cache = model.run_with_cache(data.toks)
    x = cache["blocks.2.hook_resid_post"][:, 0]
    diff = logits[:, 0, 0] - logits[:, 0, 1]
    approx = x @ d
    corr = t.corrcoef(t.stack([approx, diff]))[0, 1]
    assert corr > 0.95, corr


def test_avg_squared_cos_sim_is_near_one_over_d():
    t.manual_seed(0)
    assert abs(sol.avg_squared_cos_sim(t.randn(56), 20000) - 1 / 56) < 0.002


def test_v_L_v_R_point_in_opposite_directions_on_our_model(model):
    data = BracketsDataset(load_data_tuples()[:1000])
    v_L, v_R = sol.compute_v_L_v_R(model, data, SimpleTokenizer("()"))
    assert t.cosine_similarity(v_L, v_R, dim=0) < -0.5


@pytest.mark.slow
@pytest.mark.course_weights
def test_v_L_v_R_cosine_on_the_course_model_is_about_minus_0_997():
    weights, data_path = course_files_or_skip()
    model = load_model(weights)
    data = BracketsDataset(load_data_tuples(data_path)[:5000])
    v_L, v_R = sol.compute_v_L_v_R(model, data, SimpleTokenizer("()"))
    assert abs(t.cosine_similarity(v_L, v_R, dim=0).item() - (-0.997)) < 0.002


@pytest.mark.slow
@pytest.mark.course_weights
def test_course_model_classifies_its_first_5000_examples():
    from reference.model import predict_balanced

    weights, data_path = course_files_or_skip()
    tuples = load_data_tuples(data_path)[:5000]
    preds = predict_balanced(load_model(weights), [s for s, _ in tuples])
    assert preds.tolist() == [b for _, b in tuples]
