"""A class split across machines (trusted side): which shard this process is, and which
submissions are its.

`--shard auto` reads the shard from the scheduler that started the process: a Slurm array task, a
Kubernetes Indexed Job, or a GitHub Actions matrix job (whose workflow passes its strategy's index
and total). Submissions are dealt to shards by their expected cost, heaviest first to the lightest
shard, from the file list alone (the names, sizes, cells and code of the files every shard sees),
so every shard computes the same split without talking to the others, and no shard of long
notebooks straggles while the others idle.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Mapping

from grader.starters import MAX_CODE, parse_cell
from grader.worker.source import neutralise

# what a submission costs, in seconds of one worker, roughly (benchmarks/bench_shards.py measures
# how well it predicts): a fixed part (a warm worker's fork, the reference's answers), per cell of
# code (each statement run and judged), per KiB of code; a notebook's cells run where a module's
# demo blocks are skipped. Two things in the code cost far more than its size: a loop with no way
# out (`while True:` without a break, return or raise) runs until the statement's time limit (60 s
# by default), and the course's data size written into the code (5,000, beyond its first: the
# data's own line) has its objects computed again on the course's size (a second look, each
# object on 5 times the examples)
FIXED, PER_CELL, PER_KIB, NOTEBOOK = 6.0, 0.15, 0.05, 1.25
UNENDING_LOOP, COURSE_SIZE_LITERAL, MAX_LITERALS = 60.0, 10.0, 2
COURSE_EXAMPLES = 5000


class ShardError(ValueError):
    """No shard can be read from the environment (the message says what was looked for)."""


def parse(text: str) -> tuple[int, int]:
    """'2/5' -> (2, 5): shards are numbered from 1."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ShardError("--shard takes I/N (for example 2/5) or auto") from None
    if not 1 <= i <= n:
        raise ShardError("--shard I/N needs 1 <= I <= N")
    return i, n


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ShardError(f"{name}={value!r} is not a whole number") from None


def from_environment(env: Mapping[str, str], count: int | None = None) -> tuple[tuple[int, int], str]:
    """(shard I/N, the scheduler it came from) for `--shard auto`; `count`: --shard-count, where
    the scheduler does not say how many shards there are (a Kubernetes Indexed Job)."""
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    if task is not None:
        low, high = _int(env, "SLURM_ARRAY_TASK_MIN"), _int(env, "SLURM_ARRAY_TASK_MAX")
        step = _int(env, "SLURM_ARRAY_TASK_STEP") or 1
        total = _int(env, "SLURM_ARRAY_TASK_COUNT")
        if low is None or high is None:
            raise ShardError("a Slurm array task without SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX")
        n = count or total or (high - low) // step + 1
        return _checked((task - low) // step + 1, n, "Slurm array"), "slurm"
    index = _int(env, "JOB_COMPLETION_INDEX")
    if index is not None:
        n = count or _int(env, "BRACKET_GRADER_SHARDS")
        if n is None:
            raise ShardError("a Kubernetes Indexed Job says its index, not how many: give --shard-count N "
                             "(the Job's completions) or BRACKET_GRADER_SHARDS")
        return _checked(index + 1, n, "Kubernetes Indexed Job"), "kubernetes"
    index = _int(env, "BRACKET_GRADER_JOB_INDEX")
    if index is not None:  # a GitHub Actions matrix: the workflow passes strategy.job-index and job-total
        n = count or _int(env, "BRACKET_GRADER_JOB_TOTAL")
        if n is None:
            raise ShardError("BRACKET_GRADER_JOB_INDEX without BRACKET_GRADER_JOB_TOTAL (strategy.job-total)")
        return _checked(index + 1, n, "GitHub Actions matrix"), "github"
    raise ShardError("--shard auto found no scheduler: none of SLURM_ARRAY_TASK_ID (a Slurm array), "
                     "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or BRACKET_GRADER_JOB_INDEX (a GitHub "
                     "Actions matrix, from strategy.job-index) is set; give --shard I/N")


def _checked(i: int, n: int, where: str) -> tuple[int, int]:
    if not 1 <= i <= n:
        raise ShardError(f"the {where} says shard {i} of {n}: outside 1..{n}")
    return i, n


def cost(path: Path) -> float:
    """A submission's expected grading cost (see FIXED...): notebook or module, cells, size, and
    what its code shows it will do."""
    try:
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    except OSError:
        data = b""
    if not data:
        return FIXED  # nothing to read: it is refused or not gradable, quickly
    text = data.decode("utf-8-sig", "replace")
    if path.suffix == ".ipynb":
        try:
            cells = [c for c in json.loads(text).get("cells", []) if c.get("cell_type") == "code"]
            sources = ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else
                       str(c.get("source", "")) for c in cells]
        except (ValueError, AttributeError, TypeError, RecursionError):
            return FIXED
        return (FIXED + PER_CELL * len(cells) + PER_KIB * sum(map(len, sources)) / 1024) * NOTEBOOK \
            + _costly_code([neutralise(c) for c in sources])  # magic and shell lines are not Python
    cells = max(1, text.count("\n# %%"))
    return FIXED + PER_CELL * cells + PER_KIB * len(data) / 1024 + _costly_code([text])


