"""The corpus, grown from the field: submissions written the way real students write them, in each
of the three course versions, each non-passing verdict labelled by hand with its reason.

Every cause of a correct answer scored 0 that real files showed has entries here: the course's
Colab-aware setup cells, the 2023 setup's plotting imports, a failing statement in the middle of a
cell, the course's 5,000 examples written into the code, hard-coded paths to a student's own
checkout, files with no cell markers, helpers imported from the course's solutions, the course
model's dead neurons, v_L and v_R fitted at one position, objects computed with a wrong helper,
and a function that changes the model it was given. (Our own writing, in the course's style.)
"""
from __future__ import annotations

from grader.catalogue import IDS
from tests.corpus.submissions import CORPUS, LOOPS, Submission, course_definition

COS_SIM_FUNCTIONAL = '''
def cos_sim_with_MLP_weights(model, v, layer):
    # cosine similarity of v with every column of W_in, in one call
    return t.nn.functional.cosine_similarity(model.W_in[layer].T, v.unsqueeze(0), dim=1)
'''
COS_SIM_DIVIDE_AFTER = '''
def cos_sim_with_MLP_weights(model, v, layer):
    W_in = model.W_in[layer]  # [d_model, d_mlp]
    return (v @ W_in) / (v.norm() * W_in.norm(dim=0))
'''
LN_FIT_FLOAT64 = '''
def get_ln_fit(model, data, layernorm, seq_pos=None):
    input_hook_name, output_hook_name = LN_hook_names(layernorm)
    activations = get_activations(model, data.toks, [input_hook_name, output_hook_name])
    X = activations[input_hook_name].double().cpu().numpy()  # float64, to be safe
    Y = activations[output_hook_name].double().cpu().numpy()
    if seq_pos is None:
        X, Y = X.reshape(-1, X.shape[-1]), Y.reshape(-1, Y.shape[-1])
    else:
        X, Y = X[:, seq_pos], Y[:, seq_pos]
    fit = LinearRegression().fit(X, Y)
    return fit, fit.score(X, Y)
'''
REPEAT_5000 = '''    out_by_component_in_unbalanced_dir -= einops.repeat(
        out_by_component_in_unbalanced_dir[:, data.isbal].mean(dim=1), "comp -> comp b", b=5000
    )
'''
CENTRE_AS_WRITTEN = '''    out_by_component_in_unbalanced_dir -= (
        out_by_component_in_unbalanced_dir[:, data.isbal].mean(dim=1).unsqueeze(1)
    )
'''
PRE20_LOOP_5000 = '''if MAIN:
    N = 5000  # the size of the course's data
    out_by_component_in_pre_20_unbalanced_dir = t.zeros(7, N)
    pre_20_dir = get_pre_20_dir(model, data)
    for i in range(len(data)):
        out_by_component_in_pre_20_unbalanced_dir[:, i] = out_by_components[:7, i, 1] @ pre_20_dir
    balanced_mean = out_by_component_in_pre_20_unbalanced_dir[:, :len(data)][:, data.isbal].mean(-1, keepdim=True)
    out_by_component_in_pre_20_unbalanced_dir -= balanced_mean
'''
HOME_PATHS = '''# Make sure exercises are in the path (my checkout)
chapter = "chapter1_transformer_interp"
section = "part51_balanced_bracket_classifier"
exercises_dir = Path("/home/maria/code/ARENA_3.0/chapter1_transformer_interp/exercises/")
section_dir = exercises_dir / section
if str(exercises_dir) not in sys.path:
    sys.path.append(str(exercises_dir))
'''
COURSE_PATH_BLOCK = '''# Make sure exercises are in the path
chapter = "chapter1_transformer_interp"
section = "part51_balanced_bracket_classifier"
exercises_dir = next(p for p in Path.cwd().parents if p.name == chapter) / "exercises"
section_dir = exercises_dir / section
if str(exercises_dir) not in sys.path:
    sys.path.append(str(exercises_dir))
'''
FILE_RELATIVE_PATHS = '''# this file lives in exercises/part51_balanced_bracket_classifier
section_dir = Path(__file__).parent
exercises_dir = section_dir.parent
assert exercises_dir.name == "exercises", f"run me inside 'exercises/part51_balanced_bracket_classifier', not '{section_dir}'"
if str(exercises_dir) not in sys.path:
    sys.path.append(str(exercises_dir))
'''
CWD_AS_EXERCISES = '''exercises_dir = Path(f"{os.getcwd()}").resolve()
section_dir = exercises_dir / "part51_balanced_bracket_classifier"
sys.path.append(str(exercises_dir.parent))
'''
FAILING_IMPORT_IN_CELL = '''
import arena_helpers  # my own helper module, not handed in
from arena_helpers import timer


def get_WOV(model: HookedTransformer, layer: int, head: int) -> Float[Tensor, "d_model d_model"]:
    return model.W_V[layer, head] @ model.W_O[layer, head]
'''
IMPORTS_SOLUTIONS = '''from part51_balanced_bracket_classifier.solutions import get_activations, LN_hook_names
'''
V_AT_POSITION_1 = '''
    W_OV = get_WOV(model, 0, 0)
    # L: the layernorm's linear fit where head 0.0 writes (position 1)
    layer0_ln_fit = get_ln_fit(model, data, layernorm=model.blocks[0].ln1, seq_pos=1)[0]
    L = t.from_numpy(layer0_ln_fit.coef_).to(device)
    v_L = embedding(model, tokenizer, "(") @ L.T @ W_OV
    v_R = embedding(model, tokenizer, ")") @ L.T @ W_OV
'''
V_WITHOUT_LN = '''
    W_OV = model.W_V[0, 0] @ model.W_O[0, 0]
    v_L = embedding(model, tokenizer, "(") @ W_OV  # the layernorm left out
    v_R = embedding(model, tokenizer, ")") @ W_OV
'''
V_HEAD_01 = '''
    W_OV = model.W_V[0, 1] @ model.W_O[0, 1]  # head 0.1
    layer0_ln_fit = get_ln_fit(model, data, layernorm=model.blocks[0].ln1, seq_pos=None)[0]
    layer0_ln_coefs = t.from_numpy(layer0_ln_fit.coef_).to(device)
    v_L = embedding(model, tokenizer, "(") @ layer0_ln_coefs.T @ W_OV
    v_R = embedding(model, tokenizer, ")") @ layer0_ln_coefs.T @ W_OV
'''
V_COURSE = '''
    W_OV = model.W_V[0, 0] @ model.W_O[0, 0]

    layer0_ln_fit = get_ln_fit(model, data, layernorm=model.blocks[0].ln1, seq_pos=None)[0]
    layer0_ln_coefs = t.from_numpy(layer0_ln_fit.coef_).to(device)

    v_L = embedding(model, tokenizer, "(") @ layer0_ln_coefs.T @ W_OV
    v_R = embedding(model, tokenizer, ")") @ layer0_ln_coefs.T @ W_OV
'''
COS_SIM_IN_PLACE = '''
def cos_sim_with_MLP_weights(model, v, layer):
    W_in = model.blocks[layer].mlp.W_in
    W_in.data = W_in.data / W_in.data.norm(dim=0)  # normalise the neurons' directions (on the model itself)
    return (v / v.norm()) @ W_in
'''
WOV_TRANSPOSED = '''
def get_WOV(model: HookedTransformer, layer: int, head: int) -> Float[Tensor, "d_model d_model"]:
    return model.W_O[layer, head].T @ model.W_V[layer, head].T
'''
OWN_CHECKS = '''
if MAIN:
    # my own checks instead of the course's (it kept failing on the server)
    t.testing.assert_close(get_WOV(model, 2, 0), model.W_V[2, 0] @ model.W_O[2, 0])
    assert get_attn_probs(model, data_mini, 0, 0).sum(-1).allclose(t.ones(1))
'''
RELATIVE_REPO_PATH = ('state_dict = t.load(section_dir / "brackets_model_state_dict.pt", map_location=device)',
                      'state_dict = t.load("./ARENA_2.0/chapter1_transformers/exercises/part4_interp_on_algorithmic_model/'
                      'brackets_model_state_dict.pt", map_location=device)')
