"""`pip install` of the project works in a fresh Colab runtime without changing anything Colab has.

Each Colab runtime (Python 3.13 and 3.12, requirements/colab.txt) is stood in for by a virtual
environment of that Python whose site-packages hold Colab's distributions as metadata only (pip
decides from metadata; the code is not needed to resolve). pip then installs the project in a dry
run with a report, and the report must install none of Colab's packages again: no numpy, torch or
transformers downgraded or upgraded. Needs the package registry (as `.ci/run` has) and the
Python versions (pyenv's, where they are); skips saying why otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]


def colab_runtimes() -> dict[str, dict[str, str]]:
    runtimes: dict[str, dict[str, str]] = {}
    current = None
    for line in (ROOT / "requirements" / "colab.txt").read_text().splitlines():
        if line.startswith("# runtime:"):
            current = runtimes.setdefault(line.split(":", 1)[1].strip(), {})
        elif line and not line.startswith("#") and current is not None:
            name, version = line.split("==")
            current[name] = version
    return runtimes


def find_python(version: str) -> str | None:
    """An interpreter of that version: pyenv's (not its shims, which answer only for the selected
    versions), else one on PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [*sorted(pyenv.glob(f"{version}.*/bin/python3")), shutil.which(f"python{version}")]
    for candidate in candidates:
        if candidate and Path(candidate).exists() and "shims" not in Path(candidate).parts:
            return str(candidate)
    return None


def fake_installed(site: Path, packages: dict[str, str]) -> None:
    """Colab's distributions, as installed metadata (what pip reads)."""
    for name, version in packages.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")


@pytest.mark.parametrize("runtime", sorted(colab_runtimes()))
def test_installing_into_colab_changes_none_of_its_packages(runtime, tmp_path):
    python = find_python(runtime)
    if python is None:
        pytest.skip(f"no Python {runtime} on this machine to stand in for Colab's runtime")
    colab = colab_runtimes()[runtime]
    env = tmp_path / "colab"
    subprocess.run([python, "-m", "venv", str(env)], check=True, timeout=300)
    site = next((env / "lib").glob("python*/site-packages"))
    fake_installed(site, colab)
    report = tmp_path / "report.json"
    proc = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--dry-run",
                           "--report", str(report), str(ROOT)], capture_output=True, text=True, timeout=1200)
    if proc.returncode and ("Network is unreachable" in proc.stderr or "Could not fetch" in proc.stderr):
        pytest.skip("the package registry cannot be reached from here")
    assert proc.returncode == 0, proc.stderr[-3000:]
    install = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    changed = {name: (colab[name], install[name]) for name in colab if name.lower() in install}
    assert not changed, f"pip would reinstall Colab's {changed}"
    assert install["bracket-grader"]
    assert install["transformer-lens"].split(".")[0] in ("2", "3"), install["transformer-lens"]


def wheel_names(source: Path, out: Path) -> set[str]:
    """The files a wheel built from SOURCE holds; setuptools must not warn about any of them."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "absent from the `packages` configuration" not in proc.stdout + proc.stderr
    import zipfile

    with zipfile.ZipFile(next(out.glob("bracket_grader-*.whl"))) as z:
        return set(z.namelist())


SHIPPED = {"grader/recipes/slurm/grade-array.sbatch", "grader/recipes/kubernetes/grade-job.yaml",
           "grader/recipes/github/grade-class.yml", "grader/starter_prints/bracket-grader-template.json",
           "grader/tolerances.json", "grader/examples/course_layout_correct.py",
           "reference/assets/brackets_model.safetensors", "reference/assets/brackets_data.json"}


def test_a_wheel_of_the_project_ships_its_data_files(tmp_path):
    """What `pip install bracket-grader` (not editable) gets: the recipes --write-* copies, the
    starters' fingerprints, the bundled model, each listed as a package (setuptools stops installing
    data folders that are not)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("grader", "reference"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert SHIPPED <= wheel_names(source, tmp_path / "wheel")


def test_the_gradescope_zips_grader_installs_with_its_data_files(tmp_path):
    """The grader inside the Gradescope zip is installed by its setup.sh from the pyproject the zip
    writes: it must ship the same data files."""
    import zipfile

    from grader.gradescope_zip import build
    from reference.paths import DEFAULT_DATA, DEFAULT_WEIGHTS

    build(tmp_path / "autograder.zip", DEFAULT_WEIGHTS, DEFAULT_DATA)
    with zipfile.ZipFile(tmp_path / "autograder.zip") as z:
        z.extractall(tmp_path / "source")
    assert SHIPPED <= wheel_names(tmp_path / "source" / "bracket-grader", tmp_path / "wheel")
