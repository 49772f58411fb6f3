"""`bracket-grade --write-gradescope autograder.zip`: the autograder Gradescope runs, built from the
grader installed here (trusted side).

The zip holds what Gradescope's autograder specification asks for at its top level: `setup.sh`
(run once, as root, when the image is built: a virtual environment with the CPU build of the torch
installed here, then this grader's own source with every library pinned to the version installed
here) and `run_autograder` (run per submission: grades `/autograder/submission` and writes
`/autograder/results/results.json`, a results file that says what went wrong even when grading
could not run). Beside them: the grader's source, the course file, the model and data, and the
files the course file names (a starter, the late policy's CSVs).
"""
from __future__ import annotations

import importlib.metadata as md
import json
import shutil
import stat
import zipfile
from pathlib import Path

from grader.config import ConfigError

PACKAGES = ("grader", "reference")
SKIPPED = ("__pycache__", ".pyc", ".pyo")
# what torch pulls in for CUDA: not in a CPU image
NOT_PINNED = ("torch", "bracket-grader", "triton", "pip", "setuptools", "wheel")

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
SOURCE=${{BRACKET_GRADER_AUTOGRADER_ROOT:-/autograder}}/source
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -q && apt-get install -y -q python3 python3-venv python3-pip
fi
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
# the CPU build, exactly the version the grader was built with (a looser pin pulls CUDA's gigabytes)
/autograder/venv/bin/pip install -q "torch=={torch}" --index-url "${{TORCH_INDEX:-https://download.pytorch.org/whl/cpu}}"
/autograder/venv/bin/pip install -q -c "$SOURCE/constraints.txt" "$SOURCE/bracket-grader"
/autograder/venv/bin/python -c "import grader, reference, transformer_lens"
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission, write results.json.
set -uo pipefail
ROOT=${{BRACKET_GRADER_AUTOGRADER_ROOT:-/autograder}}
PY=${{BRACKET_GRADER_PYTHON:-/autograder/venv/bin/python}}
SOURCE="$ROOT/source"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
"$PY" -m grader.cli "$ROOT/submission" --config "$SOURCE/bracket-grader.toml" \\
    --weights "$SOURCE/{weights}" --data "$SOURCE/{data}" --workers 1 --quiet \\
    --submission-metadata "$ROOT/submission_metadata.json" --gradescope "$ROOT/results/results.json"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then  # no Python needed: it may be what failed
    printf '{{"score": 0, "visibility": "visible", "tests": [], "output": "%s"}}\\n' \\
        "The autograder could not grade this submission (exit status $status). Nothing you submitted is lost: tell your instructor." \\
        > "$ROOT/results/results.json"
fi
exit 0
"""


def pins() -> str:
    """Every library installed here, pinned, but torch (installed first, from the CPU index)."""
    lines = set()
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name not in NOT_PINNED and not name.startswith(("nvidia-", "cuda-")):
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines)) + "\n"


def pyproject(files: list[str]) -> str:
    """The installed grader's own project description, for `pip install` of its source: every
    folder of the shipped files is a package, with all its files (the same set as the project's
    pyproject.toml, read from what is shipped rather than written out twice)."""
    meta = md.metadata("bracket-grader")
    deps = [r for r in (md.requires("bracket-grader") or []) if "extra ==" not in r]
    folders = sorted({name.split("/", 1)[1].rsplit("/", 1)[0].replace("/", ".") for name in files})
    data = "".join(f'"{folder}" = ["*"]\n' for folder in folders)
    return (f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "bracket-grader"\nversion = "{meta["Version"]}"\nrequires-python = ">=3.10"\n'
            f"dependencies = {json.dumps(deps)}\n\n"
            '[project.scripts]\nbracket-grade = "grader.cli:main"\n\n'
            '[project.entry-points.pytest11]\nbracket_grader = "grader.plugin"\n\n'
            f'[tool.setuptools]\npackages = {json.dumps(folders)}\n\n'
            f'[tool.setuptools.package-data]\n{data}')


def _add_file(z: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def _package_files() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        import importlib

        root = Path(importlib.import_module(package).__file__).resolve().parent
        for path in sorted(root.rglob("*")):
            if path.is_file() and not any(s in path.name or s in path.parts for s in SKIPPED):
                out.append((f"bracket-grader/{package}/{path.relative_to(root).as_posix()}", path))
    return out


def course_files(course) -> list[tuple[str, Path]]:
    """The files the course file names, at the same place relative to it (or a ConfigError)."""
    if course is None:
        return []
    here = course.path.resolve().parent
    named = [course.starter, course.weights, course.data]
    if course.late is not None:
        named += [str(course.late.extensions) if course.late.extensions else None,
                  course.late.times if course.late.times not in ("", "gradescope", "git") else None]
    out = []
    for f in filter(None, named):
        path = Path(f).resolve()
        try:
            out.append((path.relative_to(here).as_posix(), path))
        except ValueError:
            raise ConfigError(f"--write-gradescope: {path} is not in the course file's folder ({here}); "
                              "put it there so the autograder has it") from None
    return out


def build(target: str | Path, weights: str | Path, data: str | Path, course=None) -> list[str]:
    """Write the autograder zip; the names it holds."""
    import torch

    from grader.course_file import EXAMPLE

    weights, data = Path(weights), Path(data)
    model_name, data_name = f"model{weights.suffix}", f"data{data.suffix}"
    course_text = course.path.read_bytes() if course is not None else EXAMPLE.encode()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w") as z:
        _add_file(z, "setup.sh", SETUP.format(torch=torch.__version__.split("+")[0]).encode(), executable=True)
        _add_file(z, "run_autograder", RUN.format(weights=model_name, data=data_name).encode(), executable=True)
        _add_file(z, "bracket-grader.toml", course_text)
        _add_file(z, "constraints.txt", pins().encode())
        package_files = _package_files()
        _add_file(z, "bracket-grader/pyproject.toml", pyproject([name for name, _ in package_files]).encode())
        for name, path in [(model_name, weights), (data_name, data), *course_files(course), *package_files]:
            _add_file(z, name, path.read_bytes())
        names = z.namelist()
    shutil.move(partial, target)
    return names
