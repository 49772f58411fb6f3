"""What keeps a worker from everything but its own folder, on this machine (trusted side).

Every worker runs inside bubblewrap (`bwrap`, the sandbox Flatpak runs on) where the kernel allows
unprivileged user namespaces, as it does on most distributions, whether the grader runs as root or
not: its own user, mount, PID, network, IPC and UTS namespaces; a root filesystem that holds only
what a worker needs, read-only (the system's libraries, the Python installation and packages, and
of this project only the files listed in WORKER_FILES: the worker's code and the course setting,
so no reference solution, bytecode, cache or file written later can appear there); a fresh /proc
and /dev, a /tmp and /dev/shm of fixed sizes, its own POSIX message queues; and one writable folder,
its own. Started as root, it also runs as an unprivileged uid of its own (where the Python
installation is readable by other users).

Where bwrap is missing or cannot run (macOS, a locked-down kernel or container), grading goes on
with what the platform allows, and `warning()` says exactly what is not enforced; it is printed
once per run and recorded in every report.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UID_BASE, UID_COUNT = 61_000, 4_000  # workers' uids when the grader runs as root
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf", "hosts")
# Of this project, all a worker sees (relative to PROJECT_ROOT, globs allowed): the worker's own
# code and what it imports of the grader, and the course setting students import. Everything else
# of the two packages (the reference solutions and their bytecode, the grader's trusted side and
# bundled examples, files written after the grader started) is not in a worker's filesystem.
WORKER_PACKAGES = ("grader", "reference")
WORKER_FILES = ("grader/__init__.py", "grader/protocol.py", "grader/inputs.py", "grader/worker/*.py",
                "reference/__init__.py", "reference/brackets.py", "reference/model.py", "reference/paths.py",
                "reference/setting.py", "reference/selfcheck.py",
                "reference/assets/brackets_model.safetensors", "reference/assets/brackets_data.json")


@dataclass(frozen=True)
class Isolation:
    bwrap: str | None  # a working bwrap, or None
    own_uid: bool  # workers run as an unprivileged uid of their own (started as root)
    missing: tuple[str, ...] = field(default=())  # what is not enforced, in words

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_json(self) -> dict:
        return {"bubblewrap": bool(self.bwrap), "own_uid": self.own_uid, "not_enforced": list(self.missing)}


def _others_can_use(path: Path) -> bool:
    """Whether a user with no relation to the files can reach and read `path`."""
    path = path.resolve()
    try:
        for parent in reversed(path.parents):
            if not parent.stat().st_mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


def python_readable_by_others() -> bool:
    import importlib.util

    torch = importlib.util.find_spec("torch")  # found, not imported (the command line has not loaded it yet)
    return all(_others_can_use(p) for p in (Path(sys.executable), PROJECT_ROOT / "grader" / "protocol.py",
                                             Path(os.__file__), Path(torch.origin if torch else os.__file__)))


def worker_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The project's files a worker sees (WORKER_FILES), as they are now."""
    return sorted({p for pattern in WORKER_FILES for p in root.glob(pattern) if p.is_file()})


