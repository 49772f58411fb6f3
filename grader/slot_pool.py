"""The slots a grader grades in (trusted side): made as submissions need them, each lent to one
submission at a time, closed at the end; an unprivileged uid for each where the grader is root.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.config import Limits
from grader.isolation import Isolation, Uids
from grader.slots import Slot


class GradingStopped(Exception):
    """Grading was interrupted: no new slot is made (its result is never reported)."""


class SlotPool:
    def __init__(self, iso: Isolation, readable: list[Path], prepare: dict | None, limits: Limits,
                 early: tuple[Slot, Uids] | None = None):
        """`prepare`: what each slot's warm worker builds ahead (None: no warm workers); `early`: a
        slot started before this process loaded torch (grader.slots.early_slot), taken when it was
        made for the same inputs and limits."""
        self.iso, self.readable, self.prepare, self.limits = iso, readable, prepare, limits
        self.slots: list[Slot] = []  # every slot made (closed at the end)
        self._free: list[Slot] = []  # those not grading a submission now
        self._lock = threading.Lock()
        self.uids = early[1] if early else Uids()
        self.stopping = threading.Event()  # set by stop(): runs in flight end now, none start
        self._replaced = 0  # warm workers of closed slots found dead and replaced
        if early:
            self._adopt(early[0])

    def _adopt(self, slot: Slot) -> None:
        if slot.prepare == self.prepare and slot.limits == self.limits:
            self.slots.append(slot)
            self._free.append(slot)
        else:
            self._discard(slot)

    @property
    def replaced(self) -> int:
        """Warm workers found dead and replaced, over every slot this pool has had."""
        return self._replaced + sum(s.restarts for s in self.slots)

    def _discard(self, slot: Slot) -> None:
        self._replaced += slot.restarts
        slot.close()
        if slot.uid is not None:
            self.uids.release(slot.uid)

    def start(self, n: int = 1) -> None:
        """Make `n` slots ready now (their warm workers import and prepare in the background), so
        that the first submissions do not wait for them one after the other."""
        with self._lock:
            missing = max(0, n - len(self.slots))
        for _ in range(missing):
            slot = self._new()
            with self._lock:
                self._free.append(slot)

    def _new(self) -> Slot:
        uid = self.uids.claim() if self.iso.own_uid else None
        slot = Slot(self.iso, uid, self.readable, self.prepare, self.prepare is not None, self.limits)
        with self._lock:
            if not self.stopping.is_set():
                self.slots.append(slot)
                return slot
        # stopped while it was being made (an interrupt): the last close() has run or is running,
        # and would never see it; its folder must not outlive the run
        self._discard(slot)
        raise GradingStopped()

    @contextmanager
    def lend(self) -> Iterator[Slot]:
        """A slot for one submission: a free one, or a new one; emptied when it comes back."""
        with self._lock:
            if self.stopping.is_set():  # a submission whose thread starts after an interrupt
                raise GradingStopped()
            slot = self._free.pop() if self._free else None
        if slot is None:
            slot = self._new()
        try:
            yield slot
        finally:
            slot.clean()
            with self._lock:
                if not self.stopping.is_set() and slot in self.slots:
                    self._free.append(slot)

    def stop(self) -> None:
        """An interrupt: workers in flight are killed, and nothing more is started."""
        self.stopping.set()
        self.close()

    def close(self) -> None:
        with self._lock:
            slots, self.slots, self._free = self.slots, [], []
        for slot in slots:
            self._discard(slot)
