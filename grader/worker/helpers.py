"""Grade an item as if the items it calls were correct ("correct, given a correct get_ln_fit").

In this pass the worker replaces a failed helper in the submission's namespace by a proxy. The
proxy describes its arguments as input specs (grader.inputs: the grader's own models and data by
name, other datasets by their strings, LayerNorms by their path in the model, tensors as data),
asks the trusted process for the reference helper's answer on exactly those arguments, and
returns it as live objects (tensors, a LinearRegression, an ActivationCache). The reference code
never enters this process: only the answers to the questions the student's own code asked.
An argument the proxy cannot describe (a model of the student's making) makes it call the
student's own helper instead, so no credit is given by accident.
"""
from __future__ import annotations

from typing import Any, Callable

from grader.protocol import Cache, LinearFit, ProtocolError, Scalar, decode, encode
from grader.worker.asking import Asker


class Unsendable(Exception):
    """An argument with no spec: the student's own helper is used."""


def _is_model(value: Any) -> bool:
    """A HookedTransformer (a module; not a stand-in that answers any attribute, like `tests`)."""
    import torch

    return isinstance(value, torch.nn.Module) and hasattr(value, "cfg") and hasattr(value, "W_U")


def _model_of(args: list) -> Any:
    return next((a for a in args if _is_model(a)), None)


def _model_body(model: Any, origins: dict[int, Any]) -> Any:
    """How the trusted process can rebuild `model`: the grader's input by name, else the weights'
    hash (a model the grader knows: the submission loaded the course's file)."""
    spec = origins.get(id(model))
    if spec is not None:
        return spec["$model"]
    from reference.model import parameter_hash

    return {"hash": parameter_hash(model)}


def _is_standard_tokenizer(value: Any) -> bool:
    """A tokenizer that maps every token as the course's SimpleTokenizer("()") does (whatever its
    class: the course's own, or one the student wrote), so the trusted process can use its own."""
    from reference.brackets import SimpleTokenizer

    try:
        t_to_i = getattr(value, "t_to_i", None)
        return type(t_to_i) is dict and len(t_to_i) < 16 and t_to_i == SimpleTokenizer("()").t_to_i
    except Exception:
        return False


def to_spec(value: Any, origins: dict[int, Any], models: list) -> Any:
    """An argument as an input spec the trusted process can rebuild."""
    import torch

    if value is None or type(value) in (bool, int, float, str):
        return value
    if id(value) in origins:
        return origins[id(value)]
    if type(value) in (list, tuple):
        items = [to_spec(v, origins, models) for v in value]
        return {"$tuple": items} if type(value) is tuple else items
    if isinstance(value, torch.Tensor):
        return encode(value)
    if hasattr(value, "strs") and hasattr(value, "isbal") and hasattr(value, "toks"):
        return {"$data": {"strs": [str(s) for s in list(value.strs)[:20_000]]}}
    if _is_model(value):
        return {"$model": _model_body(value, origins)}
    if _is_standard_tokenizer(value):  # the course's, built by the student's own code: the same tokens
        return {"$tokenizer": None}
    if isinstance(value, torch.nn.Module):
        for model in models:
            for name, module in model.named_modules():
                if module is value and name:
                    return {"$module": [_model_body(model, origins), name]}
    raise Unsendable(type(value).__name__)


def to_live(value: Any, model: Any, device: str) -> Any:
    """A decoded answer as the objects the reference would have returned."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()).to(device)
    if isinstance(value, tuple):
        return tuple(to_live(v, model, device) for v in value)
    if isinstance(value, list):
        return [to_live(v, model, device) for v in value]
    if isinstance(value, Scalar):
        return value.value
    if isinstance(value, LinearFit):
        from sklearn.linear_model import LinearRegression

        fit = LinearRegression()
        fit.coef_, fit.intercept_ = np.asarray(value.coef), np.asarray(value.intercept)
        fit.n_features_in_ = fit.coef_.shape[-1]
        return fit
    if isinstance(value, Cache):
        from transformer_lens import ActivationCache

        entries = {k: to_live(v, model, device) for k, v in value.entries.items()}
        return ActivationCache(entries, model) if model is not None else entries
    if isinstance(value, dict):
        return {k: to_live(v, model, device) for k, v in value.items()}
    return value


def proxy(name: str, own: Callable | None, questions: Asker, factory, imported: bool = False,
          namespace: dict | None = None) -> Callable:
    """A stand-in for helper `name` that answers with the reference's output. Where the trusted
    process cannot rebuild the arguments (a model of the submission's own making) it calls `own`,
    the student's function, so no credit comes by accident; an imported helper has none. A module
    argument (`LN_hook_names(model.ln_final)`) is found in the call's models, the grader's inputs,
    or the models in the submission's `namespace`."""
    device = factory.device
    whose = "the course's" if imported else "the reference"

    def reference_helper(*args, **kwargs):
        origins = factory.origins  # the inputs of the call being graded
        mine = list((namespace or {}).values())
        models = [m for m in [*args, *kwargs.values(), *factory.built, *mine] if _is_model(m)]
        try:
            spec_args = [to_spec(a, origins, models) for a in args]
            spec_kwargs = {k: to_spec(v, origins, models) for k, v in kwargs.items()}
        except Unsendable as e:
            if own is None:
                raise RuntimeError(f"{whose} {name} can only be answered for the course's model, data and "
                                   f"tensors, not for a {e}") from None
            return own(*args, **kwargs)
        reply = questions.ask(function=name, args=spec_args, kwargs=spec_kwargs)
        if not reply.get("ok"):
            if own is not None and reply.get("unknown_model"):
                return own(*args, **kwargs)
            raise RuntimeError(f"the grader could not compute {whose} {name}: {reply.get('error')}")
        try:
            value = decode(reply["value"], files=questions.files)
        except ProtocolError as e:
            raise RuntimeError(f"the grader's answer for {name} was malformed: {e}") from None
        return to_live(value, _model_of(list(args) + list(kwargs.values())), device)

    reference_helper.__name__ = name
    return reference_helper


class ReferenceHelpers:
    """Context manager: inside it, `names` in `namespace` are reference proxies."""

    def __init__(self, namespace: dict, names: list[str], questions: Asker, factory):
        self.namespace, self.names, self.questions, self.factory = namespace, names, questions, factory
        self.saved: dict[str, Any] = {}

    def __enter__(self):
        for name in self.names:
            self.saved[name] = self.namespace.get(name, _ABSENT)
            own = self.saved[name] if callable(self.saved[name]) else None
            self.namespace[name] = proxy(name, own, self.questions, self.factory)
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is _ABSENT:
                self.namespace.pop(name, None)
            else:
                self.namespace[name] = value
        return False


_ABSENT = object()
