# A student's submission in the course's own layout, bundled as the example `bracket-grade`
# grades when given no path. Mostly right, with three mistakes students really make:
# get_ln_fit treats seq_pos=0 as "all positions", get_WOV multiplies in the wrong order, and
# avg_squared_cos_sim was renamed.
# %%
import json
import sys
from functools import partial
from pathlib import Path

import circuitsvis as cv
import einops
import torch as t
from IPython.display import display
from jaxtyping import Bool, Float, Int
from sklearn.linear_model import LinearRegression
from torch import Tensor, nn
from tqdm import tqdm
from transformer_lens import ActivationCache, HookedTransformer, HookedTransformerConfig, utils
from transformer_lens.hook_points import HookPoint

device = t.device("mps" if t.backends.mps.is_available() else "cuda" if t.cuda.is_available() else "cpu")
t.set_grad_enabled(False)

# Make sure exercises are in the path
chapter = "chapter1_transformer_interp"
section = "part51_balanced_bracket_classifier"
exercises_dir = next(p for p in Path.cwd().parents if p.name == chapter) / "exercises"
section_dir = exercises_dir / section
if str(exercises_dir) not in sys.path:
    sys.path.append(str(exercises_dir))

import part51_balanced_bracket_classifier.tests as tests
import plotly_utils
from part51_balanced_bracket_classifier.brackets_datasets import BracketsDataset, SimpleTokenizer
from plotly_utils import bar, hist

MAIN = __name__ == "__main__"

# %%
VOCAB = "()"

cfg = HookedTransformerConfig(
    n_ctx=42,
    d_model=56,
    d_head=28,
    n_heads=2,
    d_mlp=56,
    n_layers=3,
    attention_dir="bidirectional",  # defaults to "causal"
    act_fn="relu",
    d_vocab=len(VOCAB) + 3,  # plus 3 because of end and pad and start token
    d_vocab_out=2,  # 2 because we're doing binary classification
    use_attn_result=True,
    device=device,
    use_hook_tokens=True,
)

model = HookedTransformer(cfg).eval()

state_dict = t.load(section_dir / "brackets_model_state_dict.pt", map_location=device)
model.load_state_dict(state_dict)

# %%
tokenizer = SimpleTokenizer("()")

# Examples of tokenization
# (the second one applies padding, since the sequences are of different lengths)
print(tokenizer.tokenize("()"))
print(tokenizer.tokenize(["()", "()()"]))

# Dictionaries mapping indices to tokens and vice versa
print(tokenizer.i_to_t)
print(tokenizer.t_to_i)

# Examples of decoding (all padding tokens are removed)
print(tokenizer.decode(t.tensor([[0, 3, 4, 2, 1, 1]])))

# %%
def add_perma_hooks_to_mask_pad_tokens(model: HookedTransformer, pad_token: int) -> HookedTransformer:
    # Hook which operates on the tokens, and stores a mask where tokens equal [pad]
    def cache_padding_tokens_mask(tokens: Float[Tensor, "batch seq"], hook: HookPoint) -> None:
        hook.ctx["padding_tokens_mask"] = einops.rearrange(tokens == pad_token, "b sK -> b 1 1 sK")

    # Apply masking, by referencing the mask stored in the `hook_tokens` hook context
    def apply_padding_tokens_mask(
        attn_scores: Float[Tensor, "batch head seq_Q seq_K"],
        hook: HookPoint,
    ) -> None:
        attn_scores.masked_fill_(model.hook_dict["hook_tokens"].ctx["padding_tokens_mask"], -1e5)
        if hook.layer() == model.cfg.n_layers - 1:
            del model.hook_dict["hook_tokens"].ctx["padding_tokens_mask"]

    # Add these hooks as permanent hooks (i.e. they aren't removed after functions like run_with_hooks)
    for name, hook in model.hook_dict.items():
        if name == "hook_tokens":
            hook.add_perma_hook(cache_padding_tokens_mask)
        elif name.endswith("attn_scores"):
            hook.add_perma_hook(apply_padding_tokens_mask)

    return model


