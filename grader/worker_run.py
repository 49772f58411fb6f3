"""Start a worker process under limits and collect its messages, whatever it does.

The worker runs in its slot (grader.slots): inside bubblewrap where the machine has it
(grader.isolation), as the slot's uid when the grader is root, with its own session, resource
limits, a scrubbed environment, its run's folder as home and working directory, no standard input,
and a pipe for messages. We read with deadlines measured on `time.monotonic()`; when one passes,
the worker and everything it started are killed. Output is captured and truncated. A worker that
dies is an ordinary outcome, never a grader crash.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader.folders import Folder
from grader.protocol import MAX_MESSAGE_BYTES, ProtocolError, load_message
from grader.worker.sandboxing import apply_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """Per-worker limits; every one is configurable (CLI flags, plugin options)."""

    item_seconds: float = 120.0  # wall clock for one item's calls (hard: the worker is killed)
    case_seconds: float = 30.0  # wall clock for one call (soft: an alarm inside the worker)
    # one top-level statement of the submission's own code (soft: an alarm in the worker; the
    # worker is killed STATEMENT_GRACE later, and the submission run again without that statement)
    statement_seconds: float = 60.0
    submission_seconds: float = 900.0  # everything for one submission, restarts included
    cpu_seconds: int = 1800
    memory_bytes: int = 8 * 1024**3  # address space; torch maps a lot of virtual memory
    processes: int = 512  # RLIMIT_NPROC (per user: enforced for unprivileged workers)
    open_files: int = 512
    file_bytes: int = 512 * 1024**2
    output_bytes: int = 64 * 1024  # captured stdout+stderr kept per worker
    notebook_examples: int = 1000  # the data file a submission's own code loads (see Grader._course_size_pass)
    course_examples: int = 5000  # the course's `data`: what object items that did not pass are run again on

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def per_item(cls, item_seconds: float, **other) -> "Limits":
        """Limits for a per-item limit: a call's soft limit is at most half of it, so a hanging
        call is stopped inside the worker (its item stops there, and nothing restarts) before the
        item's hard limit kills the worker."""
        return cls(item_seconds=item_seconds, case_seconds=min(cls.case_seconds, item_seconds / 2), **other)


@dataclass
class WorkerRun:
    """What one worker process produced."""

    messages: list[dict] = field(default_factory=list)
    output: str = ""
    output_dropped: int = 0
    returncode: int | None = None
    ended_by: str = ""  # "", "item_timeout", "statement_timeout", "submission_timeout", "message_error", "interrupted"
    current_item: str | None = None
    current_statement: dict | None = None  # {"key", "where"} of the statement running when it ended (before grading)
    protocol_errors: list[str] = field(default_factory=list)


STATEMENT_GRACE = 10.0  # seconds past a statement's soft limit before its worker is killed


def _preexec(limits: Limits, uid: int | None, namespaces: bool) -> None:
    """Runs in the child between fork and exec (of bwrap, or of the worker itself)."""
    apply_sandbox(limits.to_json(), uid, namespaces)


# glibc malloc: keep freed memory for reuse instead of returning it to the kernel. A forward pass
# with use_attn_result allocates a [batch, pos, head, d_head, d_model] product (tens of MB) per
# layer; served by a fresh mmap each time, its page faults cost more than the arithmetic (the
# 19 function items: 8.2 s -> 3.2 s on one thread). Ignored by other C libraries.
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}


def worker_env(scratch: Path, job: dict, sandboxed: bool = False) -> dict[str, str]:
    """Only what a worker needs: no tokens, no CI variables, no paths of the grader's own files.
    `sandboxed`: inside bubblewrap, which gives it its own PID namespace (so the worker need not)."""
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
        **MALLOC_ENV,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "JUPYTER_RUNTIME_DIR": str(scratch / ".jupyter-runtime"),
        "JUPYTER_DATA_DIR": str(scratch / ".jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(scratch / ".jupyter-config"),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "MPLCONFIGDIR": str(scratch / ".mpl"),
        "MPLBACKEND": "Agg",
        "BRACKET_GRADER_WORKER": "1",
        "BRACKET_GRADER_PIDNS": "0" if sandboxed or os.geteuid() != 0 else "1",
        # the model and data a template-layout submission loads (course layouts read the files
        # the worker puts in the section folder): the ones chosen for this run
        "BRACKET_GRADER_WEIGHTS": job["weights"],
        "BRACKET_GRADER_DATA": job["notebook_data"],
    }


