"""The student template: generated from the reference, never drifting, and runnable as given."""
from __future__ import annotations

import json
import os

import pytest

from reference.make_template import TEMPLATE_DIR, generate, template_lines, SOURCE


def test_committed_template_is_what_the_generator_writes():
    for path, text in generate().items():
        assert path.read_text() == text, f"{path.name} is stale: run `python -m reference.make_template`"


def test_template_has_every_function_as_a_stub_and_no_solution():
    from grader.catalogue import EXERCISES

    text = (TEMPLATE_DIR / "exercises.py").read_text()
    for ex in EXERCISES:
        if ex.kind == "function":
            assert f"def {ex.id}(" in text
    for ex in EXERCISES:
        for name in ex.names:
            assert f"{name} = " in text
    assert "BEGIN SOLUTION" not in text and "compute_" not in text and "reference.solutions" not in text
    stubs = [ln for ln in text.splitlines() if ln.strip() == "raise NotImplementedError()"]
    assert len(stubs) == sum(e.kind == "function" for e in EXERCISES)
    assert "model.W_U[:, 0] - model.W_U[:, 1]" not in text  # a solution body


def test_solved_variant_keeps_bodies():
    lines = template_lines(SOURCE.read_text(), solved=True)
    text = "\n".join(lines)
    assert not [ln for ln in lines if ln.strip() == "raise NotImplementedError()"]
    assert "model.W_U[:, 0] - model.W_U[:, 1]" in text


def test_notebook_and_module_hold_the_same_code():
    nb = json.loads((TEMPLATE_DIR / "exercises.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    module = (TEMPLATE_DIR / "exercises.py").read_text()
    for line in code.splitlines():
        if line.strip() and not line.startswith("# Generated"):
            assert line in module


@pytest.mark.slow
@pytest.mark.kernel
def test_template_notebook_runs_top_to_bottom_in_a_kernel(tmp_path, monkeypatch):
    """Every cell succeeds or fails with NotImplementedError, with no network and no GPU needed."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(TEMPLATE_DIR / "exercises.ipynb", as_version=4)
    env_dir = tmp_path / "runtime"
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(env_dir))
    monkeypatch.setenv("BRACKET_GRADER_CHECK", "off")  # the stubs' grader checks (test_notebook_check.py tests check())
    client = NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(TEMPLATE_DIR)}})
    client.execute()
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert all(name == "NotImplementedError" for _, name, _ in errors), errors
    assert len(errors) >= 15  # the self-checks call the stubs
    setup = nb.cells[1]
    assert not [o for o in setup.outputs if o.get("output_type") == "error"]


def test_every_self_check_cell_asks_the_grader_for_its_item():
    lines = (TEMPLATE_DIR / "exercises.py").read_text().splitlines()
    quick = [(i, ln.split("selfcheck.")[1].split("(")[0]) for i, ln in enumerate(lines) if "selfcheck." in ln]
    assert len(quick) >= 15
    for i, item in quick:
        assert lines[i - 1].strip().startswith(f'grader.check("{item}")'), (item, lines[i - 1])
    assert "import grader" in lines
