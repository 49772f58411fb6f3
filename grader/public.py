"""The files workers may read, in a folder any user can read (the originals may be private): the
model as a course-style `.pt`, the data file, and its truncations. Paths are known without
importing torch (the command line starts its warm worker before it loads torch itself); only
making the `.pt` the first time needs it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path


def public_dir() -> Path:
    """What workers may read: the model as a .pt state dict and the truncated data file."""
    path = Path(tempfile.gettempdir()) / f"bracket-grader-public-{os.getuid()}"
    path.mkdir(exist_ok=True)
    os.chmod(path, 0o755)
    return path


@lru_cache(maxsize=32)
def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_as_pt(weights: str) -> str:
    """The model as a course-style `.pt` state dict (what course notebooks `t.load`), made once."""
    path = weights_pt_path(weights)
    if not path.exists():
        import torch as t

        from reference.model import build_model, read_state_dict

        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        # the full state dict, buffers included, so a course notebook's strict load_state_dict works
        t.save(build_model(read_state_dict(weights)).state_dict(), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return str(path)


def weights_pt_path(weights: str) -> Path:
    return public_dir() / f"model-{file_sha256(weights)[:16]}.pt"


def public_data_path(data: str) -> Path:
    return public_dir() / f"data-{file_sha256(data)[:16]}.json"


def public_data(data: str) -> str:
    """The whole data file where workers (possibly another user) can read it."""
    path = public_data_path(data)
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(Path(data).read_bytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return str(path)


def truncated_data(data: str, n: int) -> str:
    """The first n examples of a data file: what a submission's own code loads as its data (a
    course notebook uses the first 5,000; grading needs far fewer, and objects are judged on
    whatever data the submission used)."""
    path = public_dir() / f"data-{file_sha256(data)[:16]}-{n}.json"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(json.loads(Path(data).read_text())[:n]))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return str(path)
