"""Execute a notebook submission in a real Jupyter kernel (nbclient), then harvest from it.

The kernel is a child of this worker, so it inherits the worker's limits and process group. Its
statements run one by one with errors allowed, as in the other modes; then, per item, a harvest
cell of ours runs in the kernel and writes its result messages to a file in the scratch folder,
which we forward to the trusted side. Functions imported from the course's `solutions` cannot ask
the trusted process for answers here (the kernel has no reply pipe): grade such work in lean or
fast mode.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from grader.protocol import ITEM_RESULTS, MAX_MESSAGE_BYTES, Kind

HARVEST_CELL = """\
from grader.worker import in_kernel as __grader_in_kernel
__grader_in_kernel.harvest(globals(), {job!r}, {item!r}, {out!r})
"""


SETUP_CELL = """\
from pathlib import Path as __grader_Path
from grader.worker import course_env as __grader_env, in_kernel as __grader_in_kernel
__grader_env.install_fallbacks(__grader_Path({scratch!r}), __grader_Path({workdir!r}), __grader_Path({shims!r}))
__grader_in_kernel.watch(globals(), {job!r})
del __grader_Path, __grader_env, __grader_in_kernel
"""


def run_notebook(job: dict, cells: list[str], channel, workdir: Path, shims: Path) -> None:
    """Every statement of the notebook, each as a cell of its own (so one that fails or hangs loses
    only itself), then the harvest cells."""
    import nbformat
    from nbclient import NotebookClient

    from grader.worker import statements

    scratch = Path(job["scratch"])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(shims)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["MPLBACKEND"] = "Agg"
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(
        nb, timeout=job["statement_seconds"], allow_errors=True, interrupt_on_timeout=True, kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}}, startup_timeout=120,
    )
    job_file = scratch / "harvest-job.json"
    todo, _, errors = statements.plan(cells, True, False, [], set())
    skip = set(job.get("skip") or ())
    cells_of: dict[str, list[int]] = {}
    skip |= set(job.get("slow") or ())
    for st in todo:  # the cells of each statement text, in the order they run: what the post-run hook reads
        if st.key not in skip:
            cells_of.setdefault(st.text(), []).append(st.cell)
    job_file.write_text(json.dumps({**job, "statement_cells": cells_of}))

    def execute(source: str) -> dict:
        cell = nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        outputs, cell["outputs"] = cell.get("outputs", []), []  # keep memory flat on notebooks that print a lot
        return next((o for o in outputs if o.get("output_type") == "error"), {})

    with client.setup_kernel():
        execute(SETUP_CELL.format(scratch=str(scratch), workdir=str(workdir), shims=str(shims), job=str(job_file)))
        if not _run_statements(execute, todo, errors, job, channel):
            return  # the kernel died: no "ready", the trusted side runs it again without that statement
        channel.emit(Kind.READY, cells=len(cells), cell_errors=errors[:50], mode="notebook")
        _harvest(execute, job, job_file, channel)


def _run_statements(execute, todo: list, errors: list[dict], job: dict, channel) -> bool:
    """Each statement as a cell; an exception is recorded once per cell of the submission. False
    when the kernel died."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from grader.worker import statements

    skip, slow = set(job.get("skip") or ()), set(job.get("slow") or ())
    failed_cells: set[int] = set()
    for st in todo:
        if st.key in skip or st.key in slow:
            errors.append(statements.skipped(st, st.key not in skip))
            continue
        channel.emit(Kind.STATEMENT, key=st.key, where=st.where)
        try:
            error = execute(st.text())
        except CellTimeoutError:
            errors.append(statements.timed_out(
                st, f"the statement at {st.where} ran past its limit of {job['statement_seconds']} s", "CellTimeoutError"))
            continue
        except DeadKernelError:
            return False
        if error and st.cell not in failed_cells:
            failed_cells.add(st.cell)
            errors.append({"cell": st.cell, "kind": "exception", "type": str(error.get("ename", ""))[:100],
                           "message": str(error.get("evalue", ""))[:500], "traceback": ""})
    return True


def _harvest(execute, job: dict, job_file: Path, channel) -> None:
    """One harvest cell per item, its answers forwarded from the file the cell wrote."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    scratch = job_file.parent
    for n, item in enumerate(job["items"]):
        out_file = scratch / f"harvest-{n}.jsonl"
        channel.emit(Kind.START, item=item["id"])
        try:
            execute(HARVEST_CELL.format(job=str(job_file), item=n, out=str(out_file)))
        except CellTimeoutError:
            pass  # the soft alarm inside reports per case; what it wrote is forwarded below
        except DeadKernelError:
            _forward(out_file, channel)
            channel.emit(Kind.CRASH, detail=f"the kernel died while grading {item['id']}")
            return
        _forward(out_file, channel)
        channel.emit(Kind.END, item=item["id"])


def _forward(path: Path, channel) -> None:
    """Pass the kernel's result lines on, re-encoded so that only well-formed messages travel."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if len(line) > MAX_MESSAGE_BYTES:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("kind") in ITEM_RESULTS:
                channel.emit(msg.pop("kind"), **msg)