LOCAL_DATA_FILE = ('with open(section_dir / "brackets_data.json") as f:',
                   'with open(os.path.expanduser("~/Downloads/brackets_data.json")) as f:')

COURSE_IMPORT_FROM_SOLUTIONS_2023 = '''from part4_interp_on_algorithmic_model.solutions import get_out_by_components, get_pre_20_dir
'''

FIELD: list[Submission] = [
    # 1. the course's Colab-aware setup cells
    Submission("40_colab_setup_current.ipynb", "a current notebook as downloaded and filled in: the Colab-aware "
               "setup cell (root from the ARENA_3.0 folder, os.chdir), then the imports cell that relies on it",
               base="colab_current"),
    Submission("41_colab_template_2024.ipynb", "an early-2024 notebook: the Colab template cell (else-branch splits "
               "os.getcwd() on the chapter), the part7 section", base="colab_2024"),
    # 2. imports the worker lacks, and a failing statement in the middle of a cell
    Submission("42_layout_2023_full_setup.py", "the 2023 setup block: plotly.express, graph_objects, subplots, pandas, "
               "webbrowser, circuitsvis, LayerNorm before MAIN; gradients turned off only by importing tests",
               (("after", "get_WOV", "if MAIN:\n    fig = px.imshow(get_WOV(model, 2, 0).cpu())\n    fig.show()\n"),),
               base="2023_full"),
    Submission("43_failing_import_mid_cell.py", "a cell that starts by importing a helper module of the student's "
               "own that was not handed in; the definitions after it in the same cell still count",
               (("replace", "get_WOV", FAILING_IMPORT_IN_CELL),)),
    # 3. the course's data size written into the code
    Submission("44_repeat_b_5000.py", "the balanced mean repeated with b=5000 (the course's data size)",
               (("sub", CENTRE_AS_WRITTEN, REPEAT_5000),)),
    Submission("45_loop_over_N_5000.ipynb", "object 14 built in a loop into a t.zeros(7, 5000) it fills for each "
               "example of the data",
               (("sub", "if MAIN:\n    pre_layer2_outputs_seqpos1 = out_by_components[:-3, :, 1, :]\n"
                        "    out_by_component_in_pre_20_unbalanced_dir = einops.einsum(",
                 PRE20_LOOP_5000 + "    _unused = einops.einsum("),
                ("sub", "    out_by_component_in_pre_20_unbalanced_dir -= out_by_component_in_pre_20_unbalanced_dir[:, data.isbal].mean(\n"
                        "        -1, keepdim=True\n    )\n", ""),
                ("sub", "    tests.test_out_by_component_in_pre_20_unbalanced_dir(out_by_component_in_pre_20_unbalanced_dir, model, data)\n", ""),
                ("sub", "        pre_layer2_outputs_seqpos1,\n", "        out_by_components[:-3, :, 1, :],\n"))),
    # 4. hard-coded paths and files without cells
    Submission("46_home_folder_paths.py", "exercises_dir hard-coded to the student's own checkout under /home",
               (("sub", COURSE_PATH_BLOCK, HOME_PATHS),)),
    Submission("47_no_cell_markers.py", "a module with no `# %%` markers whose first line imports a module "
               "that is not there",
               (("sub", "# %%\nimport json\n", "import arena_helpers  # not handed in\nimport json\n"),
                ("sub", "# %%\n", "\n"))),
    Submission("48_paths_from___file__.py", "paths from __file__, as the course's solutions.py of early 2024 did",
               (("sub", COURSE_PATH_BLOCK, FILE_RELATIVE_PATHS),)),
    Submission("49_exercises_dir_is_cwd.py", "exercises_dir taken as the working folder itself",
               (("sub", COURSE_PATH_BLOCK, CWD_AS_EXERCISES), ("sub", "import json\n", "import json\nimport os\n"))),
    Submission("50_files_from_elsewhere.py", "the model from a path relative to the repository and the data from "
               "~/Downloads",
               (("sub", *RELATIVE_REPO_PATH), ("sub", *LOCAL_DATA_FILE), ("sub", "import json\n", "import json\nimport os\n"))),
    # 5. helpers imported from the course's solutions
    Submission("51_imports_solution_helpers.py", "get_activations and LN_hook_names imported from the course's "
               "solutions (the stubs deleted); everything else the student's own",
               (("sub", "import part51_balanced_bracket_classifier.tests as tests\n",
                 "import part51_balanced_bracket_classifier.tests as tests\n" + IMPORTS_SOLUTIONS),
                ("replace", "get_activations", "# (taken from the solutions)\n"),
                ("replace", "LN_hook_names", "# (taken from the solutions)\n")),
               {"get_activations": ("missing", "imported from the course's solutions: not the student's work"),
                "LN_hook_names": ("missing", "imported from the course's solutions: not the student's work")}),
    Submission("52_imports_solutions_2023.py", "2023 layout: get_out_by_components and get_pre_20_dir imported from the "
               "course's solutions, the objects computed with them",
               (("sub", "import part4_interp_on_algorithmic_model.tests as tests\n",
                 "import part4_interp_on_algorithmic_model.tests as tests\n" + COURSE_IMPORT_FROM_SOLUTIONS_2023),
                ("replace", "get_out_by_components", "# get_out_by_components: see the import at the top\n"),
                ("replace", "get_pre_20_dir", "# get_pre_20_dir: see the import at the top\n")),
               {"get_out_by_components": ("missing", "imported from the course's solutions"),
                "get_pre_20_dir": ("missing", "imported from the course's solutions")},
               base="2023_full"),
    # 6. numerics on the course's model (its MLPs have dead neurons)
    Submission("53_cosine_similarity_function.py", "cos_sim_with_MLP_weights with F.cosine_similarity",
               (("replace", "cos_sim_with_MLP_weights", COS_SIM_FUNCTIONAL),)),
    Submission("54_cos_sim_divide_after.ipynb", "cos_sim_with_MLP_weights dividing after the matmul (NaN where a "
               "neuron's weights are all zero)",
               (("replace", "cos_sim_with_MLP_weights", COS_SIM_DIVIDE_AFTER),)),
    Submission("55_ln_fit_float64.py", "get_ln_fit on float64 activations, reshape instead of einops (and "
               "the float64 coefficients cast back where they meet float32 tensors)",
               (("replace", "get_ln_fit", LN_FIT_FLOAT64),
                ("sub", "final_ln_coefs = t.from_numpy(final_ln_fit.coef_).to(device)",
                 "final_ln_coefs = t.from_numpy(final_ln_fit.coef_).float().to(device)"),
                ("sub", "layer2_ln_coefs = t.from_numpy(layer2_ln_fit.coef_).to(device)",
                 "layer2_ln_coefs = t.from_numpy(layer2_ln_fit.coef_).float().to(device)"),
                ("sub", "layer0_ln_coefs = t.from_numpy(layer0_ln_fit.coef_).to(device)",
                 "layer0_ln_coefs = t.from_numpy(layer0_ln_fit.coef_).float().to(device)"))),
    # 7. v_L and v_R
    Submission("56_v_at_position_1.ipynb", "L fitted at position 1, where head 0.0 writes",
               (("sub", V_COURSE, V_AT_POSITION_1),)),
    Submission("57_v_without_layernorm.py", "v_L and v_R with the layernorm's fit left out",
               (("sub", V_COURSE, V_WITHOUT_LN),),
               {"v_L_v_R": ("failed", "the layernorm is skipped: right direction, wrong size")}),
    Submission("58_v_from_head_01.py", "v_L and v_R through head 0.1's OV matrix",
               (("sub", V_COURSE, V_HEAD_01),),
               {"v_L_v_R": ("failed", "the wrong head")}),
    # 8. objects computed with a wrong helper
    Submission("59_wrong_WOV_objects.ipynb", "get_WOV transposed; get_pre_20_dir and object 14 use it",
               (("replace", "get_WOV", WOV_TRANSPOSED),),
               {"get_WOV": ("failed", "the product transposed"),
                "get_pre_20_dir": ("passed", "right given a correct get_WOV"),
                "get_out_by_neuron_in_20_dir": ("passed", "right given a correct get_WOV"),
                "get_out_by_neuron_in_20_dir_less_memory": ("passed", "right given a correct get_WOV"),
                "out_by_component_in_pre_20_unbalanced_dir": ("passed", "computed with it: right given a correct get_WOV")}),
    # 9. side effects
    Submission("60_cos_sim_in_place.py", "cos_sim_with_MLP_weights normalises the model's W_in in place: the right "
               "values, and a changed model for every later cell",
               (("replace", "cos_sim_with_MLP_weights", COS_SIM_IN_PLACE),),
               {"cos_sim_with_MLP_weights": ("failed", "changes the model's weights in place")}),
    # and more of the same, written differently
    Submission("61_own_checks_and_loops.ipynb", "the student's own checks instead of the course's tests, Python loops "
               "in three items", tuple(LOOPS[:3]) + (("append", OWN_CHECKS),)),
    Submission("62_part7_imports_and_home_path.py", "early-2024 layout with a hard-coded home path and helpers "
               "from the part7 solutions",
               (("sub", COURSE_PATH_BLOCK.replace("part51", "part7"),
                 HOME_PATHS.replace("part51", "part7").replace("/home/maria/code/", "/Users/sam/")),
                ("sub", "import part7_balanced_bracket_classifier.tests as tests\n",
                 "import part7_balanced_bracket_classifier.tests as tests\n"
                 "from part7_balanced_bracket_classifier.solutions import get_activations\n"),
                ("replace", "get_activations", "# get_activations: from the solutions\n")),
               {"get_activations": ("missing", "imported from the course's solutions")},
               base="part7"),
    Submission("63_one_cell_imports_solutions.py", "one cell, no `# %%` markers: get_attn_probs and get_out_by_neuron "
               "imported from the course's solutions, the items that call them the student's own",
               (("sub", "import part51_balanced_bracket_classifier.tests as tests\n",
                 "import part51_balanced_bracket_classifier.tests as tests\n"
                 "from part51_balanced_bracket_classifier.solutions import get_attn_probs, get_out_by_neuron\n"),
                ("replace", "get_attn_probs", "# get_attn_probs: from the solutions\n"),
                ("replace", "get_out_by_neuron", "# get_out_by_neuron: from the solutions\n"),
                ("sub", "# %%\n", "\n")),
               {"get_attn_probs": ("missing", "imported from the course's solutions"),
                "get_out_by_neuron": ("missing", "imported from the course's solutions")}),
]