model.reset_hooks(including_permanent=True)
model = add_perma_hooks_to_mask_pad_tokens(model, tokenizer.PAD_TOKEN)

# %%
N_SAMPLES = 5000
with open(section_dir / "brackets_data.json") as f:
    data_tuples: list[tuple[str, bool]] = json.load(f)
    print(f"loaded {len(data_tuples)} examples, using {N_SAMPLES}")
    assert isinstance(data_tuples, list)
data_tuples = data_tuples[:N_SAMPLES]
data = BracketsDataset(data_tuples).to(device)
data_mini = BracketsDataset(data_tuples[:100]).to(device)

# %%
if MAIN:
    hist(
        [len(x) for x, _ in data_tuples],
        nbins=data.seq_length,
        title="Sequence lengths of brackets in dataset",
        labels={"x": "Seq len"},
    )

# %%
# Define and tokenize examples
examples = ["()()", "(())", "))((", "()", "((()()()()))", "(()()()(()(())()", "()(()(((())())()))"]
labels = [True, True, False, True, True, False, True]
toks = tokenizer.tokenize(examples)

# Get output logits for the 0th sequence position (i.e. the [start] token)
logits = model(toks)[:, 0]

# Get the probabilities via softmax, then get the balanced probability (which is the second element)
prob_balanced = logits.softmax(-1)[:, 1]

# Display output
print(
    "Model confidence:\n"
    + "\n".join(
        [f"{ex:18} : {prob:<8.4%} : label={int(label)}" for ex, prob, label in zip(examples, prob_balanced, labels)]
    )
)


# %%
def run_model_on_data(
    model: HookedTransformer, data: BracketsDataset, batch_size: int = 200
) -> Float[Tensor, "batch 2"]:
    """Return probability that each example is balanced"""
    all_logits = []
    for i in tqdm(range(0, len(data.strs), batch_size)):
        toks = data.toks[i : i + batch_size]
        logits = model(toks)[:, 0]
        all_logits.append(logits)
    all_logits = t.cat(all_logits)
    assert all_logits.shape == (len(data), 2)
    return all_logits


if MAIN:
    test_set = data
    n_correct = (run_model_on_data(model, test_set).argmax(-1).bool() == test_set.isbal).sum()
    print(f"\nModel got {n_correct} out of {len(data)} training examples correct!")


# %%
def is_balanced_forloop(parens: str) -> bool:
    """
    Return True if the parens are balanced.

    Parens is just the ( and ) characters, no begin or end tokens.
    """
    cumsum = 0
    for paren in parens:
        cumsum += 1 if paren == "(" else -1
        if cumsum < 0:
            return False

    return cumsum == 0


if MAIN:
    for parens, expected in zip(examples, labels):
        actual = is_balanced_forloop(parens)
        assert expected == actual, f"{parens}: expected {expected} got {actual}"

    print("All tests for `is_balanced_forloop` passed!")


# %%
def is_balanced_vectorized(tokens: Float[Tensor, "seq_len"]) -> bool:
    """
    Return True if the parens are balanced.

    tokens is a vector which has start/pad/end indices (0/1/2) as well as left/right brackets (3/4)
    """
    # Convert start/end/padding tokens to zero, and left/right brackets to +1/-1
    table = t.tensor([0, 0, 0, 1, -1]).to(tokens.device)
    change = table[tokens]
    # Get altitude by taking cumulative sum
    altitude = t.cumsum(change, -1)
    # Check that the total elevation is zero and that there are no negative altitudes
    no_total_imbalance = altitude[-1] == 0
    no_negative_failures = altitude.min() >= 0

    return (no_total_imbalance & no_negative_failures).item()


