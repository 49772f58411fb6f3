"""Folders the trusted process makes where a worker can write.

A slot's folder is writable inside its warm worker's sandbox, and a worker without a uid of its
own owns whatever the grader owns: it can rename a folder the grader made and leave a link to any
folder of the grader's user in its place. So each folder here is made and opened relative to its
parent's open descriptor (never through a path a worker could have turned into a link, and never
following one), and the trusted process uses it afterwards through its descriptor
(/proc/self/fd/N: the folder it made, wherever a worker moved it). Workers get the plain path,
which they resolve in their own sandbox.
"""
from __future__ import annotations

import os
from pathlib import Path

OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PROC_FD = Path("/proc/self/fd")


class Folder:
    """An open folder: `path` is where workers find it, `here` where the trusted process does."""

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, Path(path)

    @classmethod
    def open(cls, path: Path) -> "Folder":
        """A folder no worker could have touched yet (a slot's, right after it is made)."""
        return cls(os.open(path, OPEN_FOLDER), path)

    @property
    def here(self) -> Path:
        # without /proc (macOS: no sandbox there either) the path is all there is
        return PROC_FD / str(self.fd) if PROC_FD.is_dir() else self.path

    def make(self, name: str, mode: int = 0o777) -> "Folder":
        """A new folder in this one (FileExistsError if anything has that name, a link included)."""
        os.mkdir(name, mode, dir_fd=self.fd)
        return Folder(os.open(name, OPEN_FOLDER, dir_fd=self.fd), self.path / name)

    def write(self, name: str, data: bytes, mode: int = 0o644) -> Path:
        """A new file in this one, never through a link; its path as workers see it."""
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return self.path / name

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
