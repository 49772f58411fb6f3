"""The Gradescope autograder zip, built by the CLI and run as Gradescope runs it: unzipped into a
folder laid out as /autograder (source, submission, results, submission_metadata.json), its
run_autograder grading a real submission, results.json checked against Gradescope's documented
fields."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.catalogue import BY_ID
from grader.cli import main

# Gradescope's autograder specification: the fields results.json may have, and their values
TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format", "visibility",
       "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
        "visibility", "extra_data"}
VISIBILITY = {"visible", "hidden", "after_due_date", "after_published"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}

COURSE = """\
[course]
name = "autumn"
starter = "blank.py"

[points]
get_WOV = 3

[visibility]
default = "visible"
get_out_by_neuron = "after_due_date"
get_WOV = "hidden"

[gradescope]
keep = "best"

[late]
due = 2026-12-10T23:59:00Z
percent_per_day = 10
times = "gradescope"
"""


def check_results(data: dict) -> None:
    """results.json as Gradescope's specification documents it."""
    assert set(data) <= TOP and isinstance(data["score"], (int, float))
    assert data.get("visibility", "visible") in VISIBILITY and data.get("output_format", "text") in FORMATS
    for t in data["tests"]:
        assert set(t) <= TEST and isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert t.get("status", "passed") in ("passed", "failed") and t.get("visibility", "visible") in VISIBILITY
        assert t.get("output_format", "text") in FORMATS and isinstance(t["name"], str)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("course")
    (folder / "bracket-grader.toml").write_text(COURSE)
    (folder / "blank.py").write_text("def get_WOV(model, layer, head):\n    raise NotImplementedError()\n")
    target = folder / "out" / "autograder.zip"
    assert main(["--write-gradescope", str(target), "--config", str(folder / "bracket-grader.toml")]) == 0
    return target


def test_the_zip_holds_what_gradescope_runs_and_a_pinned_grader(autograder):
    import torch

    with zipfile.ZipFile(autograder) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        setup = z.read("setup.sh").decode()
        pins = z.read("constraints.txt").decode().splitlines()
    assert {"setup.sh", "run_autograder", "bracket-grader.toml", "blank.py", "model.safetensors", "data.json",
            "bracket-grader/pyproject.toml", "bracket-grader/grader/cli.py", "bracket-grader/grader/worker/harvest.py",
            "bracket-grader/reference/solutions.py", "bracket-grader/reference/assets/brackets_model.safetensors",
            # the starters it knows, our template's included (an untouched template is not attempted there too)
            "bracket-grader/grader/starter_prints/bracket-grader-template.json"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)  # never the reference's bytecode
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert f'"torch=={torch.__version__.split("+")[0]}"' in setup and "whl/cpu" in setup
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0
    from importlib.metadata import version

    assert f"transformer-lens=={version('transformer_lens')}" in pins and not any(p.startswith("torch==") for p in pins)


def test_a_file_the_course_file_names_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "blank.py").write_text("def get_WOV(model, layer, head):\n    pass\n")
    (tmp_path / "course" / "bracket-grader.toml").write_text('[course]\nstarter = "../blank.py"\n')
    assert main(["--write-gradescope", str(tmp_path / "a.zip"), "--config",
                 str(tmp_path / "course" / "bracket-grader.toml")]) == 2
    assert not (tmp_path / "a.zip").exists()


@pytest.mark.worker
def test_run_autograder_grades_a_submission_laid_out_as_gradescope_does(autograder, solved_dir, tmp_path):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder) as z:
        z.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / name, 0o755)
    (root / "submission").mkdir()
    text = (solved_dir / "exercises.py").read_text()
    wrong = text.replace("model.W_V[layer, head] @ model.W_O[layer, head]", "model.W_O[layer, head].T @ model.W_V[layer, head].T")
    assert wrong != text
    (root / "submission" / "exercises.py").write_text(wrong)
    (root / "submission_metadata.json").write_text(json.dumps({
        "id": 1, "created_at": "2026-12-11T12:00:00.000000+00:00", "submission_method": "upload",
        "assignment": {"due_date": "2026-12-10T23:59:00.000000+00:00", "late_due_date": None, "title": "1.5.1"},
        "users": [{"email": "alice@example.com", "id": 1, "name": "Alice"}],
        "previous_submissions": [  # Gradescope's documented fields; the best earlier one stands where higher
            {"submission_time": "2026-12-09T10:00:00.000000+00:00", "score": 20.5, "results": {}},
            {"submission_time": "2026-12-10T10:00:00.000000+00:00", "score": "3.0", "results": {}}]}))
    env = {**os.environ, "BRACKET_GRADER_AUTOGRADER_ROOT": str(root), "BRACKET_GRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(root / "source" / "bracket-grader")}  # the zip's grader, not this checkout's
    proc = subprocess.run([str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=900, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    check_results(data)
    tests = {t["name"]: t for t in data["tests"]}
    wov = tests[BY_ID["get_WOV"].title]
    assert (wov["status"], wov["score"], wov["max_score"], wov["visibility"]) == ("failed", 0, 3, "hidden")
    assert "transposed" in wov["output"] and wov["output_format"] == "md"
    assert tests[BY_ID["get_out_by_neuron"].title]["visibility"] == "after_due_date"
    raw = sum(t["score"] for t in data["tests"])
    assert raw == 22 and "10% late penalty" in data["output"]  # a day late: 10% off, 19.8
    # the course keeps each student's best: the earlier 20.5 stands over this one's 19.8, and says so
    said = data["output"].replace("\\", "")  # Markdown escapes
    assert data["score"] == 20.5 and "2026-12-09T10:00:00" in said and "this submission scored 19.8" in said


def test_run_autograder_writes_results_even_when_grading_cannot_run(autograder, tmp_path):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder) as z:
        z.extractall(root / "source")
    os.chmod(root / "source" / "run_autograder", 0o755)
    (root / "submission").mkdir()
    env = {**os.environ, "BRACKET_GRADER_AUTOGRADER_ROOT": str(root), "BRACKET_GRADER_PYTHON": "/bin/false"}
    proc = subprocess.run([str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    data = json.loads((root / "results" / "results.json").read_text())
    check_results(data)
    assert data["score"] == 0 and "could not grade" in data["output"]
