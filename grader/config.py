"""What a grading run is asked to do: model, data, device, limits, items, mode (no heavy imports:
the command line reads it before it loads torch)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.sandbox import Limits


def usable_cores(cgroups: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by the CPU quota of its cgroup and
    of every cgroup above it (cgroup v2: a container's `--cpus`, a CI runner's or a systemd slice's
    limit), where os.cpu_count() counts the whole machine. A quota of 1.5 CPUs counts as 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity mask
        cores = os.cpu_count() or 1
    for cpu_max in _cpu_max_files(cgroups, own):
        try:
            quota, period = cpu_max.read_text().split()[:2]
            if quota != "max":
                cores = min(cores, math.ceil(int(quota) / int(period)))
        except (OSError, ValueError, ArithmeticError):
            pass
    return max(cores, 1)


def _cpu_max_files(cgroups: Path, own: Path) -> list[Path]:
    """cpu.max of this process's cgroup (v2: the "0::" line) and of each one above it."""
    try:
        line = next(l for l in own.read_text().splitlines() if l.startswith("0::"))
    except (OSError, StopIteration):
        return [cgroups / "cpu.max"]
    folder = cgroups / line[3:].strip().lstrip("/")
    return [folder / "cpu.max", *(parent / "cpu.max" for parent in folder.parents if cgroups in (parent, *parent.parents))]


@dataclass(frozen=True)
class GradeConfig:
    weights: str | None = None  # our shipped model when None
    data: str | None = None
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    points: dict[str, float] = field(default_factory=dict)
    only: tuple[str, ...] = ()  # grade these ids only (the rest are reported as not graded)
    extra_models: tuple[str, ...] = ()  # other weights object items may have been computed with
    warm_pool: bool = True  # fork workers from a process that has imported torch & co. once
    # "lean": only the statements grading needs, in the worker (items that do not pass are graded
    # again with every cell run); "fast": every cell, in the worker; "kernel": every cell of a
    # notebook in a real Jupyter kernel (modules as "fast")
    notebook_mode: str = "lean"
    # a submission's first pass in two parts at once (object items, function items): None when
    # cores are spare (grade_many grading fewer submissions at a time than half the cores)
    split_first_pass: bool | None = None

    def exercises(self) -> list:
        """The catalogue's items this run grades (`only`, or all)."""
        from grader.catalogue import EXERCISES

        return [e for e in EXERCISES if not self.only or e.id in self.only]

    def resolved(self) -> "GradeConfig":
        from reference.paths import DEFAULT_DATA, DEFAULT_WEIGHTS

        device = self.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return replace(self, weights=str(self.weights or DEFAULT_WEIGHTS), data=str(self.data or DEFAULT_DATA),
                       device=device, points=dict(self.points), only=tuple(self.only),
                       extra_models=tuple(self.extra_models))