def _costly_code(sources: list[str]) -> float:
    """Seconds for what the code does beyond its size (see UNENDING_LOOP...): read from its syntax
    tree, never run. Code that does not parse, or is too large to parse here (every shard parses
    every file of the class), adds nothing: the same on every machine."""
    if sum(map(len, sources)) > MAX_CODE:
        return 0.0
    loops = literals = 0
    for source in sources:
        try:
            tree = parse_cell(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value \
                    and not _leaves(node.body):
                loops += 1
            elif isinstance(node, ast.Constant) and type(node.value) is int and node.value == COURSE_EXAMPLES:
                literals += 1
    return UNENDING_LOOP * min(loops, 1) + COURSE_SIZE_LITERAL * min(max(literals - 1, 0), MAX_LITERALS)


def _leaves(body: list[ast.stmt]) -> bool:
    """Whether a loop's body has a way out: a break of its own (not an inner loop's), a return or a
    raise (not an inner function's). Code nested too deep to follow is taken to have one."""
    try:
        return any(_exits(node, False) for node in body)
    except RecursionError:
        return True


def _exits(node: ast.AST, inner: bool) -> bool:
    if isinstance(node, (ast.Return, ast.Raise)):
        return True
    if isinstance(node, ast.Break):
        return not inner
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return False
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):  # an inner loop's break is its own
        return any(_exits(c, True) for c in node.body) or any(_exits(c, inner) for c in node.orelse)
    return any(_exits(c, inner) for c in ast.iter_child_nodes(node))


def deal(paths: list[Path], n: int, names: Mapping[Path, str] | None = None) -> list[list[Path]]:
    """The submissions dealt to n shards: the costliest first, each to the shard with the least so
    far (the lowest-numbered on a tie). `names`: each path's name relative to the folder given (the
    order of equal costs), the same on every machine."""
    names = names or {p: p.name for p in paths}
    costs = {p: round(cost(p), 6) for p in paths}
    loads, shards = [0.0] * n, [[] for _ in range(n)]
    for path in sorted(paths, key=lambda p: (-costs[p], names.get(p, p.name))):
        k = min(range(n), key=lambda j: (loads[j], j))
        shards[k].append(path)
        loads[k] += costs[path]
    return shards


def mine(paths: list[Path], shard: tuple[int, int], roots: list[Path] = ()) -> list[Path]:
    """This shard's submissions, in the order given."""
    names = {}
    for p in paths:
        root = next((r for r in roots if p.is_relative_to(r)), None)
        names[p] = str(p.relative_to(root)) if root else p.name
    chosen = set(deal(paths, shard[1], names)[shard[0] - 1])
    return [p for p in paths if p in chosen]
