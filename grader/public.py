"""The files workers may read, in a folder any user can read (the originals may be private): the
model as a course-style `.pt`, the data file, and its truncations. Paths are known without
importing torch (the command line starts its warm worker before it loads torch itself); only
making the `.pt` the first time needs it, and a copy of it kept in the grader's cache (which CI
keeps between runs) spares a new machine even that.
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
    """The model as a course-style `.pt` state dict (what course notebooks `t.load`), made once
    (and kept in the grader's cache, whence a new machine copies it without torch)."""
    path = weights_pt_path(weights)
    if not restored(path):
        import torch as t

        from reference.model import build_model, read_state_dict

        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        # the full state dict, buffers included, so a course notebook's strict load_state_dict works
        t.save(build_model(read_state_dict(weights)).state_dict(), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    kept = _kept(path)
    if not kept.exists():
        _write(kept, path.read_bytes(), 0o600)
    return str(path)


def restored(path: Path) -> bool:
    """Whether a public file exists, copied back (no torch needed) from the grader's cache where
    an earlier run kept it: a CI runner restores that cache, not the temporary folder."""
    if path.exists():
        return True
    kept = _kept(path)
    if not kept.is_file():
        return False
    _write(path, kept.read_bytes(), 0o644)
    return True


def _kept(path: Path) -> Path:
    """The cache's copy of a public file, named also by the versions that made it (the `.pt` holds
    TransformerLens's buffers as its version builds them)."""
    from importlib.metadata import PackageNotFoundError, version

    from grader.disk_cache import cache_dir

    made_by = []
    for package in ("torch", "transformer_lens"):
        try:
            made_by.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            made_by.append(package)
    tag = hashlib.sha256(" ".join(made_by).encode()).hexdigest()[:12]
    folder = cache_dir() / "public"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{path.stem}-{tag}{path.suffix}"


def _write(path: Path, content: bytes, mode: int) -> None:
    """Written whole or not at all (a temporary file, then a rename): processes may race."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def weights_pt_path(weights: str) -> Path:
    return public_dir() / f"model-{file_sha256(weights)[:16]}.pt"


def public_data_path(data: str) -> Path:
    return public_dir() / f"data-{file_sha256(data)[:16]}.json"


def public_data(data: str) -> str:
    """The whole data file where workers (possibly another user) can read it."""
    path = public_data_path(data)
    if not path.exists():
        _write(path, Path(data).read_bytes(), 0o644)
    return str(path)


def truncated_data(data: str, n: int) -> str:
    """The first n examples of a data file: what a submission's own code loads as its data (a
    course notebook uses the first 5,000; grading needs far fewer, and objects are judged on
    whatever data the submission used)."""
    path = public_dir() / f"data-{file_sha256(data)[:16]}-{n}.json"
    if not path.exists():
        _write(path, json.dumps(json.loads(Path(data).read_text())[:n]).encode(), 0o644)
    return str(path)
