"""Start one worker run and read what it sends, whatever it does (trusted side).

The worker runs in its slot (grader.slots): inside bubblewrap where the machine has it
(grader.isolation), as the slot's uid when the grader is root, with its own session, resource
limits, a scrubbed environment, its run's folder as home and working directory, no standard input,
and a pipe for messages. We read with deadlines measured on `time.monotonic()`; when one passes,
the worker and everything it started are killed. Output is captured and truncated. A worker that
dies is an ordinary outcome, never a grader crash.

What a worker sends is held to the protocol (grader.protocol) as it arrives: a message of no known
kind is dropped unparsed, results count only for the item the worker has started, the run's and
the submission's messages have a byte budget, and the slot's folder a storage limit; a question
is answered for the item being computed at that moment (grader.answers).
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

from grader.config import Limits
from grader.folders import Folder, usage
from grader.protocol import ITEM_RESULTS, KINDS, Kind, ProtocolError, WarmRequest, load_message, message_limit, peek_kind
from grader.worker.confine import apply_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_RUN_VALUES = 8_000_000  # JSON values (separators) one run may send: what parsing them costs is bounded
STORAGE_CHECK_SECONDS = 0.5
MAX_PROTOCOL_ERRORS = 20  # kept word for word; the rest are counted


@dataclass
class WorkerRun:
    """What one worker process produced."""

    messages: list[dict] = field(default_factory=list)
    output: str = ""
    output_dropped: int = 0
    returncode: int | None = None
    # "", "item_timeout", "statement_timeout", "submission_timeout", "message_error", "message_budget",
    # "storage", "interrupted"
    ended_by: str = ""
    current_item: str | None = None
    current_statement: dict | None = None  # {"key", "where"} of the statement running when it ended (before grading)
    protocol_errors: list[str] = field(default_factory=list)
    dropped: int = 0  # messages not taken: of no known kind, or out of turn (past MAX_PROTOCOL_ERRORS too)
    message_bytes: int = 0  # what the messages taken add up to
    storage_bytes: int = 0  # the most the slot's folder held while it ran

    def refuse(self, why: str) -> None:
        self.dropped += 1
        if len(self.protocol_errors) < MAX_PROTOCOL_ERRORS:
            self.protocol_errors.append(why)


class MessageBudget:
    """The bytes one submission's workers may send, all runs together, and each run."""

    def __init__(self, per_run: int, per_submission: int):
        self.per_run, self.per_submission, self.spent = per_run, per_submission, 0

    def left(self, run_bytes: int) -> int:
        return min(self.per_run - run_bytes, self.per_submission - self.spent)


@dataclass
class RunTerms:
    """What one run is held to besides its limits."""

    items: frozenset[str] = frozenset()  # the items it is asked for: results count for these only
    answer: Callable[[dict, str | None, frozenset], dict] | None = None  # (question, item computing, items done)
    budget: MessageBudget | None = None
    storage: Folder | None = None  # the slot's folder, whose size is watched while the run goes on
    stop: threading.Event | None = None


STATEMENT_GRACE = 10.0  # seconds past a statement's soft limit before its worker is killed (at most its limit)


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


def run_worker(job: dict, scratch: Folder, limits: Limits, deadline: float, slot, terms: RunTerms) -> WorkerRun:
    """Run one worker in `slot` (grader.slots), in its folder `scratch` (grader.folders), to its end
    (or until a deadline), returning everything it sent. With the slot's warm worker, a fork of it;
    otherwise a new interpreter, in bubblewrap where the machine has it. With `terms.answer`, the
    worker may ask questions (Kind.ASK) and gets each answer back as one JSON line on its reply pipe."""
    job = {**job, "scratch": str(scratch.path), "case_seconds": limits.case_seconds,
           "statement_seconds": limits.statement_seconds}
    sandboxed = bool(slot.iso.bwrap)
    env = worker_env(scratch.path, job, sandboxed)
    namespaces = not sandboxed and os.geteuid() == 0  # without bwrap, root can still cut the network
    warm = slot.warm_worker()
    if warm is not None:
        request = {WarmRequest.FORK: job, "cwd": str(scratch.path), "env": env, "limits": limits.to_json(),
                   "uid": None if sandboxed else slot.uid, "no_network": namespaces}
        run = _run_forked(warm, request, scratch, slot.uid, limits, deadline, terms)
        if run is not None:
            return run
    return _run_new(job, scratch, limits, deadline, slot, env, namespaces, terms)


