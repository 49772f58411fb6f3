"""Where workers run (trusted side): a slot is a folder of its own, an unprivileged uid of its own
(when the grader runs as root) and, by default, a warm worker sandboxed with that folder.

A submission is graded in one slot from start to end; a slot grades one submission at a time, so
the workers of two submissions graded at once never share a folder, a uid or a sandbox: neither
can see the other's files or processes. Between two submissions the slot's warm worker kills
every process its last child left (it is PID 1 of its sandbox's PID namespace) and removes what
they left in its sandbox, and the folder is emptied, so nothing of one submission waits for the
next. A warm worker found dead is replaced at once.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from grader.config import Limits
from grader.folders import Folder
from grader.isolation import Isolation, Uids, bwrap_command, detect, drop_to
from grader.protocol import WarmReply, WarmRequest
from grader.worker_run import worker_env


class WarmWorker:
    """The trusted side's handle on a slot's warm worker (grader.worker.warm_worker): it has
    imported torch, TransformerLens and the course setting once and forks a fresh child per run.
    Inside bubblewrap it is PID 1 of its own namespaces and sees only its slot's folder; requests
    are serialised; replies are read by one thread."""

    def __init__(self, folder: Path, uid: int | None, iso: Isolation, readable: list[Path],
                 prepare: dict | None = None, limits: Limits | None = None) -> None:
        """`prepare`: {"weights", "data", "device", "models"}, the inputs its children will be
        given (grader.inputs.prepare); `limits`: the sizes of its sandbox's /tmp and /dev/shm."""
        env = worker_env(folder, {"weights": "", "notebook_data": ""}, sandboxed=bool(iso.bwrap))
        cmd = [sys.executable, "-m", "grader.worker.warm_worker", *([json.dumps(prepare)] if prepare else [])]
        if iso.bwrap:
            cmd = bwrap_command(iso.bwrap, [folder], readable, pid_1=True, limits=limits) + cmd
        self.sandboxed = bool(iso.bwrap)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=folder,
                                      start_new_session=True,
                                      preexec_fn=(lambda: drop_to(uid)) if uid is not None else None)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        self._forgot = 0  # {"kill": -1} requests done
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if WarmReply.PID in msg:
                    self._pids.append(int(msg[WarmReply.PID]))
                elif WarmReply.FORGOT in msg:
                    self._forgot += 1
                elif WarmReply.EXIT in msg:
                    self._exits[int(msg[WarmReply.EXIT])] = int(msg["code"])
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _send(self, request: dict) -> None:
        self._proc.stdin.write((json.dumps(request) + "\n").encode())
        self._proc.stdin.flush()

    def fork(self, request: dict, timeout: float = 60.0) -> int:
        """A child's pid; RuntimeError when the warm worker is gone or does not answer (then it is
        ended: a late answer would give the next request this one's child)."""
        with self._lock, self._cond:
            try:
                self._send(request)
            except (OSError, ValueError) as e:  # its end of the pipe is closed
                raise RuntimeError("the warm worker is gone") from e
            if not self._cond.wait_for(lambda: self._pids or not self.alive(), timeout):
                self.close()
                raise RuntimeError("the warm worker did not answer")
            if not self._pids:
                raise RuntimeError("the warm worker is gone")
            return self._pids.pop(0)

    def kill(self, pid: int) -> None:
        """End a child (its pid is the warm worker's own, maybe in a namespace of its own) and,
        with it, every process it left."""
        with self._lock:
            try:
                self._send({WarmRequest.KILL: pid})
            except (OSError, ValueError):
                pass

    def forget(self, timeout: float = 60.0) -> None:
        """Between submissions: every child ended and what they left in the sandbox removed,
        returning once the warm worker says so (or it is gone, or the time is up: then it is ended,
        and the next submission gets a new one)."""
        with self._lock, self._cond:
            done = self._forgot
            try:
                self._send({WarmRequest.KILL: -1})
            except (OSError, ValueError):
                return
            if not self._cond.wait_for(lambda: self._forgot > done or not self.alive(), timeout):
                self.close()

    def has_exited(self, pid: int) -> bool:
        with self._cond:
            return pid in self._exits or not self.alive()

    def exit_code(self, pid: int, timeout: float) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or not self.alive(), timeout)
            return self._exits.pop(pid, None)

    def close(self) -> None:
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        for kill in (os.killpg, os.kill):
            try:
                kill(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class Slot:
    """A folder, a uid and (unless disabled) a warm worker, for one submission at a time."""

    def __init__(self, iso: Isolation, uid: int | None, readable: list[Path], prepare: dict | None, warm: bool,
                 limits: Limits | None = None):
        self.iso, self.uid, self.readable, self.prepare, self.limits = iso, uid, readable, prepare, limits
        self.folder = Path(tempfile.mkdtemp(prefix="bracket-slot-"))
        self.root = Folder.open(self.folder)  # before any worker can write there
        if uid is not None:
            os.chown(self.folder, uid, uid)
        os.chmod(self.folder, 0o700)
        self._lock = threading.Lock()
        self.warm = self._start_warm() if warm else None
        self.restarts = 0  # warm workers found dead and replaced

    def _start_warm(self) -> WarmWorker:
        return WarmWorker(self.folder, self.uid, self.iso, self.readable, self.prepare, self.limits)

    def warm_worker(self) -> WarmWorker | None:
        """The slot's warm worker, a new one where the last has died (a child may not end it in a
        sandbox; outside one, SIGKILL can): None without a warm pool."""
        with self._lock:
            if self.warm is not None and not self.warm.alive():
                self.warm.close()
                self.warm = self._start_warm()
                self.restarts += 1
            return self.warm

    def run_folder(self, label: str) -> Folder:
        """A new folder for one worker run, made through the slot's descriptor (grader.folders)
        directly in the slot's folder: that is the mount point of its warm worker's sandbox, which
        no worker can move or replace, and the name is one no worker can guess before it exists.
        The caller closes it."""
        for _ in range(8):
            try:
                return self.root.make(f"{label}-{secrets.token_hex(6)}")
            except FileExistsError:  # a worker left something of that name
                continue
        raise RuntimeError("no new run folder could be made in the slot")

    def forget(self) -> None:
        """Every child ended and what it left in the sandbox (files, processes, IPC) removed: between
        classmates, and between two runs of one submission that are not at once (where a second
        look's answers could be kept for an item they were not granted to)."""
        if self.warm is not None and self.warm.alive():
            self.warm.forget()

    def clean(self) -> None:
        """Nothing of the last submission is left: its processes killed, its files removed (and a
        warm worker it ended replaced now, not when the next classmate needs it)."""
        self.forget()  # nothing of it runs while its folders are wiped
        wipe(self.folder, keep_root=True)
        self.warm_worker()

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()
        self.root.close()
        wipe(self.folder)


def warm_inputs(config, weights_pt: str, data: str) -> dict:
    """What a warm worker builds ahead for its children (grader.inputs.prepare): a grading's worth
    of models for the run's items (a run needing more builds the rest)."""
    from grader.catalogue import exercise_job, models_per_grading

    return {"weights": str(weights_pt), "data": str(data), "device": config.device,
            "models": models_per_grading([exercise_job(e) for e in config.exercises()])}


def early_slot(config) -> tuple[Slot, Uids] | None:
    """A warm worker started first thing (by the command line, before it loads torch itself), so
    that the two import at once on two cores instead of one after the other: an engine.Grader
    given it takes it when it was made for the same inputs and limits. None where it cannot be made without
    torch (the model's public `.pt` neither exists nor is kept in the grader's cache: the first run
    on this machine, or in CI with an empty cache, makes it), on a GPU, or without a warm pool."""
    from grader.public import public_data, public_dir, restored, truncated_data, weights_pt_path

    config = config.resolved()
    weights_pt = weights_pt_path(config.weights)
    if config.device != "cpu" or not config.warm_pool or not restored(weights_pt):
        return None
    data = Path(public_data(config.data))
    truncated_data(config.data, config.limits.notebook_examples)  # what its first child reads
    iso, uids = detect(), Uids()
    prepare = warm_inputs(config, weights_pt, data)
    return Slot(iso, uids.claim() if iso.own_uid else None, [public_dir()], prepare, True, config.limits), uids


def wipe(folder: Path, keep_root: bool = False) -> None:
    """Remove a folder's content whatever modes a worker left on it (never following a link)."""
    for root, dirs, _ in os.walk(folder):
        for d in dirs:
            path = os.path.join(root, d)
            if not os.path.islink(path):
                try:
                    os.chmod(path, 0o700)
                except OSError:
                    pass
    if keep_root:
        for entry in list(folder.iterdir()) if folder.exists() else []:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except OSError:
                    pass
    else:
        shutil.rmtree(folder, ignore_errors=True)
