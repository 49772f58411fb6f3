"""Call a submission's functions on the grader's inputs and encode what they return.

Runs inside the worker (or inside the notebook's kernel), so everything it produces is plain data
for `grader.protocol`. It never sees expected values: judging happens in the trusted process.
"""
from __future__ import annotations

import difflib
import time
import types
from typing import Any, Callable

from grader.protocol import Kind, ProtocolError, encode
from grader.worker.clock import alarm, describe_error


def _reset_globals() -> None:
    """Undo global settings a previous call may have changed (grad mode, default dtype, seed)."""
    import torch

    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float32)
    # torch.manual_seed would also queue a CUDA/XPU/MTIA seeding call with a formatted stack for
    # each uninitialised backend: most of a cheap call's cost, and a queue that grows per call
    torch.random.default_generator.manual_seed(0)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(0)


def call_case(fn: Callable, case: dict, factory, case_seconds: float) -> dict:
    """One case: build fresh inputs, call, encode. Returns a message body, never raises."""
    started = time.monotonic()
    try:
        from grader.worker.side_effects import Watch

        calls = case["each"] or [None]
        values = []
        largest = 0
        changed = ""
        cancel = alarm(case_seconds)
        try:
            for each_args in calls:
                _reset_globals()
                args, kwargs = factory.build(each_args if each_args is not None else case["args"], case["kwargs"])
                inputs = Watch(args, kwargs, factory)
                if case.get("measure_memory"):
                    from grader.worker.memory import LargestTensor

                    model = next((a for a in args if hasattr(a, "cfg")), None)
                    trailing = (model.cfg.d_mlp, model.cfg.d_model) if model is not None else (56, 56)
                    with LargestTensor(trailing) as watch:
                        values.append(fn(*args, **kwargs))
                    largest = max(largest, watch.numel)
                else:
                    values.append(fn(*args, **kwargs))
                changed = changed or inputs.changes()
        finally:
            cancel()
        value = values if case["each"] else values[0]
        reply = {"ok": True, "value": encode(value), "seconds": round(time.monotonic() - started, 4)}
        if case.get("measure_memory"):
            reply["largest_tensor"] = largest
        if changed:
            reply["side_effects"] = changed
        return reply
    except ProtocolError as e:
        return {"ok": False, "error": {"kind": "protocol", "type": "ProtocolError", "message": str(e), "traceback": ""}}
    except BaseException as e:  # student code may raise anything, SystemExit included
        return {"ok": False, "error": describe_error(e)}


def find_function(namespace: dict, name: str) -> tuple[Callable | None, str]:
    from grader.worker.imported import is_imported

    fn = namespace.get(name)
    if is_imported(fn):
        return None, f"`{name}` is imported from the course's solutions, so it is not graded as your work"
    if callable(fn):
        return fn, ""
    defined = sorted(k for k, v in namespace.items() if isinstance(v, types.FunctionType) and not k.startswith("_"))
    close = difflib.get_close_matches(name, defined, n=2, cutoff=0.6)
    if fn is not None:
        return None, f"`{name}` is defined but is a {type(fn).__name__}, not a function"
    hint = f"; did you rename it? closest: {', '.join(close)}" if close else ""
    return None, f"no function named `{name}` was found{hint}"


def _object_context(namespace: dict, names: list[str]) -> dict:
    """The model and data the submission computed its objects with, for the trusted side to
    recompute the reference on: from the namespace, or from the args of a recorded tests.test_* call."""
    from grader.worker.quiet import RECORDED
    from reference.model import parameter_hash

    model, data = namespace.get("model"), namespace.get("data")
    for (test_name, (args, _)) in RECORDED.items():
        if any(n in test_name for n in names):
            model = next((a for a in args if type(a).__name__ == "HookedTransformer"), model)
            data = next((a for a in args if hasattr(a, "strs") and hasattr(a, "isbal")), data)
    context: dict[str, Any] = {"model_hash": None, "data": None}
    try:
        if model is not None:
            context["model_hash"] = parameter_hash(model)
        if data is not None:
            strs = [str(s) for s in list(data.strs)[:20_000]]
            context["data"] = {"strs": strs}
    except BaseException as e:
        context["error"] = f"could not read model/data: {type(e).__name__}"
    return context


