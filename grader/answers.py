"""Answering a worker's questions (trusted side): the reference's output for a helper, on the
arguments the student's own code passed.

Two kinds of question reach here. In a "given a correct helper" pass the worker's stand-ins ask
for the helpers the engine granted (grader.second_looks). And a submission that imports a
gradeable function from the course's `solutions` gets a stand-in that asks for it
(grader.worker.imported): the function is then not the student's work.

A question is answered only within what its pass grants at that moment: while item X is computed,
the helpers granted to X; while the submission's own statements run, the helpers granted to them
(objects computed "given a correct ..."); never an item of the pass whose results are not all in
yet. Anything else asked about is answered as the course's solutions would be, and recorded: its
item then scores as `missing`, "taken from the course's solutions". So no item can earn marks
from an answer about itself, and every answer is attributed to the item that asked (`log`).

Every question is untrusted input: its real size (rows of data in every form, tensor elements,
models, and the answer it would make) is counted before anything is built, and bounded per
question and per submission, as are the questions, the seconds spent answering and the bytes
written for large answers, which go to the worker through a file in its own folder.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from grader.catalogue import BY_ID
from grader.inputs import UnknownModel

MAX_SPEC_DEPTH = 6
MAX_SPEC_ENTRIES = 20_000  # list entries, characters of strings excluded
MAX_QUESTION_ROWS = 5_000  # bracket strings one question runs through the model: the course's `data`
MAX_QUESTION_ELEMENTS = 4_000_000  # numbers in one question's tensors (protocol.MAX_TENSOR_ELEMENTS)
MAX_QUESTION_MODELS = 4
MAX_ANSWER_ELEMENTS = 128_000_000  # numbers one answer may hold, estimated before it is computed (512 MB
# as float32): get_out_by_components on the course's 5,000 strings holds 118M
MAX_SAMPLES = 100_000  # avg_squared_cos_sim's n_samples (grading asks 20,000)
MAX_SUBMISSION_ROWS = 100_000  # rows run through the model for one submission's questions, all runs together
MAX_SUBMISSION_ELEMENTS = 1_000_000_000  # numbers in all its answers together
MAX_SUBMISSION_QUESTIONS = 5_000
MAX_SUBMISSION_SECONDS = 300.0  # spent answering one submission's questions
MAX_SPILL_BYTES = 2 * 1024**3  # large answers written into one submission's folders, all runs together

# the course's architecture (reference.model.make_config): what an answer holds per string asked about
CTX, D_MODEL, D_MLP, HEADS = 42, 56, 56, 2
WIDEST_HOOK = HEADS * D_MODEL  # numbers per position of the widest activation (hook_result)


class TooMuch(ValueError):
    """A question larger than the grader answers."""


@dataclass
class Size:
    """What a question asks for, counted from its specs before anything is built."""

    rows: int = 0
    elements: int = 0
    models: int = 0
    entries: int = 0


def _rows(body: Any, n_data: int) -> int:
    """Strings a data spec (grader.inputs) stands for, in every form."""
    if isinstance(body, list) and len(body) == 2 and all(type(x) is int for x in body):
        return len(range(n_data)[body[0]:body[1]])
    if isinstance(body, dict) and set(body) == {"indices"} and isinstance(body["indices"], list):
        if not all(type(i) is int for i in body["indices"]):
            raise ValueError("indices must be integers")
        return len(body["indices"])
    if isinstance(body, dict) and set(body) == {"strs"} and isinstance(body["strs"], list):
        if not all(isinstance(s, str) and 0 < len(s) <= 40 and not set(s) - {"(", ")"} for s in body["strs"]):
            raise ValueError("a dataset's strings must be bracket strings of 1 to 40 characters")
        return len(body["strs"])
    if isinstance(body, dict) and set(body) == {"from", "max_len", "n"} and isinstance(body["from"], list) \
            and len(body["from"]) == 2 and all(type(x) is int for x in (*body["from"], body["max_len"], body["n"])):
        return min(max(body["n"], 0), len(range(n_data)[body["from"][0]:body["from"][1]]))
    raise ValueError("malformed data argument")


def measure(spec: Any, n_data: int) -> Size:
    """The size of a question's arguments (grader.inputs specs): raises TooMuch past a bound,
    ValueError for anything malformed."""
    size = Size()

    def walk(value: Any, depth: int) -> None:
        if depth > MAX_SPEC_DEPTH:
            raise TooMuch("the arguments are nested too deeply")
        if isinstance(value, list):
            size.entries += len(value)
            if size.entries > MAX_SPEC_ENTRIES:
                raise TooMuch("the arguments hold too many values")
            for v in value:
                walk(v, depth + 1)
            return
        if not isinstance(value, dict):
            return
        if len(value) != 1:
            raise ValueError("malformed argument")
        (tag, body), = value.items()
        if tag in ("$data", "$toks"):
            size.rows += _rows(body, n_data)
        elif tag == "$tokrow":
            if not (isinstance(body, list) and len(body) == 2 and type(body[1]) is int):
                raise ValueError("malformed token row")
            size.rows += _rows(body[0], n_data)
        elif tag == "$tokenize":
            if not (isinstance(body, str) and len(body) <= 40):
                raise ValueError("only a string of at most 40 characters is tokenized")
            size.rows += 1
        elif tag == "$tensor":
            shape = body.get("shape") if isinstance(body, dict) else None
            if not (isinstance(shape, list) and len(shape) <= 8 and all(type(n) is int and n >= 0 for n in shape)):
                raise ValueError("malformed tensor")
            size.elements += math.prod(shape)
        elif tag == "$model":
            size.models += 1
        elif tag == "$module":
            if not (isinstance(body, str) or isinstance(body, list) and len(body) == 2):
                raise ValueError("malformed module argument")
            size.models += isinstance(body, list)
        elif tag == "$tuple" and isinstance(body, list):
            walk(body, depth + 1)
        elif tag != "$tokenizer":
            raise ValueError(f"unknown argument {str(tag)[:20]!r}")

    walk(spec, 0)
    if size.rows > MAX_QUESTION_ROWS:
        raise TooMuch(f"a question about {size.rows:,} strings is larger than the grader answers (at most "
                      f"{MAX_QUESTION_ROWS:,}, the course's data size)")
    if size.elements > MAX_QUESTION_ELEMENTS:
        raise TooMuch(f"a question holding {size.elements:,} numbers is larger than the grader answers")
    if size.models > MAX_QUESTION_MODELS:
        raise TooMuch("a question building more than four models is more than the grader answers")
    return size


def _names(args: list, kwargs: dict) -> int:
    names = kwargs.get("names", args[2] if len(args) > 2 else None)
    return len(names) if isinstance(names, list) else 1


def answer_elements(function: str, args: list, kwargs: dict, size: Size) -> int:
    """An upper bound of the numbers the reference's answer holds (or builds on the way: a fit's
    activations), from the question's size alone."""
    seq = kwargs.get("seq", args[3] if len(args) > 3 else None)
    per_row = {
        "get_activations": CTX * WIDEST_HOOK * _names(args, kwargs),
        "get_out_by_components": 10 * CTX * D_MODEL,
        "get_out_by_neuron": (CTX if seq is None else 1) * D_MLP * D_MODEL,
        "get_attn_probs": CTX * CTX,
    }.get(function, 2 * CTX * D_MODEL)
    samples = kwargs.get("n_samples", args[1] if len(args) > 1 else 1000) if function == "avg_squared_cos_sim" else 0
    if function == "avg_squared_cos_sim" and not (type(samples) is int and 0 < samples <= MAX_SAMPLES):
        raise TooMuch(f"avg_squared_cos_sim is answered for 1 to {MAX_SAMPLES:,} samples")
    return size.rows * per_row + size.elements + samples * D_MODEL


