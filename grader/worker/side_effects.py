"""Did a call change what it was given? Checked after every graded call, in the worker.

Every call gets a freshly built model and data, so a function that returns the right value but
edits its model in place (`model.W_V.data.mul_(2)` after computing its answer), removes the
padding-mask hooks, leaves a hook behind, or rewrites the dataset's tokens would pass if only its
value were checked; in the student's notebook every later cell would then compute with a broken
model. The model is compared with the pristine weights it was built from, its hooks are counted
before and after, and datasets and tensor arguments are compared with copies taken before.
"""
from __future__ import annotations

from typing import Any


class Watch:
    """Taken just before a call on its live arguments; `changes()` after it says what changed."""

    def __init__(self, args: list, kwargs: dict, factory) -> None:
        import torch

        self.models = []  # (model, pristine state, hook counts before)
        self.datasets = []  # (dataset, toks, isbal, strs) as they were
        self.tensors = []  # (tensor, copy)
        origins = getattr(factory, "origins", {})
        for obj in getattr(factory, "built", ()):
            spec = origins.get(id(obj))
            if isinstance(spec, dict) and "$model" in spec:
                self.models.append((obj, factory.state(spec["$model"]), _hook_counts(obj)))
            elif hasattr(obj, "toks") and hasattr(obj, "isbal"):
                self.datasets.append((obj, obj.toks.clone(), obj.isbal.clone(), list(obj.strs)))
        for value in [*args, *kwargs.values()]:
            if isinstance(value, torch.Tensor):
                self.tensors.append((value, value.clone()))

    def changes(self) -> str:
        """What the call changed, in words ("" when nothing)."""
        import torch

        for model, pristine, hooks in self.models:
            current = model.state_dict()
            changed = [name for name, value in pristine.items() if name in current and not name.endswith(
                (".mask", ".IGNORE")) and not torch.equal(current[name].detach().cpu(), value.to(current[name].dtype))]
            if changed:
                more = f" and {len(changed) - 2} more" if len(changed) > 2 else ""
                return (f"it changes the weights of the model it was given ({', '.join(changed[:2])}{more}), so in "
                        "your notebook every later cell would compute with a changed model")
            if _hook_counts(model) != hooks:
                return ("it adds or removes hooks on the model it was given (the padding-mask hooks, or a hook left "
                        "behind), so in your notebook every later cell would run a different model")
        for data, toks, isbal, strs in self.datasets:
            if not (_same(data.toks, toks) and _same(data.isbal, isbal) and list(data.strs) == strs):
                return "it changes the dataset it was given (its strings, tokens or labels) in place"
        for tensor, copy in self.tensors:
            if not _same(tensor, copy):
                return "it changes the tensor it was given in place"
        return ""


def _same(a: Any, b: Any) -> bool:
    import torch

    return isinstance(a, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def _hook_counts(model) -> tuple:
    return tuple((name, len(getattr(hp, "fwd_hooks", ())), len(getattr(hp, "bwd_hooks", ())))
                 for name, hp in model.hook_dict.items())