def _hand_over(scratch: Folder, uid: int | None) -> None:
    """Give a run's folder (new, holding only what the grader put there: the submission's copy,
    the pipes) to the worker's uid. No link a worker left can be followed: nothing older is touched,
    everything is reached through the folder's descriptor, and links are never dereferenced."""
    if uid is None:
        return
    os.fchown(scratch.fd, uid, uid)
    for name in scratch.names():
        os.chown(name, uid, uid, dir_fd=scratch.fd, follow_symlinks=False)
    os.fchmod(scratch.fd, 0o700)


def _signal_code(code: int | None, sandboxed: bool) -> int | None:
    """bwrap reports a command killed by signal n as exit code 128 + n: make it -n, as Popen does."""
    if sandboxed and code is not None and 128 < code < 128 + 65:
        return -(code - 128)
    return code


def run_worker(job: dict, scratch: Folder, limits: Limits, deadline: float, slot,
               answer: Callable[[dict], dict] | None = None, stop: threading.Event | None = None) -> WorkerRun:
    """Run one worker in `slot` (grader.slots), in its folder `scratch` (grader.folders), to its end
    (or until a deadline), returning everything it sent. With the slot's warm worker, a fork of it;
    otherwise a new interpreter, in bubblewrap where the machine has it. With `answer`, the worker
    may ask questions ("ask" messages) and gets `answer(message)` back as one JSON line on its reply pipe."""
    job = {**job, "scratch": str(scratch.path), "case_seconds": limits.case_seconds,
           "statement_seconds": limits.statement_seconds}
    sandboxed = bool(slot.iso.bwrap)
    env = worker_env(scratch.path, job, sandboxed)
    namespaces = not sandboxed and os.geteuid() == 0  # without bwrap, root can still cut the network
    if slot.pool is not None and slot.pool.alive():
        request = {"job": job, "cwd": str(scratch.path), "env": env, "limits": limits.to_json(),
                   "uid": None if sandboxed else slot.uid, "no_network": namespaces}
        run = _run_forked(slot.pool, request, scratch, slot.uid, limits, deadline, answer, stop)
        if run is not None:
            return run
    return _run_new(job, scratch, limits, deadline, slot, env, namespaces, answer, stop)


def _run_forked(pool, request: dict, scratch: Folder, uid: int | None, limits: Limits, deadline: float,
                answer, stop) -> WorkerRun | None:
    """A fork of the slot's warm worker, talking through FIFOs in its scratch folder; None when the
    warm worker does not answer (the caller starts a new interpreter instead)."""
    names = {name: f".{name}" for name in ("messages", "output", "replies")}
    for fifo in names.values():
        os.mkfifo(fifo, 0o600, dir_fd=scratch.fd)
    _hand_over(scratch, uid)

    def fifo(name: str, flags: int) -> int:
        return os.open(names[name], flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=scratch.fd)

    read_fd, out_fd = fifo("messages", os.O_RDONLY), fifo("output", os.O_RDONLY)
    try:
        pid = pool.fork({**request, **{f"{kind}_fifo": str(scratch.path / names[name]) for kind, name in
                                       (("msg", "messages"), ("out", "output"), ("reply", "replies"))}})
    except RuntimeError:
        os.close(read_fd)
        os.close(out_fd)
        for name in names.values():  # a new interpreter gets pipes, not these
            try:
                os.unlink(name, dir_fd=scratch.fd)
            except FileNotFoundError:
                pass
        return None
    replies = _Replies(answer, lambda: fifo("replies", os.O_WRONLY))
    try:
        run = _read_worker(read_fd, out_fd, limits, deadline, alive=lambda: not pool.has_exited(pid),
                           replies=replies, stop=stop)
    finally:
        replies.close()
        pool.kill(pid)
        os.close(read_fd)
        os.close(out_fd)
    run.returncode = pool.exit_code(pid, timeout=10)
    return run


