# %% [markdown]
# # [1.5.1] Balanced Bracket Classifier: exercises
#
# Fill in each function where it says `raise NotImplementedError()`, and each object where it says
# YOUR CODE HERE. Run the self-check after each item; `pytest` in this folder grades everything.
# Object items (`out_by_component_in_unbalanced_dir`, `v_L`, `v_R`, ...) are graded from the values
# your notebook leaves in its namespace, computed on `model` and `data`.

# %%
# Setup. The course setting (tokenizer, dataset, model with padding-mask hooks) comes from the
# project; the model and data are the project's own, and nothing is downloaded.
from __future__ import annotations

import einops
import numpy as np
import torch as t
from sklearn.linear_model import LinearRegression
from torch import Tensor, nn
from transformer_lens import ActivationCache, HookedTransformer, utils

from reference.setting import BracketsDataset, SimpleTokenizer, load_datasets, load_model, pick_device

# BEGIN REFERENCE ONLY
"""Reference solutions for every gradeable item of ARENA [1.5.1] (see EXERCISES.md).

This file is also the source of the student template: `python -m reference.make_template`
replaces each `# BEGIN SOLUTION ... # END SOLUTION` block with a stub, drops the
`# BEGIN REFERENCE ONLY ... # END REFERENCE ONLY` blocks and uncomments `# TEMPLATE:` lines.
Object items are computed by `compute_*` functions here and by plain code in the template.
"""
# END REFERENCE ONLY
# TEMPLATE: import grader
# TEMPLATE: from reference import selfcheck
# TEMPLATE:
# TEMPLATE: MAIN = __name__ == "__main__"
# TEMPLATE: device = pick_device()
# TEMPLATE: t.set_grad_enabled(False)
# TEMPLATE: tokenizer = SimpleTokenizer("()")
# TEMPLATE: model = load_model(device=device)
# TEMPLATE: data, data_mini = load_datasets(device=device)

# %% [markdown]
# ## 1. Bracket classifier
#
# A string is balanced when, reading left to right, the count of `(` minus `)` never drops below
# zero and ends at zero.

# %%
def is_balanced_forloop(parens: str) -> bool:
    """Whether `parens` is balanced, with a loop over characters.

    Keep a running depth: +1 for `(`, -1 for `)`. Going below zero means a `)` closes nothing,
    so the string fails at once; otherwise it is balanced iff the final depth is zero.
    """
    # BEGIN SOLUTION
    depth = 0
    for c in parens:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("is_balanced_forloop")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.is_balanced_forloop(is_balanced_forloop, data)  # a quick local check

# %%
def is_balanced_vectorized(tokens: Tensor) -> bool:
    """Whether one tokenized row ([start] chars [end] [pad]...) is balanced, without a Python loop.

    Map tokens to steps (special tokens 0, `(` +1, `)` -1) with a lookup table, take the cumulative
    sum (the elevation after each token), and require its minimum >= 0 and its last value == 0.
    """
    # BEGIN SOLUTION
    table = t.tensor([0, 0, 0, 1, -1], device=tokens.device)
    altitude = t.cumsum(table[tokens], dim=-1)
    return bool((altitude[-1] == 0) & (altitude.min() >= 0))
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("is_balanced_vectorized")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.is_balanced_vectorized(is_balanced_vectorized, data)  # a quick local check

# %% [markdown]
# ## 2. Moving backwards
#
# The classification is read at position 0: logit 0 is "unbalanced", logit 1 "balanced". We work
# backwards from the difference of those logits to the components that write to it.

# %%
def get_post_final_ln_dir(model: HookedTransformer) -> Tensor:
    """The direction in the residual stream after ln_final that pushes towards "unbalanced".

    logit_0 - logit_1 = x @ (W_U[:, 0] - W_U[:, 1]) for the final-LN output x, so this difference
    of unembedding columns is the direction.
    """
    # BEGIN SOLUTION
    return model.W_U[:, 0] - model.W_U[:, 1]
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_post_final_ln_dir")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_post_final_ln_dir(get_post_final_ln_dir, model)  # a quick local check

