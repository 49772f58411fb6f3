#!/usr/bin/env bash
# Install what is missing into ./.venv: torch (CPU build pinned), then the project with the
# known-good versions in requirements/constraints.txt. Idempotent; quiet when nothing is missing.
# VENV and CONSTRAINTS choose another world (scripts/second-world.sh: numpy 2, TransformerLens 3.x).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
CONSTRAINTS=${CONSTRAINTS:-requirements/constraints.txt}
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$PY" -c "import grader, reference, transformer_lens, nbclient, xdist, check_jsonschema, cmarkgfm, kubernetes_validate" 2>/dev/null \
   || [ pyproject.toml -nt "$VENV/.installed" ] || [ "$CONSTRAINTS" -nt "$VENV/.installed" ]; then
    echo "setting up $VENV (first run: a minute or two)..." >&2
    "$PY" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
    # torch first and exactly pinned: a looser pin can pull a multi-GB CUDA build
    "$PY" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$PY" -m pip install -q -c "$CONSTRAINTS" -e ".[test]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$PY" -c "import grader, reference, transformer_lens, nbclient, xdist, check_jsonschema, cmarkgfm, kubernetes_validate"
    touch "$VENV/.installed"
fi