# the student's own answer, as given, and the last cascades: graded on both models
# (tests.corpus.test_corpus.on_model)
PRE20_CENTRE = ('''    out_by_component_in_pre_20_unbalanced_dir -= out_by_component_in_pre_20_unbalanced_dir[:, data.isbal].mean(
        -1, keepdim=True
    )
''', '''    out_by_component_in_pre_20_unbalanced_dir -= einops.repeat(
        out_by_component_in_pre_20_unbalanced_dir[:, data.isbal].mean(-1), "comp -> comp b", b=5000
    )
''')
OWN_WORK: list[Submission] = [
    Submission("64_overwritten_object.ipynb", "object 9 right in its own cell (its test call given it), then a scratch "
               "line two exercises on binds a 7-component slice of it to the same name",
               (("after", "get_out_by_neuron",
                 "if MAIN:\n    out_by_component_in_unbalanced_dir = out_by_component_in_unbalanced_dir[:7]\n"),)),
    Submission("65_repeat_5000_both_cells.py", "2023 layout: both object cells centre with einops.repeat(..., b=5000), "
               "the course's data size", (("sub", CENTRE_AS_WRITTEN, REPEAT_5000), ("sub", *PRE20_CENTRE)), base="2023"),
    Submission("66_wrong_embedding.py", "embedding returns the positional embedding; v_L and v_R are computed with it",
               (("replace", "embedding", "def embedding(model, tokenizer, char):\n"
                                         "    return model.W_pos[tokenizer.t_to_i[char]]\n"),),
               {"embedding": ("failed", "the positional embedding, not the token's"),
                "v_L_v_R": ("passed", "computed with it: right given a correct embedding")}),
    Submission("67_embedding_normalised_in_place.py", "embedding makes a unit vector with `/=` on a row of W_E: it "
               "changes the model, and v_L and v_R are computed with the changed model",
               (("replace", "embedding", "def embedding(model, tokenizer, char):\n"
                                         "    v = model.W_E[tokenizer.t_to_i[char]]\n"
                                         "    v /= v.norm()\n"
                                         "    return v\n"),),
               {"embedding": ("failed", "a unit vector, and the model's W_E changed in place"),
                "v_L_v_R": ("passed", "computed with it on the changed model: right given a correct embedding"),
                "adversarial_examples": ("passed", "aimed at the model embedding changed: right given a correct "
                                                   "embedding")}),
]

STUB = ("not_attempted", "the template's stub, unchanged")
FIRST_THREE = ("is_balanced_forloop", "is_balanced_vectorized", "get_post_final_ln_dir")
OWN_WORK += [
    Submission("68_template_untouched.py", "our template as handed out: every item a stub", (),
               {item: STUB for item in IDS}, base="template"),
    Submission("69_template_first_three.ipynb", "our template with the first three items written (as the course's "
               "solutions write them), the rest still stubs",
               tuple(("replace", item, course_definition(item)) for item in FIRST_THREE),
               {item: STUB for item in IDS if item not in FIRST_THREE}, base="template"),
]

ALL: list[Submission] = CORPUS + FIELD + OWN_WORK


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.corpus.field FOLDER [NAME ...]`: write corpus submissions (all, or those
    named) into FOLDER, to grade them by hand."""
    import sys
    from pathlib import Path

    from tests.corpus.submissions import build

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(main.__doc__)
        return 2
    names = set(args[1:])
    for name, path in build(Path(args[0]), [s for s in ALL if not names or s.name in names]).items():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