@dataclass(frozen=True)
class Grants:
    """What one run of a pass may ask about (grader.attempts.Plan)."""

    items: dict[str, tuple[str, ...]] = field(default_factory=dict)  # item -> helpers granted while it is computed
    statements: tuple[str, ...] = ()  # helpers granted while the submission's own statements run
    to_grade: frozenset[str] = frozenset()  # this run's items: none is answered for until its results are in

    def allowed(self, item: str | None, done: frozenset) -> set[str]:
        granted = set(self.items.get(item, ())) if item is not None else set(self.statements)
        return granted - (self.to_grade - done)


class Spill:
    """Writes large tensors of an answer into the worker's own folder (protocol.encode's `spill`),
    within what the submission may still write."""

    def __init__(self, folder: Path, room: int):
        self.folder, self.n, self.bytes, self.room = Path(folder), 0, 0, room

    def __call__(self, array: np.ndarray, dtype: str) -> dict:
        data = array.astype(array.dtype.newbyteorder("<"), copy=False)
        if self.bytes + data.nbytes > self.room:
            raise TooMuch("the answers to this submission's questions are larger than the grader sends")
        self.bytes += data.nbytes
        self.n += 1
        name = f"answer-{self.n}.bin"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            data.tofile(f)
        return {"$file": {"dtype": dtype, "shape": list(array.shape), "name": name}}


