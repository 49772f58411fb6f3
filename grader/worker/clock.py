"""Time limits and errors inside a worker: the soft alarms that stop a call or a statement, and
the student's exceptions described as plain data (the grader's own frames left out)."""
from __future__ import annotations

import os
import signal
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SKIP_PREFIXES = (os.path.join(_ROOT, "grader") + os.sep, os.path.join(_ROOT, "reference") + os.sep)
MAX_TRACEBACK = 4000


class CaseTimeout(BaseException):
    """Raised by the soft per-case alarm. A BaseException, so `except Exception` cannot swallow it."""


def student_traceback(exc: BaseException) -> str:
    """The exception with the grader's own frames removed: only the student's code is shown."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_SKIP_PREFIXES)]
    try:
        lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
        text = "".join(lines)
    except BaseException:  # an exception whose __str__ raises
        text = f"{type(exc).__name__} (its message could not be shown)\n"
    return text[-MAX_TRACEBACK:]


def describe_error(exc: BaseException) -> dict:
    try:
        message = str(exc)[:500]
    except BaseException:
        message = "(message could not be shown)"
    kind = "timeout" if isinstance(exc, CaseTimeout) else "exception"
    if isinstance(exc, NotImplementedError):
        kind = "not_implemented"
    return {"kind": kind, "type": type(exc).__name__[:100], "message": message, "traceback": student_traceback(exc)}


@contextmanager
def alarm_paused() -> Iterator[None]:
    """Stop the clock of a running `alarm` for the duration, then give it back what it had left."""
    if not hasattr(signal, "setitimer"):
        yield
        return
    left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)


def alarm(seconds: float, make: Callable[[], BaseException] | None = None) -> Callable[[], None]:
    """A soft time limit (main thread only): raises `make()` (a CaseTimeout by default) when it
    passes; the trusted process enforces the hard one. Returns the function that cancels it."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        return lambda: None

    def handler(signum, frame):
        raise make() if make is not None else CaseTimeout(f"took longer than {seconds:g} s")

    try:
        old = signal.signal(signal.SIGALRM, handler)
    except ValueError:  # not the main thread (some kernels)
        return lambda: None
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

    return cancel
