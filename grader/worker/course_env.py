"""The folders a course notebook expects, built inside the worker's scratch folder.

Course setup cells find `chapter1_transformer_interp/exercises` among the parents of the working
directory (or split `os.getcwd()` on `chapter1_transformers` in 2023), put it on sys.path, import
`<section>.tests` and `<section>.brackets_datasets`, `plotly_utils` and `circuitsvis`, and load
`brackets_model_state_dict.pt` (a state dict the trusted side saved for this model) and `brackets_data.json` from the section folder. We supply all of
it: the chosen model and data under the expected names, and quiet stand-ins for the rest.
"""
from __future__ import annotations

import os
from pathlib import Path

LAYOUTS = {  # section folder -> chapter folder
    "part51_balanced_bracket_classifier": "chapter1_transformer_interp",
    "part7_balanced_bracket_classifier": "chapter1_transformer_interp",
    "part4_interp_on_algorithmic_model": "chapter1_transformers",
}
QUIET_MODULE = "from grader.worker.quiet import quiet_getattr as __getattr__  # noqa: F401\n"
TESTS_MODULE = "from grader.worker.quiet import tests_getattr as __getattr__  # noqa: F401\n"
DATASETS_MODULE = "from reference.brackets import BracketsDataset, SimpleTokenizer  # noqa: F401\n"


def choose_section(source: str) -> str:
    """The course version a submission was written for, from the names it mentions."""
    for section in ("part4_interp_on_algorithmic_model", "part7_balanced_bracket_classifier"):
        if section in source:
            return section
    if "chapter1_transformers" in source and "chapter1_transformer_interp" not in source:
        return "part4_interp_on_algorithmic_model"
    return "part51_balanced_bracket_classifier"


def build(scratch: Path, model_pt: str, data_path: str, source: str) -> tuple[Path, Path]:
    """Create every layout under `scratch`; return (working directory, folder of stand-in modules)."""
    shims = scratch / "shims"
    (shims / "circuitsvis").mkdir(parents=True, exist_ok=True)
    (shims / "circuitsvis" / "__init__.py").write_text(QUIET_MODULE)
    (shims / "plotly_utils.py").write_text(QUIET_MODULE)
    for section, chapter in LAYOUTS.items():
        exercises = scratch / chapter / "exercises"
        section_dir = exercises / section
        section_dir.mkdir(parents=True, exist_ok=True)
        (section_dir / "__init__.py").write_text("")
        (section_dir / "tests.py").write_text(TESTS_MODULE)
        (section_dir / "brackets_datasets.py").write_text(DATASETS_MODULE)
        (exercises / "plotly_utils.py").write_text(QUIET_MODULE)
        os.symlink(os.path.abspath(model_pt), section_dir / "brackets_model_state_dict.pt")
        os.symlink(os.path.abspath(data_path), section_dir / "brackets_data.json")
    section = choose_section(source)
    return scratch / LAYOUTS[section] / "exercises" / section, shims
