"""A submission's code as a list of cells, whatever its format, made safe to execute.

`.py` files are split on `# %%` / `#%%` markers (one cell if there are none); notebooks give their
code cells. Shell escapes and installs (`!wget`, `%pip install`) are neutralised: the grader
supplies the environment, and a worker has no network.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

CELL_MARK = re.compile(r"^\s*#\s?%%")
MAGIC_LINE = re.compile(r"^(\s*)(!|%(?!%)|%%)(.*)$")


def neutralise(code: str) -> str:
    """Replace IPython shell and magic lines by `pass`, keeping line numbers."""
    out = []
    for line in code.splitlines():
        m = MAGIC_LINE.match(line)
        if m:
            out.append(f"{m.group(1)}pass  # grader skipped: {m.group(2)}{m.group(3)[:60]}")
        else:
            out.append(line)
    return "\n".join(out)


def py_cells(text: str) -> list[str]:
    cells, current = [], []
    for line in text.splitlines():
        if CELL_MARK.match(line):
            if current:
                cells.append("\n".join(current))
            current = [line]
        else:
            current.append(line)
    if current:
        cells.append("\n".join(current))
    return cells


def notebook_cells(text: str) -> list[str]:
    nb = json.loads(text)
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        cells.append("".join(src) if isinstance(src, list) else str(src))
    return cells


def read_cells(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    cells = notebook_cells(text) if path.suffix == ".ipynb" else py_cells(text)
    return [neutralise(c) for c in cells]
