"""Turn argument specs (plain JSON) into live arguments: models, datasets, tokens, modules.

Shared by the worker, which calls the student's functions with them, and by the trusted process,
which calls the reference with the very same values. Every call gets freshly built objects, so a
function that edits the model or the data in place spoils only its own call.

Specs:  {"$model": "main"|"alt"}   a pristine model (alt: the same architecture, other weights)
        {"$data": [start, stop]} or {"$data": {"indices": [...]}} or {"$data": {"strs": [...]}}
        or {"$data": {"from": [start, stop], "max_len": L, "n": N}} (the first N rows there of at most L brackets)
        {"$toks": DATA} / {"$tokrow": [DATA, i]} / {"$tokenize": str}
        {"$module": "blocks.0.ln1"}  a submodule of the call's model ({"$module": ["main", name]}: of
                                     a model of its own, for functions that take no model)
        {"$tokenizer": null}, {"$tensor": ...} (see protocol), and plain JSON values.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch as t

from grader.protocol import decode
from reference.brackets import BracketsDataset, SimpleTokenizer, is_balanced

ALT_SEED = 1234
ALT_SCALE = 0.5


def alt_state_dict(state: dict[str, t.Tensor]) -> dict[str, t.Tensor]:
    """A second model of the same architecture: every weight perturbed by seeded noise of half its
    own scale, so answers hard-coded to the main model's numbers fail, while the model still works
    as a transformer (LayerNorm fits stay meaningful)."""
    gen = t.Generator().manual_seed(ALT_SEED)
    out = {}
    for name in sorted(state):
        w = state[name]
        if not w.is_floating_point() or name.endswith((".mask", ".IGNORE")):
            out[name] = w.clone()
            continue
        scale = w.float().std() if w.numel() > 1 else w.float().abs()
        noise = t.randn(w.shape, generator=gen) * float(scale if scale > 0 else 0.02) * ALT_SCALE
        out[name] = (w.float() + noise).to(w.dtype)
    return out


class UnknownModel(ValueError):
    """A spec names a model by weights the grader does not know."""


class InputFactory:
    """Builds the arguments of one call from specs; holds pristine weights and data, read once."""

    def __init__(self, weights: str, data: str, device: str = "cpu"):
        self.device = device
        from reference.model import load_data_tuples, read_state_dict  # TransformerLens: only when inputs are built

        self._states = {"main": read_state_dict(weights)}
        self._tuples = load_data_tuples(data)
        self.tokenizer = SimpleTokenizer("()")
        self.origins: dict[int, Any] = {}  # id of a model/dataset of the latest build -> its spec
        self.built: list = []  # ...those objects, alive while their ids are in `origins`
        self._spare: dict[str, list] = {}  # pristine models built ahead (prebuild), each handed out once
        # trusted side: models a worker may name by the hash of their weights ({"$model": {"hash": h}}),
        # the ones a submission loads itself (the grader's model, --also-model)
        self.known: dict[str, dict[str, t.Tensor]] = {}

    def state(self, which: str | dict) -> dict[str, t.Tensor]:
        if isinstance(which, dict):
            state = self.known.get(str(which.get("hash")))
            if state is None:
                raise UnknownModel("a model the grader does not know (its weights are neither our model's nor the "
                                   "course's)")
            return state
        if which not in self._states:
            if which != "alt":
                raise ValueError(f"unknown model {which!r}")
            self._states["alt"] = alt_state_dict(self._states["main"])
        return self._states[which]

    def model(self, which: str | dict):
        spare = self._spare.get(which) if isinstance(which, str) else None
        return spare.pop() if spare else self._build(which)

    def _build(self, which: str | dict):
        from reference.model import build_model

        return build_model({k: v.clone() for k, v in self.state(which).items()}, self.device)

    def prebuild(self, counts: dict[str, int]) -> None:
        """Build `counts[which]` pristine models now, to be handed out one per call later: done in
        the warm worker before it forks (grader.worker.warm_worker), so each submission's process
        starts with its own unused copies instead of building one per call (a few ms each)."""
        for which, n in counts.items():
            self._spare.setdefault(which, []).extend([self._build(which) for _ in range(n)])

    def spare(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._spare.items()}

    @property
    def size(self) -> int:
        """Examples in the data file."""
        return len(self._tuples)

    def tuples(self, spec: Any) -> list[tuple[str, bool]]:
        if isinstance(spec, list) and len(spec) == 2:
            return self._tuples[spec[0] : spec[1]]
        if isinstance(spec, dict) and "indices" in spec:
            return [self._tuples[i] for i in spec["indices"]]
        if isinstance(spec, dict) and "strs" in spec:
            return [(s, _balanced(s)) for s in spec["strs"]]
        if isinstance(spec, dict) and "from" in spec:  # the first n rows of a range no longer than max_len
            start, stop = spec["from"]
            rows = [r for r in self._tuples[start:stop] if len(r[0]) <= spec["max_len"]]
            return rows[: spec["n"]]
        raise ValueError(f"bad data spec {spec!r}")

    def dataset(self, spec: Any) -> BracketsDataset:
        return BracketsDataset(self.tuples(spec)).to(self.device)

    def build(self, args: list, kwargs: dict) -> tuple[list, dict]:
        """Live (args, kwargs) for one call: a fresh model, fresh data, modules of that model."""
        model_box: list = []
        self.origins, self.built = {}, []

        def remember(obj: Any, spec: Any) -> Any:
            self.origins[id(obj)] = spec
            self.built.append(obj)
            return obj

        def make(spec: Any) -> Any:
            if isinstance(spec, list):
                return [make(s) for s in spec]
            if not isinstance(spec, dict):
                return spec
            (tag, body), = spec.items()
            if tag == "$model":
                model_box.append(remember(self.model(body), spec))
                return model_box[-1]
            if tag == "$data":
                return remember(self.dataset(body), spec)
            if tag == "$toks":
                return self.dataset(body).toks
            if tag == "$tokrow":
                return self.dataset(body[0]).toks[body[1]]
            if tag == "$tokenize":
                return self.tokenizer.tokenize(body).to(self.device)
            if tag == "$tokenizer":
                return SimpleTokenizer("()")
            if tag == "$module" and isinstance(body, list):  # [model, name]: a module of its own model
                return remember(self.model(body[0]), {"$model": body[0]}).get_submodule(body[1])
            if tag == "$module":
                if not model_box:
                    raise ValueError("a $module spec needs a $model argument before it")
                return model_box[0].get_submodule(body)
            if tag == "$tensor":
                return t.from_numpy(decode(spec).copy()).to(self.device)
            if tag == "$tuple":
                return tuple(make(s) for s in body)
            raise ValueError(f"unknown spec tag {tag!r}")

        return [make(a) for a in args], {k: make(v) for k, v in kwargs.items()}


# the warm worker's prepared factory (grader.worker.warm_worker), keyed by (weights, data, device)
_PREPARED: dict[tuple[str, str, str], InputFactory] = {}


def prepare(weights: str, data: str, device: str, counts: dict[str, int]) -> None:
    """In the warm worker, before any fork: read the inputs and build `counts` models ahead.
    CPU only: a process that has touched CUDA cannot fork children that use it."""
    if device != "cpu":
        return
    factory = InputFactory(weights, data, device)
    factory.prebuild(counts)
    _PREPARED[(weights, data, device)] = factory


def factory_for(weights: str, data: str, device: str) -> InputFactory:
    """The prepared factory for these inputs (taken: one process, one user), or a new one."""
    return _PREPARED.pop((weights, data, device), None) or InputFactory(weights, data, device)


_balanced = lru_cache(maxsize=100_000)(is_balanced)
