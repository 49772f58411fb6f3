#!/usr/bin/env bash
# The second supported world: numpy 2 and TransformerLens 3.x (what Colab's runtimes resolve to),
# in .venv-np2 from requirements/constraints-np2.txt. Runs the reference checks, the bundled
# example graded end to end (its class page written while grading), the course model's full
# marks, grader.check() in a course-layout notebook and in a script, and the class report page in
# the browser with Colab's plotly (5.x).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-np2 CONSTRAINTS=requirements/constraints-np2.txt scripts/setup.sh
.venv-np2/bin/python -c "import numpy, transformer_lens; from importlib.metadata import version; \
print('second world: numpy', numpy.__version__, '/ transformer_lens', version('transformer_lens'))"
exec .venv-np2/bin/python -m pytest -n 2 --dist loadgroup --durations=10 \
    tests/test_reference.py tests/test_assets.py tests/test_worlds.py tests/test_report_page.py \
    tests/test_notebook_check.py::test_check_in_a_notebook_in_the_course_layout \
    tests/test_notebook_check.py::test_check_in_a_script_grades_the_file_once_at_exit \
    tests/test_engine.py::test_course_layout_submission_full_marks_on_the_course_model "$@"