def _python_roots() -> list[Path]:
    """The folders the Python installation and its packages live in."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    for entry in sys.path:
        p = Path(entry or ".").resolve()
        if p.is_dir() and "site-packages" in p.parts or "dist-packages" in p.parts:
            roots.add(p)
    keep = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(root.is_relative_to(k) for k in keep):
            keep.append(root)
    return keep


@lru_cache(maxsize=1)
def _filesystem() -> tuple[str, ...]:
    """The read-only part of every sandbox (computed once): system, Python, worker code."""
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for root in _python_roots():
        args += ["--ro-bind", str(root), str(root)]
    # the project's packages: an empty tmpfs over each (wherever it is installed, in site-packages
    # too), then the allowed files bound into it one by one (made read-only last, by bwrap_command)
    for package in WORKER_PACKAGES:
        args += ["--tmpfs", str(PROJECT_ROOT / package)]
    for path in worker_files():
        args += ["--ro-bind", str(path), str(path)]
    return tuple(args)


@lru_cache(maxsize=4)
def _bwrap_help(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout + out.stderr


def binds_by_descriptor(bwrap: str) -> bool:
    """Whether this bubblewrap has --bind-fd (0.8 and later: Debian 12, Ubuntu 24.04)."""
    return "--bind-fd" in _bwrap_help(bwrap)


def sizes_tmpfs(bwrap: str) -> bool:
    """Whether this bubblewrap can give a tmpfs a size (--size: 0.8 and later)."""
    return "--size" in _bwrap_help(bwrap)


def _sized(bwrap: str, size: int, path: str) -> list[str]:
    return (["--size", str(size)] if sizes_tmpfs(bwrap) else []) + ["--tmpfs", path]


def bwrap_command(bwrap: str, writable: list[Path], readable: list[Path], pid_1: bool = False,
                  bound: tuple[tuple[int, Path], ...] = (), limits=None) -> list[str]:
    """The bwrap command line that runs a worker (or a warm worker, `pid_1`) with `writable` folders
    (its own), and `bound` ones (open folders: descriptor, where the worker finds it; the caller
    passes the descriptors on), and `readable` ones (the model and data files it loads) besides the
    filesystem above; `limits` (grader.config.Limits) sizes its /tmp and /dev/shm."""
    from grader.config import Limits

    limits = limits or Limits()
    # in order: each mount covers what is below it, so /tmp's tmpfs comes before what lives in /tmp;
    # last, the root and /dev (tmpfs bwrap made) read-only: only `writable`, /tmp, /dev/shm and
    # /dev/mqueue can be written, and a warm worker empties them between submissions
    # (grader.worker.warm_worker)
    args = [bwrap, "--unshare-all", "--new-session", "--cap-drop", "ALL", "--die-with-parent",
            "--proc", "/proc", "--dev", "/dev", *_sized(bwrap, limits.shm_bytes, "/dev/shm"), "--mqueue", "/dev/mqueue",
            *_sized(bwrap, limits.tmp_bytes, "/tmp"), *_filesystem()]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    for fd, path in bound:
        args += ["--bind-fd", str(fd), str(path)]
    if pid_1:
        args.remove("--die-with-parent")  # a warm worker ends when its stdin closes (its parent thread may not live)
        args.append("--as-pid-1")
    home = [*writable, *(path for _, path in bound)]
    return [*args, *_read_only(), "--chdir", str(home[0]) if home else "/", "--"]


@lru_cache(maxsize=1)
def _read_only() -> tuple[str, ...]:
    """Last on the command line: the project's packages, /dev and the root read-only (nothing
    written there outlives a submission). Computed once, as _filesystem is."""
    return tuple(arg for path in (*(PROJECT_ROOT / p for p in WORKER_PACKAGES), Path("/dev"), Path("/"))
                 for arg in ("--remount-ro", str(path)))


def _probe(bwrap: str, uid: int | None) -> str:
    """Run a Python in the sandbox; "" when it works, else why not."""
    folder = Path(tempfile.mkdtemp(prefix="bracket-probe-"))
    try:
        if uid is not None:
            os.chown(folder, uid, uid)
        cmd = bwrap_command(bwrap, [folder], []) + [sys.executable, "-c", "import grader"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", ""),
                              "PYTHONPATH": str(PROJECT_ROOT)}, preexec_fn=(lambda: drop_to(uid)) if uid is not None else None)
        return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1][:200]
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)[:200]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def drop_to(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


@lru_cache(maxsize=1)
def detect() -> Isolation:
    """What this machine lets us enforce (probed once per process)."""
    if not sys.platform.startswith("linux"):
        return Isolation(None, False, (f"no bubblewrap on {sys.platform}: a submission can read every file the grader's "
                                       "user can (the reference solutions, other submissions graded at the same time) "
                                       "and use the network; only resource limits and process groups apply",))
    root = os.geteuid() == 0
    own_uid = root and python_readable_by_others()
    bwrap = shutil.which("bwrap")
    why = "bubblewrap (bwrap) is not installed" if bwrap is None else _probe(bwrap, UID_BASE + UID_COUNT if own_uid else None)
    missing = []
    if why:
        bwrap = None
        missing.append(f"workers are not sandboxed ({why}): a submission can read every file the grader's user can "
                       "(the reference solutions, the grader's tests and examples, other submissions graded at the "
                       "same time) and see other processes" + ("" if root else ", and it can use the network")
                       + "; resource limits and process groups still apply. Install bubblewrap "
                       "(Debian/Ubuntu: apt-get install bubblewrap) to enforce isolation")
    elif not sizes_tmpfs(bwrap):
        missing.append("this bubblewrap cannot size a tmpfs (--size, 0.8 and later): a worker's /tmp and /dev/shm "
                       "may grow to half the machine's memory")
    if root and not own_uid:
        missing.append("workers run as root (uid 0), because the Python installation is not readable by other users: "
                       "the process limit (RLIMIT_NPROC) does not apply to root, so a submission can start processes "
                       "past it; make the installation readable by others (chmod o+rx on its folders, as .ci/run "
                       "does for /root) to run workers as an unprivileged uid")
    return Isolation(bwrap, own_uid, tuple(missing))


def warning() -> str:
    """One paragraph for the run, "" where everything is enforced."""
    iso = detect()
    return "" if iso.complete else "warning: " + "; ".join(iso.missing)


class Uids:
    """Unprivileged uids for workers (the grader started as root), one per warm worker or run, never
    shared with another grader process on the machine: each is claimed by a lock file held while
    it is used."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(tempfile.gettempdir()) / "bracket-grader-uids"
        self.held: dict[int, int] = {}  # uid -> lock fd

    def claim(self) -> int:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        start = os.getpid() % UID_COUNT
        for i in range(UID_COUNT):
            uid = UID_BASE + (start + i) % UID_COUNT
            if uid in self.held:
                continue
            fd = os.open(self.folder / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.held[uid] = fd
            return uid
        raise RuntimeError("no free worker uid")

    def release(self, uid: int) -> None:
        fd = self.held.pop(uid, None)
        if fd is not None:
            os.close(fd)
