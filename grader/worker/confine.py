"""Confine the current process as a worker (worker side): own session, no network, own PID
namespace, resource limits, an unprivileged uid. Called between fork and exec (by the trusted
side's grader.worker_run) or in a child of a warm worker (grader.worker.warm_worker), so it
imports only the standard library."""
from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import signal
import socket
import struct

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

RLIMITS = {  # Limits field -> resource
    "memory_bytes": resource.RLIMIT_AS,
    "cpu_seconds": resource.RLIMIT_CPU,
    "open_files": resource.RLIMIT_NOFILE,
    "file_bytes": resource.RLIMIT_FSIZE,
    "processes": resource.RLIMIT_NPROC,
}


def no_network() -> None:
    """A new, empty network namespace with only loopback up (a notebook kernel talks to its client
    over loopback; nothing outside the namespace is reachable). Also a new PID namespace: the
    worker's children cannot signal the grader, and all die with the worker (see worker.main)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET | CLONE_NEWPID) failed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14s", b"lo", 0, b"")))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def set_limits(limits: dict) -> None:
    for field, res in RLIMITS.items():
        value = int(limits[field])
        try:
            _, hard = resource.getrlimit(res)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past file_bytes fails instead of killing
    killed_first()


def killed_first() -> None:
    """Where the host runs out of memory (workers' address-space limits may add up to more than it
    has), the kernel ends a worker, never the trusted process that grades the class: the highest
    OOM score there is (raising one's own needs no privilege; children inherit it). A process that
    is not dumpable cannot (its /proc files are root's): the warm worker sets it before it stops
    being dumpable."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass  # no /proc (not Linux): nothing to say to a kernel that has no OOM killer of this kind


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def apply_sandbox(limits: dict, uid: int | None, isolate_network: bool, new_session: bool = True) -> None:
    if new_session:
        os.setsid()
    if isolate_network:
        no_network()
    set_limits(limits)
    if uid is not None:
        drop_privileges(uid)  # last: the steps above need the privileges dropped here
