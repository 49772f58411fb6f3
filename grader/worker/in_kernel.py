"""Runs inside a notebook's kernel: the harvest cell calls `harvest` with the notebook's globals."""
from __future__ import annotations

import json

from grader.protocol import dump_message

_FACTORY = None


def watch(namespace: dict, job_file: str) -> None:
    """After each cell the kernel runs (each of the submission's statements), record the object
    items it bound, with the cell it belongs to, as the other modes do (harvest.note_assignments)."""
    from grader.worker.harvest import note_assignments

    with open(job_file) as f:
        job = json.load(f)
    names = [n for item in job["items"] for n in item["names"]]
    cells = job.get("statement_cells") or {}

    def after(result) -> None:
        source = getattr(getattr(result, "info", None), "raw_cell", None)
        if isinstance(source, str) and cells.get(source):  # the same text in two cells: each in its turn
            queue = cells[source]
            note_assignments(namespace, names, queue.pop(0) if len(queue) > 1 else queue[0])

    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", after)


def harvest(namespace: dict, job_file: str, item_index: int, out_file: str) -> None:
    global _FACTORY
    from grader.inputs import InputFactory
    from grader.worker.harvest import run_item

    with open(job_file) as f:
        job = json.load(f)
    if _FACTORY is None:
        _FACTORY = InputFactory(job["weights"], job["data"], job["device"])
    with open(out_file, "wb") as out:

        def emit(kind: str, **fields) -> None:
            out.write(dump_message(kind, **fields))
            out.flush()

        run_item(namespace, job["items"][item_index], _FACTORY, job["case_seconds"], emit)
