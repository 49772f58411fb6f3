"""Start a worker process under limits and collect its messages, whatever it does.

The worker gets its own session (process group), resource limits, a scrubbed environment, a
scratch folder as home and working directory, no standard input, and a pipe for messages. We read
with deadlines measured on `time.monotonic()`; when one passes, the whole process group is killed.
Output is captured and truncated. A worker that dies is an ordinary outcome, never a grader crash.
"""
from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grader.protocol import MAX_MESSAGE_BYTES, ProtocolError, load_message

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """Per-worker limits; every one is configurable (CLI flags, plugin options)."""

    item_seconds: float = 120.0  # wall clock for one item's calls (hard: the worker is killed)
    case_seconds: float = 30.0  # wall clock for one call (soft: an alarm inside the worker)
    cell_seconds: float = 120.0  # one notebook cell while the submission is being executed
    submission_seconds: float = 900.0  # everything for one submission, restarts included
    cpu_seconds: int = 1800
    memory_bytes: int = 8 * 1024**3  # address space; torch maps a lot of virtual memory
    processes: int = 512  # RLIMIT_NPROC (per user: enforced for unprivileged workers)
    open_files: int = 512
    file_bytes: int = 512 * 1024**2
    output_bytes: int = 64 * 1024  # captured stdout+stderr kept per worker
    notebook_examples: int = 1000  # size of the data file a submission's own code loads

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass
class WorkerRun:
    """What one worker process produced."""

    messages: list[dict] = field(default_factory=list)
    output: str = ""
    output_dropped: int = 0
    returncode: int | None = None
    ended_by: str = ""  # "", "item_timeout", "submission_timeout", "message_error"
    current_item: str | None = None
    protocol_errors: list[str] = field(default_factory=list)


UNPRIVILEGED_UID_BASE = 61_000  # workers started as root run as uid base + (pid % 4000): one uid each


def _others_can_use(path: Path) -> bool:
    """Whether a user with no relation to the files can reach and read `path` (every folder on the
    way needs o+x, the target o+r)."""
    path = path.resolve()
    try:
        for parent in reversed(path.parents):
            if not parent.stat().st_mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


