"""The pytest plugin, run for real under pytester."""
from __future__ import annotations

import shutil

import pytest

from tests.variants import WRONG, write_variant

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def test_one_test_per_item_and_k_selects(pytester, solved_dir):
    path = shutil.copy(solved_dir / "exercises.py", pytester.path / "sub.py")
    result = pytester.runpytest_subprocess("--submission", str(path), "--collect-only", "-q")
    assert result.ret == 0
    assert sum("sub.py::" in line for line in result.outlines) == 23
    result = pytester.runpytest_subprocess("--submission", str(path), "-k", "get_WOV or embedding")
    result.assert_outcomes(passed=2, deselected=21)
    result.stdout.fnmatch_lines(["*bracket-grader scores*", "*PASS get_WOV*", "*1 submission(s) graded*"])


def test_failures_show_feedback(pytester, solved_dir):
    path = write_variant(solved_dir / "exercises.py", pytester.path / "wrong.py", {"get_WOV": WRONG["get_WOV"]})
    result = pytester.runpytest_subprocess("--submission", str(path), "-k", "get_WOV")
    result.assert_outcomes(failed=1, deselected=22)
    result.stdout.fnmatch_lines(["*get_WOV: failed (0/1)*", "*transposed*"])


def test_plain_pytest_in_the_template_folder_grades_the_template(pytester):
    from reference.make_template import TEMPLATE_DIR

    for name in ("exercises.py", "exercises.ipynb", "pytest.ini"):
        shutil.copy(TEMPLATE_DIR / name, pytester.path / name)
    (pytester.path / "exercises.py").touch()  # the newer of the two is graded
    result = pytester.runpytest_subprocess("-k", "LN_hook_names")
    result.assert_outcomes(failed=1, deselected=22)
    result.stdout.fnmatch_lines(["*not attempted*"])  # the template as given: its stub, unchanged


def test_a_folder_under_xdist_grades_each_submission_once(pytester, solved_dir):
    folder = pytester.path / "subs"
    folder.mkdir()
    shutil.copy(solved_dir / "exercises.py", folder / "a.py")
    write_variant(solved_dir / "exercises.py", folder / "b.py", {"embedding": WRONG["embedding"]})
    result = pytester.runpytest_subprocess("--submission", str(folder), "-n", "2", "-k", "get_WOV or embedding")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*2 submission(s) graded*"])