def _run_new(job: dict, scratch: Folder, limits: Limits, deadline: float, slot, env: dict, namespaces: bool,
             answer, stop) -> WorkerRun:
    """A new interpreter (in bubblewrap where the machine has it), talking through inherited pipes."""
    _hand_over(scratch, slot.uid)
    read_fd, write_fd = os.pipe()
    reply_read, reply_write = os.pipe()
    os.set_blocking(reply_write, False)
    replies = _Replies(answer, lambda: reply_write)
    replies.fd = reply_write  # closed with it, whether or not anything was asked
    job = {**job, "msg_fd": write_fd, "reply_fd": reply_read}
    try:
        proc = subprocess.Popen(
            _new_worker_command(slot, scratch), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, pass_fds=(write_fd, reply_read, scratch.fd), cwd=scratch.here, env=env,
            preexec_fn=lambda: _preexec(limits, slot.uid, namespaces), close_fds=True,
        )
    except BaseException:
        os.close(read_fd)
        replies.close()
        raise
    finally:
        os.close(write_fd)
        os.close(reply_read)
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        run = _read_worker(read_fd, proc.stdout.fileno(), limits, deadline, replies=replies, stop=stop)
    finally:
        replies.close()
        _kill(proc.pid)
        try:
            returncode = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            returncode = None
        os.close(read_fd)
        proc.stdout.close()
    run.returncode = _signal_code(returncode, bool(slot.iso.bwrap))
    return run


