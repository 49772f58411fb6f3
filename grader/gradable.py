"""Is a file a submission at all? (trusted side, before any worker starts.)

A folder handed in by a class holds more than submissions: an empty file, a PDF renamed to .py, a
notebook saved half-written, another section's notebook. None of those is a student's 0: each is
reported as not gradable, with the reason as a field (grader.results.NotGradable), and every
renderer shows it apart from a score. The file is read here, never run.
"""
from __future__ import annotations

import json

from grader.catalogue import EXERCISES
from grader.results import NotGradable

SNIFF = 8192  # bytes looked at for a NUL: text files have none, binary files nearly always do in their head


# every name a submission could grade under: function items' names, object items' variables
ITEM_NAMES = tuple(dict.fromkeys(n for e in EXERCISES for n in (e.names or (e.id,))))


def check(source: bytes, suffix: str) -> NotGradable | None:
    """Why `source` (a .py or .ipynb file's bytes) is not a submission, or None where it may be one."""
    if not source.strip():
        return NotGradable("empty", f"{len(source)} bytes")
    if b"\x00" in source[:SNIFF]:
        return NotGradable("binary", "it holds NUL bytes: not a text file")
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as e:
        if suffix == ".ipynb":  # a notebook is JSON, always UTF-8
            return NotGradable("not_a_notebook", f"not UTF-8 text (byte {e.start})")
        text = source.decode("latin-1")  # a module saved in another encoding (a comment with an accent)
    if suffix == ".ipynb":
        why = _not_a_notebook(text)
        if why:
            return NotGradable("not_a_notebook", why)
    if not any(name in text for name in ITEM_NAMES):
        return NotGradable("no_items", "none of the section's function or variable names appears in it")
    return None


def _not_a_notebook(text: str) -> str:
    try:
        nb = json.loads(text)
    except (ValueError, RecursionError) as e:
        return f"not valid notebook JSON ({str(e)[:80]})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return "JSON without a notebook's list of cells"
    return ""
