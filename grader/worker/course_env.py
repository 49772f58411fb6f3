"""The course's folders and files, built inside the worker's scratch folder, so that every course
version's setup code finds them and does nothing.

The course repository is laid out as `ARENA_3.0/chapter1_transformer_interp/exercises/<section>/`
(2024-25 `part51_balanced_bracket_classifier`, early 2024 `part7_balanced_bracket_classifier`) and,
in 2023, `ARENA_2.0/chapter1_transformers/exercises/part4_interp_on_algorithmic_model/`. Setup cells
find the exercises folder among the parents of the working directory, or split `os.getcwd()` on the
chapter's name, or (the current Colab-aware cell) take the `ARENA_3.0` folder above the working
directory as `root` and `os.chdir(f"{root}/{chapter}/exercises")`. The worker starts in the section
folder of the version the submission was written for, so each of those finds what it looks for.

Each section folder holds the chosen model and data under the course's file names, the section's
`brackets_datasets` (the real course setting), a `tests` module whose calls are recorded, not run,
and a `solutions` module whose functions are stand-ins the trusted process answers for (see
`grader.worker.imported`): students import the helpers they skipped, and the reference code never
enters the worker. Plotting and display modules (`plotly`, `plotly_utils`, `circuitsvis`) are
quiet stand-ins. Wherever else a submission looks for these (a hard-coded path to the student's
own checkout), `install_fallbacks` serves them: course modules by name whatever `sys.path` holds,
course files by name whatever folder is opened.
"""
from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import io
import os
import re
import sys
from pathlib import Path

REPOSITORIES = {  # chapter folder -> the course repository folder it lives in
    "chapter1_transformer_interp": "ARENA_3.0",
    "chapter1_transformers": "ARENA_2.0",
}
LAYOUTS = {  # section folder -> chapter folder
    "part51_balanced_bracket_classifier": "chapter1_transformer_interp",
    "part7_balanced_bracket_classifier": "chapter1_transformer_interp",
    "part4_interp_on_algorithmic_model": "chapter1_transformers",
}
SECTION_MODULES = ("tests", "brackets_datasets", "solutions")
COURSE_FILES = ("brackets_model_state_dict.pt", "brackets_data.json")
QUIET_PACKAGES = ("plotly", "circuitsvis")  # stand-ins shadow the real packages, submodules included
QUIET_MODULES = ("plotly_utils",)

QUIET_MODULE = "from grader.worker.quiet import quiet_getattr as __getattr__  # noqa: F401\n"
TESTS_MODULE = ("import torch as _t\n_t.set_grad_enabled(False)  # the course's tests module does this on import\n"
                "from grader.worker.quiet import tests_getattr as __getattr__  # noqa: F401\n")
DATASETS_MODULE = "from reference.brackets import BracketsDataset, SimpleTokenizer  # noqa: F401\n"
SOLUTIONS_MODULE = "from grader.worker.imported import solutions_getattr as __getattr__  # noqa: F401\n"


SECTION_IMPORT = re.compile(r"^\s*(?:from|import)\s+(part\w+)\.", re.M)


def choose_section(source: str) -> str:
    """The course version a submission was written for: the section whose modules it imports,
    else the chapter it names (a path elsewhere in the file, a model file under another version's
    folder, is no evidence)."""
    imported = [s for s in SECTION_IMPORT.findall(source) if s in LAYOUTS]
    if imported:
        return imported[0]
    for section in ("part4_interp_on_algorithmic_model", "part7_balanced_bracket_classifier"):
        if f'"{section}"' in source or f"'{section}'" in source:
            return section
    if "chapter1_transformers" in source and "chapter1_transformer_interp" not in source:
        return "part4_interp_on_algorithmic_model"
    return "part51_balanced_bracket_classifier"


def section_dir(scratch: Path, section: str) -> Path:
    chapter = LAYOUTS[section]
    return scratch / REPOSITORIES[chapter] / chapter / "exercises" / section


def build(scratch: Path, model_pt: str, data_path: str, source: str) -> tuple[Path, Path]:
    """Create every layout under `scratch`; return (working directory, folder of stand-in modules)."""
    shims = scratch / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    for module in QUIET_MODULES:
        (shims / f"{module}.py").write_text(QUIET_MODULE)
    for section in LAYOUTS:
        folder = section_dir(scratch, section)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
        (folder / "tests.py").write_text(TESTS_MODULE)
        (folder / "brackets_datasets.py").write_text(DATASETS_MODULE)
        (folder / "solutions.py").write_text(SOLUTIONS_MODULE)
        (folder.parent / "plotly_utils.py").write_text(QUIET_MODULE)
        os.symlink(os.path.abspath(model_pt), folder / "brackets_model_state_dict.pt")
        os.symlink(os.path.abspath(data_path), folder / "brackets_data.json")
    return section_dir(scratch, choose_section(source)), shims


class _Quiet(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """First on `sys.meta_path`: plotting and display packages (and every submodule of them) are
    quiet stand-ins, whether or not the real package is installed: a plot costs nothing."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in QUIET_PACKAGES:
            return importlib.util.spec_from_loader(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        from grader.worker.quiet import quiet_getattr

        module.__getattr__ = quiet_getattr
        module.__path__ = []


class _CourseModules(importlib.abc.MetaPathFinder):
    """Last on `sys.meta_path`: the course's section modules and `plotly_utils`, found by name when
    nothing on `sys.path` has them (the submission put its own checkout's folder there)."""

    def __init__(self, scratch: Path, shims: Path):
        self.scratch, self.shims = scratch, shims

    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if parts[0] in LAYOUTS and len(parts) <= 2 and (len(parts) == 1 or parts[1] in SECTION_MODULES):
            base = section_dir(self.scratch, parts[0])
            if len(parts) == 1:
                return importlib.util.spec_from_file_location(name, base / "__init__.py",
                                                              submodule_search_locations=[str(base)])
            return importlib.util.spec_from_file_location(name, base / f"{parts[1]}.py")
        if name in QUIET_MODULES:
            return importlib.util.spec_from_file_location(name, self.shims / f"{name}.py")
        return None


def _served(file, course_files: dict[str, str]):
    """The grader's copy of a course file the submission opens where it does not exist."""
    try:
        path = os.fspath(file)
    except TypeError:
        return file  # a file descriptor or an open file: not ours to change
    if isinstance(path, bytes):
        return file
    name = os.path.basename(path)
    if name in course_files and not os.path.exists(path):
        return course_files[name]
    return file


def install_fallbacks(scratch: Path, workdir: Path, shims: Path) -> None:
    """Quiet plots; serve the course's modules and files wherever the submission looks for them.
    (In a kernel, the first cell the worker runs calls this.)"""
    sys.meta_path.insert(0, _Quiet())
    sys.meta_path.append(_CourseModules(scratch, shims))
    course_files = {name: str(workdir / name) for name in COURSE_FILES}
    real_open = io.open

    def open_course_file(file, *args, **kwargs):
        return real_open(_served(file, course_files), *args, **kwargs)

    builtins.open = io.open = open_course_file