# %%
def get_activations(model: HookedTransformer, toks: Tensor, names: list[str] | str) -> ActivationCache | Tensor:
    """Run the model on `toks`, caching only the hooks in `names`.

    A `names_filter` keeps memory down. Given a list, return the cache; given one name, return
    that activation alone (older course versions worked this way, and code may rely on it).
    """
    # BEGIN SOLUTION
    names_list = [names] if isinstance(names, str) else list(names)
    _, cache = model.run_with_cache(toks, return_type=None, names_filter=lambda name: name in names_list)
    return cache[names] if isinstance(names, str) else cache
    # END SOLUTION

# %%
def LN_hook_names(layernorm: nn.Module) -> tuple[str, str]:
    """The hook names of a LayerNorm's input and output.

    ln_final reads `blocks.2.hook_resid_post`; `blocks.L.ln1` reads resid_pre and `blocks.L.ln2`
    reads resid_mid of its layer. The output is the LayerNorm's own `hook_normalized`.
    """
    # BEGIN SOLUTION
    if layernorm.name == "ln_final":
        return utils.get_act_name("resid_post", 2), "ln_final.hook_normalized"
    layer, ln = layernorm.name.split(".")[1:]
    input_name = utils.get_act_name("resid_pre" if ln == "ln1" else "resid_mid", int(layer))
    return input_name, utils.get_act_name("normalized", int(layer), ln)
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("LN_hook_names")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.LN_hook_names(LN_hook_names, model)  # a quick local check

# %%
def get_ln_fit(
    model: HookedTransformer, data: BracketsDataset, layernorm: nn.Module, seq_pos: int | None = None
) -> tuple[LinearRegression, float]:
    """A linear fit of a LayerNorm's output on its input, and the fit's r2.

    LayerNorm is not linear, but on the inputs the model sees it is close to it; the fit lets us
    push directions back through it. With seq_pos=None, fit on every position (batch and sequence
    flattened together); with an int, at that position only (0 is a position, not "all").
    """
    # BEGIN SOLUTION
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    inputs = utils.to_numpy(cache[input_name])
    outputs = utils.to_numpy(cache[output_name])
    if seq_pos is None:
        inputs = einops.rearrange(inputs, "batch seq d_model -> (batch seq) d_model")
        outputs = einops.rearrange(outputs, "batch seq d_model -> (batch seq) d_model")
    else:
        inputs, outputs = inputs[:, seq_pos], outputs[:, seq_pos]
    fit = LinearRegression().fit(inputs, outputs)
    return fit, fit.score(inputs, outputs)
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_ln_fit")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_ln_fit(get_ln_fit, model, data)  # a quick local check

# %%
def get_pre_final_ln_dir(model: HookedTransformer, data: BracketsDataset) -> Tensor:
    """The unbalanced direction before ln_final: the fit's coefficients, transposed, applied.

    If ln_final(x) ~ coef @ x + b at position 0, then (coef @ x) . d = x . (coef.T @ d), so
    coef.T @ post_final_ln_dir is the direction in the LayerNorm's input.
    """
    # BEGIN SOLUTION
    post_dir = get_post_final_ln_dir(model)
    fit = get_ln_fit(model, data, layernorm=model.ln_final, seq_pos=0)[0]
    coefs = t.from_numpy(fit.coef_).to(post_dir)
    return coefs.T @ post_dir
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_pre_final_ln_dir")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_pre_final_ln_dir(get_pre_final_ln_dir, model, data)  # a quick local check

# %%
def get_out_by_components(model: HookedTransformer, data: BracketsDataset) -> Tensor:
    """What each of the 10 components writes to the residual stream, [10, batch, seq, d_model].

    Order: embeddings (token + positional), head 0.0, head 0.1, mlp 0, head 1.0, head 1.1, mlp 1,
    head 2.0, head 2.1, mlp 2. Their sum plus the attention output biases is the input of ln_final.
    """
    # BEGIN SOLUTION
    n_layers = model.cfg.n_layers
    head_names = [utils.get_act_name("result", layer) for layer in range(n_layers)]
    mlp_names = [utils.get_act_name("mlp_out", layer) for layer in range(n_layers)]
    cache = get_activations(model, data.toks, ["hook_embed", "hook_pos_embed"] + head_names + mlp_names)
    parts = [(cache["hook_embed"] + cache["hook_pos_embed"]).unsqueeze(0)]
    for head_name, mlp_name in zip(head_names, mlp_names):
        parts.append(einops.rearrange(cache[head_name], "batch seq head d_model -> head batch seq d_model"))
        parts.append(cache[mlp_name].unsqueeze(0))
    return t.cat(parts)
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_out_by_components")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_out_by_components(get_out_by_components, model, data)  # a quick local check

