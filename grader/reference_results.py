"""Expected answers, computed in the trusted process by the reference solutions on the very inputs
the worker is given, and cached on disk (grader.disk_cache): each function item's answers, the
known wrong formulations the diagnosis compares with, object references on a given data set, and
the reference's answers to helper questions, each read only when an item being graded needs it.

The cache key hashes the reference code, the catalogue and input builders, the weights, the data,
the device and the numerical libraries' versions, so a changed reference (or model, data or
library) is never answered from a stale cache. (TransformerLens 3.x hooks LayerNorm's
`hook_normalized` before its weight and bias, 2.x after: the same model gives other activations.)
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch as t

from grader import __version__
from grader.catalogue import EXERCISES, Exercise
from grader.disk_cache import DiskCache, cache_dir, entry_name
from grader.inputs import InputFactory
from grader.protocol import SPILL_ELEMENTS, decode, encode
from grader.public import file_sha256
from grader.right_values import expected_fit, v_pair_bands

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CODE_FILES = ("reference/solutions.py", "reference/brackets.py", "reference/model.py", "grader/catalogue.py",
              "grader/inputs.py", "grader/protocol.py", "grader/reference_results.py", "grader/mistakes.py",
              "grader/disk_cache.py", "grader/right_values.py", "grader/compare.py")
DEAD_NEURON = 1e-6  # a W_in column this small next to the largest is a dead neuron: no direction to compare with


PRIVATE_SOURCES = ("solutions",)  # the answers: workers must not read them
OBJECT_ITEMS = ("out_by_component_in_unbalanced_dir", "out_by_component_in_pre_20_unbalanced_dir", "v_L_v_R")
HELPER_CACHE_BYTES = 256 * 1024**2  # helper answers kept for later submissions asking the same


def harden() -> list[str]:
    """Make the reference solutions (source and bytecode) unreadable to other users, so a worker
    running as its own unprivileged user cannot read them. Returns the files it restricted."""
    import importlib

    done = []
    for name in PRIVATE_SOURCES:
        module = importlib.import_module(f"reference.{name}")  # also writes its bytecode, if any
        files = [Path(module.__file__)]
        cached = getattr(module, "__cached__", None)
        if cached:
            files += list(Path(cached).parent.glob(f"{name}.*.pyc"))
        for f in files:
            try:
                if f.exists() and f.stat().st_uid == os.getuid():
                    os.chmod(f, 0o600)
                    done.append(str(f))
            except OSError:
                pass
    return done


def _lens_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformer_lens")
    except PackageNotFoundError:
        return "?"


def cache_key(weights: str, data: str, device: str) -> str:
    h = hashlib.sha256(__version__.encode())
    for rel in CODE_FILES:
        h.update((PACKAGE_ROOT / rel).read_bytes())
    for part in (file_sha256(weights), file_sha256(data), device, t.__version__, np.__version__, _lens_version()):
        h.update(part.encode())
    return h.hexdigest()[:24]


def _elements(value: Any) -> int:
    """Numbers held by a value (tensors, arrays, fits, and containers of them), to size a cache."""
    if isinstance(value, t.Tensor):
        return value.numel()
    if isinstance(value, (list, tuple)):
        return sum(_elements(v) for v in value)
    if isinstance(value, dict) or hasattr(value, "cache_dict"):  # an ActivationCache too
        return sum(_elements(v) for v in dict(getattr(value, "cache_dict", value)).values())
    size = getattr(value, "size", None)
    if isinstance(size, int):  # numpy arrays
        return size
    coef = getattr(value, "coef_", None)  # a fitted LinearRegression
    return _elements(coef) + 1 if coef is not None else 1


def _solution(name: str):
    import reference.solutions as solutions

    return getattr(solutions, name)


def expected_case(ex: Exercise, case_json: dict, factory: InputFactory) -> Any:
    """The reference's answer to one case, as encoded data (decoded by the caller)."""
    if ex.expect == "mean_sq_cos":
        args, kwargs = factory.build(case_json["args"], case_json["kwargs"])
        return {"d": int(args[0].shape[0]), "n": int(kwargs.get("n_samples", 1000))}
    fn = _solution(ex.function)
    if ex.expect == "linfit":
        return encode(expected_fit(fn, case_json, factory))
    values = []
    for each in case_json["each"] or [None]:
        t.manual_seed(0)
        args, kwargs = factory.build(each if each is not None else case_json["args"], case_json["kwargs"])
        with t.inference_mode():
            values.append(_mark_undefined(ex, args, fn(*args, **kwargs)))
    return encode(values if case_json["each"] else values[0])