@dataclass
class Answered:
    """One question answered: for which item (None: the submission's own statements), about which
    function, and whether it was granted there (not: that function was taken from the course)."""

    run: str
    item: str | None
    function: str
    granted: bool


class Answerer:
    """One submission's questions, over all its runs: what was answered and for whom, and the work."""

    def __init__(self, reference, known_models: Callable[[], dict]):
        self.reference = reference
        self.known_models = known_models
        self.taken: set[str] = set()  # functions answered outside a grant: taken from the course
        self.log: list[Answered] = []
        self.rows = self.elements = self.questions = self.spilled = 0
        self.seconds = 0.0

    def answered(self) -> set[str]:
        """The functions answered for so far, granted or not. Honest grading never grades one after
        it was answered for (a helper is graded before its dependants ask, in the same run, or in an
        earlier pass): one still to be graded was claimed finished by a run that then ended."""
        return {a.function for a in self.log}

    def for_run(self, run: str, folder: Path, grants: Grants) -> Callable[[dict, str | None, frozenset], dict]:
        """The answer function of one run: (question, item being computed, items done) -> reply."""
        spill = Spill(folder, MAX_SPILL_BYTES - self.spilled)

        def answer(msg: dict, item: str | None, done: frozenset) -> dict:
            try:
                return self._answer(run, msg, item, done, grants, spill)
            finally:
                self.spilled += spill.bytes
                spill.room -= spill.bytes
                spill.bytes = 0

        return answer

    def _answer(self, run: str, msg: dict, item: str | None, done: frozenset, grants: Grants, spill: Spill) -> dict:
        function = msg.get("function")
        args, kwargs = msg.get("args"), msg.get("kwargs")
        if not isinstance(function, str) or function not in BY_ID or BY_ID[function].kind != "function" \
                or not isinstance(args, list) or not isinstance(kwargs, dict):
            return {"ok": False, "error": "not a gradeable function of this exercise set"}
        granted = function in grants.allowed(item, done)
        if not granted:
            self.taken.add(function)
        self.log.append(Answered(run, item, function, granted))
        self.questions += 1
        if self.questions > MAX_SUBMISSION_QUESTIONS:
            raise TooMuch(f"more than {MAX_SUBMISSION_QUESTIONS:,} questions from one submission")
        if self.seconds > MAX_SUBMISSION_SECONDS:
            raise TooMuch(f"the grader spent its {MAX_SUBMISSION_SECONDS:g} s answering this submission's questions")
        size = measure([args, list(kwargs.values())], self.reference.data_size())
        elements = answer_elements(function, args, kwargs, size)
        if elements > MAX_ANSWER_ELEMENTS:
            raise TooMuch(f"an answer of about {elements:,} numbers is larger than the grader sends")
        if self.rows + size.rows > MAX_SUBMISSION_ROWS or self.elements + elements > MAX_SUBMISSION_ELEMENTS:
            raise TooMuch(f"the questions of this submission add up to more than {MAX_SUBMISSION_ROWS:,} strings run "
                          "through the model, more than the grader computes for one submission")
        began = time.monotonic()
        try:
            self.reference.factory.known = self.known_models()
            value, computed = self.reference.helper_answer(function, args, kwargs, spill)
        except UnknownModel as e:
            return {"ok": False, "error": str(e), "unknown_model": True}
        finally:
            self.seconds += time.monotonic() - began
        if computed:
            self.rows += size.rows
            self.elements += elements
        return {"ok": True, "value": value}