if MAIN:
    for tokens, expected in zip(tokenizer.tokenize(examples), labels):
        actual = is_balanced_vectorized(tokens)
        assert expected == actual, f"{tokens}: expected {expected} got {actual}"

    print("All tests for `is_balanced_vectorized` passed!")


# %%
def get_post_final_ln_dir(model: HookedTransformer) -> Float[Tensor, "d_model"]:
    """
    Returns the direction in which final_ln_output[0, :] should point to maximize P(unbalanced)
    """
    return model.W_U[:, 0] - model.W_U[:, 1]


if MAIN:
    tests.test_get_post_final_ln_dir(get_post_final_ln_dir, model)


# %%
def get_activations(
    model: HookedTransformer, toks: Int[Tensor, "batch seq"], names: list[str]
) -> ActivationCache:
    """Uses hooks to return activations from the model, in the form of an ActivationCache."""
    names_list = [names] if isinstance(names, str) else names
    _, cache = model.run_with_cache(
        toks,
        return_type=None,
        names_filter=lambda name: name in names_list,
    )
    return cache[names] if isinstance(names, str) else cache


def LN_hook_names(layernorm: nn.Module) -> tuple[str, str]:
    """
    Returns the names of the hooks immediately before and after a given layernorm.

    Example:
        model.final_ln -> ("blocks.2.hook_resid_post", "ln_final.hook_normalized")
    """
    if layernorm.name == "ln_final":
        input_hook_name = utils.get_act_name("resid_post", 2)
        output_hook_name = "ln_final.hook_normalized"
    else:
        layer, ln = layernorm.name.split(".")[1:]
        input_hook_name = utils.get_act_name("resid_pre" if ln == "ln1" else "resid_mid", layer)
        output_hook_name = utils.get_act_name("normalized", layer, ln)

    return input_hook_name, output_hook_name


if MAIN:
    pre_final_ln_name, post_final_ln_name = LN_hook_names(model.ln_final)
    print(pre_final_ln_name, post_final_ln_name)


# %%
def get_ln_fit(
    model: HookedTransformer, data: BracketsDataset, layernorm: nn.Module, seq_pos: int | None = None
) -> tuple[LinearRegression, float]:
    """
    Fits a linear regression, where the inputs are the values just before the layernorm given by the
    input argument `layernorm`, and the values to predict are the layernorm's outputs.

    if `seq_pos` is None, find best fit aggregated over all sequence positions. Otherwise, fit only
    for the activations at `seq_pos`.

    Returns: A tuple of a (fitted) sklearn LinearRegression object and the r^2 of the fit
    """
    input_hook_name, output_hook_name = LN_hook_names(layernorm)

    activations = get_activations(model, data.toks, [input_hook_name, output_hook_name])
    inputs = utils.to_numpy(activations[input_hook_name])
    outputs = utils.to_numpy(activations[output_hook_name])

    if not seq_pos:
        inputs = einops.rearrange(inputs, "batch seq d_model -> (batch seq) d_model")
        outputs = einops.rearrange(outputs, "batch seq d_model -> (batch seq) d_model")
    else:
        inputs = inputs[:, seq_pos, :]
        outputs = outputs[:, seq_pos, :]

    final_ln_fit = LinearRegression().fit(inputs, outputs)

    r2 = final_ln_fit.score(inputs, outputs)

    return (final_ln_fit, r2)


if MAIN:
    tests.test_get_ln_fit(get_ln_fit, model, data_mini)

    _, r2 = get_ln_fit(model, data, layernorm=model.ln_final, seq_pos=0)
    print(f"r^2 for LN_final, at sequence position 0: {r2:.4f}")

    _, r2 = get_ln_fit(model, data, layernorm=model.blocks[1].ln1, seq_pos=None)
    print(f"r^2 for LN1, layer 1, over all sequence positions: {r2:.4f}")