def _mark_undefined(ex: Exercise, args: list, value: Any) -> Any:
    """NaN where the right answer is not defined, so those elements are not judged: the cosine
    with a dead neuron's input weights (the course model has them: layer 0 neuron 35's column of
    W_in has norm ~1e-17, 25 of layer 2's are 0). Any formulation is right elsewhere, and there
    each gives something different (0, NaN, or noise of the order of 1e-17 / 1e-17)."""
    if ex.id == "cos_sim_with_MLP_weights":
        model, _, layer = args[:3]
        norms = model.W_in[layer].norm(dim=0)
        dead = norms <= DEAD_NEURON * norms.max()
        if bool(dead.any()):
            value = value.clone()
            value[dead] = float("nan")
    return value


class ReferenceResults:
    """Expected answers for every function item, for one (weights, data, device)."""

    def __init__(self, weights: str, data: str, device: str = "cpu"):
        self.weights, self.data, self.device = weights, data, device
        self.key = cache_key(weights, data, device)
        self.disk = DiskCache(cache_dir() / f"reference-{self.key}")
        self._factory: InputFactory | None = None  # built when something must be computed
        self._encoded: dict[str, dict[str, Any]] = {}
        self._objects: dict[str, Any] = {}
        self._computing: dict[str, threading.Lock] = {}  # one per object entry being computed
        self._alternatives: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        self._lock = threading.Lock()
        self._helper_answers: dict[str, tuple[Any, int]] = {}  # question (JSON) -> (answer, bytes)
        self._helper_bytes = 0

    @property
    def factory(self) -> InputFactory:
        """The inputs, read only when something is computed (a warm cache never needs them)."""
        with self._lock:
            if self._factory is None:
                self._factory = InputFactory(self.weights, self.data, self.device)
            return self._factory

    def data_size(self) -> int:
        """How many examples the data file holds (what a range of it can reach)."""
        return self.factory.size

    def for_exercise(self, ex: Exercise) -> dict[str, Any]:
        """{case label: decoded expected value} for a function item."""
        if ex.id not in self._encoded:
            labels = {c.label for c in ex.cases}
            self._encoded[ex.id] = self.disk.fetch(
                "expected", ex.id, lambda: {c.label: expected_case(ex, c.to_json(), self.factory) for c in ex.cases},
                lambda v: isinstance(v, dict) and set(v) == labels)
        return {label: decode(v) if not isinstance(v, dict) or "d" not in v else v
                for label, v in self._encoded[ex.id].items()}

    def warm(self, exercises: list[Exercise] | None = None) -> None:
        """Have the answers of these function items (default: all) at hand."""
        for ex in exercises if exercises is not None else EXERCISES:
            if ex.kind == "function":
                self.for_exercise(ex)

    def alternatives(self, ex: Exercise, label: str) -> list[tuple[str, Any]]:
        """Known wrong formulations of one case (grader.mistakes.ALTERNATIVES), decoded; computed
        only when an answer is wrong, and kept for the next submission."""
        from grader.mistakes import ALTERNATIVES

        make = ALTERNATIVES.get(ex.id)
        case = next((c for c in ex.cases if c.label == label), None)
        if make is None or case is None:
            return []
        key = (ex.id, label)
        if key not in self._alternatives:
            def compute() -> list:
                factory = self.factory
                with self._lock:
                    t.manual_seed(0)
                    args, kwargs = factory.build(list(case.args), case.kwargs)
                    with t.inference_mode():
                        return [[m, encode(v)] for m, v in make(*args, **kwargs)]

            encoded = self.disk.fetch("alternatives", entry_name(ex.id, label), compute, lambda v: isinstance(v, list))
            self._alternatives[key] = [(m, decode(v)) for m, v in encoded]
        return self._alternatives[key]

    def helper_answer(self, function: str, args: list, kwargs: dict, spill=None) -> tuple[Any, bool]:
        """The reference `function` on arguments a worker described as input specs (its student's
        own call of a helper), encoded (large tensors through `spill`), and whether it had to be
        computed (False: the same question was answered before). The specs are rebuilt by
        grader.inputs, which knows nothing executable; grader.answers bounds them first."""
        from grader.catalogue import BY_ID

        if function not in BY_ID or BY_ID[function].kind != "function":
            raise ValueError(f"not a helper the grader answers: {str(function)[:60]!r}")
        # the same wrong helper in many submissions asks the same questions: answer each once
        question = json.dumps([function, args, kwargs], sort_keys=True)
        with self._lock:
            cached = self._helper_answers.get(question)
        if cached is not None:
            return encode(cached[0], spill=spill), False
        on_disk = self.disk.get("helpers", entry_name(question))
        if on_disk is not None:  # kept only when no tensor in it goes through a file: sent as stored
            return on_disk, False
        factory = self.factory
        with self._lock:  # the factory's latest build is shared state
            t.manual_seed(0)
            live_args, live_kwargs = factory.build(args, kwargs)
            with t.inference_mode():
                value = _solution(function)(*live_args, **live_kwargs)
        if _elements(value) <= SPILL_ELEMENTS:
            self.disk.put("helpers", entry_name(question), encode(value))
        size = 8 * _elements(value)
        with self._lock:
            if size <= HELPER_CACHE_BYTES // 8 and question not in self._helper_answers:  # two may race
                self._helper_answers[question] = (value, size)
                self._helper_bytes += size
                while self._helper_bytes > HELPER_CACHE_BYTES:  # the oldest go first
                    self._helper_bytes -= self._helper_answers.pop(next(iter(self._helper_answers)))[1]
        return encode(value, spill=spill), True

    # ------------------------------------------------------------ object items

    def objects_for(self, model_hash: str, model_state: dict, strs: list[str],
                    items: tuple[str, ...] = OBJECT_ITEMS) -> dict[str, Any]:
        """Reference values of object items (all, or `items`) for a known model (by its parameter
        hash) and the submission's data: each item computed only when it is judged (on the course's
        5,000 strings they take 14 to 30 s each), and kept for the next submission."""
        out: dict[str, Any] = {}
        for item in items:
            key = entry_name(model_hash, item, *strs)
            # submissions graded at once on the same data (the course's 5,000, written into many
            # students' code) ask together: one computes, the others wait for its answer
            with self._lock:
                computing = self._computing.setdefault(key, threading.Lock())
            with computing:
                if key not in self._objects:
                    encoded = self.disk.fetch("objects", key, lambda: self._compute_object(item, model_state, strs),
                                              lambda v: isinstance(v, dict))
                    self._objects[key] = {k: decode(v) for k, v in encoded.items()}
                with self._lock:  # later askers find the value: the lock is not needed again
                    self._computing.pop(key, None)
            out.update(self._objects[key])
        return out

    def _compute_object(self, item: str, model_state: dict, strs: list[str]) -> dict[str, Any]:
        import reference.solutions as sol
        from reference.brackets import BracketsDataset, SimpleTokenizer
        from reference.model import build_model

        model = build_model(model_state, self.device)
        data = BracketsDataset([(s, self.factory.tuples({"strs": [s]})[0][1]) for s in strs]).to(self.device)
        with t.inference_mode():
            if item == "v_L_v_R":
                v_L, v_R = sol.compute_v_L_v_R(model, data, SimpleTokenizer("()"))
                values = {"v_L": v_L, "v_R": v_R, "v_L_v_R_bands": v_pair_bands(model, data)}
            else:
                values = {item: getattr(sol, f"compute_{item}")(model, data)}
        return {k: encode(v) for k, v in values.items()}