# %%
# BEGIN REFERENCE ONLY
def compute_out_by_component_in_unbalanced_dir(model: HookedTransformer, data: BracketsDataset) -> Tensor:
    """Object item 9: each component's output at position 0 projected on the pre-ln_final
    unbalanced direction, [10, batch], minus that component's mean over the balanced examples."""
    out = get_out_by_components(model, data)[:, :, 0, :]
    proj = einops.einsum(out, get_pre_final_ln_dir(model, data), "comp batch d, d -> comp batch")
    return proj - proj[:, data.isbal].mean(dim=1, keepdim=True)
# END REFERENCE ONLY
# TEMPLATE: # YOUR CODE HERE: the 10 components' outputs at position 0, projected on the unbalanced
# TEMPLATE: # direction (get_pre_final_ln_dir), minus each component's mean over balanced examples.
# STUB: out_by_component_in_unbalanced_dir = None  # shape [10, batch]
# SOLVED: out_by_component_in_unbalanced_dir = compute_out_by_component_in_unbalanced_dir(model, data)

# %%
def is_balanced_vectorized_return_both(toks: Tensor) -> tuple[Tensor, Tensor]:
    """For a batch of token rows: (total_elevation_failure, negative_failure), bool [batch] each.

    Read right to left, as the model does: flip the steps and take the cumulative sum. The total
    fails when the final elevation is not zero; the "negative" failure shows up right to left as a
    suffix with more `(` than `)`, i.e. the flipped elevation going above zero.
    """
    # BEGIN SOLUTION
    table = t.tensor([0, 0, 0, 1, -1], device=toks.device)
    altitude = t.cumsum(table[toks].flip(-1), dim=-1)
    total_elevation_failure = altitude[:, -1] != 0
    negative_failure = altitude.max(dim=-1).values > 0
    return total_elevation_failure, negative_failure
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("is_balanced_vectorized_return_both")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.is_balanced_vectorized_return_both(is_balanced_vectorized_return_both, data)  # a quick local check

# %% [markdown]
# ## 3. The total elevation circuit

# %%
def get_attn_probs(model: HookedTransformer, data: BracketsDataset, layer: int, head: int) -> Tensor:
    """The attention pattern of head `layer.head` on the data, [batch, seqQ, seqK]; rows sum to 1."""
    # BEGIN SOLUTION
    name = utils.get_act_name("pattern", layer)
    return get_activations(model, data.toks, [name])[name][:, head]
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_attn_probs")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_attn_probs(get_attn_probs, model, data)  # a quick local check

# %%
def get_WOV(model: HookedTransformer, layer: int, head: int) -> Tensor:
    """The OV circuit of a head, [d_model, d_model]: W_V @ W_O, as a right-multiplied matrix.

    A head writes (attention-weighted) x @ W_V @ W_O, so this matrix maps what a head reads to what
    it writes.
    """
    # BEGIN SOLUTION
    return model.W_V[layer, head] @ model.W_O[layer, head]
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_WOV")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_WOV(get_WOV, model)  # a quick local check

# %%
def get_pre_20_dir(model: HookedTransformer, data: BracketsDataset) -> Tensor:
    """The unbalanced direction taken back through head 2.0: what, in the input of layer 2's ln1 at
    position 1, makes head 2.0 push position 0 towards "unbalanced".

    Back through the OV matrix (W_OV @ d) and through the ln1 fit at seq_pos 1 (coef.T @ ...).
    """
    # BEGIN SOLUTION
    W_OV = get_WOV(model, 2, 0)
    fit = get_ln_fit(model, data, layernorm=model.blocks[2].ln1, seq_pos=1)[0]
    coefs = t.from_numpy(fit.coef_).to(W_OV)
    return coefs.T @ W_OV @ get_pre_final_ln_dir(model, data)
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_pre_20_dir")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_pre_20_dir(get_pre_20_dir, model, data)  # a quick local check