# %%
def get_pre_final_ln_dir(model: HookedTransformer, data: BracketsDataset) -> Float[Tensor, "d_model"]:
    """
    Returns the direction in residual stream (pre ln_final, at sequence position 0) which
    most points in the direction of making an unbalanced classification.
    """
    post_final_ln_dir = get_post_final_ln_dir(model)

    final_ln_fit = get_ln_fit(model, data, layernorm=model.ln_final, seq_pos=0)[0]
    final_ln_coefs = t.from_numpy(final_ln_fit.coef_).to(device)

    return final_ln_coefs.T @ post_final_ln_dir


if MAIN:
    tests.test_get_pre_final_ln_dir(get_pre_final_ln_dir, model, data)


# %%
def get_out_by_components(model: HookedTransformer, data: BracketsDataset) -> Float[Tensor, "component batch seq_pos emb"]:
    """
    Computes a tensor of shape [10, dataset_size, seq_pos, emb] representing the output of the model's components when
    run on the data.

    The first dimension is  [embeddings, head 0.0, head 0.1, mlp 0, head 1.0, head 1.1, mlp 1, head 2.0, head 2.1, mlp 2]
    """
    embedding_hook_names = ["hook_embed", "hook_pos_embed"]
    head_hook_names = [utils.get_act_name("result", layer) for layer in range(model.cfg.n_layers)]
    mlp_hook_names = [utils.get_act_name("mlp_out", layer) for layer in range(model.cfg.n_layers)]

    all_hook_names = embedding_hook_names + head_hook_names + mlp_hook_names
    activations = get_activations(model, data.toks, all_hook_names)

    out = (activations["hook_embed"] + activations["hook_pos_embed"]).unsqueeze(0)

    for head_hook_name, mlp_hook_name in zip(head_hook_names, mlp_hook_names):
        out = t.concat(
            [
                out,
                einops.rearrange(activations[head_hook_name], "batch seq heads emb -> heads batch seq emb"),
                activations[mlp_hook_name].unsqueeze(0),
            ]
        )

    return out


if MAIN:
    tests.test_get_out_by_components(get_out_by_components, model, data)

# %%
if MAIN:
    biases = model.b_O.sum(0)
    out_by_components = get_out_by_components(model, data)
    summed_terms = out_by_components.sum(dim=0) + biases

    final_ln_input_name, final_ln_output_name = LN_hook_names(model.ln_final)
    final_ln_input = get_activations(model, data.toks, final_ln_input_name)

    t.testing.assert_close(summed_terms, final_ln_input)
    print("Tests passed!")

# %%
if MAIN:
    # Get output by components, at sequence position 0 (which is used for classification)
    out_by_components_seq0 = out_by_components[:, :, 0, :]  # [component=10 batch d_model]
    # Get the unbalanced direction for tensors being fed into the final layernorm
    pre_final_ln_dir = get_pre_final_ln_dir(model, data)  # [d_model]
    # Get the size of the contributions for each component
    out_by_component_in_unbalanced_dir = einops.einsum(
        out_by_components_seq0,
        pre_final_ln_dir,
        "comp batch d_model, d_model -> comp batch",
    )
    # Subtract the mean
    out_by_component_in_unbalanced_dir -= (
        out_by_component_in_unbalanced_dir[:, data.isbal].mean(dim=1).unsqueeze(1)
    )

    tests.test_out_by_component_in_unbalanced_dir(out_by_component_in_unbalanced_dir, model, data)
    # Plot the results
    plotly_utils.hists_per_comp(out_by_component_in_unbalanced_dir, data, xaxis_range=[-10, 20])


# %%
def is_balanced_vectorized_return_both(
    toks: Int[Tensor, "batch seq"],
) -> tuple[Bool[Tensor, "batch"], Bool[Tensor, "batch"]]:
    table = t.tensor([0, 0, 0, 1, -1]).to(device)
    change = table[toks.to(device)].flip(-1)
    altitude = t.cumsum(change, -1)
    total_elevation_failure = altitude[:, -1] != 0
    negative_failure = altitude.max(-1).values > 0
    return total_elevation_failure, negative_failure


