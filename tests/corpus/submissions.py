"""The corpus: student submissions in the course's layout, each with its verdicts written by hand.

Every submission is the course-layout file (or an older layout) with the edits a student made:
demo cells, plots, cells that raise, functions redefined later, helpers of their own, loops,
numpy, older signatures, unfinished items, and mistakes. What the submission is, its edits and its
expected verdicts sit together in one entry; `expect` lists every item that does not pass, with
the status it must get and why (all other items must pass). `build(folder)` writes the files.

Two rules of the grader shape the labels: an item wrong only because a helper it calls is wrong
is credited "given a correct <helper>" (a function graded with the reference's helper in place of
the student's, an object computed again that way), and a function is graded as the last
definition of it leaves it.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.make_layouts import (colab_2024, colab_current, colab_notebook, course_source, layout_2023,
                                        layout_2023_full, layout_part7)

def template_source() -> str:
    """Our student template as students get it: every item a stub."""
    return (Path(__file__).resolve().parents[2] / "student_template" / "exercises.py").read_text()


BASES = {"course": course_source, "2023": layout_2023, "part7": layout_part7, "colab_current": colab_current,
         "colab_2024": colab_2024, "2023_full": layout_2023_full, "template": template_source}


@dataclass(frozen=True)
class Submission:
    name: str  # file name; .ipynb entries are written as notebooks, one cell per `# %%` cell
    what: str
    edits: tuple = ()  # ("replace", function, code) | ("after", function, code) | ("append", code) | ("sub", old, new)
    expect: dict[str, tuple[str, str]] = field(default_factory=dict)  # item -> (status, why)
    base: str = "course"


def _replace_function(src: str, name: str, code: str) -> str:
    tree = ast.parse(src)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = src.splitlines()
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    return "\n".join(lines[:start] + code.strip("\n").splitlines() + lines[node.end_lineno:]) + "\n"


def _after(src: str, name: str, code: str) -> str:
    """A new cell right after the cell that defines `name`."""
    tree = ast.parse(src)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = src.splitlines()
    nxt = next((i for i in range(node.end_lineno, len(lines)) if lines[i].startswith("# %%")), len(lines))
    return "\n".join(lines[:nxt] + ["# %%", code.strip("\n"), "", ""] + lines[nxt:]) + "\n"


def source_of(sub: Submission) -> str:
    src = BASES[sub.base]()
    for edit in sub.edits:
        if edit[0] == "replace":
            src = _replace_function(src, edit[1], edit[2])
        elif edit[0] == "after":
            src = _after(src, edit[1], edit[2])
        elif edit[0] == "append":
            src = src.rstrip("\n") + "\n\n\n# %%\n" + edit[1].strip("\n") + "\n"
        elif edit[0] == "sub":
            assert edit[1] in src, (sub.name, edit[1][:60])
            src = src.replace(edit[1], edit[2])
        else:
            raise ValueError(edit[0])
    return src


# what the course's notebook gives complete and the course-layout file has as given (tests.conftest)
GIVEN = ("LN_hook_names", "embedding")


def _def_texts(src: str) -> dict[str, str]:
    """Each top-level function's text, the last definition of each name, cell by cell (a cell that
    does not parse is left out, as the grader leaves it)."""
    out = {}
    for cell in re.split(r"^#\s?%%.*$", src, flags=re.M):
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign)):
                for name in ([node.name] if isinstance(node, ast.FunctionDef) else
                             [a.asname or a.name for a in getattr(node, "names", [])] or
                             [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]):
                    out[name] = ast.get_source_segment(cell, node) if isinstance(node, ast.FunctionDef) else "(rebound)"
    return out


def course_definition(name: str) -> str:
    """The course-layout file's definition of function `name`, as the course's solutions write it."""
    return _def_texts(course_source())[name]


def given_unchanged(sub: Submission) -> set[str]:
    """The items the course gives complete that this file has exactly as the course-layout file
    has them: `provided`, by the text (not by the grader's fingerprints)."""
    ours = _def_texts(course_source())
    theirs = _def_texts(course_source() if sub.base == "colab" else source_of(sub))
    return {i for i in GIVEN if i in theirs and theirs[i] == ours[i]}


def notebook_of(src: str) -> str:
    cells = [c.strip("\n") for c in re.split(r"^#\s?%%.*$", src, flags=re.M) if c.strip()]
    nb_cells = [{"cell_type": "markdown", "metadata": {}, "source": "# [1.5.1] Balanced Bracket Classifier"}]
    nb_cells += [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c} for c in cells]
    return json.dumps({"cells": nb_cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)


def build(folder: Path, subs: list[Submission] | None = None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for sub in subs or CORPUS:
        path = folder / sub.name
        if sub.base == "colab":
            path.write_text(colab_notebook())
        else:
            src = source_of(sub)
            path.write_text(notebook_of(src) if sub.name.endswith(".ipynb") else src)
        out[sub.name] = path
    return out


# ------------------------------------------------------------------ what students write

PLOTS = '''
import plotly.express as px
if MAIN:
    fig = px.imshow(get_WOV(model, 2, 0), title="W_OV of head 2.0")
    fig.show()
    hist([len(s) for s in data.strs], title="lengths")
    tests.test_get_WOV(get_WOV, model)
'''
RAISES = '''
if MAIN:
    ratio = len(data) / 0  # a student's typo: the cell raises, the notebook goes on
'''
BAD_SYNTAX = '''
if MAIN:
    print("unbalanced: ", [s for s in data.strs if not is_balanced_forloop(s)][:5]
'''
WOV_TRANSPOSED = '''
def get_WOV(model: HookedTransformer, layer: int, head: int) -> Float[Tensor, "d_model d_model"]:
    return model.W_O[layer, head].T @ model.W_V[layer, head].T
'''
WOV_RIGHT = '''
def get_WOV(model: HookedTransformer, layer: int, head: int) -> Float[Tensor, "d_model d_model"]:
    return model.W_V[layer, head] @ model.W_O[layer, head]  # fixed: V then O
'''
LN_FIT_WITH_HELPERS = '''
def _flatten_positions(x):
    return einops.rearrange(x, "batch seq d_model -> (batch seq) d_model")


def _pick(x, seq_pos):
    return _flatten_positions(x) if seq_pos is None else x[:, seq_pos, :]


def get_ln_fit(model, data, layernorm, seq_pos=None):
    names = LN_hook_names(layernorm)
    acts = get_activations(model, data.toks, list(names))
    x, y = (utils.to_numpy(_pick(acts[n], seq_pos)) for n in names)
    fit = LinearRegression().fit(x, y)
    return fit, fit.score(x, y)
'''
LOOPS = [
    ("replace", "is_balanced_vectorized", '''
def is_balanced_vectorized(tokens):
    depth = 0
    for tok in tokens.tolist():
        if tok == 3:
            depth += 1
        elif tok == 4:
            depth -= 1
        if depth < 0:
            return False
    return depth == 0
'''),
    ("replace", "get_out_by_components", '''
def get_out_by_components(model, data):
    names = ["hook_embed", "hook_pos_embed"] + [utils.get_act_name(k, l) for l in range(3) for k in ("result", "mlp_out")]
    acts = get_activations(model, data.toks, names)
    parts = [acts["hook_embed"] + acts["hook_pos_embed"]]
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            parts.append(acts[utils.get_act_name("result", layer)][:, :, head, :])
        parts.append(acts[utils.get_act_name("mlp_out", layer)])
    return t.stack(parts)
'''),
    ("replace", "cos_sim_with_MLP_weights", '''
def cos_sim_with_MLP_weights(model, v, layer):
    sims = []
    for i in range(model.cfg.d_mlp):
        w = model.W_in[layer][:, i]
        sims.append((v @ w) / (v.norm() * w.norm()))
    return t.stack(sims)
'''),
    ("replace", "embedding", '''
def embedding(model, tokenizer, char):
    one_hot = t.zeros(model.cfg.d_vocab)
    one_hot[tokenizer.t_to_i[char]] = 1.0
    return one_hot @ model.W_E
'''),
]
NUMPY = [
    ("replace", "get_WOV", '''
def get_WOV(model, layer, head):
    W_V = model.W_V[layer, head].detach().cpu().numpy()
    W_O = model.W_O[layer, head].detach().cpu().numpy()
    return np.matmul(W_V, W_O)
'''),
    ("replace", "is_balanced_forloop", '''
def is_balanced_forloop(parens):
    if not parens:
        return True
    depth = np.cumsum([1 if c == "(" else -1 for c in parens])
    return bool(depth.min() >= 0 and depth[-1] == 0)
'''),
    ("replace", "cos_sim_with_MLP_weights", '''
def cos_sim_with_MLP_weights(model, v, layer):
    W = model.W_in[layer].detach().cpu().numpy()
    u = v.detach().cpu().numpy()
    return (u @ W) / (np.linalg.norm(u) * np.linalg.norm(W, axis=0))
'''),
    ("replace", "avg_squared_cos_sim", '''
def avg_squared_cos_sim(v, n_samples=1000):
    rng = np.random.default_rng(0)
    r = rng.standard_normal((n_samples, v.shape[0]))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    u = v.detach().cpu().numpy() / np.linalg.norm(v.detach().cpu().numpy())
    return float(((r @ u) ** 2).mean())
'''),
    ("sub", "import einops\n", "import einops\nimport numpy as np\n"),
]
DIFFERENTLY = [
    ("replace", "get_WOV", '''
def get_WOV(model, layer, head):
    return einops.einsum(model.W_V[layer, head], model.W_O[layer, head], "a h, h b -> a b")
'''),
    ("replace", "LN_hook_names", '''
def LN_hook_names(layernorm):
    if layernorm.name == "ln_final":
        return ["blocks.2.hook_resid_post", "ln_final.hook_normalized"]  # a list, not a tuple
    layer, ln = layernorm.name.split(".")[1:]
    return [f"blocks.{layer}.hook_resid_{'pre' if ln == 'ln1' else 'mid'}", f"blocks.{layer}.{ln}.hook_normalized"]
'''),
    ("replace", "get_post_final_ln_dir", '''
def get_post_final_ln_dir(model):
    return einops.einsum(model.W_U, t.tensor([1.0, -1.0]), "d_model vocab, vocab -> d_model")
'''),
    ("replace", "cos_sim_with_MLP_weights", '''
def cos_sim_with_MLP_weights(model, v, layer):
    W = model.W_in[layer].double()  # float64 throughout
    return t.nn.functional.cosine_similarity(v.double()[:, None], W, dim=0)
'''),
    ("replace", "get_attn_probs", '''
def get_attn_probs(model, data, layer, head):
    q = get_activations(model, data.toks, utils.get_act_name("q", layer))[:, :, head]
    k = get_activations(model, data.toks, utils.get_act_name("k", layer))[:, :, head]
    scores = einops.einsum(q, k, "b q h, b k h -> b q k") / model.cfg.d_head ** 0.5
    scores = scores.masked_fill((data.toks == 1)[:, None, :], float("-inf"))  # padding, as the hooks do
    return scores.softmax(-1)
'''),
]
STUB = 'def {name}(*args, **kwargs):\n    raise NotImplementedError()\n'

CORPUS: list[Submission] = [
    Submission("01_course_notebook.ipynb", "the course's solutions as a notebook, demo cells and all"),
    Submission("02_course_module.py", "the course's solutions as a .py with `# %%` cells and `if MAIN:` demos"),
    Submission("03_plots_and_tests.ipynb", "extra plotting cells and calls of the course's tests",
               (("after", "get_pre_20_dir", PLOTS), ("after", "embedding", PLOTS))),
    Submission("04_cells_that_raise.ipynb", "a demo cell that raises and one that does not parse",
               (("after", "get_WOV", RAISES), ("after", "is_balanced_forloop", BAD_SYNTAX))),
    Submission("05_fixed_in_next_cell.ipynb", "get_WOV wrong, then fixed in the next cell",
               (("replace", "get_WOV", WOV_TRANSPOSED), ("after", "get_WOV", WOV_RIGHT))),
    Submission("06_broken_in_a_later_cell.py", "get_WOV right, then redefined wrong at the end (after every demo)",
               (("append", WOV_TRANSPOSED),),
               {"get_WOV": ("failed", "the last definition transposes the product (O^T V^T)")}),
    Submission("07_own_helpers.py", "get_ln_fit written with helper functions of the student's own",
               (("replace", "get_ln_fit", LN_FIT_WITH_HELPERS),)),
    Submission("08_layout_2023.py", "the 2023 layout: other folders, `#%%`, no MAIN guard, get_activations "
               "returning a tensor for one name", base="2023"),
    Submission("09_layout_part7.py", "the early-2024 part7 folder name", base="part7"),
    Submission("10_colab.ipynb", "a Colab notebook: %pip, !wget, IN_COLAB, a 3 MB saved output", base="colab"),
    Submission("11_unfinished.py", "stopped after get_out_by_neuron_in_20_dir_less_memory: later items are stubs, "
               "the v_L/v_R and adversarial cells were never written",
               tuple(("replace", n, STUB.format(name=n)) for n in
                     ("get_q_and_k_for_given_input", "embedding", "cos_sim_with_MLP_weights", "avg_squared_cos_sim"))
               + (("sub", "    v_L = embedding(", "    # v_L = embedding("), ("sub", "    v_R = embedding(", "    # v_R = embedding("),
                  ("sub", "    adversarial_examples = [", "    _unused = [")),
               {"get_q_and_k_for_given_input": ("failed", "raises NotImplementedError"),
                "embedding": ("failed", "raises NotImplementedError"),
                "cos_sim_with_MLP_weights": ("failed", "raises NotImplementedError"),
                "avg_squared_cos_sim": ("failed", "raises NotImplementedError"),
                "v_L_v_R": ("missing", "v_L and v_R are never assigned"),
                "adversarial_examples": ("missing", "never assigned")}),
    Submission("12_python_loops.py", "items answered with Python loops (vectorized check, components, cosines, "
               "a one-hot embedding)", tuple(LOOPS)),
    Submission("13_numpy.py", "items answered with numpy (arrays returned, numpy's own random numbers)", tuple(NUMPY)),
    Submission("14_written_differently.ipynb", "einsum for matmul, a list of hook names, float64 cosines, attention "
               "recomputed from q and k", tuple(DIFFERENTLY)),
    Submission("15_sign_flipped.py", "get_post_final_ln_dir points to P(balanced)",
               (("replace", "get_post_final_ln_dir",
                 "def get_post_final_ln_dir(model):\n    return model.W_U[:, 1] - model.W_U[:, 0]\n"),),
               {"get_post_final_ln_dir": ("failed", "sign flipped"),
                "out_by_component_in_unbalanced_dir": ("passed", "computed with the flipped direction: right given a correct one"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "the same, through get_pre_20_dir: right given a correct one")}),
    Submission("16_coef_not_transposed.py", "get_pre_final_ln_dir multiplies by coef_ instead of coef_.T",
               (("sub", "    return final_ln_coefs.T @ post_final_ln_dir", "    return final_ln_coefs @ post_final_ln_dir"),),
               {"get_pre_final_ln_dir": ("failed", "coefficients not transposed"),
                "out_by_component_in_unbalanced_dir": ("passed", "computed with the wrong direction: right given a correct one"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "its get_pre_20_dir used the wrong direction: right given a correct one")}),
    Submission("17_not_centred.py", "out_by_component_in_unbalanced_dir without subtracting the balanced mean",
               (("sub", "    out_by_component_in_unbalanced_dir -= (\n", "    _mean = (\n"),),
               {"out_by_component_in_unbalanced_dir": ("failed", "not centred on the balanced mean")}),
    Submission("18_wrong_position.py", "get_pre_final_ln_dir fits ln_final at position 1 instead of 0",
               (("sub", "layernorm=model.ln_final, seq_pos=0)[0]", "layernorm=model.ln_final, seq_pos=1)[0]"),),
               {"get_pre_final_ln_dir": ("failed", "wrong sequence position"),
                "out_by_component_in_unbalanced_dir": ("passed", "computed with the wrong direction: right given a correct one"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "computed with the wrong direction: right given a correct one")}),
    Submission("19_elevation_left_to_right.py", "is_balanced_vectorized_return_both without flipping: elevation "
               "counted left to right",
               (("sub", "    change = table[toks.to(device)].flip(-1)", "    change = table[toks.to(device)]"),),
               {"is_balanced_vectorized_return_both": ("failed", "left-to-right elevation: the negative failures differ")}),
    Submission("20_ignores_layer.py", "get_attn_probs always reads layer 2",
               (("sub", 'utils.get_act_name("pattern", layer))[:, head, :, :]', 'utils.get_act_name("pattern", 2))[:, head, :, :]'),),
               {"get_attn_probs": ("failed", "ignores its layer argument")}),
    Submission("21_ignores_head.py", "get_WOV always reads head 0 (right only where head=0, as in get_pre_20_dir)",
               (("replace", "get_WOV", "def get_WOV(model, layer, head):\n    return model.W_V[layer, 0] @ model.W_O[layer, 0]\n"),),
               {"get_WOV": ("failed", "ignores its head argument")}),
    Submission("22_axes_swapped.py", "get_out_by_neuron_in_20_dir returns [neuron, batch]",
               (("sub", '"batch neuron d_model, d_model -> batch neuron",', '"batch neuron d_model, d_model -> neuron batch",'),),
               {"get_out_by_neuron_in_20_dir": ("failed", "axes swapped")}),
    Submission("23_hard_coded_direction.py", "get_post_final_ln_dir returns a direction saved from the course model",
               (("replace", "get_post_final_ln_dir", "def get_post_final_ln_dir(m):\n    return SAVED_DIR\n"),
                ("after", "get_post_final_ln_dir", "SAVED_DIR = (model.W_U[:, 0] - model.W_U[:, 1]).clone()\n")),
               {"get_post_final_ln_dir": ("failed", "ignores its model: wrong on the second model")}),
    Submission("24_seq_pos_zero_bug.py", "get_ln_fit tests `if not seq_pos`, so seq_pos=0 fits all positions",
               (("sub", "    if seq_pos is None:\n        inputs = einops", "    if not seq_pos:\n        inputs = einops"),),
               {"get_ln_fit": ("partial", "wrong on the seq_pos=0 cases only"),
                "out_by_component_in_unbalanced_dir": ("passed", "its get_pre_final_ln_dir used the seq_pos=0 fit: right given a correct get_ln_fit"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "same, through get_pre_20_dir: right given a correct get_ln_fit")}),
    Submission("25_hangs.py", "get_out_by_neuron never returns (a while loop left in)",
               (("sub", "    W_out = model.W_out[layer]  # [neuron d_model]\n",
                 "    W_out = model.W_out[layer]  # [neuron d_model]\n    while True:\n        pass\n"),),
               {"get_out_by_neuron": ("timeout", "never returns"),
                "get_out_by_neuron_in_20_dir": ("passed", "hangs through get_out_by_neuron; passes given a correct one")}),
    Submission("26_exits.py", "get_attn_probs calls sys.exit() (a debugging leftover)",
               (("sub", '    return get_activations(model, data.toks, utils.get_act_name("pattern", layer))[:, head, :, :]',
                 '    sys.exit("debug")'),),
               {"get_attn_probs": ("error", "exits the process")}),
    Submission("27_prints_a_lot.py", "every function prints its inputs; demo cells print thousands of lines",
               (("sub", "    return model.W_V[layer, head] @ model.W_O[layer, head]",
                 "    print('get_WOV', layer, head, model.W_V[layer, head])\n    return model.W_V[layer, head] @ model.W_O[layer, head]"),
                ("append", "for i in range(20000):\n    print('line', i, 'of a very chatty notebook')"))),
    Submission("28_renamed.py", "get_WOV renamed get_W_OV (and used under that name)",
               (("sub", "def get_WOV(", "def get_W_OV("), ("sub", "W_OV = get_WOV(model, 2, 0)", "W_OV = get_W_OV(model, 2, 0)")),
               {"get_WOV": ("missing", "no function of that name; the feedback names get_W_OV")}),
    Submission("29_v_L_v_R_swapped.py", "v_L computed from ')' and v_R from '('",
               (("sub", 'v_L = embedding(model, tokenizer, "(")', 'v_L = embedding(model, tokenizer, "_")'),
                ("sub", 'v_R = embedding(model, tokenizer, ")")', 'v_R = embedding(model, tokenizer, "(")'),
                ("sub", 'v_L = embedding(model, tokenizer, "_")', 'v_L = embedding(model, tokenizer, ")")')),
               {"v_L_v_R": ("failed", "v_L and v_R swapped")}),
    Submission("30_adversarial_not.py", "adversarial_examples the model gets right",
               (("append", 'adversarial_examples = ["()", "(())", ")("]'),),
               {"adversarial_examples": ("failed", "the model classifies all of them correctly")}),
    Submission("31_less_memory_heavy.py", "the low-memory item calls the full-memory one",
               (("replace", "get_out_by_neuron_in_20_dir_less_memory",
                 "def get_out_by_neuron_in_20_dir_less_memory(model, data, layer):\n"
                 "    return get_out_by_neuron_in_20_dir(model, data, layer)\n"),),
               {"get_out_by_neuron_in_20_dir_less_memory": ("partial", "right values, full [batch, neuron, d_model] tensor")}),
    Submission("32_mixed_notebook.ipynb", "a notebook with two mistakes: hook names swapped, cosines not normalised",
               (("sub", "    return input_hook_name, output_hook_name", "    return output_hook_name, input_hook_name"),
                ("sub", "    v_unit = v / v.norm()\n", "    v_unit = v\n"),
                ("sub", "    W_in_unit = model.W_in[layer] / model.W_in[layer].norm(dim=0)\n", "    W_in_unit = model.W_in[layer]\n")),
               {"LN_hook_names": ("failed", "input and output swapped"),
                "get_ln_fit": ("passed", "wrong through LN_hook_names; passes given a correct one"),
                "cos_sim_with_MLP_weights": ("failed", "not normalised"),
                "out_by_component_in_unbalanced_dir": ("passed", "computed with fits of swapped hooks: right given a correct LN_hook_names"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "computed with fits of swapped hooks: right given a correct LN_hook_names"),
                "v_L_v_R": ("passed", "computed with a fit of swapped hooks: right given a correct LN_hook_names")}),
]
