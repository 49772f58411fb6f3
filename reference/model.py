"""The course's bracket classifier: config, construction with padding-mask hooks, and loading.

One loader takes either our shipped safetensors weights or the course's `.pt` state dict, so the
whole project can run on either model.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import einops
import torch as t
from transformer_lens import HookedTransformer, HookedTransformerConfig

from reference.brackets import BracketsDataset, SimpleTokenizer
from reference.paths import ASSETS, DEFAULT_DATA, DEFAULT_WEIGHTS  # noqa: F401 - where callers look

VOCAB = "()"
N_SAMPLES = 5000  # students' `data` is the first 5,000 examples, `data_mini` the first 100


def make_config(device: str | t.device = "cpu") -> HookedTransformerConfig:
    return HookedTransformerConfig(
        n_ctx=42,
        d_model=56,
        d_head=28,
        n_heads=2,
        d_mlp=56,
        n_layers=3,
        attention_dir="bidirectional",
        act_fn="relu",
        d_vocab=len(VOCAB) + 3,  # [start], [pad], [end] and the two brackets
        d_vocab_out=2,  # class 0 = unbalanced, class 1 = balanced, read at position 0
        use_attn_result=True,
        device=str(device),
        use_hook_tokens=True,
    )


def add_perma_hooks_to_mask_pad_tokens(model: HookedTransformer, pad_token: int) -> HookedTransformer:
    """Make every attention layer ignore [pad] keys, as permanent hooks (they survive reset_hooks).

    `hook_tokens` stores where the pads are; every `attn_scores` hook fills those key columns with
    -1e5 so softmax gives them no weight. The stored mask is dropped after the last layer.
    """

    def cache_padding_tokens_mask(tokens, hook) -> None:
        hook.ctx["padding_tokens_mask"] = einops.rearrange(tokens == pad_token, "b sK -> b 1 1 sK")

    def apply_padding_tokens_mask(attn_scores, hook) -> None:
        attn_scores.masked_fill_(model.hook_dict["hook_tokens"].ctx["padding_tokens_mask"], -1e5)
        if hook.layer() == model.cfg.n_layers - 1:
            del model.hook_dict["hook_tokens"].ctx["padding_tokens_mask"]

    for name, hook in model.hook_dict.items():
        if name == "hook_tokens":
            hook.add_perma_hook(cache_padding_tokens_mask)
        elif name.endswith("attn_scores"):
            hook.add_perma_hook(apply_padding_tokens_mask)
    return model


def read_state_dict(path: str | Path) -> dict[str, t.Tensor]:
    """Weights from our `.safetensors` file or a course-style `.pt` state dict (tensors only)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return t.load(path, map_location="cpu", weights_only=True)


def build_model(state_dict: dict[str, t.Tensor] | None = None, device: str | t.device = "cpu") -> HookedTransformer:
    """A fresh model on `device`, padding hooks installed, in eval mode."""
    model = HookedTransformer(make_config(device)).eval()
    if state_dict is not None:
        # Buffers such as attention masks may be absent from a safetensors file: keep the model's.
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if not k.endswith((".mask", ".IGNORE"))]
        if missing or unexpected:
            raise ValueError(f"state dict does not fit the bracket model: missing {missing}, unexpected {unexpected}")
    model.reset_hooks(including_permanent=True)
    return add_perma_hooks_to_mask_pad_tokens(model, SimpleTokenizer.PAD_TOKEN)


def default_weights() -> Path:
    """Our shipped weights, unless the grader chose another model for this run (env variable)."""
    return Path(os.environ.get("BRACKET_GRADER_WEIGHTS") or DEFAULT_WEIGHTS)


def default_data() -> Path:
    return Path(os.environ.get("BRACKET_GRADER_DATA") or DEFAULT_DATA)


def load_model(weights: str | Path | None = None, device: str | t.device = "cpu") -> HookedTransformer:
    return build_model(read_state_dict(weights or default_weights()), device)


def load_data_tuples(path: str | Path | None = None) -> list[tuple[str, bool]]:
    with open(path or default_data()) as f:
        return [(s, bool(b)) for s, b in json.load(f)]


def load_datasets(path: str | Path | None = None, device: str | t.device = "cpu"):
    """The course's `data` (first 5,000) and `data_mini` (first 100)."""
    tuples = load_data_tuples(path)
    return BracketsDataset(tuples[:N_SAMPLES]).to(device), BracketsDataset(tuples[:100]).to(device)


def parameter_hash(model_or_state: HookedTransformer | dict) -> str:
    """sha256 of the parameters (not buffers), name-sorted, as float32: identifies a model by weights."""
    if isinstance(model_or_state, dict):
        params = {k: v for k, v in model_or_state.items() if not k.endswith((".mask", ".IGNORE"))}
    else:
        params = dict(model_or_state.named_parameters())
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode())
        h.update(params[name].detach().to("cpu", t.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def predict_balanced(model: HookedTransformer, strs: list[str], batch_size: int = 1000) -> t.Tensor:
    """Model's verdict (True = balanced) for each string, read from the logits at position 0."""
    tokenizer = SimpleTokenizer(VOCAB)
    out = []
    device = model.cfg.device
    with t.inference_mode():
        for i in range(0, len(strs), batch_size):
            toks = tokenizer.tokenize(strs[i : i + batch_size]).to(device)
            out.append(model(toks)[:, 0].argmax(-1).cpu() == 1)
    return t.cat(out) if out else t.zeros(0, dtype=t.bool)