# %%
# BEGIN REFERENCE ONLY
def compute_out_by_component_in_pre_20_unbalanced_dir(model: HookedTransformer, data: BracketsDataset) -> Tensor:
    """Object item 14: the first 7 components (before layer 2) at position 1, projected on the
    pre-2.0 direction, [7, batch], minus each component's mean over the balanced examples."""
    out = get_out_by_components(model, data)[:7, :, 1, :]
    proj = einops.einsum(out, get_pre_20_dir(model, data), "comp batch d, d -> comp batch")
    return proj - proj[:, data.isbal].mean(dim=1, keepdim=True)
# END REFERENCE ONLY
# TEMPLATE: # YOUR CODE HERE: the first 7 components at position 1, projected on get_pre_20_dir,
# TEMPLATE: # minus each component's mean over balanced examples.
# STUB: out_by_component_in_pre_20_unbalanced_dir = None  # shape [7, batch]
# SOLVED: out_by_component_in_pre_20_unbalanced_dir = compute_out_by_component_in_pre_20_unbalanced_dir(model, data)

# %%
def get_out_by_neuron(
    model: HookedTransformer, data: BracketsDataset, layer: int, seq: int | None = None
) -> Tensor:
    """Each MLP neuron's contribution to the residual stream: its post-activation times its W_out
    row. [batch, seq, neuron, d_model], or [batch, neuron, d_model] at position `seq` if given."""
    # BEGIN SOLUTION
    name = utils.get_act_name("post", layer)
    post = get_activations(model, data.toks, [name])[name]
    if seq is not None:
        post = post[:, seq]
    return einops.einsum(post, model.W_out[layer], "batch ... neuron, neuron d_model -> batch ... neuron d_model")
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_out_by_neuron")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_out_by_neuron(get_out_by_neuron, model, data)  # a quick local check

# %%
def get_out_by_neuron_in_20_dir(model: HookedTransformer, data: BracketsDataset, layer: int) -> Tensor:
    """Each neuron's output at position 1 projected on the pre-2.0 direction, [batch, neuron]."""
    # BEGIN SOLUTION
    return einops.einsum(
        get_out_by_neuron(model, data, layer, seq=1), get_pre_20_dir(model, data),
        "batch neuron d_model, d_model -> batch neuron",
    )
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_out_by_neuron_in_20_dir")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_out_by_neuron_in_20_dir(get_out_by_neuron_in_20_dir, model, data)  # a quick local check

# %%
def get_out_by_neuron_in_20_dir_less_memory(model: HookedTransformer, data: BracketsDataset, layer: int) -> Tensor:
    """The same numbers as get_out_by_neuron_in_20_dir without the [batch, neuron, d_model] tensor.

    Project first: (post * W_out) . d = post * (W_out @ d), so one [neuron] vector times the
    [batch, neuron] activations is enough.
    """
    # BEGIN SOLUTION
    name = utils.get_act_name("post", layer)
    post = get_activations(model, data.toks, [name])[name][:, 1]
    return post * (model.W_out[layer] @ get_pre_20_dir(model, data))
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_out_by_neuron_in_20_dir_less_memory")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_out_by_neuron_in_20_dir_less_memory(get_out_by_neuron_in_20_dir_less_memory, model, data)  # a quick local check

# %%
def get_q_and_k_for_given_input(
    model: HookedTransformer, tokenizer: SimpleTokenizer, parens: str, layer: int
) -> tuple[Tensor, Tensor]:
    """The queries and keys of layer `layer` for one string, each [seq, n_heads, d_head]."""
    # BEGIN SOLUTION
    q_name, k_name = utils.get_act_name("q", layer), utils.get_act_name("k", layer)
    cache = get_activations(model, tokenizer.tokenize(parens).to(model.cfg.device), [q_name, k_name])
    return cache[q_name][0], cache[k_name][0]
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("get_q_and_k_for_given_input")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.get_q_and_k_for_given_input(get_q_and_k_for_given_input, model, tokenizer)  # a quick local check

