"""`grader.check()` inside a running notebook, tested through a real Jupyter kernel (nbclient):
a notebook with the course's setup, one right and one wrong function, an object, and the call.
The output holds PASS for the first, FAIL with the likely cause for the second, and the object
judged; in a kernel whose working folder holds the course layout (the course's model file next to
the notebook, found by its weights) and in one that holds our template."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT
from tests.corpus.field import COURSE_PATH_BLOCK

pytestmark = [pytest.mark.slow, pytest.mark.worker, pytest.mark.kernel, pytest.mark.xdist_group("notebook-check")]

COURSE_SETUP = '''
import json, sys
from pathlib import Path
import einops
import torch as t
from sklearn.linear_model import LinearRegression
from transformer_lens import HookedTransformer, HookedTransformerConfig, utils

t.set_grad_enabled(False)
device = t.device("cpu")
''' + COURSE_PATH_BLOCK + '''from part51_balanced_bracket_classifier.brackets_datasets import BracketsDataset, SimpleTokenizer
MAIN = __name__ == "__main__"
'''
COURSE_MODEL = '''
cfg = HookedTransformerConfig(n_ctx=42, d_model=56, d_head=28, n_heads=2, d_mlp=56, n_layers=3,
    attention_dir="bidirectional", act_fn="relu", d_vocab=5, d_vocab_out=2, use_attn_result=True,
    device=device, use_hook_tokens=True)
model = HookedTransformer(cfg).eval()
model.load_state_dict(t.load(section_dir / "brackets_model_state_dict.pt", map_location=device))
from reference.model import add_perma_hooks_to_mask_pad_tokens
model = add_perma_hooks_to_mask_pad_tokens(model, 1)
with open(section_dir / "brackets_data.json") as f:
    data = BracketsDataset(json.load(f)[:300]).to(device)
'''
FUNCTIONS = '''
def get_post_final_ln_dir(model):
    return model.W_U[:, 0] - model.W_U[:, 1]


def get_WOV(model, layer, head):
    return model.W_O[layer, head].T @ model.W_V[layer, head].T  # the wrong order


def get_activations(model, toks, names):
    _, cache = model.run_with_cache(toks, return_type=None, names_filter=lambda n: n in names)
    return cache


def LN_hook_names(layernorm):
    if layernorm.name == "ln_final":
        return utils.get_act_name("resid_post", 2), "ln_final.hook_normalized"
    layer, ln = layernorm.name.split(".")[1:]
    return utils.get_act_name("resid_pre" if ln == "ln1" else "resid_mid", layer), utils.get_act_name("normalized", layer, ln)


def get_ln_fit(model, data, layernorm, seq_pos=None):
    i, o = LN_hook_names(layernorm)
    cache = get_activations(model, data.toks, [i, o])
    x, y = utils.to_numpy(cache[i]), utils.to_numpy(cache[o])
    x, y = (x.reshape(-1, 56), y.reshape(-1, 56)) if seq_pos is None else (x[:, seq_pos], y[:, seq_pos])
    fit = LinearRegression().fit(x, y)
    return fit, fit.score(x, y)


def get_pre_final_ln_dir(model, data):
    fit = get_ln_fit(model, data, model.ln_final, 0)[0]
    return t.from_numpy(fit.coef_).to(device).T @ get_post_final_ln_dir(model)


def get_out_by_components(model, data):
    names = ["hook_embed", "hook_pos_embed"] + [utils.get_act_name(k, l) for l in range(3) for k in ("result", "mlp_out")]
    c = get_activations(model, data.toks, names)
    parts = [(c["hook_embed"] + c["hook_pos_embed"]).unsqueeze(0)]
    for l in range(3):
        parts += [einops.rearrange(c[utils.get_act_name("result", l)], "b s h d -> h b s d"), c[utils.get_act_name("mlp_out", l)].unsqueeze(0)]
    return t.cat(parts)
'''
OBJECT = '''
out_by_components = get_out_by_components(model, data)
out_by_component_in_unbalanced_dir = einops.einsum(out_by_components[:, :, 0], get_pre_final_ln_dir(model, data), "c b d, d -> c b")
out_by_component_in_unbalanced_dir -= out_by_component_in_unbalanced_dir[:, data.isbal].mean(dim=1, keepdim=True)
'''
CHECK = "import grader\nresult = grader.check()\n"
CHECK_ONE = 'grader.check("get_WOV")\n'


def course_folder(base: Path, grader) -> Path:
    """A student's checkout of the course: the section folder with the course's files."""
    section = base / "ARENA_3.0" / "chapter1_transformer_interp" / "exercises" / "part51_balanced_bracket_classifier"
    section.mkdir(parents=True)
    (section / "__init__.py").write_text("")
    (section / "brackets_datasets.py").write_text("from reference.brackets import BracketsDataset, SimpleTokenizer\n")
    shutil.copyfile(grader.setting.weights_pt, section / "brackets_model_state_dict.pt")
    shutil.copyfile(grader.setting.data_public, section / "brackets_data.json")
    return section


def run_notebook(cells: list[str], folder: Path) -> list[nbformat.NotebookNode]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.strip("\n")) for c in cells]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), before or ""])  # the kernel finds the project
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    return nb.cells


def html_of(cell) -> str:
    return "\n".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if o.output_type == "display_data")


def test_check_in_a_notebook_in_the_course_layout(grader, tmp_path):
    section = course_folder(tmp_path, grader)
    which = "import grader.notebook\nprint('MODELS', sorted(k[0] for k in grader.notebook._GRADERS))\n"
    cells = run_notebook([COURSE_SETUP, COURSE_MODEL, FUNCTIONS, OBJECT, CHECK, CHECK_ONE, which], section)
    used = "".join(o.get("text", "") for o in cells[6].outputs if o.output_type == "stream")
    assert str(section / "brackets_model_state_dict.pt") in used, used  # the notebook's model file, found
    table = html_of(cells[4])
    row = {line.split("<code>")[1].split("</code>")[0]: line for line in table.split("<tr>") if "<code>" in line}
    assert "PASS" in row["get_post_final_ln_dir"] and "PASS" in row["get_ln_fit"]
    assert "FAIL" in row["get_WOV"] and "transposed" in row["get_WOV"]
    assert "PASS" in row["out_by_component_in_unbalanced_dir"]  # computed by the notebook's code in the worker
    assert "MISS" in row["get_attn_probs"]
    assert "points;" in table  # the one-line summary
    one = html_of(cells[5])
    assert one.count("<code>") == 1 and "get_WOV" in one and "FAIL" in one


def test_check_in_a_notebook_in_our_template(grader, tmp_path):
    """The template's own self-check cell grades the function that cell has just defined."""
    from reference.make_template import write_solved

    folder = tmp_path / "template"
    folder.mkdir()
    write_solved(folder)
    nb = nbformat.read(folder / "exercises.ipynb", as_version=4)
    wrong = "def get_WOV(model, layer, head):\n    return model.W_O[layer, head].T @ model.W_V[layer, head].T\n"
    cells = []
    for cell in (c.source for c in nb.cells if c.cell_type == "code"):
        if "def get_WOV(" in cell:  # the student's wrong version, in the cell that checks it
            cell = cell.replace("\nif MAIN:", "\n" + wrong + "\nif MAIN:", 1)
            cell = "\n".join(ln for ln in cell.splitlines() if "selfcheck." not in ln)  # it would stop the cell
            assert 'grader.check("get_WOV")' in cell
            at = len(cells)
        else:  # the other per-item checks left out (each would grade the notebook once)
            cell = "\n".join(ln for ln in cell.splitlines() if "grader.check(" not in ln)
        cells.append(cell)
    # the notebook up to that cell, as a student runs it while working (the whole table after a
    # full check is the course-layout test's; the solved template's full marks in a kernel,
    # tests/test_engine.py's)
    cells = run_notebook(cells[:at + 1], folder)
    own = html_of(cells[at])
    assert own.count("<code>") == 1 and "FAIL" in own and "transposed" in own, own

