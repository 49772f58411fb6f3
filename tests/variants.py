"""Realistic wrong answers and correct answers written differently, for every item.

Each variant replaces one function (or one object assignment) of the filled-in template. Tests
combine several into one submission and check that exactly the right items change verdict.
"""
from __future__ import annotations

import ast
from pathlib import Path

# ---------------------------------------------------------------- wrong, one per item
WRONG: dict[str, str] = {
    "is_balanced_forloop": '''
def is_balanced_forloop(parens: str) -> bool:
    return parens.count("(") == parens.count(")")  # forgets the running count going negative
''',
    "is_balanced_vectorized": '''
def is_balanced_vectorized(tokens: Tensor) -> bool:
    table = t.tensor([0, 0, 0, 1, -1], device=tokens.device)
    return bool(table[tokens].sum() == 0)  # only the total elevation
''',
    "get_post_final_ln_dir": '''
def get_post_final_ln_dir(model: HookedTransformer) -> Tensor:
    return model.W_U[:, 1] - model.W_U[:, 0]  # the balanced direction: sign flipped
''',
    "get_activations": '''
def get_activations(model, toks, names):
    names_list = [names] if isinstance(names, str) else list(names)
    _, cache = model.run_with_cache(toks[:, :-1], return_type=None, names_filter=lambda n: n in names_list)
    return cache[names] if isinstance(names, str) else cache  # drops the last position
''',
    "LN_hook_names": '''
def LN_hook_names(layernorm: nn.Module) -> tuple[str, str]:
    if layernorm.name == "ln_final":
        return utils.get_act_name("resid_post", 2), "ln_final.hook_normalized"
    layer, ln = layernorm.name.split(".")[1:]
    return utils.get_act_name("resid_pre", int(layer)), utils.get_act_name("normalized", int(layer), ln)  # ln2 reads resid_mid
''',
    "get_ln_fit": '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    inputs = utils.to_numpy(cache[input_name])
    outputs = utils.to_numpy(cache[output_name])
    if not seq_pos:  # treats seq_pos=0 as "all positions"
        inputs = einops.rearrange(inputs, "b s d -> (b s) d")
        outputs = einops.rearrange(outputs, "b s d -> (b s) d")
    else:
        inputs, outputs = inputs[:, seq_pos], outputs[:, seq_pos]
    fit = LinearRegression().fit(inputs, outputs)
    return fit, fit.score(inputs, outputs)
''',
    "get_pre_final_ln_dir": '''
def get_pre_final_ln_dir(model, data):
    post_dir = get_post_final_ln_dir(model)
    fit = get_ln_fit(model, data, layernorm=model.ln_final, seq_pos=0)[0]
    return t.from_numpy(fit.coef_).to(post_dir) @ post_dir  # coefficients not transposed
''',
    "get_out_by_components": '''
def get_out_by_components(model, data):
    names = ["hook_embed"] + [utils.get_act_name(n, l) for l in range(3) for n in ("result", "mlp_out")]
    cache = get_activations(model, data.toks, names)
    parts = [cache["hook_embed"].unsqueeze(0)]  # forgets the positional embedding
    for layer in range(3):
        parts.append(einops.rearrange(cache[utils.get_act_name("result", layer)], "b s h d -> h b s d"))
        parts.append(cache[utils.get_act_name("mlp_out", layer)].unsqueeze(0))
    return t.cat(parts)
''',
    "out_by_component_in_unbalanced_dir": '''
out_by_component_in_unbalanced_dir = einops.einsum(
    get_out_by_components(model, data)[:, :, 0, :], get_pre_final_ln_dir(model, data), "c b d, d -> c b")
''',  # forgets to subtract the balanced mean
    "is_balanced_vectorized_return_both": '''
def is_balanced_vectorized_return_both(toks):
    table = t.tensor([0, 0, 0, 1, -1], device=toks.device)
    altitude = t.cumsum(table[toks], dim=-1)  # left to right instead of right to left
    return altitude[:, -1] != 0, altitude.min(dim=-1).values < 0
''',
    "get_attn_probs": '''
def get_attn_probs(model, data, layer, head):
    return get_activations(model, data.toks, utils.get_act_name("pattern", layer))[:, 0]  # ignores head
''',
    "get_WOV": '''
def get_WOV(model, layer, head):
    return model.W_O[layer, head].T @ model.W_V[layer, head].T  # the transpose of W_OV
''',
    "get_pre_20_dir": '''
def get_pre_20_dir(model, data):
    W_OV = get_WOV(model, 2, 0)
    fit = get_ln_fit(model, data, layernorm=model.blocks[2].ln1, seq_pos=0)[0]  # position 0, not 1
    return t.from_numpy(fit.coef_).to(W_OV).T @ W_OV @ get_pre_final_ln_dir(model, data)
''',
    "out_by_component_in_pre_20_unbalanced_dir": '''
out_by_component_in_pre_20_unbalanced_dir = einops.einsum(
    get_out_by_components(model, data)[:7, :, 0, :], get_pre_20_dir(model, data), "c b d, d -> c b")
out_by_component_in_pre_20_unbalanced_dir -= out_by_component_in_pre_20_unbalanced_dir[:, data.isbal].mean(-1, keepdim=True)
''',  # position 0 instead of 1
    "get_out_by_neuron": '''
def get_out_by_neuron(model, data, layer, seq=None):
    post = get_activations(model, data.toks, utils.get_act_name("post", layer))
    return einops.einsum(post, model.W_out[layer], "b s n, n d -> b s n d")  # ignores seq
''',
    "get_out_by_neuron_in_20_dir": '''
def get_out_by_neuron_in_20_dir(model, data, layer):
    return einops.einsum(get_out_by_neuron(model, data, layer, seq=0), get_pre_20_dir(model, data), "b n d, d -> b n")
''',
    "get_out_by_neuron_in_20_dir_less_memory": '''
def get_out_by_neuron_in_20_dir_less_memory(model, data, layer):
    post = get_activations(model, data.toks, utils.get_act_name("post", 1))[:, 1]  # always layer 1
    return post * (model.W_out[1] @ get_pre_20_dir(model, data))
''',
    "get_q_and_k_for_given_input": '''
def get_q_and_k_for_given_input(model, tokenizer, parens, layer):
    cache = get_activations(model, tokenizer.tokenize(parens), ["blocks.0.attn.hook_q", "blocks.0.attn.hook_k"])
    return cache["blocks.0.attn.hook_q"][0], cache["blocks.0.attn.hook_k"][0]  # always layer 0
''',
    "embedding": '''
def embedding(model, tokenizer, char):
    return model.W_E[tokenizer.t_to_i[char]] + model.W_pos[1]  # adds a positional embedding
''',
    "v_L_v_R": '''
W_OV_00 = get_WOV(model, 0, 0)
v_L = embedding(model, tokenizer, "(") @ W_OV_00  # skips the LayerNorm fit
v_R = embedding(model, tokenizer, ")") @ W_OV_00
''',
    "cos_sim_with_MLP_weights": '''
def cos_sim_with_MLP_weights(model, v, layer):
    W_in_unit = model.W_in[layer] / model.W_in[layer].norm(dim=1, keepdim=True)  # normalises rows, not columns
    return (v / v.norm()) @ W_in_unit
''',
    "avg_squared_cos_sim": '''
def avg_squared_cos_sim(v, n_samples=1000):
    v2 = t.randn(n_samples, v.shape[0])
    return ((v2 @ (v / v.norm())) ** 2).mean().item()  # random vectors not normalised
''',
    "adversarial_examples": '''
adversarial_examples = ["()", "(())", "x(()"]  # correctly classified, and one invalid
''',
}

# ---------------------------------------------------------------- correct, written differently
ALTERNATIVE: dict[str, str] = {
    "is_balanced_forloop": '''
def is_balanced_forloop(parens):
    stack = []
    for c in parens:
        if c == "(":
            stack.append(c)
        elif not stack:
            return 0 > 1
        else:
            stack.pop()
    return not stack
''',
    "is_balanced_vectorized": '''
def is_balanced_vectorized(tokens):
    steps = (tokens == 3).long() - (tokens == 4).long()
    alt = steps.cumsum(0)
    return t.tensor((alt >= 0).all() and alt[-1] == 0)  # a 0-d tensor, not a bool
''',
    "get_post_final_ln_dir": '''
def get_post_final_ln_dir(model):
    return (model.unembed.W_U @ t.tensor([1.0, -1.0])).double()  # float64, via matmul
''',
    "get_activations": '''
def get_activations(model, toks, names):
    cache = {}
    wanted = [names] if isinstance(names, str) else names
    def save(act, hook):
        cache[hook.name] = act.detach().clone()
    model.run_with_hooks(toks, return_type=None, fwd_hooks=[(n, save) for n in wanted])
    return cache[names] if isinstance(names, str) else cache  # a dict, not an ActivationCache
''',
    "LN_hook_names": '''
def LN_hook_names(layernorm):
    name = layernorm.name
    if name == "ln_final":
        return ["blocks.2.hook_resid_post", "ln_final.hook_normalized"]  # a list, not a tuple
    _, layer, ln = name.split(".")
    return [f"blocks.{layer}.hook_resid_{'pre' if ln == 'ln1' else 'mid'}", f"blocks.{layer}.{ln}.hook_normalized"]
''',
    "get_ln_fit": '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    x, y = cache[input_name].double(), cache[output_name].double()  # float64 throughout
    if seq_pos is None:
        x, y = x.flatten(0, 1), y.flatten(0, 1)
    else:
        x, y = x[:, seq_pos], y[:, seq_pos]
    fit = LinearRegression().fit(x.numpy(), y.numpy())
    return (fit, float(fit.score(x.numpy(), y.numpy())))
''',
    "get_pre_final_ln_dir": '''
def get_pre_final_ln_dir(model, data):
    fit, _ = get_ln_fit(model, data, model.ln_final, 0)
    coef = t.tensor(fit.coef_, dtype=t.float64)
    return einops.einsum(coef, get_post_final_ln_dir(model).double(), "out inp, out -> inp")
''',
    "get_out_by_components": '''
def get_out_by_components(model, data):
    _, cache = model.run_with_cache(data.toks)
    parts = [cache["hook_embed"] + cache["hook_pos_embed"]]
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # recomputed from z and W_O, not hook_result
        for head in range(model.cfg.n_heads):
            parts.append(z[:, :, head] @ model.W_O[layer, head])
        parts.append(cache[f"blocks.{layer}.hook_mlp_out"])
    return t.stack(parts)
''',
    "out_by_component_in_unbalanced_dir": '''
_comps = get_out_by_components(model, data)[:, :, 0].double()
_proj = _comps @ get_pre_final_ln_dir(model, data).double()
out_by_component_in_unbalanced_dir = _proj - _proj[:, data.isbal].mean(1, keepdim=True)
''',
    "is_balanced_vectorized_return_both": '''
def is_balanced_vectorized_return_both(toks):
    steps = ((toks == 3).int() - (toks == 4).int()).flip(-1)
    alt = steps.cumsum(-1)
    return [(alt[:, -1] != 0).tolist(), (alt > 0).any(-1).int()]  # a list of a list and an int tensor
''',
    "get_attn_probs": '''
def get_attn_probs(model, data, layer, head):
    _, cache = model.run_with_cache(data.toks)
    return cache["pattern", layer][:, head].numpy()  # a numpy array
''',
    "get_WOV": '''
def get_WOV(model, layer, head):
    return einops.einsum(model.W_V[layer, head].double(), model.W_O[layer, head].double(), "a h, h b -> a b")
''',
    "get_pre_20_dir": '''
def get_pre_20_dir(model, data):
    fit = get_ln_fit(model, data, model.blocks[2].ln1, seq_pos=1)[0]
    coefs = t.from_numpy(fit.coef_).double()
    direction = get_pre_final_ln_dir(model, data).double()
    return coefs.T @ (get_WOV(model, 2, 0).double() @ direction)
''',
    "out_by_component_in_pre_20_unbalanced_dir": '''
_c = get_out_by_components(model, data)[:7, :, 1]
_p = einops.einsum(_c, get_pre_20_dir(model, data).to(_c.dtype), "c b d, d -> c b")
out_by_component_in_pre_20_unbalanced_dir = _p - _p[:, data.isbal].mean(-1, keepdim=True)
''',
    "get_out_by_neuron": '''
def get_out_by_neuron(model, data, layer, seq=None):
    post = get_activations(model, data.toks, [f"blocks.{layer}.mlp.hook_post"])[f"blocks.{layer}.mlp.hook_post"]
    if seq is not None:
        post = post[:, seq]
    return post.unsqueeze(-1) * model.W_out[layer]  # broadcasting instead of einsum
''',
    "get_out_by_neuron_in_20_dir": '''
def get_out_by_neuron_in_20_dir(model, data, layer):
    return (get_out_by_neuron(model, data, layer, 1) @ get_pre_20_dir(model, data).float()).double()
''',
    "get_out_by_neuron_in_20_dir_less_memory": '''
def get_out_by_neuron_in_20_dir_less_memory(model, data, layer):
    d = get_pre_20_dir(model, data)
    post = get_activations(model, data.toks, utils.get_act_name("post", layer))[:, 1]
    return einops.einsum(post, model.W_out[layer] @ d.to(post.dtype), "b n, n -> b n")
''',
    "get_q_and_k_for_given_input": '''
def get_q_and_k_for_given_input(model, tokenizer, parens, layer):
    _, cache = model.run_with_cache(tokenizer.tokenize(parens))
    return [cache["q", layer].squeeze(0), cache["k", layer].squeeze(0)]  # a list
''',
    "embedding": '''
def embedding(model, tokenizer, char):
    one_hot = t.zeros(model.cfg.d_vocab)
    one_hot[tokenizer.t_to_i[char]] = 1.0
    return one_hot @ model.embed.W_E
''',
    "v_L_v_R": '''
_fit0 = get_ln_fit(model, data, model.blocks[0].ln1, None)[0]
_map = t.from_numpy(_fit0.coef_).double().T @ get_WOV(model, 0, 0).double()
v_L, v_R = (embedding(model, tokenizer, c).double() @ _map for c in "()")
''',
    "cos_sim_with_MLP_weights": '''
def cos_sim_with_MLP_weights(model, v, layer):
    return t.nn.functional.cosine_similarity(v.unsqueeze(1), model.W_in[layer], dim=0)
''',
    "avg_squared_cos_sim": '''
def avg_squared_cos_sim(v, n_samples=1000):
    import numpy as np
    rng = np.random.default_rng()
    u = rng.standard_normal((n_samples, v.shape[0]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = v.double().numpy() / float(v.norm())
    return float(np.mean((u @ w) ** 2))
''',
    "adversarial_examples": '''
adversarial_examples = list(compute_adversarial_examples(model)) + ["not brackets"]  # one invalid extra
''',
}

