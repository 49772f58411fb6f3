"""Execute a notebook submission in a real Jupyter kernel (nbclient), then harvest from it.

The kernel is a child of this worker, so it inherits the worker's limits and process group. Cells
run one by one with errors allowed; then, per item, a harvest cell of ours runs in the kernel and
writes its result messages to a file in the scratch folder, which we forward to the trusted side.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from grader.protocol import MAX_MESSAGE_BYTES

HARVEST_CELL = """\
from grader.worker import in_kernel as __grader_in_kernel
__grader_in_kernel.harvest(globals(), {job!r}, {item!r}, {out!r})
"""


def run_notebook(job: dict, cells: list[str], channel, workdir: Path, shims: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    scratch = Path(job["scratch"])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(shims)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["MPLBACKEND"] = "Agg"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = NotebookClient(
        nb, timeout=job["cell_seconds"], allow_errors=True, interrupt_on_timeout=True, kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}}, startup_timeout=120,
    )
    job_file = scratch / "harvest-job.json"
    job_file.write_text(json.dumps(job))
    with client.setup_kernel():
        errors = []
        for i, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, i)
            except CellTimeoutError:
                errors.append({"cell": i + 1, "kind": "timeout", "type": "CellTimeoutError",
                               "message": f"cell took longer than {job['cell_seconds']} s", "traceback": ""})
                continue
            except DeadKernelError:
                channel.emit("ready", cells=len(cells), cell_errors=errors, mode="notebook")
                channel.emit("crash", detail=f"the kernel died while running cell {i + 1}")
                return
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    errors.append({"cell": i + 1, "kind": "exception", "type": str(out.get("ename", ""))[:100],
                                   "message": str(out.get("evalue", ""))[:500], "traceback": ""})
            cell["outputs"] = []  # keep memory flat on notebooks that print a lot
        channel.emit("ready", cells=len(cells), cell_errors=errors[:50], mode="notebook")
        for n, item in enumerate(job["items"]):
            out_file = scratch / f"harvest-{n}.jsonl"
            channel.emit("start", item=item["id"])
            cell = nbformat.v4.new_code_cell(HARVEST_CELL.format(job=str(job_file), item=n, out=str(out_file)))
            nb.cells.append(cell)
            try:
                client.execute_cell(cell, len(nb.cells) - 1)
            except CellTimeoutError:
                pass  # the soft alarm inside reports per case; what it wrote is forwarded below
            except DeadKernelError:
                _forward(out_file, channel)
                channel.emit("crash", detail=f"the kernel died while grading {item['id']}")
                return
            _forward(out_file, channel)
            channel.emit("end", item=item["id"])


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
            if isinstance(msg, dict) and msg.get("kind") in ("case", "object", "missing"):
                channel.emit(msg.pop("kind"), **msg)