if MAIN:
    total_elevation_failure, negative_failure = is_balanced_vectorized_return_both(data.toks)
    h20_in_unbalanced_dir = out_by_component_in_unbalanced_dir[7]
    h21_in_unbalanced_dir = out_by_component_in_unbalanced_dir[8]
    tests.test_total_elevation_and_negative_failures(data, total_elevation_failure, negative_failure)


# %%
def get_attn_probs(model: HookedTransformer, data: BracketsDataset, layer: int, head: int) -> t.Tensor:
    """
    Returns: (N_SAMPLES, max_seq_len, max_seq_len) tensor that sums to 1 over the last dimension.
    """
    return get_activations(model, data.toks, utils.get_act_name("pattern", layer))[:, head, :, :]


if MAIN:
    tests.test_get_attn_probs(get_attn_probs, model, data)


# %%
def get_WOV(model: HookedTransformer, layer: int, head: int) -> Float[Tensor, "d_model d_model"]:
    """
    Returns the W_OV matrix for a particular layer and head.
    """
    return model.W_O[layer, head].T @ model.W_V[layer, head].T


def get_pre_20_dir(model, data) -> Float[Tensor, "d_model"]:
    """
    Returns the direction propagated back through the OV matrix of 2.0 and then through the layernorm before the layer 2 attention heads.
    """
    W_OV = get_WOV(model, 2, 0)

    layer2_ln_fit, r2 = get_ln_fit(model, data, layernorm=model.blocks[2].ln1, seq_pos=1)
    layer2_ln_coefs = t.from_numpy(layer2_ln_fit.coef_).to(device)

    pre_final_ln_dir = get_pre_final_ln_dir(model, data)

    return layer2_ln_coefs.T @ W_OV @ pre_final_ln_dir


if MAIN:
    tests.test_get_pre_20_dir(get_pre_20_dir, model, data_mini)

# %%
if MAIN:
    pre_layer2_outputs_seqpos1 = out_by_components[:-3, :, 1, :]
    out_by_component_in_pre_20_unbalanced_dir = einops.einsum(
        pre_layer2_outputs_seqpos1,
        get_pre_20_dir(model, data),
        "comp batch emb, emb -> comp batch",
    )
    out_by_component_in_pre_20_unbalanced_dir -= out_by_component_in_pre_20_unbalanced_dir[:, data.isbal].mean(
        -1, keepdim=True
    )
    tests.test_out_by_component_in_pre_20_unbalanced_dir(out_by_component_in_pre_20_unbalanced_dir, model, data)
    plotly_utils.hists_per_comp(out_by_component_in_pre_20_unbalanced_dir, data, xaxis_range=(-5, 12))


# %%
def get_out_by_neuron(
    model: HookedTransformer, data: BracketsDataset, layer: int, seq: int | None = None
) -> Float[Tensor, "batch *seq neuron d_model"]:
    """
    If seq is not None, then out[b, s, i, :] = f(x[b, s].T @ W_in[:, i]) @ W_out[i, :],
    i.e. the vector which is written to the residual stream by the ith neuron (where x
    is the input to the residual stream (i.e. shape (batch, seq, d_model)).

    If seq is None, then out[b, i, :] = vector f(x[b].T @ W_in[:, i]) @ W_out[i, :]

    (Note, using * in jaxtyping indicates an optional dimension)
    """
    # Get the W_out matrix for this MLP
    W_out = model.W_out[layer]  # [neuron d_model]

    # Get activations of the layer just after the activation function, i.e. this is f(x.T @ W_in)
    f_x_W_in = get_activations(model, data.toks, utils.get_act_name("post", layer))  # [batch seq neuron]

    # f_x_W_in are activations, so they have batch and seq dimensions - this is where we index by seq if necessary
    if seq is not None:
        f_x_W_in = f_x_W_in[:, seq, :]  # [batch neuron]

    # Calculate the output by neuron (i.e. so summing over the `neurons` dimension gives the output of the MLP)
    out = einops.einsum(
        f_x_W_in,
        W_out,
        "... neuron, neuron d_model -> ... neuron d_model",
    )
    return out


