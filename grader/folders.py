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
import stat
from pathlib import Path

OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PROC_FD = Path("/proc/self/fd")
MAX_DEPTH = 64  # folders nested deeper are left to the slot's wipe at the end of the submission
MAX_ENTRIES = 100_000  # more than this many files in a slot counts as over any storage limit


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

    def empty(self) -> None:
        """Remove everything in this folder, through descriptors only (a worker may still be
        running beside it and turn any path into a link): nothing outside it is touched."""
        for _ in _walk(self.fd, remove=True):
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_child(parent: int, name: str) -> int | None:
    """A sub-folder's descriptor, never through a link; one a worker of the grader's uid left
    unreadable (mode 000) is made readable first, through a descriptor of the folder itself."""
    try:
        return os.open(name, OPEN_FOLDER, dir_fd=parent)
    except PermissionError:
        try:
            path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError:
            return None
        try:
            os.chmod(PROC_FD / str(path_fd), 0o700)  # the folder the O_PATH descriptor holds, not a link
            return os.open(name, OPEN_FOLDER, dir_fd=parent)
        except OSError:
            return None
        finally:
            os.close(path_fd)
    except OSError:
        return None


def _walk(top: int, remove: bool = False, depth: int = 0):
    """Every entry under the folder `top` (a descriptor) as its lstat, depth first; with `remove`,
    each is removed once seen. Yields None for a folder that could not be read."""
    try:
        entries = list(os.scandir(top))
    except OSError:
        yield None
        return
    for entry in entries:
        try:
            info = os.stat(entry.name, dir_fd=top, follow_symlinks=False)
        except OSError:
            continue
        yield info
        if stat.S_ISDIR(info.st_mode):
            if depth >= MAX_DEPTH:
                if not remove:
                    yield None  # deeper than is measured: it cannot count as within a limit
                continue
            sub = _open_child(top, entry.name)
            if sub is None:
                yield None
                continue
            try:
                yield from _walk(sub, remove, depth + 1)
            finally:
                os.close(sub)
            if remove:
                try:
                    os.rmdir(entry.name, dir_fd=top)
                except OSError:
                    pass
        elif remove:
            try:
                os.unlink(entry.name, dir_fd=top)
            except OSError:
                pass


def usage(folder: Folder, limit: int) -> int:
    """The bytes on disk under `folder`, counted through descriptors; more than `limit` when it
    holds more than MAX_ENTRIES files or a folder that cannot be read (it cannot be measured)."""
    total = 0
    for n, info in enumerate(_walk(folder.fd)):
        if info is None or n >= MAX_ENTRIES:
            return limit + 1
        total += info.st_blocks * 512
    return total