def _run_forked(warm, request: dict, scratch: Folder, uid: int | None, limits: Limits, deadline: float,
                terms: RunTerms) -> WorkerRun | None:
    """A child of the slot's warm worker, talking through FIFOs in its scratch folder; None when the
    warm worker does not answer (the caller starts a new interpreter instead)."""
    names = {name: f".{name}" for name in ("messages", "output", "replies")}
    for fifo in names.values():
        os.mkfifo(fifo, 0o600, dir_fd=scratch.fd)
    _hand_over(scratch, uid)

    def fifo(name: str, flags: int) -> int:
        return os.open(names[name], flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=scratch.fd)

    read_fd, out_fd = fifo("messages", os.O_RDONLY), fifo("output", os.O_RDONLY)
    try:
        pid = warm.fork({**request, **{f"{kind}_fifo": str(scratch.path / names[name]) for kind, name in
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
    replies = _Replies(terms.answer, lambda: fifo("replies", os.O_WRONLY))
    try:
        run = _read_worker(read_fd, out_fd, limits, deadline, terms, replies, alive=lambda: not warm.has_exited(pid))
    finally:
        replies.close()
        warm.kill(pid)
        os.close(read_fd)
        os.close(out_fd)
    run.returncode = warm.exit_code(pid, timeout=10)
    return run


def _run_new(job: dict, scratch: Folder, limits: Limits, deadline: float, slot, env: dict, namespaces: bool,
             terms: RunTerms) -> WorkerRun:
    """A new interpreter (in bubblewrap where the machine has it), talking through inherited pipes."""
    _hand_over(scratch, slot.uid)
    read_fd, write_fd = os.pipe()
    reply_read, reply_write = os.pipe()
    os.set_blocking(reply_write, False)
    replies = _Replies(terms.answer, lambda: reply_write)
    replies.fd = reply_write  # closed with it, whether or not anything was asked
    job = {**job, "msg_fd": write_fd, "reply_fd": reply_read}
    try:
        proc = subprocess.Popen(
            _new_worker_command(slot, scratch, limits), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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
        run = _read_worker(read_fd, proc.stdout.fileno(), limits, deadline, terms, replies)
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


def _new_worker_command(slot, scratch: Folder, limits: Limits) -> list[str]:
    cmd = [sys.executable, "-m", "grader.worker.main"]
    if not slot.iso.bwrap:
        return cmd
    from grader.isolation import binds_by_descriptor, bwrap_command

    if binds_by_descriptor(slot.iso.bwrap):  # its folder, whatever a link in its path now points at
        return bwrap_command(slot.iso.bwrap, [], slot.readable, bound=((scratch.fd, scratch.path),), limits=limits) + cmd
    return bwrap_command(slot.iso.bwrap, [scratch.path], slot.readable, limits=limits) + cmd  # bubblewrap before 0.8


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

    def __init__(self, answer: Callable[[dict, str | None, frozenset], dict] | None, opener: Callable[[], int]):
        self.answer, self._opener = answer, opener
        self.fd: int | None = None
        self.pending = b""
        self.asked = 0

    def ask(self, msg: dict, item: str | None, done: frozenset) -> None:
        """`item`: the item the worker is computing (None while the submission's own code runs);
        `done`: the items of this run whose results are all in."""
        self.asked += 1
        if self.answer is None:
            reply = {"ok": False, "error": "this run answers no questions"}
        elif self.asked > self.MAX_QUESTIONS:
            reply = {"ok": False, "error": f"more than {self.MAX_QUESTIONS} questions in one run"}
        else:
            try:
                reply = self.answer(msg, item, done)
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
    """The trusted side of one worker run: its output (bounded), its messages (each line checked
    before it is parsed), the item it is on, and the deadlines they move (an item's from its
    Kind.START, a statement's from its Kind.STATEMENT)."""

    def __init__(self, limits: Limits, deadline: float, terms: RunTerms, replies: _Replies | None):
        self.limits, self.deadline, self.terms, self.replies = limits, deadline, terms, replies
        self.run = WorkerRun()
        self.item_deadline: float | None = None  # also a statement's, while the submission's own code runs
        self.line = bytearray()  # the message line being received
        self.skipping = False  # the line being received is of no known kind: dropped as it arrives
        self.output = bytearray()
        self.done = False  # Kind.DONE arrived: a leftover child may hold stdout open, do not wait for it
        self.broken = False  # a message over its limit, or the budget spent: nothing more is read
        self.values = 0
        self.started: set[str] = set()
        self.finished: set[str] = set()  # items whose Kind.END arrived: their results are all in
        self.next_storage_check = time.monotonic() + STORAGE_CHECK_SECONDS

    def time_left(self) -> float | None:
        """Seconds to the nearer deadline, or None (with the reason in run.ended_by) when it is over."""
        if self.terms.stop is not None and self.terms.stop.is_set():
            self.run.ended_by = "interrupted"
            return None
        now = time.monotonic()
        if self.terms.storage is not None and now >= self.next_storage_check and not self.storage_ok():
            return None
        limit = self.deadline if self.item_deadline is None else min(self.deadline, self.item_deadline)
        if now < limit:
            return limit - now
        self.run.ended_by = ("submission_timeout" if now >= self.deadline else
                             "statement_timeout" if self.run.current_statement else "item_timeout")
        return None

    def storage_ok(self) -> bool:
        """What the slot's folder holds, within the limit (checked every STORAGE_CHECK_SECONDS)."""
        held = usage(self.terms.storage, self.limits.storage_bytes)
        self.run.storage_bytes = max(self.run.storage_bytes, held)
        self.next_storage_check = time.monotonic() + STORAGE_CHECK_SECONDS
        if held <= self.limits.storage_bytes:
            return True
        self.run.ended_by = "storage"
        return False

    def take_output(self, chunk: bytes) -> None:
        room = max(self.limits.output_bytes - len(self.output), 0)
        self.output += chunk[:room]
        self.run.output_dropped += max(len(chunk) - room, 0)

    def take_messages(self, chunk: bytes) -> None:
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            if not self.skipping:
                self.line += part
                self._line_ends()
            self.line, self.skipping = bytearray(), False
            if self.broken:
                return
        if not self.skipping:
            self.line += rest
            self._check_partial()

    def _check_partial(self) -> None:
        """A line still arriving: dropped as soon as its kind is unknown, fatal once over its limit."""
        if len(self.line) < 64 and b"\n" not in self.line:
            return
        kind = peek_kind(bytes(self.line[:64]))
        if kind not in KINDS:
            self.run.refuse("a message of no known kind")
            self.line, self.skipping = bytearray(), True
        elif len(self.line) > message_limit(kind):
            self.run.refuse(f"a {kind!r} message larger than its limit")
            self.run.ended_by, self.broken = "message_error", True

    def _line_ends(self) -> None:
        line = bytes(self.line)
        if not line.strip():
            return
        kind = peek_kind(line[:64])
        if kind not in KINDS:
            self.run.refuse("a message of no known kind")
            return
        if len(line) > message_limit(kind):
            self.run.refuse(f"a {kind!r} message larger than its limit")
            self.run.ended_by, self.broken = "message_error", True
            return
        self.run.message_bytes += len(line)
        self.values += line.count(b",")
        budget = self.terms.budget
        over = budget is not None and budget.spent + len(line) > budget.per_submission
        if budget is not None:
            budget.spent += len(line)
        if self.run.message_bytes > self.limits.message_bytes or over or self.values > MAX_RUN_VALUES:
            self.run.ended_by, self.broken = "message_budget", True
            return
        try:
            self._handle(load_message(line))
        except ProtocolError as e:
            self.run.refuse(str(e))

    def _handle(self, msg: dict) -> None:
        kind, run = msg["kind"], self.run
        item = msg.get("item")
        if kind == Kind.ASK:
            if self.replies is not None:
                began = time.monotonic()
                self.replies.ask(msg, run.current_item, frozenset(self.finished))
                if self.item_deadline is not None:  # the grader's time answering is not the item's or the
                    self.item_deadline += time.monotonic() - began  # statement's (the submission's limit counts it)
            return
        if kind == Kind.STATEMENT:  # one per statement: kept only while it runs
            run.current_statement = {"key": str(msg.get("key"))[:40], "where": str(msg.get("where"))[:60]}
            seconds = self.limits.statement_seconds
            self.item_deadline = time.monotonic() + seconds + min(STATEMENT_GRACE, seconds)
            return
        if kind == Kind.START:
            if item not in self.terms.items or item in self.started or run.current_item is not None:
                run.refuse(f"a start out of turn ({str(item)[:40]!r})")
                return
            self.started.add(item)
            run.current_item = item
            self.item_deadline = time.monotonic() + self.limits.item_seconds
        elif kind == Kind.END:
            if item is None or item != run.current_item:
                run.refuse(f"an end out of turn ({str(item)[:40]!r})")
                return
            self.finished.add(item)
            run.current_item, self.item_deadline = None, None
        elif kind in ITEM_RESULTS or kind == Kind.OVERSIZE:
            if item is None or item != run.current_item:  # a result counts for the item being computed only
                run.refuse(f"a result for {str(item)[:40]!r} while {str(run.current_item)[:40]!r} was computed")
                return
        elif kind == Kind.READY:
            run.current_statement, self.item_deadline = None, None
        elif kind == Kind.DONE:
            self.done = True
        run.messages.append(msg)

    def finish(self) -> WorkerRun:
        self.run.output = self.output.decode("utf-8", "replace")
        return self.run


def _read_worker(msg_fd: int, out_fd: int, limits: Limits, deadline: float, terms: RunTerms,
                 replies: _Replies | None = None, alive=None) -> WorkerRun:
    """Collect messages and output until both streams close, Kind.DONE arrives, or a deadline
    passes. With `alive` (FIFOs of a warm worker's child, which read as closed until their writer
    arrives), end-of-file is ignored until something was read, and the run ends when the process is gone."""
    reader = _Reader(limits, deadline, terms, replies)
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
            events = sel.select(timeout=min(0.02 if replies is not None and replies.pending else STORAGE_CHECK_SECONDS,
                                            left))
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
        if terms.storage is not None:  # what it left at its end: measured (wiped once the run is over)
            reader.run.storage_bytes = max(reader.run.storage_bytes, usage(terms.storage, limits.storage_bytes))
    finally:
        sel.close()
    return reader.finish()