if MAIN:
    tests.test_get_out_by_neuron(get_out_by_neuron, model, data)
    tests.test_get_out_by_neuron_in_20_dir(get_out_by_neuron, model, data)


# %%
def get_out_by_neuron_in_20_dir(model: HookedTransformer, data: BracketsDataset, layer: int) -> Float[Tensor, "batch neurons"]:
    """
    [b, s, i]th element is the contribution of the vector written by the ith neuron to the residual stream in the
    unbalanced direction (for the b-th element in the batch, and the s-th sequence position).

    In other words we need to take the vector produced by the `get_out_by_neuron` function, and project it onto the
    unbalanced direction for head 2.0 (at seq pos = 1).
    """
    out_by_neuron_seqpos1 = get_out_by_neuron(model, data, layer, seq=1)

    return einops.einsum(
        out_by_neuron_seqpos1,
        get_pre_20_dir(model, data),
        "batch neuron d_model, d_model -> batch neuron",
    )


def get_out_by_neuron_in_20_dir_less_memory(model: HookedTransformer, data: BracketsDataset, layer: int) -> Float[Tensor, "batch neurons"]:
    """
    Has the same output as `get_out_by_neuron_in_20_dir`, but uses less memory (because it never stores the output
    vector of each neuron individually).
    """
    W_out = model.W_out[layer]  # [neurons d_model]

    f_x_W_in = get_activations(model, data.toks, utils.get_act_name("post", layer))[:, 1, :]  # [batch neurons]

    pre_20_dir = get_pre_20_dir(model, data)  # [d_model]

    # Multiply along the d_model dimension
    W_out_in_20_dir = W_out @ pre_20_dir  # [neurons]
    # Multiply elementwise, over neurons (we're broadcasting along the batch dim)
    out_by_neuron_in_20_dir = f_x_W_in * W_out_in_20_dir  # [batch neurons]

    return out_by_neuron_in_20_dir


if MAIN:
    tests.test_get_out_by_neuron_in_20_dir_less_memory(get_out_by_neuron_in_20_dir_less_memory, model, data)


# %%
def get_q_and_k_for_given_input(
    model: HookedTransformer,
    tokenizer: SimpleTokenizer,
    parens: str,
    layer: int,
) -> tuple[Float[Tensor, "seq n_head d_model"], Float[Tensor, "seq n_head d_model"]]:
    """
    Returns the queries and keys (both of shape [seq, d_head, d_model]) for the given parns string.
    """
    # Run the model with hooks to store the query and key values
    q_name = utils.get_act_name("q", layer)
    k_name = utils.get_act_name("k", layer)
    activations = get_activations(model, tokenizer.tokenize(parens), [q_name, k_name])

    # Return the query and key values (stripping the batch dimension)
    return activations[q_name][0], activations[k_name][0]


if MAIN:
    tests.test_get_q_and_k_for_given_input(get_q_and_k_for_given_input, model, tokenizer)


# %%
def embedding(model: HookedTransformer, tokenizer: SimpleTokenizer, char: str) -> Float[Tensor, "d_model"]:
    assert char in ("(", ")")
    idx = tokenizer.t_to_i[char]
    return model.W_E[idx]


