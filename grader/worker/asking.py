"""The worker's side of a question to the trusted process: the reference's answer to a helper,
asked by a stand-in (grader.worker.helpers) on the arguments the student's code passed."""
from __future__ import annotations

import json
import os
import select
import time
from typing import Any, Callable

from grader.protocol import Kind
from grader.worker.clock import alarm_paused

MAX_REPLY_BYTES = 64 * 1024 * 1024


class Asker:
    """Asks the trusted process a question and waits for its one-line JSON answer on the reply pipe."""

    def __init__(self, emit: Callable[..., None], reply_fd: int, timeout: float = 60.0, files: str | None = None):
        self.emit, self.fd, self.timeout = emit, reply_fd, timeout
        self.files = files  # where the trusted process writes large answers (this worker's scratch folder)
        self.buffer = b""
        os.set_blocking(reply_fd, False)

    def ask(self, **fields: Any) -> dict:
        with alarm_paused():  # waiting for the grader is not the submission's time
            return self._ask(fields)

    def _ask(self, fields: dict) -> dict:
        self.emit(Kind.ASK, **fields)
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.buffer) > MAX_REPLY_BYTES:
                raise TimeoutError("the grader did not answer")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    time.sleep(0.01)  # a FIFO whose writer has not opened it yet reads as empty
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)
