"""Answering a worker's questions (trusted side): the reference's output for a helper, on the
arguments the student's own code passed.

Two kinds of question reach here. In a "given a correct helper" pass the worker's stand-ins ask
for the helpers the engine chose (grader.engine). And a submission that imports a gradeable
function from the course's `solutions` gets a stand-in that asks for it (grader.worker.imported):
the function is then not the student's work, so every function asked about outside the chosen
helpers is recorded, and its item scores as `missing`. That is also what stops a worker from
asking for an item's answers and returning them as its own.

Every question is untrusted input: its arguments are bounded before anything is built, the work
for one submission is bounded (the course's data size is the most any honest submission uses),
and large answers go to the worker through a file in its own folder, not through the pipe.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from grader.catalogue import BY_ID
from grader.inputs import UnknownModel

MAX_SPEC_DEPTH = 6
MAX_SPEC_ELEMENTS = 20_000  # list entries, characters of strings excluded
MAX_QUESTION_STRINGS = 5_000  # the course's `data`
MAX_SUBMISSION_WORK = 100_000  # strings run through the model for one submission's questions, all runs together
MAX_SPILL_BYTES = 2 * 1024**3  # large answers written to one run's folder


class TooMuch(ValueError):
    """A question larger than the grader answers."""


def check_spec(spec: Any) -> int:
    """Bound a question's arguments before they are built: nesting, entries, and strings of data.
    Returns how many strings of data it holds (its work); raises TooMuch or ValueError."""
    count = {"entries": 0, "strings": 0}

    def walk(value: Any, depth: int) -> None:
        if depth > MAX_SPEC_DEPTH:
            raise TooMuch("the arguments are nested too deeply")
        if isinstance(value, list):
            count["entries"] += len(value)
            if count["entries"] > MAX_SPEC_ELEMENTS:
                raise TooMuch("the arguments hold too many values")
            for v in value:
                walk(v, depth + 1)
        elif isinstance(value, dict):
            if len(value) != 1:
                raise ValueError("malformed argument")
            (tag, body), = value.items()
            if tag == "$data" and isinstance(body, dict) and "strs" in body:
                strs = body["strs"]
                if not isinstance(strs, list) or not all(isinstance(s, str) and len(s) <= 40 for s in strs):
                    raise ValueError("a dataset's strings must be bracket strings of at most 40 characters")
                count["strings"] += len(strs)
                if count["strings"] > MAX_QUESTION_STRINGS:
                    raise TooMuch(f"a question about more than {MAX_QUESTION_STRINGS:,} strings (the course's data "
                                  "size) is larger than the grader answers")
            elif tag == "$data":
                count["strings"] += 1_000  # a range of the grader's own data: at most a few hundred rows
            elif tag == "$tuple" and isinstance(body, list):
                walk(body, depth + 1)
            elif tag == "$module" and not (isinstance(body, str) or isinstance(body, list) and len(body) == 2):
                raise ValueError("malformed module argument")
            elif tag not in ("$model", "$module", "$tensor", "$toks", "$tokrow", "$tokenize", "$tokenizer"):
                raise ValueError(f"unknown argument {str(tag)[:20]!r}")

    walk(spec, 0)
    return count["strings"]


class Spill:
    """Writes large tensors of an answer into the worker's own folder (protocol.encode's `spill`)."""

    def __init__(self, folder: Path):
        self.folder, self.n, self.bytes = Path(folder), 0, 0

    def __call__(self, array: np.ndarray, dtype: str) -> dict:
        data = array.astype(array.dtype.newbyteorder("<"), copy=False)
        self.bytes += data.nbytes
        if self.bytes > MAX_SPILL_BYTES:
            raise TooMuch("the answers to this run's questions are larger than the grader sends")
        self.n += 1
        name = f"answer-{self.n}.bin"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            data.tofile(f)
        return {"$file": {"dtype": dtype, "shape": list(array.shape), "name": name}}


class Questions:
    """One submission's questions, over all its runs: what was asked, and the work done."""

    def __init__(self, reference, known_models: Callable[[], dict]):
        self.reference = reference
        self.known_models = known_models
        self.asked: set[str] = set()  # functions answered outside a chosen helper pass: taken from the course
        self.work = 0

    def answerer(self, folder: Path, chosen: set[str]) -> Callable[[dict], dict]:
        """The answer function for one run: `chosen` are the helpers this run stands in for."""
        spill = Spill(folder)

        def answer(msg: dict) -> dict:
            function = msg.get("function")
            args, kwargs = msg.get("args"), msg.get("kwargs")
            if not isinstance(function, str) or function not in BY_ID or BY_ID[function].kind != "function" \
                    or not isinstance(args, list) or not isinstance(kwargs, dict):
                return {"ok": False, "error": "not a gradeable function of this exercise set"}
            if function not in chosen:
                self.asked.add(function)
            try:
                work = check_spec([args, list(kwargs.values())])
                if self.work + work > MAX_SUBMISSION_WORK:
                    raise TooMuch(f"the questions of this submission add up to more than {MAX_SUBMISSION_WORK:,} "
                                  "strings run through the model, more than the grader computes for one submission")
                self.reference.factory.known = self.known_models()
                value, computed = self.reference.helper_answer(function, args, kwargs, spill)
            except UnknownModel as e:
                return {"ok": False, "error": str(e), "unknown_model": True}
            self.work += work if computed else 0
            return {"ok": True, "value": value}

        return answer