# name -> each value the submission's own statements bound to it, in order: (the value, the model
# and data then, the cell). An object is judged with the model it was computed with, even if a later
# statement changes the model (a function that edits its weights in place, called by a demo cell
# after the objects were computed); and a value a later cell replaced is still there to be judged
# (the answer as the student gave it in the exercise's own cell, not a scratch line two exercises on).
_ASSIGNED: dict[str, list[tuple[Any, dict, int]]] = {}
_TESTED: dict[str, tuple[Any, dict, int]] = {}  # name -> the value the course's test call was given, context, cell


def note_assignments(namespace: dict, names: list[str], cell: int = 0) -> None:
    """After each statement (of cell `cell`): record every object item (re)bound by it, with its
    context, and the value a course test call for it was given. Only the values that can be
    judged are kept (the first cell's last one and the latest), so that earlier ones are freed."""
    from grader.worker.quiet import RECORDED

    for name in names:
        value = namespace.get(name)
        versions = _ASSIGNED.setdefault(name, [])
        if value is not None and (not versions or versions[-1][0] is not value):
            version = (value, _object_context(namespace, [name]), cell)
            if versions and versions[-1][2] == cell:
                versions[-1] = version  # the same cell bound it again: its last value is what it gave
            else:
                versions.append(version)
            del versions[1:-1]
        if name not in _TESTED:
            tested = [args[0] for test, (args, _) in RECORDED.items() if name in test and args]
            if tested and tested[0] is not None:
                _TESTED[name] = (tested[0], _object_context(namespace, [name]), cell)


def exercise_version(name: str) -> tuple[Any, dict, int] | None:
    """The value the item's own exercise cell gave it: the one its course test call was given,
    else the first cell's last value (the exercise asks for it there)."""
    if name in _TESTED:
        return _TESTED[name]
    versions = _ASSIGNED.get(name) or []
    return versions[0] if versions else None


def object_values(namespace: dict, names: list[str]) -> dict:
    from grader.worker.quiet import RECORDED

    values, missing = {}, []
    for name in names:
        if name in namespace and namespace[name] is not None:
            values[name] = namespace[name]
            continue
        recorded = [args for test, (args, _) in RECORDED.items() if name in test and args]
        if recorded:
            values[name] = recorded[0][0]
        else:
            missing.append(name)
    if missing:
        return {"ok": False, "missing": f"no value for {', '.join(missing)} in the submission's namespace"}
    try:
        encoded = {k: encode(v) for k, v in values.items()}
    except BaseException as e:
        return {"ok": False, "error": describe_error(e)}
    versions = _ASSIGNED.get(names[0]) or []
    last = versions[-1] if versions and versions[-1][0] is values[names[0]] else None
    context = last[1] if last is not None else _object_context(namespace, names)
    out = {"ok": True, "values": encoded, "context": context}
    if last is not None:
        out["cell"] = last[2]
    given = exercise_version(names[0]) if len(names) == 1 and last is not None else None
    if given is not None and given[0] is not last[0]:
        try:  # the exercise cell's value, which a later statement replaced: judged too
            out["exercise"] = {"values": {names[0]: encode(given[0])}, "context": given[1], "cell": given[2],
                               "tested": names[0] in _TESTED}
        except BaseException:
            pass
    return out


def run_item(namespace: dict, item: dict, factory, case_seconds: float, emit: Callable[..., None]) -> None:
    """Grade-side calls for one item; `emit(kind, **fields)` sends each result message."""
    if item["is_object"]:
        emit(Kind.OBJECT, item=item["id"], **object_values(namespace, item["names"]))
        return
    fn, problem = find_function(namespace, item["id"])
    if fn is None:
        emit(Kind.MISSING, item=item["id"], detail=problem)
        return
    stalled = ""  # the case that ran past its limit: an all-or-nothing item is decided by it
    for case in item["cases"]:
        if stalled:
            emit(Kind.CASE, item=item["id"], case=case["label"], ok=False,
                 error={"kind": "skipped", "type": "Skipped", "traceback": "",
                        "message": f"not run: the case {stalled!r} ran past its limit"})
            continue
        reply = call_case(fn, case, factory, case_seconds)
        emit(Kind.CASE, item=item["id"], case=case["label"], **reply)
        if not item.get("partial") and not reply["ok"] and reply["error"].get("kind") == "timeout":
            stalled = case["label"]
