"""What a grading run is asked to do (trusted side): model, data, device, limits, items, mode.

No heavy imports: the command line reads it before it loads torch. `configured()` is the one way
the command line, the pytest plugin and `grader.check()` turn their options into a GradeConfig
(a ConfigError names the option that is wrong).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

GIB, MIB = 1024**3, 1024**2


@dataclass(frozen=True)
class Limits:
    """What one submission's workers may use; every one is configurable (CLI flags, plugin options)."""

    item_seconds: float = 120.0  # wall clock for one item's calls (hard: the worker is killed)
    case_seconds: float = 30.0  # wall clock for one call (soft: an alarm inside the worker)
    # one top-level statement of the submission's own code (soft: an alarm in the worker; the
    # worker is killed STATEMENT_GRACE later, and the submission run again without that statement)
    statement_seconds: float = 60.0
    submission_seconds: float = 900.0  # everything for one submission, restarts included
    cpu_seconds: int = 1800
    memory_bytes: int = 8 * GIB  # address space; torch maps a lot of virtual memory
    processes: int = 512  # RLIMIT_NPROC (per user: enforced for unprivileged workers, not for uid 0)
    open_files: int = 512
    file_bytes: int = 512 * MIB  # one file
    storage_bytes: int = 1 * GIB  # everything one run writes in its slot's folder (checked as it runs)
    tmp_bytes: int = 256 * MIB  # the sandbox's /tmp (memory: a tmpfs of that size)
    shm_bytes: int = 64 * MIB  # the sandbox's /dev/shm
    output_bytes: int = 64 * 1024  # captured stdout+stderr kept per worker
    message_bytes: int = 256 * MIB  # result messages one run may send (more ends the run)
    submission_message_bytes: int = 1 * GIB  # ... all the runs of one submission together
    notebook_examples: int = 1000  # the data file a submission's own code loads (see second_looks.course_size)
    course_examples: int = 5000  # the course's `data`: what object items that did not pass are run again on

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def per_item(cls, item_seconds: float, **other) -> "Limits":
        """Limits for a per-item limit: a call's soft limit is at most half of it, so a hanging
        call is stopped inside the worker (its item stops there, and nothing restarts) before the
        item's hard limit kills the worker."""
        return cls(item_seconds=item_seconds, case_seconds=min(cls.case_seconds, item_seconds / 2), **other)


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
    warm_pool: bool = True  # fork workers from a warm worker that has imported torch & co. once
    # "lean": only the statements grading needs, in the worker (items that do not pass are graded
    # again with every cell run); "fast": every cell, in the worker; "kernel": every cell of a
    # notebook in a real Jupyter kernel (modules as "fast")
    notebook_mode: str = "lean"
    # a submission's first pass in two parts at once (object items, function items): None when
    # cores are spare (grade_many grading fewer submissions at a time than half the cores)
    split_first_pass: bool | None = None
    # starters besides the built-in ones (grader.starters): files students began from, whose
    # unchanged items are `provided` or `not_attempted`
    starters: tuple[str, ...] = ()

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
                       extra_models=tuple(self.extra_models), starters=tuple(self.starters))


class ConfigError(ValueError):
    """An option that cannot be honoured; the message names it."""


PROVIDED = "provided"  # the points key for items the starter gives complete


def read_points(path: str) -> dict[str, float]:
    """Points per item from a JSON object (`{"get_ln_fit": 2, "embedding": 0}`) or `id = points` lines;
    the key `provided` is what each item the starter gives complete is worth (0 by default)."""
    from grader.catalogue import IDS

    text = Path(path).read_text()
    try:
        raw = json.loads(text)
    except ValueError:
        raw = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line and ":" not in line:
                raise ConfigError(f"{path}:{n}: expected `id = points`")
            key, value = line.replace(":", "=", 1).split("=", 1)
            raw[key.strip().strip('"')] = value.strip()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping from item id to points")
    points = {}
    for key, value in raw.items():
        if key not in IDS and key != PROVIDED:
            raise ConfigError(f"{path}: unknown item id {key!r}")
        try:
            points[key] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: points for {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(points[key]) or points[key] < 0:
            raise ConfigError(f"{path}: points for {key!r} must be a finite number of at least 0")
    return points


def configured(*, weights: str | None = None, data: str | None = None, device: str = "cpu",
               timeout: float | None = None, submission_timeout: float | None = None,
               statement_timeout: float | None = None, memory_gib: float | None = None,
               points: str | dict | None = None, only: tuple[str, ...] | str = (), also_models: tuple[str, ...] = (),
               warm_pool: bool = True, mode: str = "lean", starters: tuple[str, ...] = ()) -> GradeConfig:
    """A GradeConfig from the options every front end offers, checked: ConfigError otherwise."""
    from grader.catalogue import IDS

    only = tuple(s.strip() for s in only.split(",")) if isinstance(only, str) else tuple(only)
    unknown = [i for i in only if i not in IDS]
    if unknown:
        raise ConfigError(f"unknown item id(s): {', '.join(unknown)}")
    for flag, value in (("--weights", weights), ("--data", data), *(("--also-model", m) for m in also_models),
                        *(("--starter", f) for f in starters)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{flag}: no such file: {value}")
    for f in starters:
        from grader.starters import starter_from_file

        if Path(f).suffix not in (".py", ".ipynb") or not starter_from_file(f).items:
            raise ConfigError(f"--starter: {f} is not a .py or .ipynb file that defines any exercise item")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"--device: cpu, cuda or auto, not {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available")
    if mode not in ("lean", "fast", "kernel"):
        raise ConfigError(f"--mode: lean, fast or kernel, not {mode!r}")
    for flag, value in (("--timeout", timeout), ("--submission-timeout", submission_timeout),
                        ("--statement-timeout", statement_timeout), ("--memory", memory_gib)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{flag}: expected a number of seconds (or GiB) above 0, got {value:g}")
    given = {k: v for k, v in (("submission_seconds", submission_timeout), ("statement_seconds", statement_timeout),
                               ("memory_bytes", int(memory_gib * GIB) if memory_gib else None)) if v is not None}
    limits = Limits.per_item(timeout, **given) if timeout else Limits(**given)
    return GradeConfig(weights, data, device, limits, read_points(points) if isinstance(points, str) else dict(points or {}),
                       only, tuple(also_models), warm_pool=warm_pool, notebook_mode=mode,
                       starters=tuple(str(f) for f in starters))