if MAIN:
    W_OV = model.W_V[0, 0] @ model.W_O[0, 0]

    layer0_ln_fit = get_ln_fit(model, data, layernorm=model.blocks[0].ln1, seq_pos=None)[0]
    layer0_ln_coefs = t.from_numpy(layer0_ln_fit.coef_).to(device)

    v_L = embedding(model, tokenizer, "(") @ layer0_ln_coefs.T @ W_OV
    v_R = embedding(model, tokenizer, ")") @ layer0_ln_coefs.T @ W_OV

    print(f"Cosine similarity: {t.cosine_similarity(v_L, v_R, dim=0).item():.4f}")


# %%
def cos_sim_with_MLP_weights(model: HookedTransformer, v: Float[Tensor, "d_model"], layer: int) -> Float[Tensor, "d_mlp"]:
    """
    Returns a vector of length d_mlp, where the ith element is the cosine similarity between v and the
    ith in-direction of the MLP in layer `layer`.

    Recall that the in-direction of the MLPs are the columns of the W_in matrix.
    """
    v_unit = v / v.norm()
    W_in_unit = model.W_in[layer] / model.W_in[layer].norm(dim=0)

    return einops.einsum(v_unit, W_in_unit, "d_model, d_model d_mlp -> d_mlp")


def avg_sq_cos_sim(v: Float[Tensor, "d_model"], n_samples: int = 1000) -> float:
    """
    Returns the average (over n_samples) cosine similarity between v and another randomly chosen vector.

    We can create random vectors from the standard N(0, I) distribution.
    """
    v2 = t.randn(n_samples, v.shape[0]).to(device)
    v2 /= v2.norm(dim=1, keepdim=True)

    v1 = v / v.norm()

    return (v1 * v2).pow(2).sum(1).mean().item()


if MAIN:
    print("Avg squared cosine similarity of v_R with ...\n")

    cos_sim_mlp0 = cos_sim_with_MLP_weights(model, v_R, 0)
    print(f"...MLP input directions in layer 0:  {cos_sim_mlp0.pow(2).mean():.4f}")

    cos_sim_mlp1 = cos_sim_with_MLP_weights(model, v_R, 1)
    print(f"...MLP input directions in layer 1:  {cos_sim_mlp1.pow(2).mean():.4f}")

    cos_sim_rand = avg_sq_cos_sim(v_R)
    print(f"...random vectors of len = d_model:  {cos_sim_rand:.4f}")


# %%
if MAIN:
    examples = ["()", "(())", "))"]
    m = max(len(ex) for ex in examples)
    toks = tokenizer.tokenize(examples)
    probs = model(toks)[:, 0].softmax(-1)[:, 1]
    print("\n".join([f"{ex:{m}} -> {p:.4%} balanced confidence" for (ex, p) in zip(examples, probs)]))

# %%
# Bonus: adversarial examples. Search near misses of the course's known pattern and random
# strings, and keep the ones the model gets wrong.
if MAIN:
    import random

    rng = random.Random(0)
    candidates = ["(" * 15 + ")" * 15 + ")(" + "(" * 4 + ")" * 4]
    for a in range(1, 19):
        for b in range(0, 10):
            candidates.append("(" * a + ")" * a + ")(" + "(" * b + ")" * b)
    for _ in range(6000):
        n = rng.choice(range(20, 41, 2))
        s = []
        depth = 0
        for i in range(n):
            c = "(" if depth == 0 or (depth < n - i and rng.random() < 0.5) else ")"
            depth += 1 if c == "(" else -1
            s.append(c)
        j = rng.randrange(n - 1)
        s[j], s[j + 1] = s[j + 1], s[j]
        candidates.append("".join(s))
    candidates = [c for c in dict.fromkeys(candidates) if len(c) <= 40]
    predicted = t.cat([model(tokenizer.tokenize(candidates[i : i + 500]))[:, 0].argmax(-1) for i in range(0, len(candidates), 500)])
    adversarial_examples = [c for c, p in zip(candidates, predicted.tolist()) if bool(p) != is_balanced_forloop(c)][:10]
    print(f"{len(adversarial_examples)} adversarial examples found")