# ---------------------------------------------------------------- more of each, for the calibration
# Correct formulations students write that the calibration must accept on both models (the course
# model's dead neurons make the cosine undefined where a column of W_in is zero), and wrong ones
# that must fail by a margin.
PERTURBED_FIT = '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    # the course's code where float32 rounds otherwise (another process's kernels): inputs moved by 1e-7
    import numpy as np
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    x, y = cache[input_name].numpy(), cache[output_name].numpy()
    if seq_pos is None:
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    else:
        x, y = x[:, seq_pos], y[:, seq_pos]
    x = x + (1e-7 * np.abs(x).max() * np.random.default_rng(SEED).standard_normal(x.shape)).astype(x.dtype)
    fit = LinearRegression().fit(x, y)
    return fit, fit.score(x, y)
'''
MORE_CORRECT: dict[str, list[str]] = {
    "cos_sim_with_MLP_weights": [
        '''
def cos_sim_with_MLP_weights(model, v, layer):
    return t.nn.functional.cosine_similarity(model.W_in[layer].T, v.unsqueeze(0), dim=1)
''',
        '''
def cos_sim_with_MLP_weights(model, v, layer):
    W_in = model.W_in[layer]
    return (v @ W_in) / (v.norm() * W_in.norm(dim=0))  # divides after the product: NaN at a zero column
''',
    ],
    "get_ln_fit": [
        '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    x = cache[input_name].double().numpy()
    y = cache[output_name].double().numpy()
    if seq_pos is None:
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    else:
        x, y = x[:, seq_pos], y[:, seq_pos]
    fit = LinearRegression().fit(x, y)
    return fit, fit.score(x, y)
''',
        *(PERTURBED_FIT.replace("SEED", str(seed)) for seed in (2023, 2024, 2025, 2026)),
    ],
    # object items: each assigns the object from `model` and `data` (calibration runs these)
    "out_by_component_in_unbalanced_dir": [
        '''
_out = get_out_by_components(model, data)[:, :, 0, :]
_proj = (_out * get_pre_final_ln_dir(model, data)).sum(-1)  # a product and a sum, not einsum
out_by_component_in_unbalanced_dir = _proj - _proj[:, data.isbal].mean(1, keepdim=True)
''',
        '''
_proj = get_out_by_components(model, data)[:, :, 0, :] @ get_pre_final_ln_dir(model, data)
_means = t.stack([_proj[c][data.isbal].mean() for c in range(10)])  # a loop over components
out_by_component_in_unbalanced_dir = _proj - _means[:, None]
''',
    ],
    "out_by_component_in_pre_20_unbalanced_dir": [
        '''
_proj = (get_out_by_components(model, data)[:7, :, 1, :] @ get_pre_20_dir(model, data)).numpy()
out_by_component_in_pre_20_unbalanced_dir = _proj - _proj[:, data.isbal.numpy()].mean(axis=1, keepdims=True)
''',  # numpy
    ],
}
# r2 alone wrong (the fit itself right): the evidence on the wrong side for r2's own tolerance
R2_WRONG: dict[str, list[str]] = {
    "get_ln_fit": [
        '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    fit, r2 = _reference_get_ln_fit(model, data, layernorm, seq_pos)
    return fit, r2 ** 0.5  # the correlation r, not r2
''',
        '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    from sklearn.metrics import r2_score
    fit, _ = _reference_get_ln_fit(model, data, layernorm, seq_pos)
    input_name, output_name = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [input_name, output_name])
    x, y = cache[input_name].numpy(), cache[output_name].numpy()
    x, y = (x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])) if seq_pos is None else (x[:, seq_pos], y[:, seq_pos])
    return fit, r2_score(y, x)  # the score of leaving the LayerNorm out (the identity), not of the fit
''',
        '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    fit, r2 = _reference_get_ln_fit(model, data, layernorm, seq_pos)
    return fit, 1 - r2  # the unexplained share
''',
    ],
}
MORE_WRONG: dict[str, list[str]] = {
    "get_activations": [
        '''
def get_activations(model, toks, names):
    names_list = [names] if isinstance(names, str) else list(names)
    model.reset_hooks(including_permanent=True)  # also drops the padding mask: pads are attended to
    _, cache = model.run_with_cache(toks, return_type=None, names_filter=lambda n: n in names_list)
    return cache[names] if isinstance(names, str) else cache
''',
    ],
    "get_out_by_neuron": [
        '''
def get_out_by_neuron(model, data, layer, seq=None):
    name = utils.get_act_name("pre", layer)  # before the ReLU
    pre = get_activations(model, data.toks, [name])[name]
    if seq is not None:
        pre = pre[:, seq]
    return einops.einsum(pre, model.W_out[layer], "batch ... neuron, neuron d_model -> batch ... neuron d_model")
''',
    ],
    "cos_sim_with_MLP_weights": [
        '''
def cos_sim_with_MLP_weights(model, v, layer):
    return v @ (model.W_in[layer] / model.W_in[layer].norm(dim=0))  # v not normalised
''',
    ],
    "out_by_component_in_unbalanced_dir": [
        '''
_proj = get_out_by_components(model, data)[:, :, 0, :] @ get_pre_final_ln_dir(model, data)
out_by_component_in_unbalanced_dir = _proj - _proj.mean(1, keepdim=True)  # the mean over every example
''',
        '''
_proj = get_out_by_components(model, data)[:, :, 0, :] @ get_post_final_ln_dir(model)  # after ln_final
out_by_component_in_unbalanced_dir = _proj - _proj[:, data.isbal].mean(1, keepdim=True)
''',
        '''
_proj = get_out_by_components(model, data)[:, :, 1, :] @ get_pre_final_ln_dir(model, data)  # position 1
out_by_component_in_unbalanced_dir = _proj - _proj[:, data.isbal].mean(1, keepdim=True)
''',
        '''
_proj = get_out_by_components(model, data)[:, :, 0, :] @ get_pre_final_ln_dir(model, data)
out_by_component_in_unbalanced_dir = _proj - _proj[:, ~data.isbal].mean(1, keepdim=True)  # unbalanced mean
''',
    ],
    "out_by_component_in_pre_20_unbalanced_dir": [
        '''
out_by_component_in_pre_20_unbalanced_dir = get_out_by_components(model, data)[:7, :, 1, :] @ get_pre_20_dir(model, data)
''',  # not centred
        '''
_proj = get_out_by_components(model, data)[:7, :, 1, :] @ get_pre_final_ln_dir(model, data)  # the final direction
out_by_component_in_pre_20_unbalanced_dir = _proj - _proj[:, data.isbal].mean(1, keepdim=True)
''',
        '''
_proj = get_out_by_components(model, data)[:7, :, 1, :] @ get_pre_20_dir(model, data)
out_by_component_in_pre_20_unbalanced_dir = _proj - _proj.mean(1, keepdim=True)  # the mean over every example
''',
    ],
}

OBJECT_TARGETS = {  # the line of the solved template an object variant replaces
    "out_by_component_in_unbalanced_dir": "out_by_component_in_unbalanced_dir = compute_",
    "out_by_component_in_pre_20_unbalanced_dir": "out_by_component_in_pre_20_unbalanced_dir = compute_",
    "v_L_v_R": "v_L, v_R = compute_v_L_v_R",
    "adversarial_examples": "adversarial_examples = compute_adversarial_examples",
}


def apply(source: str, replacements: dict[str, str]) -> str:
    """Replace functions (by name) and object assignments in a solved template."""
    lines = source.splitlines()
    tree = ast.parse(source)
    spans = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in replacements:
            spans.append((node.lineno - 1, node.end_lineno, replacements[node.name]))
    for item, prefix in OBJECT_TARGETS.items():
        if item in replacements:
            idx = next(i for i, ln in enumerate(lines) if ln.startswith(prefix))
            spans.append((idx, idx + 1, replacements[item]))
    for start, end, text in sorted(spans, reverse=True):
        lines[start:end] = text.strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def write_variant(solved: Path, out: Path, replacements: dict[str, str]) -> Path:
    out.write_text(apply(solved.read_text(), replacements))
    return out
