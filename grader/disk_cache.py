"""What the trusted side computes that is the same for every submission, kept on disk: one folder
per cache key (grader version, reference code, model, data, device, library versions), one small
JSON file per entry, each read only when asked for. A run that grades one item reads one item's
files; a new process with a warm cache computes nothing it computed before.

Entries are written atomically (a temporary file, then a rename), so processes grading at once
(pytest-xdist, shards on one machine) may share a cache. The folder is the grader's user's only:
workers never see it (bubblewrap does not mount it; without bubblewrap its mode keeps other uids
out).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

MAX_ENTRY_BYTES = 8 * 1024**2  # larger answers (a helper's full activation cache) are not kept on disk


def cache_dir() -> Path:
    """Reference answers live here: readable by the grader's user only (CI keeps it between runs)."""
    path = Path(os.environ.get("BRACKET_GRADER_CACHE", Path.home() / ".cache" / "bracket-grader"))
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def entry_name(*parts: str) -> str:
    """A file name for an entry named by arbitrary strings (case labels, questions)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class DiskCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, kind: str, name: str) -> Path:
        return self.folder / kind / f"{name}.json"

    def get(self, kind: str, name: str) -> Any | None:
        try:
            return json.loads(self._path(kind, name).read_text())
        except (OSError, ValueError):
            return None

    def fetch(self, kind: str, name: str, make: Callable[[], Any], valid: Callable[[Any], bool]) -> Any:
        """The entry when it is there and `valid`, else `make()`, kept for next time."""
        value = self.get(kind, name)
        if not valid(value):
            value = make()
            self.put(kind, name, value)
        return value

    def put(self, kind: str, name: str, value: Any) -> bool:
        """Keep `value` (JSON-able); False when it is too large to keep or cannot be written."""
        text = json.dumps(value)
        if len(text) > MAX_ENTRY_BYTES:
            return False
        path = self._path(kind, name)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError:
            return False
        return True
