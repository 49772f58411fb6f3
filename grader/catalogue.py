"""The 23 gradeable items, declared as data: what to call, on which inputs, how to compare.

Each function item is called on several argument combinations (every layer and head, every
LayerNorm, seq/seq_pos variants, more than one data subset, a second model with other weights),
so a function that ignores an argument, or hard-codes the course model's numbers, fails.
Tolerances live here, each with its reason. Order and ids follow EXERCISES.md.
"""
from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.protocol import encode

MAIN = {"$model": "main"}
ALT = {"$model": "alt"}
TOKENIZER = {"$tokenizer": None}
DATA_A = {"$data": [0, 60]}  # from students' own `data`
# the items that use a fit: enough rows for a 56-dim fit at one position; strings of at most 20
# brackets keep the model's forward pass (most of grading's time) short (get_ln_fit: DATA_LN_FIT)
DATA_FIT = {"$data": {"from": [0, 1000], "max_len": 20, "n": 240}}
# get_ln_fit itself: strings of every length. Layer 0's inputs over 240 short strings are
# ill-conditioned (padding fills most positions): float32 rounding alone moved the course model's
# blocks.0.ln2 fit's predictions by 0.24%, against 0.02% over 120 strings of every length (as
# many rows, so the forward passes cost about what they did)
DATA_LN_FIT = {"$data": {"from": [0, 1000], "max_len": 40, "n": 120}}
DATA_B = {"$data": {"from": [7000, 8000], "max_len": 20, "n": 240}}  # never in students' `data`
SHORT_STRS = ["()", "(())", ")(", "(()", "())(()", "((()))", "()()()", "(()))(", "))((", "(((())))",
              "()(())", "((((", "(()())()", "())", "((())())", "()))((()"]