def _new_worker_command(slot, scratch: Folder) -> list[str]:
    cmd = [sys.executable, "-m", "grader.worker.main"]
    if not slot.iso.bwrap:
        return cmd
    from grader.isolation import binds_by_descriptor, bwrap_command

    if binds_by_descriptor(slot.iso.bwrap):  # its folder, whatever a link in its path now points at
        return bwrap_command(slot.iso.bwrap, [], slot.readable, bound=((scratch.fd, scratch.path),)) + cmd
    return bwrap_command(slot.iso.bwrap, [scratch.path], slot.readable) + cmd  # bubblewrap before 0.8


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Replies:
    """Answers to a worker's questions, written without ever blocking the trusted process: a
    worker that asks and does not read only fills its own pipe, and its deadline still holds."""

    MAX_QUESTIONS = 500

    def __init__(self, answer: Callable[[dict], dict] | None, opener: Callable[[], int]):
        self.answer, self._opener = answer, opener
        self.fd: int | None = None
        self.pending = b""
        self.asked = 0

    def ask(self, msg: dict) -> None:
        self.asked += 1
        if self.answer is None:
            reply = {"ok": False, "error": "this run answers no questions"}
        elif self.asked > self.MAX_QUESTIONS:
            reply = {"ok": False, "error": f"more than {self.MAX_QUESTIONS} questions in one run"}
        else:
            try:
                reply = self.answer(msg)
            except Exception as e:  # the answer is the grader's; its failure is the worker's error
                reply = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        self.pending += json.dumps(reply, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            if self.fd is None:
                self.fd = self._opener()
            n = os.write(self.fd, self.pending[: 1 << 16])
            self.pending = self.pending[n:]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # the worker is gone, or never opened its end
            self.pending = b""

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class _Reader:
    """The trusted side of one worker run: its output (bounded), its messages, and the deadlines
    they move (an item's from its "start", a statement's from its "stmt")."""

    def __init__(self, limits: Limits, deadline: float, replies: _Replies | None, stop: threading.Event | None):
        self.limits, self.deadline, self.replies, self.stop = limits, deadline, replies, stop
        self.run = WorkerRun()
        self.item_deadline: float | None = None  # also a statement's, while the submission's own code runs
        self.pending = bytearray()  # a bytearray: a long message arrives in many chunks, split once
        self.output = bytearray()
        self.done = False  # "done" arrived: a leftover child may hold stdout open, do not wait for it
        self.broken = False  # a message over the limit: nothing more is read

    def time_left(self) -> float | None:
        """Seconds to the nearer deadline, or None (with the reason in run.ended_by) when it is over."""
        if self.stop is not None and self.stop.is_set():
            self.run.ended_by = "interrupted"
            return None
        now = time.monotonic()
        limit = self.deadline if self.item_deadline is None else min(self.deadline, self.item_deadline)
        if now < limit:
            return limit - now
        self.run.ended_by = ("submission_timeout" if now >= self.deadline else
                             "statement_timeout" if self.run.current_statement else "item_timeout")
        return None

    def take_output(self, chunk: bytes) -> None:
        room = max(self.limits.output_bytes - len(self.output), 0)
        self.output += chunk[:room]
        self.run.output_dropped += max(len(chunk) - room, 0)

    def take_messages(self, chunk: bytes) -> None:
        self.pending += chunk
        if b"\n" not in chunk:  # (pending holds no newline before this chunk)
            if len(self.pending) > MAX_MESSAGE_BYTES:
                self.run.protocol_errors.append("a message larger than the limit")
                self.run.ended_by = "message_error"
                self.broken = True
            return
        *lines, rest = self.pending.split(b"\n")
        self.pending = bytearray(rest)
        for line in lines:
            try:
                self._handle(load_message(line))
            except ProtocolError as e:
                self.run.protocol_errors.append(str(e))

    def _handle(self, msg: dict) -> None:
        kind, run = msg["kind"], self.run
        if kind == "ask" and self.replies is not None:
            began = time.monotonic()
            self.replies.ask(msg)
            if self.item_deadline is not None:  # the grader's time answering is not the item's or the
                self.item_deadline += time.monotonic() - began  # statement's (the submission's limit counts it)
            return
        if kind == "stmt":  # one per statement: kept only while it runs
            run.current_statement = {"key": str(msg.get("key"))[:40], "where": str(msg.get("where"))[:60]}
            self.item_deadline = time.monotonic() + self.limits.statement_seconds + STATEMENT_GRACE
            return
        run.messages.append(msg)
        if kind == "ready":
            run.current_statement, self.item_deadline = None, None
        elif kind == "start":
            run.current_item = str(msg.get("item"))
            self.item_deadline = time.monotonic() + self.limits.item_seconds
        elif kind == "end":
            run.current_item, self.item_deadline = None, None
        elif kind == "done":
            self.done = True

    def finish(self) -> WorkerRun:
        self.run.output = self.output.decode("utf-8", "replace")
        return self.run


def _read_worker(msg_fd: int, out_fd: int, limits: Limits, deadline: float, alive=None,
                 replies: _Replies | None = None, stop: threading.Event | None = None) -> WorkerRun:
    """Collect messages and output until both streams close, "done" arrives, or a deadline passes.
    With `alive` (FIFOs of a pool's fork, which read as closed until their writer arrives),
    end-of-file is ignored until something was read, and the run ends when the process is gone."""
    reader = _Reader(limits, deadline, replies, stop)
    wait_for_writers = alive is not None
    seen = {"msg": not wait_for_writers, "out": not wait_for_writers}
    sel = selectors.DefaultSelector()
    sel.register(msg_fd, selectors.EVENT_READ, "msg")
    sel.register(out_fd, selectors.EVENT_READ, "out")
    open_streams = 2
    try:
        while open_streams and not reader.done:
            left = reader.time_left()
            if left is None:
                break
            if replies is not None and replies.pending:
                replies.flush()
            events = sel.select(timeout=min(0.02 if replies is not None and replies.pending else 1.0, left))
            if wait_for_writers and all(not seen[k.data] for k, _ in events) and not alive():
                break
            for key, _ in events:
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    if not seen[key.data]:
                        time.sleep(0.02)  # no writer yet: poll again shortly
                    else:
                        sel.unregister(key.fd)
                        open_streams -= 1
                    continue
                seen[key.data] = True
                if key.data == "out":
                    reader.take_output(chunk)
                    continue
                reader.take_messages(chunk)
                if reader.broken:
                    break
            if reader.broken:
                break
    finally:
        sel.close()
    return reader.finish()
