"""Runs inside a notebook's kernel: the harvest cell calls `harvest` with the notebook's globals."""
from __future__ import annotations

import json

from grader.protocol import dump_message

_FACTORY = None


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
