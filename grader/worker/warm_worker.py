"""A warm worker (worker side): imports torch, TransformerLens, sklearn and the course setting
once, then forks a fresh child for every run of a submission, so none pays the import cost again
and none sees another's leftovers (each child is a copy of this pristine process, used once).

Protocol on stdin/stdout, one JSON object per line (grader.protocol.WarmRequest, WarmReply):
  request  {"job": {...}, "msg_fifo": path, "out_fifo": path, "cwd": path, "env": {...},
            "limits": {...}, "uid": int | null, "no_network": bool}: fork a child for this job;
           {"kill": pid}: end that child, and (in a sandbox) every process it left; {"kill": -1}
           (between submissions): every child, and in a sandbox whatever they left behind: files in
           its /tmp, /dev/shm and /dev/mqueue, System V shared memory, semaphores and queues
  replies  {"pid": int} for each job, in order; {"exit": pid, "code": int} when a child ends
           (negative code: killed by that signal); {"forgot": true} once a {"kill": -1} is done.
Started by the trusted side (`grader.slots.WarmWorker`), optionally with the grading inputs as a
JSON argument (then it also builds the pristine models its children will call with, see
`grader.inputs.prepare`); it runs no student code itself. In bubblewrap it is PID 1 of its PID
namespace and ignores every signal it can (the kernel drops SIGKILL and SIGSTOP a child sends to
its namespace's PID 1): no child can end it, and `kill(-1)` ends everything a child left behind.
It is not dumpable, so no child (the same uid) can read or write its memory through ptrace or
/proc: one submission cannot change what the next one's children start from.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
import sys

from grader.protocol import WarmReply, WarmRequest
from grader.worker.confine import killed_first


def preload() -> None:
    import numpy  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch  # noqa: F401
    import transformer_lens  # noqa: F401
    import einops  # noqa: F401

    import grader.inputs  # noqa: F401
    import grader.worker.harvest  # noqa: F401
    import grader.worker.helpers  # noqa: F401
    import grader.worker.lean  # noqa: F401
    import grader.worker.main  # noqa: F401
    import reference.setting  # noqa: F401

    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        pass


def _reply(obj: dict) -> None:
    os.write(1, (json.dumps(obj) + "\n").encode())


CHILDREN: set[int] = set()


def _reap(signum, frame) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in CHILDREN:  # as PID 1 it also reaps what its children left: not reported
            CHILDREN.discard(pid)
            _reply({WarmReply.EXIT: pid, "code": os.waitstatus_to_exitcode(status)})


def end(pid: int) -> None:
    """End child `pid` (-1: whichever is running); as PID 1 of a sandbox, and when no other child
    of the same submission runs beside it, every other process in it as well. Outside a sandbox
    only its own children: kill(-1) there would reach every process of the user, the grader
    included. (Two children run at once when one submission's first pass is split across cores:
    ending one must not end the other; what either left is ended with the last of them.)"""
    if os.getpid() == 1 and (pid == -1 or not CHILDREN - {pid}):
        targets = [-1]
    else:  # a child leads its own process group
        targets = [t for child in CHILDREN if pid in (-1, child) for t in (child, -child)]
    for target in targets:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


SHARED_FOLDERS = ("/tmp", "/dev/shm", "/dev/mqueue")  # writable in the sandbox, alive as long as the warm worker
IGNORED_SIGNALS = tuple(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD))


def forget_the_last_submission() -> None:
    """In a sandbox, remove what its children could leave that outlives them (their own folders
    are the trusted side's to wipe): the next submission starts from nothing another left. What is
    mounted there (the slot's folder, the public files: bound into /tmp) is never touched."""
    if os.getpid() != 1:  # outside a sandbox these are the machine's own
        return
    for folder in SHARED_FOLDERS:
        _empty(folder)
    remove_system_v_ipc()


# /proc/sysvipc lists the objects of this IPC namespace (the sandbox's own): ipcs' source
SYSV = (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl"))
IPC_RMID = 0


def remove_system_v_ipc() -> int:
    """Remove every System V shared-memory segment, semaphore set and message queue in this IPC
    namespace (a segment no process has attached is freed at once). Returns how many."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    removed = 0
    for kind, ctl in SYSV:
        try:
            lines = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                continue
            args = (int(fields[1]), IPC_RMID, None) if kind != "sem" else (int(fields[1]), 0, IPC_RMID)
            removed += getattr(libc, ctl)(*args) == 0
    return removed


def ignore_signals() -> None:
    """PID 1 of a namespace gets only the signals it handles: ignoring every one it can means no
    child's kill(1, ...) ends it (SIGKILL and SIGSTOP from inside the namespace the kernel drops)."""
    for sig in IGNORED_SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (OSError, ValueError):
            pass


def default_signals() -> None:
    """In a child: every signal back to its default (an ignored one would be inherited, and kept
    across exec, by the student's code and the processes it starts)."""
    for sig in IGNORED_SIGNALS:
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _empty(folder: str) -> None:
    """Remove everything below `folder` on its own filesystem, depth first without recursion (a
    submission may leave folders nested deeper than Python recurses), never crossing into a mount."""
    try:
        device = os.lstat(folder).st_dev
    except OSError:
        return
    stack = [(folder, False)]
    while stack:
        path, listed = stack.pop()
        if listed:  # its content is gone (unless it held a mount point)
            if path != folder:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            continue
        stack.append((path, True))
        try:
            names = os.listdir(path)
        except OSError:
            continue
        for name in names:
            child = os.path.join(path, name)
            try:
                info = os.lstat(child)
            except OSError:
                continue
            if info.st_dev != device:
                continue  # a mount point: not the sandbox's to empty
            if stat.S_ISDIR(info.st_mode):
                stack.append((child, False))
            else:
                try:
                    os.unlink(child)
                except OSError:
                    pass


def not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: a process of the same uid may no longer ptrace this one or open its
    /proc/PID/mem (children inherit it, which costs them nothing)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, SUID_DUMP_DISABLE
    except (OSError, AttributeError):  # not Linux
        pass


def child(req: dict) -> None:
    """In the fork: become a sandboxed worker, then run the job like `grader.worker.main`."""
    from grader.worker import main as worker_main
    from grader.worker.confine import apply_sandbox

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    default_signals()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any Python program: KeyboardInterrupt,
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # and BrokenPipeError rather than death
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    out = os.open(req["out_fifo"], os.O_WRONLY)
    os.dup2(out, 1)
    os.dup2(out, 2)
    msg_fd = os.open(req["msg_fifo"], os.O_WRONLY)
    reply_fd = os.open(req["reply_fifo"], os.O_RDONLY | os.O_NONBLOCK)  # open before asking anything
    for fd in (devnull, out):
        os.close(fd)
    for fd in range(3, 1024):
        if fd not in (msg_fd, reply_fd):
            try:
                os.close(fd)
            except OSError:
                pass
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    apply_sandbox(req["limits"], req["uid"], req["no_network"], new_session=True)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    worker_main.run({**req["job"], "msg_fd": msg_fd, "reply_fd": reply_fd})


def main() -> None:
    killed_first()  # before not_dumpable, which gives /proc/self to root: every child inherits the score
    not_dumpable()
    ignore_signals()  # a child may not end it (outside a sandbox, SIGKILL still can: the slot starts another)
    preload()
    if len(sys.argv) > 1:  # {"weights", "data", "device", "models"}: inputs every child will use
        import grader.inputs

        try:
            spec = json.loads(sys.argv[1])
            grader.inputs.prepare(spec["weights"], spec["data"], spec["device"], spec["models"])
        except Exception as e:  # children then build their own inputs, and say why if they cannot
            print(f"warm worker: inputs not prepared: {type(e).__name__}: {e}"[:300], file=sys.stderr)
    signal.signal(signal.SIGCHLD, _reap)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if WarmRequest.KILL in req:
            end(int(req[WarmRequest.KILL]))
            if int(req[WarmRequest.KILL]) == -1:  # between submissions: said done only once it is
                forget_the_last_submission()
                _reply({WarmReply.FORGOT: True})
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # its exit is reported only once it is known
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            code = 0
            try:
                child(req)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        CHILDREN.add(pid)
        _reply({WarmReply.PID: pid})
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


if __name__ == "__main__":
    main()