@lru_cache(maxsize=1)
def isolation() -> dict[str, object]:
    """What this platform lets us enforce for workers (reported by `bracket-grade --isolation`)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    linux = sys.platform.startswith("linux")
    reachable = all(_others_can_use(p) for p in (Path(sys.executable), PROJECT_ROOT / "grader" / "protocol.py",
                                                  Path(os.__file__), Path(__import__("torch").__file__)))
    own_user = root and linux and reachable
    why = ("" if own_user else "not running as root" if not root else "not Linux" if not linux else
           "the Python interpreter or its packages are not readable by other users")
    return {"rlimits": True, "process_group": True, "own_user": own_user, "no_network": root and linux,
            "own_pid_namespace": root and linux, "why_not": why}


def _no_network() -> None:
    """A new, empty network namespace with only loopback up (the notebook kernel talks to its
    client over loopback; nothing outside the namespace is reachable)."""
    import ctypes
    import fcntl
    import socket
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    # CLONE_NEWNET: no network. CLONE_NEWPID: the worker's children live in a PID namespace of
    # their own, so they cannot signal the grader, and all die with the worker (see worker.main).
    if libc.unshare(0x40000000 | 0x20000000) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET | CLONE_NEWPID) failed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, ifreq))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))  # SIOCSIFFLAGS, IFF_UP


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _apply_limits(limits: Limits, uid: int | None, no_network: bool) -> None:
    """Runs in the child between fork and exec."""
    os.setsid()
    if no_network:
        _no_network()
    for res, value in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, limits.processes),
    ):
        try:
            soft, hard = resource.getrlimit(res)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past file_bytes fails instead of killing
    if uid is not None:
        _drop_privileges(uid)  # last: setting limits above needs the privileges we drop here


def worker_env(scratch: Path, job: dict) -> dict[str, str]:
    """Only what a worker needs: no tokens, no CI variables, no paths of the grader's own files."""
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT") if k in os.environ}
    threads = "1"
    return {
        **keep,
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "JUPYTER_RUNTIME_DIR": str(scratch / ".jupyter-runtime"),
        "JUPYTER_DATA_DIR": str(scratch / ".jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(scratch / ".jupyter-config"),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "MPLCONFIGDIR": str(scratch / ".mpl"),
        "MPLBACKEND": "Agg",
        "BRACKET_GRADER_WORKER": "1",
        "BRACKET_GRADER_PIDNS": "1" if isolation()["no_network"] else "0",
        # the model and data a template-layout submission loads (course layouts read the files
        # the worker puts in the section folder): the ones chosen for this run
        "BRACKET_GRADER_WEIGHTS": job["weights"],
        "BRACKET_GRADER_DATA": job["notebook_data"],
    }


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def run_worker(job: dict, scratch: Path, limits: Limits, deadline: float) -> WorkerRun:
    """Run one worker to its end (or until a deadline), returning everything it sent."""
    run = WorkerRun()
    uid = None
    if isolation()["own_user"]:
        uid = UNPRIVILEGED_UID_BASE + os.getpid() % 2000 + int.from_bytes(os.urandom(2), "big") % 2000
        for path in [scratch, *scratch.rglob("*")]:
            os.lchown(path, uid, uid)
        os.chmod(scratch, 0o700)
        parent = scratch.parent  # the per-submission folder, holding the submission's copy
        os.chown(parent, uid, uid)
        os.chmod(parent, 0o700)
        for path in parent.iterdir():
            if path.is_file():
                os.chown(path, uid, uid)
    read_fd, write_fd = os.pipe()
    job = {**job, "msg_fd": write_fd, "scratch": str(scratch), "case_seconds": limits.case_seconds,
           "cell_seconds": limits.cell_seconds}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader.worker.main"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=(write_fd,), cwd=scratch, env=worker_env(scratch, job),
        preexec_fn=lambda: _apply_limits(limits, uid, bool(isolation()["no_network"])), close_fds=True,
    )
    os.close(write_fd)
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    sel = selectors.DefaultSelector()
    sel.register(read_fd, selectors.EVENT_READ, "msg")
    sel.register(proc.stdout.fileno(), selectors.EVENT_READ, "out")
    pending = b""
    output = bytearray()
    item_deadline = None
    open_streams = 2
    try:
        while open_streams:
            now = time.monotonic()
            limit = deadline if item_deadline is None else min(deadline, item_deadline)
            if now >= limit:
                run.ended_by = "submission_timeout" if now >= deadline else "item_timeout"
                break
            for key, _ in sel.select(timeout=min(1.0, limit - now)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    open_streams -= 1
                    continue
                if key.data == "out":
                    room = limits.output_bytes - len(output)
                    output += chunk[: max(room, 0)]
                    run.output_dropped += max(len(chunk) - max(room, 0), 0)
                    continue
                pending += chunk
                if len(pending) > MAX_MESSAGE_BYTES and b"\n" not in pending:
                    run.protocol_errors.append("a message larger than the limit")
                    run.ended_by = "message_error"
                    open_streams = 0
                    break
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    try:
                        msg = load_message(line)
                    except ProtocolError as e:
                        run.protocol_errors.append(str(e))
                        continue
                    run.messages.append(msg)
                    if msg["kind"] == "start":
                        run.current_item = str(msg.get("item"))
                        item_deadline = time.monotonic() + limits.item_seconds
                    elif msg["kind"] == "end":
                        run.current_item, item_deadline = None, None
                    elif msg["kind"] == "done":
                        open_streams = 0  # a leftover child may hold stdout open: do not wait for it
    finally:
        _kill_group(proc)
        try:
            run.returncode = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            run.returncode = None
        sel.close()
        os.close(read_fd)
        proc.stdout.close()
    run.output = output.decode("utf-8", "replace")
    return run