def test_check_in_a_script_grades_the_file_once_at_exit(tmp_path):
    """`python exercises.py` with check() calls: one grading of the file, for the items asked."""
    import subprocess
    import sys

    script = tmp_path / "exercises.py"
    script.write_text(
        "import grader\nimport torch as t\nfrom reference.setting import load_model\n"
        "model = load_model()\n\n"
        "def get_WOV(model, layer, head):\n    return model.W_V[layer, head] @ model.W_O[layer, head]\n\n"
        "def get_post_final_ln_dir(model):\n    return model.W_U[:, 1] - model.W_U[:, 0]  # the wrong sign\n\n"
        "if __name__ == '__main__':\n    grader.check('get_WOV')\n    grader.check(['get_post_final_ln_dir'])\n"
        "    print('the script ran to its end')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.index("the script ran to its end") < out.index("get_WOV")  # graded at exit, once
    assert out.count("submission(s) graded") == 1, out
    lines = {ln.split()[1]: ln for ln in out.splitlines() if len(ln.split()) > 1}
    assert lines["get_WOV"].split()[0] == "PASS" and lines["get_post_final_ln_dir"].split()[0] == "FAIL", out
    assert lines["embedding"].split()[0] == "----", out  # only what was asked for is graded
    assert "mean score 1.00;" in out, out
