#!/usr/bin/env bash
# Install what is missing into ./.venv: torch (CPU build pinned), then the project with the
# known-good versions in requirements/constraints.txt. Idempotent; quiet when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import grader, reference, transformer_lens, nbclient, xdist, check_jsonschema" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ] || [ requirements/constraints.txt -nt .venv/.installed ]; then
    echo "setting up .venv (first run: a minute or two)..." >&2
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
    # torch first and exactly pinned: a looser pin can pull a multi-GB CUDA build
    .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[test]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    .venv/bin/python -c "import grader, reference, transformer_lens, nbclient, xdist, check_jsonschema"
    touch .venv/.installed
fi
