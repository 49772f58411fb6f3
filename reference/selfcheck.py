"""Quick self-checks students run from the template, one per item.

They test properties any correct answer has (types, shapes, facts such as "attention rows sum to
1" or "components sum to the residual stream"), computed from the model's own hooks, never from
the reference solutions. They are a first signal only: `pytest` in the template folder grades.
"""
from __future__ import annotations

import torch as t
from transformer_lens import utils

_EXAMPLES = ["()", "(())", "()()", ")(", "(()", "())(()", "((()))()", "(()))(()", "", "(((())))"]


def _ok(name: str) -> None:
    print(f"{name}: self-check passed (run `pytest -k {name}` for the full grade)")


def _close(got, expected, what: str, atol: float = 1e-4) -> None:
    got = t.as_tensor(got).detach().to("cpu", t.float64)
    expected = t.as_tensor(expected).detach().to("cpu", t.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    diff = (got - expected).abs()
    if diff.max() > atol + 1e-3 * expected.abs().max():
        raise AssertionError(f"{what}: {int((diff > atol).sum())} elements differ, largest by {diff.max():.3g}")


def _labels(strs):
    from reference.brackets import is_balanced

    return [is_balanced(s) for s in strs]


def is_balanced_forloop(fn, data) -> None:
    strs = list(data.strs[:500]) + _EXAMPLES
    labels = data.isbal[:500].tolist() + _labels(_EXAMPLES)
    wrong = [s for s, b in zip(strs, labels) if bool(fn(s)) != b]
    assert not wrong, f"is_balanced_forloop is wrong on {len(wrong)} strings, e.g. {wrong[0]!r}"
    _ok("is_balanced_forloop")


def is_balanced_vectorized(fn, data) -> None:
    wrong = [s for s, tok, b in zip(data.strs[:300], data.toks[:300], data.isbal[:300].tolist()) if bool(fn(tok)) != b]
    assert not wrong, f"is_balanced_vectorized is wrong on {len(wrong)} strings, e.g. {wrong[0]!r}"
    _ok("is_balanced_vectorized")


def get_post_final_ln_dir(fn, model) -> None:
    d = fn(model)
    assert tuple(d.shape) == (model.cfg.d_model,), f"expected shape ({model.cfg.d_model},), got {tuple(d.shape)}"
    x = t.randn(model.cfg.d_model, device=d.device)
    logits = x @ model.W_U
    _close(x @ d, logits[0] - logits[1], "x . dir should equal logit 0 - logit 1")
    _ok("get_post_final_ln_dir")


def LN_hook_names(fn, model) -> None:
    names = fn(model.ln_final)
    assert tuple(names) == ("blocks.2.hook_resid_post", "ln_final.hook_normalized"), names
    assert tuple(fn(model.blocks[1].ln2)) == ("blocks.1.hook_resid_mid", "blocks.1.ln2.hook_normalized")
    _ok("LN_hook_names")


def get_ln_fit(fn, model, data) -> None:
    fit, r2 = fn(model, data[:200], model.ln_final, seq_pos=0)
    d = model.cfg.d_model
    assert tuple(fit.coef_.shape) == (d, d), f"coef_ should be [{d}, {d}], got {fit.coef_.shape}"
    assert 0.9 < float(r2) <= 1.0, f"r2 at ln_final, position 0 should be close to 1, got {r2}"
    _ok("get_ln_fit")


def get_pre_final_ln_dir(fn, model, data) -> None:
    d = fn(model, data[:200])
    assert tuple(d.shape) == (model.cfg.d_model,), f"expected shape ({model.cfg.d_model},), got {tuple(d.shape)}"
    _ok("get_pre_final_ln_dir")


def get_out_by_components(fn, model, data) -> None:
    sub = data[:50]
    out = fn(model, sub)
    expected_shape = (10, len(sub), sub.seq_length, model.cfg.d_model)
    assert tuple(out.shape) == expected_shape, f"expected shape {expected_shape}, got {tuple(out.shape)}"
    _, cache = model.run_with_cache(sub.toks)
    _close(out.sum(0) + model.b_O.sum(0), cache["blocks.2.hook_resid_post"], "components + biases vs resid_post")
    _ok("get_out_by_components")


def is_balanced_vectorized_return_both(fn, data) -> None:
    total, negative = fn(data.toks[:300])
    failed = (total | negative).cpu()
    wrong = int((failed == data.isbal[:300].cpu()).sum())
    assert wrong == 0, f"(total | negative) should be 'not balanced'; wrong on {wrong} of 300 strings"
    _ok("is_balanced_vectorized_return_both")


def get_attn_probs(fn, model, data) -> None:
    sub = data[:50]
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            p = fn(model, sub, layer, head)
            _close(p.sum(-1), t.ones(p.shape[:-1]), f"rows of head {layer}.{head} should sum to 1")
    _ok("get_attn_probs")


def get_WOV(fn, model) -> None:
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            w = fn(model, layer, head)
            assert tuple(w.shape) == (model.cfg.d_model,) * 2, f"expected [d_model, d_model], got {tuple(w.shape)}"
            x = t.randn(model.cfg.d_model, device=w.device)
            _close(x @ w, x @ model.W_V[layer, head] @ model.W_O[layer, head], f"OV map of head {layer}.{head}")
    _ok("get_WOV")


def get_pre_20_dir(fn, model, data) -> None:
    d = fn(model, data[:200])
    assert tuple(d.shape) == (model.cfg.d_model,), f"expected shape ({model.cfg.d_model},), got {tuple(d.shape)}"
    _ok("get_pre_20_dir")


def get_out_by_neuron(fn, model, data) -> None:
    sub = data[:30]
    out = fn(model, sub, 1)
    _, cache = model.run_with_cache(sub.toks)
    _close(out.sum(-2), cache[utils.get_act_name("mlp_out", 1)] - model.b_out[1], "neurons summed vs mlp_out - b_out")
    _ok("get_out_by_neuron")


def get_out_by_neuron_in_20_dir(fn, model, data) -> None:
    out = fn(model, data[:50], 1)
    assert tuple(out.shape) == (50, model.cfg.d_mlp), f"expected [batch, neuron], got {tuple(out.shape)}"
    _ok("get_out_by_neuron_in_20_dir")


def get_out_by_neuron_in_20_dir_less_memory(fn, model, data) -> None:
    out = fn(model, data[:50], 1)
    assert tuple(out.shape) == (50, model.cfg.d_mlp), f"expected [batch, neuron], got {tuple(out.shape)}"
    _ok("get_out_by_neuron_in_20_dir_less_memory")


def get_q_and_k_for_given_input(fn, model, tokenizer) -> None:
    q, k = fn(model, tokenizer, "(()())", 0)
    expected = (8, model.cfg.n_heads, model.cfg.d_head)
    assert tuple(q.shape) == expected and tuple(k.shape) == expected, f"q and k should be {expected}"
    _ok("get_q_and_k_for_given_input")


def cos_sim_with_MLP_weights(fn, model) -> None:
    v = t.randn(model.cfg.d_model, device=model.W_in.device)
    sims = fn(model, v, 0)
    assert tuple(sims.shape) == (model.cfg.d_mlp,), f"expected [d_mlp], got {tuple(sims.shape)}"
    assert float(sims.abs().max()) <= 1 + 1e-5, "cosine similarities must lie in [-1, 1]"
    _ok("cos_sim_with_MLP_weights")


def avg_squared_cos_sim(fn, model) -> None:
    value = float(fn(t.randn(model.cfg.d_model), 5000))
    assert abs(value - 1 / model.cfg.d_model) < 0.006, f"expected about 1/d_model = {1 / model.cfg.d_model:.4f}, got {value:.4f}"
    _ok("avg_squared_cos_sim")