DATA_SHORT = {"$data": {"strs": SHORT_STRS}}  # short strings: small [batch, seq, neuron, d_model] tensors
LAYERNORMS = ["blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "blocks.2.ln1", "blocks.2.ln2", "ln_final"]


@dataclass(frozen=True)
class Case:
    """One call: positional/keyword arg specs (see grader.inputs), or `each` for a batch of calls."""

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    each: tuple = ()  # if set: call once per entry (each a tuple of args); the answer is the list
    memory_limit: int = 0  # if set: the largest tensor the call may create (elements); more -> partial

    def to_json(self) -> dict:
        return {"label": self.label, "args": list(self.args), "kwargs": self.kwargs, "each": [list(a) for a in self.each],
                "measure_memory": bool(self.memory_limit)}


@dataclass(frozen=True)
class Tolerance:
    """|got - expected| <= atol + rtol * max|expected| elementwise, with the reason for the numbers.
    A fit's r2 is compared within `r2`; a pair judged by direction and size (v_L and v_R) needs
    1 - cosine <= `direction` and |log of the norm ratio| <= `size`."""

    atol: float
    rtol: float
    reason: str
    r2: float = 1e-4
    direction: float = 0.0
    size: float = 0.0


EXACT = Tolerance(0.0, 0.0, "booleans and names: no arithmetic involved")
MATMUL = Tolerance(1e-5, 1e-4, "a few float32 products and sums: einsum, matmul, float64 or hook results vs "
                   "recomputation differ by ~1e-6 of the largest value; a wrong formula differs by ~1e-1")
FIT = Tolerance(1e-4, 2e-3, "through sklearn's least-squares fit of float32 activations: float64 inputs or "
                "another solver move coefficients by ~1e-4 relative; wrong positions or centering move them by >1e-1")
V_LR = Tolerance(0.0, 0.0, "v_L and v_R as a pair, by direction and size against the nearest right pair (the "
                 "layer-0 ln1 fit over all positions or at position 1, where head 0.0 writes, each as float32 rounds "
                 "it: grader.right_values); the thresholds come from grader/tolerances.json", direction=1e-3, size=1e-3)
STATISTICAL = Tolerance(0.0, 0.0, "random: judged by a confidence interval around 1/d (see compare.avg_squared_cos_sim)")


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    kind: str  # "function" | "object"
    expect: str  # how the answer is compared (compare.COMPARATORS)
    tolerance: Tolerance = MATMUL
    cases: tuple[Case, ...] = ()
    names: tuple[str, ...] = ()  # object items: the namespace variables graded
    points: float = 1.0
    partial: bool = False  # partial credit: the fraction of cases passed
    calls: tuple[str, ...] = ()  # other items this one usually calls (for feedback)
    memory_penalty: float = 0.0  # share of the points lost when a memory_limit case is exceeded

    @property
    def function(self) -> str:
        return self.id


def _all_strings(max_len: int) -> list[str]:
    return ["".join(p) for n in range(1, max_len + 1) for p in itertools.product("()", repeat=n)]


def _near_misses() -> list[str]:
    rng = random.Random(7)
    base = ["(((())))()", "(()())(())", "()" * 20, "(" * 20 + ")" * 20, "(" * 15 + ")" * 15 + ")(" + "(" * 4 + ")" * 4]
    out = ["())(()", "(()))(", ")(()", "(()()", "())(", "()(()", "((())", "(())))((()"] + base
    for s in base:
        for i in range(len(s) - 1):
            if s[i] != s[i + 1]:
                out.append(s[:i] + s[i + 1] + s[i] + s[i + 2 :])
    for _ in range(40):
        n = rng.choice(range(10, 41, 2))
        out.append("".join(rng.choice("()") for _ in range(n)))
    return list(dict.fromkeys(out))


MEMORY_STRS = _all_strings(8)  # 510 distinct strings of 1 to 8 brackets: sequences of at most 10
DATA_MEMORY = {"$data": {"strs": MEMORY_STRS}}


def _vector(seed: int, dim: int = 56) -> dict:
    return encode(np.random.default_rng(seed).standard_normal(dim).astype(np.float32))


def _lh() -> list[tuple[int, int]]:
    return [(layer, head) for layer in range(3) for head in range(2)]


EXERCISES: tuple[Exercise, ...] = (
    Exercise("is_balanced_forloop", "1. is_balanced_forloop", "function", "bool_list", EXACT, (
        Case("every string of length 1 to 8", each=tuple((s,) for s in _all_strings(8))),
        Case("near misses and long strings", each=tuple((s,) for s in _near_misses())),
    )),
    Exercise("is_balanced_vectorized", "2. is_balanced_vectorized", "function", "bool_list", EXACT, (
        Case("unpadded rows of strings of length 1 to 6",
             each=tuple(({"$tokrow": [{"strs": [s]}, 0]},) for s in _all_strings(6))),
        Case("padded rows of a data batch", each=tuple(({"$tokrow": [[0, 60], i]},) for i in range(60))),
        Case("near misses", each=tuple(({"$tokrow": [{"strs": [s]}, 0]},) for s in _near_misses())),
    )),
    Exercise("get_post_final_ln_dir", "3. get_post_final_ln_dir", "function", "tensor", MATMUL, (
        Case("model", (MAIN,)),
        Case("a second model (other weights)", (ALT,)),
    )),
    Exercise("get_activations", "4. get_activations", "function", "cache", MATMUL, (
        Case("names=['blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_mid']",
             (MAIN, {"$toks": [0, 60]}, ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_mid"])),
        Case("names=['hook_embed', 'ln_final.hook_normalized'] on other data",
             (MAIN, {"$toks": [7000, 7060]}, ["hook_embed", "ln_final.hook_normalized"])),
        Case("names='blocks.2.mlp.hook_post' (one name)", (MAIN, {"$toks": [0, 60]}, "blocks.2.mlp.hook_post")),
        Case("second model, names=['blocks.1.attn.hook_result']", (ALT, {"$toks": [0, 60]}, ["blocks.1.attn.hook_result"])),
    )),
    Exercise("LN_hook_names", "5. LN_hook_names", "function", "str_pair", EXACT, tuple(
        Case(f"layernorm=model.{ln}", ({"$module": ["main", ln]},)) for ln in LAYERNORMS
    )),
    Exercise("get_ln_fit", "6. get_ln_fit", "function", "linfit", FIT, tuple(
        [Case(f"layernorm=model.{ln}, seq_pos=None", (MAIN, DATA_LN_FIT, {"$module": ln}), {"seq_pos": None}) for ln in LAYERNORMS]
        + [Case(f"layernorm=model.{ln}, seq_pos={p}", (MAIN, DATA_LN_FIT, {"$module": ln}), {"seq_pos": p})
           for ln, p in [("ln_final", 0), ("ln_final", 1), ("blocks.2.ln1", 1), ("blocks.1.ln2", 0), ("blocks.2.ln2", 3)]]
        + [Case("second model, layernorm=model.ln_final, seq_pos=0", (ALT, DATA_LN_FIT, {"$module": "ln_final"}), {"seq_pos": 0})]
    ), partial=True, calls=("LN_hook_names", "get_activations")),
    Exercise("get_pre_final_ln_dir", "7. get_pre_final_ln_dir", "function", "tensor", FIT, (
        Case("240 short strings of data[0:1000]", (MAIN, DATA_FIT)),
        Case("other data", (MAIN, DATA_B)),
        Case("second model", (ALT, DATA_FIT)),
    ), calls=("get_post_final_ln_dir", "get_ln_fit")),
    Exercise("get_out_by_components", "8. get_out_by_components", "function", "tensor", MATMUL, (
        Case("data[0:60]", (MAIN, DATA_A)),
        Case("second model, short strings", (ALT, DATA_SHORT)),
    ), calls=("get_activations",)),
    Exercise("out_by_component_in_unbalanced_dir", "9. out_by_component_in_unbalanced_dir", "object", "tensor", FIT,
             names=("out_by_component_in_unbalanced_dir",), calls=("get_out_by_components", "get_pre_final_ln_dir")),
    Exercise("is_balanced_vectorized_return_both", "10. is_balanced_vectorized_return_both", "function", "bool_tensors", EXACT, (
        Case("data[0:60].toks", ({"$toks": [0, 60]},)),
        Case("other data", ({"$toks": [7000, 7300]},)),
        Case("near misses", ({"$toks": {"strs": _near_misses()}},)),
    )),
    Exercise("get_attn_probs", "11. get_attn_probs", "function", "tensor", MATMUL, tuple(
        [Case(f"layer={layer}, head={head}", (MAIN, DATA_A, layer, head)) for layer, head in _lh()]
        + [Case("second model, layer=2, head=1", (ALT, DATA_A, 2, 1))]
    ), calls=("get_activations",)),
    Exercise("get_WOV", "12. get_WOV", "function", "tensor", MATMUL, tuple(
        [Case(f"layer={layer}, head={head}", (MAIN, layer, head)) for layer, head in _lh()]
        + [Case("second model, layer=2, head=0", (ALT, 2, 0))]
    )),
    Exercise("get_pre_20_dir", "13. get_pre_20_dir", "function", "tensor", FIT, (
        Case("240 short strings of data[0:1000]", (MAIN, DATA_FIT)),
        Case("other data", (MAIN, DATA_B)),
        Case("second model", (ALT, DATA_FIT)),
    ), calls=("get_WOV", "get_ln_fit", "get_pre_final_ln_dir")),
    Exercise("out_by_component_in_pre_20_unbalanced_dir", "14. out_by_component_in_pre_20_unbalanced_dir", "object",
             "tensor", FIT, names=("out_by_component_in_pre_20_unbalanced_dir",),
             calls=("get_out_by_components", "get_pre_20_dir")),
    Exercise("get_out_by_neuron", "15. get_out_by_neuron", "function", "tensor", MATMUL, tuple(
        [Case(f"layer={layer}, seq=None", (MAIN, DATA_SHORT, layer), {"seq": None}) for layer in range(3)]
        + [Case(f"layer=1, seq={s}", (MAIN, DATA_A, 1), {"seq": s}) for s in (1, 0, 3)]
        + [Case("second model, layer=2, seq=1", (ALT, DATA_A, 2), {"seq": 1})]
    ), calls=("get_activations",)),
    Exercise("get_out_by_neuron_in_20_dir", "16. get_out_by_neuron_in_20_dir", "function", "tensor", FIT, tuple(
        [Case(f"layer={layer}", (MAIN, DATA_FIT, layer)) for layer in range(3)]
        + [Case("second model, layer=1", (ALT, DATA_FIT, 1))]
    ), calls=("get_out_by_neuron", "get_pre_20_dir")),
    Exercise("get_out_by_neuron_in_20_dir_less_memory", "17. get_out_by_neuron_in_20_dir_less_memory", "function",
             "tensor", FIT, tuple(
        [Case(f"layer={layer}", (MAIN, DATA_FIT, layer)) for layer in range(3)]
        + [Case("second model, layer=1", (ALT, DATA_FIT, 1))]
        # short sequences: only a [batch, neuron, d_model] tensor reaches batch * 56 * 56 / 2 elements
        + [Case(f"memory: {len(MEMORY_STRS)} short strings, layer=1", (MAIN, DATA_MEMORY, 1),
                memory_limit=len(MEMORY_STRS) * 56 * 56 // 2)]
    ), calls=("get_pre_20_dir", "get_activations"), memory_penalty=0.5),
    Exercise("get_q_and_k_for_given_input", "18. get_q_and_k_for_given_input", "function", "tensor_pair", MATMUL, tuple(
        [Case(f"parens={p!r}, layer={layer}", (MAIN, TOKENIZER, p, layer)) for p in ("(()())", "))((()") for layer in range(3)]
        + [Case("second model, parens='()(', layer=1", (ALT, TOKENIZER, "()(", 1))]
    ), calls=("get_activations",)),
    Exercise("embedding", "19. embedding", "function", "tensor", MATMUL, (
        Case("char='('", (MAIN, TOKENIZER, "(")),
        Case("char=')'", (MAIN, TOKENIZER, ")")),
        Case("second model, char=')'", (ALT, TOKENIZER, ")")),
    )),
    Exercise("v_L_v_R", "20. v_L and v_R", "object", "direction_pair", V_LR, names=("v_L", "v_R"),
             calls=("get_ln_fit", "get_WOV", "embedding")),
    Exercise("cos_sim_with_MLP_weights", "21. cos_sim_with_MLP_weights", "function", "tensor", MATMUL, tuple(
        [Case(f"layer={layer}, a random v", (MAIN, {"$tensor": _vector(layer)["$tensor"]}, layer)) for layer in range(3)]
        + [Case("second model, layer=0", (ALT, {"$tensor": _vector(9)["$tensor"]}, 0))]
    )),
    Exercise("avg_squared_cos_sim", "22. avg_squared_cos_sim", "function", "mean_sq_cos", STATISTICAL, (
        Case("v of dimension 56, n_samples=2000", ({"$tensor": _vector(11)["$tensor"]},), {"n_samples": 2000}),
        Case("v of dimension 20, n_samples=2000", ({"$tensor": _vector(12, 20)["$tensor"]},), {"n_samples": 2000}),
        Case("v of dimension 56, n_samples=20000", ({"$tensor": _vector(13)["$tensor"]},), {"n_samples": 20000}),
    )),
    Exercise("adversarial_examples", "23. adversarial_examples (bonus)", "object", "adversarial", EXACT,
             names=("adversarial_examples",)),
)

TOLERANCE_TABLE = Path(__file__).resolve().parent / "tolerances.json"


def _calibrated(exercises: tuple[Exercise, ...]) -> tuple[Exercise, ...]:
    """Apply the measured tolerances (calibration/calibrate.py writes grader/tolerances.json)."""
    if not TOLERANCE_TABLE.exists():
        return exercises
    table = json.loads(TOLERANCE_TABLE.read_text())["items"]
    out = []
    for ex in exercises:
        row = table.get(ex.id)
        if row and row.get("calibrated") and "pair" in row:
            pair = row["pair"]
            least = lambda x: "(none to catch)" if x is None else f"{x:.2g}"  # noqa: E731
            reason = (f"measured on both models, against the nearest right pair: legitimate pairs differ by up to "
                      f"{pair['direction_max_correct']:.2g} in 1 - cosine and {pair['size_max_correct']:.2g} in log size, "
                      f"wrong ones by at least {least(pair['direction_min_wrong'])} and {least(pair['size_min_wrong'])}")
            ex = replace(ex, tolerance=replace(ex.tolerance, direction=pair["direction"], size=pair["size"], reason=reason))
        elif row and row.get("calibrated"):
            reason = (f"measured: correct formulations differ by up to {row['max_correct']:.2g} of the largest value, "
                      f"known mistakes by at least {row['min_wrong'] if row['min_wrong'] is not None else 'a shape change'}")
            ex = replace(ex, tolerance=Tolerance(1e-12, float(row["rtol"]), reason, r2=float(row.get("r2_atol", 1e-4))))
        out.append(ex)
    return tuple(out)


EXERCISES = _calibrated(EXERCISES)
BY_ID: dict[str, Exercise] = {e.id: e for e in EXERCISES}
IDS: tuple[str, ...] = tuple(e.id for e in EXERCISES)
assert len(EXERCISES) == 23


def exercise_job(ex: Exercise) -> dict[str, Any]:
    """What the worker needs to know about an item (no expected values, ever)."""
    return {"id": ex.id, "is_object": ex.kind == "object", "names": list(ex.names), "partial": ex.partial,
            "cases": [c.to_json() for c in ex.cases]}


def models_per_grading(items: list[dict]) -> dict[str, int]:
    """How many fresh models grading these items (exercise_job dicts) builds, by which model."""
    counts: dict[str, int] = {}

    def walk(spec: Any) -> None:
        if isinstance(spec, list):
            for s in spec:
                walk(s)
        elif isinstance(spec, dict) and len(spec) == 1:  # a spec: {"$tag": body}
            (tag, body), = spec.items()
            if tag == "$model" or (tag == "$module" and isinstance(body, list)):
                which = body if tag == "$model" else body[0]
                counts[which] = counts.get(which, 0) + 1
            elif tag == "$tuple":
                walk(body)

    for item in items:
        for case in item.get("cases", []):
            for args in case["each"] or [case["args"]]:
                walk(args)
                walk(list(case["kwargs"].values()))
    return counts