# %%
def embedding(model: HookedTransformer, tokenizer: SimpleTokenizer, char: str) -> Tensor:
    """The token embedding of `(` or `)`, [d_model]: the W_E row of its token id."""
    # BEGIN SOLUTION
    assert char in ("(", ")")
    return model.W_E[tokenizer.t_to_i[char]]
    # END SOLUTION

# %%
# BEGIN REFERENCE ONLY
def compute_v_L_v_R(model: HookedTransformer, data: BracketsDataset, tokenizer: SimpleTokenizer) -> tuple[Tensor, Tensor]:
    """Object item 20: the embeddings of `(` and `)` through layer 0's ln1 fit (all positions,
    coefficients transposed) and head 0.0's OV matrix. On the course model cos(v_L, v_R) ~ -0.997."""
    W_OV = get_WOV(model, 0, 0)
    fit = get_ln_fit(model, data, layernorm=model.blocks[0].ln1, seq_pos=None)[0]
    coefs = t.from_numpy(fit.coef_).to(W_OV)
    v_L = embedding(model, tokenizer, "(") @ coefs.T @ W_OV
    v_R = embedding(model, tokenizer, ")") @ coefs.T @ W_OV
    return v_L, v_R
# END REFERENCE ONLY
# TEMPLATE: # YOUR CODE HERE: the embeddings of "(" and ")" through the layer-0 ln1 fit (all
# TEMPLATE: # positions, coefficients transposed) and head 0.0's OV matrix.
# STUB: v_L = None  # shape [d_model]
# STUB: v_R = None  # shape [d_model]
# SOLVED: v_L, v_R = compute_v_L_v_R(model, data, tokenizer)

# %%
def cos_sim_with_MLP_weights(model: HookedTransformer, v: Tensor, layer: int) -> Tensor:
    """Cosine similarity of `v` with each neuron's input direction (columns of W_in), [d_mlp]."""
    # BEGIN SOLUTION
    v_unit = v / v.norm()
    W_in_unit = model.W_in[layer] / model.W_in[layer].norm(dim=0)
    return einops.einsum(v_unit, W_in_unit, "d_model, d_model d_mlp -> d_mlp")
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("cos_sim_with_MLP_weights")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.cos_sim_with_MLP_weights(cos_sim_with_MLP_weights, model)  # a quick local check

# %%
def avg_squared_cos_sim(v: Tensor, n_samples: int = 1000) -> float:
    """Mean squared cosine similarity of `v` with `n_samples` random Gaussian vectors.

    A baseline for cos_sim_with_MLP_weights: for random directions in d dimensions the expected
    squared cosine similarity is 1/d.
    """
    # BEGIN SOLUTION
    v2 = t.randn(n_samples, v.shape[0], device=v.device)
    v2 = v2 / v2.norm(dim=1, keepdim=True)
    v1 = v / v.norm()
    return (v2 @ v1).pow(2).mean().item()
    # END SOLUTION

# TEMPLATE: if MAIN:
# TEMPLATE:     grader.check("avg_squared_cos_sim")  # the grader's verdict, from a separate worker
# TEMPLATE:     selfcheck.avg_squared_cos_sim(avg_squared_cos_sim, model)  # a quick local check

# %% [markdown]
# ## Bonus: adversarial examples
#
# Find bracket strings (length at most 40) that the model misclassifies.

# %%
# BEGIN REFERENCE ONLY
def compute_adversarial_examples(model: HookedTransformer) -> list[str]:
    """Object item 23, found the course's way and inside the submission (reference.adversarial is
    not visible to workers): a balanced run, a `)(` dip, another balanced run, kept where the
    model calls the string balanced."""
    from reference.model import predict_balanced

    dips = ["(" * a + ")" * a + ")(" + "(" * b + ")" * b for a in range(1, 20) for b in range(20 - a)]
    fooled = predict_balanced(model, dips).tolist()
    return [s for s, wrong in zip(dips, fooled) if wrong][:10]
# END REFERENCE ONLY
# TEMPLATE: # YOUR CODE HERE: a list of bracket strings (length <= 40) that `model` misclassifies.
# STUB: adversarial_examples = []
# SOLVED: adversarial_examples = compute_adversarial_examples(model)
