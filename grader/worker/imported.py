"""The course's `solutions` module, as the worker serves it: stand-ins the trusted process answers.

Students import the helpers they skipped (`from part7_balanced_bracket_classifier.solutions import
get_activations, LN_hook_names`) and write the rest. A teaching assistant grades that as: the
imported function is not their work (the trusted side scores an item whose function it was asked
about as `missing`, "taken from the course's solutions"), and their own functions that call it are
graded on their own code. So each gradeable function imported from `solutions` is a proxy
(grader.worker.helpers) that asks the trusted process for the reference's answer on the arguments
it was given; the reference code never enters this process. The course setting's own helpers
(the tokenizer, the dataset, the padding hooks) are the real ones, and nothing else is served.
"""
from __future__ import annotations

from typing import Any

_CONNECTION: dict[str, Any] = {}  # "questions", "factory", "functions": set by `connect`
IMPORTED_MARK = "__bracket_grader_imported__"


def connect(questions, factory, functions: set[str], namespace: dict) -> None:
    """Called by the worker before the submission runs: how proxies reach the trusted process,
    which names are gradeable functions, and the submission's namespace (its models)."""
    _CONNECTION.update(questions=questions, factory=factory, functions=set(functions), namespace=namespace)


def is_imported(fn: Any) -> bool:
    return bool(getattr(fn, IMPORTED_MARK, False))


def _get_activation(model, toks, name):
    """The course's `get_activation` helper, built on the (imported) get_activations."""
    return solutions_getattr("get_activations")(model, toks, [name])[name]


def solutions_getattr(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    if name in ("BracketsDataset", "SimpleTokenizer"):
        import reference.brackets

        return getattr(reference.brackets, name)
    if name == "add_perma_hooks_to_mask_pad_tokens":
        from reference.model import add_perma_hooks_to_mask_pad_tokens

        return add_perma_hooks_to_mask_pad_tokens
    if name == "get_activation":
        return _get_activation
    if name in _CONNECTION.get("functions", ()):
        from grader.worker.helpers import proxy

        fn = proxy(name, None, _CONNECTION["questions"], _CONNECTION["factory"], imported=True,
                   namespace=_CONNECTION["namespace"])
        setattr(fn, IMPORTED_MARK, True)
        return fn
    raise AttributeError(f"the grader does not supply {name!r} from the course's solutions: write it yourself")
