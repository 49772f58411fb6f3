"""What crosses between a worker and the trusted grader: plain JSON, nothing executable.

Shared by both sides, so it imports neither. The worker `encode`s whatever a student's function
returned into JSON-able data (tensors as dtype + shape + base64 raw bytes); the trusted process
`decode`s it back into numpy arrays and builtins, checking every size and dtype. Nothing here ever
unpickles or evaluates, so a hostile value can at worst be an item's `error`.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # one line on the message pipe
MAX_TENSOR_ELEMENTS = 4_000_000  # one tensor (16 MB as float32): far above any item's answer
MAX_DEPTH = 8  # nesting of lists / tuples / dicts in one result
MAX_ITEMS = 10_000  # entries in one list, tuple or dict

SPILL_ELEMENTS = 1 << 18  # answers to a worker: tensors larger than this go through a file, not the pipe
SPILL_NAME = re.compile(r"answer-\d{1,9}\.bin")
Spill = Callable[[np.ndarray, str], dict]

ALLOWED_DTYPES = {
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
}


class ProtocolError(ValueError):
    """A message or value from the worker that breaks the protocol: the item becomes an error."""


# ---------------------------------------------------------------- worker side: encode


def _tensor_payload(array: np.ndarray, dtype_name: str, spill: Spill | None = None) -> dict:
    if spill is not None and array.size > SPILL_ELEMENTS:
        return spill(np.ascontiguousarray(array), dtype_name)
    if array.size > MAX_TENSOR_ELEMENTS:
        raise ProtocolError(f"tensor of {array.size} elements is larger than the limit of {MAX_TENSOR_ELEMENTS}")
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"$tensor": {"dtype": dtype_name, "shape": list(array.shape), "b64": base64.b64encode(data).decode()}}


def _encode_torch(value: Any, spill: Spill | None = None) -> dict | None:
    torch = sys.modules.get("torch")  # no tensor exists before torch is imported: never import it here
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    # Strip any subclass (its methods are the student's) and read the raw storage on the CPU.
    plain = torch.Tensor.as_subclass(value, torch.Tensor).detach()
    if plain.is_sparse:
        plain = plain.to_dense()
    dtype_name = str(plain.dtype).replace("torch.", "")
    if dtype_name == "bfloat16":
        return _tensor_payload(plain.cpu().float().numpy(), "float32", spill)
    if dtype_name not in ALLOWED_DTYPES:
        if plain.is_complex():
            raise ProtocolError(f"complex tensor ({dtype_name}) where a real one is expected")
        plain = plain.double() if plain.is_floating_point() else plain.long()
        dtype_name = str(plain.dtype).replace("torch.", "")
    return _tensor_payload(plain.cpu().contiguous().numpy(), dtype_name, spill)


def encode(value: Any, depth: int = 0, spill: Spill | None = None) -> Any:
    """A student's return value as JSON-able data. Unknown objects are described, not sent.
    `spill` (trusted side, answers to a worker only) writes large tensors to files instead."""
    if depth > MAX_DEPTH:
        raise ProtocolError("result is nested too deeply")
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    encoded = _encode_torch(value, spill)
    if encoded is not None:
        return encoded
    if isinstance(value, np.ndarray) and type(value) is np.ndarray:
        if value.dtype.kind not in "biuf":
            raise ProtocolError(f"numpy array of dtype {value.dtype} where numbers are expected")
        return _tensor_payload(value, str(value.dtype), spill)
    if isinstance(value, np.generic) and type(value) in (np.bool_, np.float16, np.float32, np.float64,
                                                         np.int8, np.int16, np.int32, np.int64, np.uint8):
        return {"$scalar": {"dtype": str(value.dtype), "value": encode(value.item(), depth + 1, spill)}}
    if type(value) in (list, tuple):
        if len(value) > MAX_ITEMS:
            raise ProtocolError(f"a list of {len(value)} entries is longer than the limit of {MAX_ITEMS}")
        items = [encode(v, depth + 1, spill) for v in value]
        return {"$tuple": items} if type(value) is tuple else items
    if type(value) is dict:
        if len(value) > MAX_ITEMS:
            raise ProtocolError("dict too long")
        return {"$dict": [[str(k), encode(v, depth + 1, spill)] for k, v in list(value.items())]}
    kind = type(value).__name__
    if kind == "ActivationCache" and hasattr(value, "cache_dict"):
        return {"$cache": [[str(k), encode(v, depth + 1, spill)] for k, v in list(dict(value.cache_dict).items())]}
    if kind == "LinearRegression" and hasattr(value, "coef_"):
        return {"$linreg": {"coef": encode(value.coef_, depth + 1, spill),
                            "intercept": encode(value.intercept_, depth + 1, spill)}}
    return {"$object": {"type": kind[:100], "module": str(type(value).__module__)[:100]}}


# ---------------------------------------------------------------- trusted side: decode


@dataclass(frozen=True)
class Opaque:
    """An object the worker could not send as data: only its type is known."""

    type: str
    module: str


@dataclass(frozen=True)
class LinearFit:
    """A LinearRegression as plain arrays."""

    coef: Any
    intercept: Any


@dataclass(frozen=True)
class Cache:
    """An ActivationCache as a plain mapping from hook name to array."""

    entries: dict


@dataclass(frozen=True)
class Scalar:
    """A numpy scalar (np.float32(0.1), np.bool_(True)) with its dtype."""

    dtype: str
    value: Any


def _decode_tensor(spec: Any) -> np.ndarray:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "b64"}:
        raise ProtocolError("malformed tensor")
    dtype, shape, b64 = spec["dtype"], spec["shape"], spec["b64"]
    if dtype not in ALLOWED_DTYPES or dtype == "bfloat16":
        raise ProtocolError(f"tensor dtype {dtype!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and 0 <= n for n in shape):
        raise ProtocolError("malformed tensor shape")
    if math.prod(shape) > MAX_TENSOR_ELEMENTS or not isinstance(b64, str):
        raise ProtocolError("tensor too large")
    raw = base64.b64decode(b64, validate=True)
    np_dtype = np.dtype(dtype).newbyteorder("<")
    if len(raw) != math.prod(shape) * np_dtype.itemsize:
        raise ProtocolError("tensor data does not match its shape")
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape).astype(np.dtype(dtype))


def _decode_file(spec: Any, files: str) -> np.ndarray:
    """A large tensor the trusted process wrote into this worker's folder (worker side only)."""
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "name"} or spec["dtype"] not in ALLOWED_DTYPES \
            or not isinstance(spec["name"], str) or not SPILL_NAME.fullmatch(spec["name"]) \
            or not isinstance(spec["shape"], list) or not all(type(n) is int and n >= 0 for n in spec["shape"]):
        raise ProtocolError("malformed tensor file")
    array = np.fromfile(os.path.join(files, spec["name"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    if array.size != math.prod(spec["shape"]):
        raise ProtocolError("tensor file does not match its shape")
    return array.reshape(spec["shape"]).astype(np.dtype(spec["dtype"]))


def decode(value: Any, depth: int = 0, files: str | None = None) -> Any:
    """The inverse of `encode`, validating as it goes; raises ProtocolError on anything odd.
    `files`: only on the worker side, reading answers the trusted process spilled to its folder
    (the trusted side never accepts a file from a worker)."""
    if depth > MAX_DEPTH + 2:
        raise ProtocolError("result is nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        if len(value) > MAX_ITEMS:
            raise ProtocolError("list too long")
        return [decode(v, depth + 1, files) for v in value]
    if type(value) is not dict or len(value) != 1:
        raise ProtocolError("malformed value")
    (tag, body), = value.items()
    if tag == "$tensor":
        return _decode_tensor(body)
    if tag == "$file" and files is not None:
        return _decode_file(body, files)
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$tuple" and type(body) is list:
        return tuple(decode(v, depth + 1, files) for v in body)
    if tag in ("$dict", "$cache") and type(body) is list:
        pairs = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise ProtocolError("malformed mapping")
            pairs[pair[0]] = decode(pair[1], depth + 1, files)
        return Cache(pairs) if tag == "$cache" else pairs
    if tag == "$linreg" and type(body) is dict and set(body) == {"coef", "intercept"}:
        return LinearFit(decode(body["coef"], depth + 1, files), decode(body["intercept"], depth + 1, files))
    if tag == "$scalar" and type(body) is dict and set(body) == {"dtype", "value"}:
        if body["dtype"] not in ALLOWED_DTYPES:
            raise ProtocolError("scalar dtype not allowed")
        return Scalar(body["dtype"], decode(body["value"], depth + 1, files))
    if tag == "$object" and type(body) is dict:
        return Opaque(str(body.get("type", "?"))[:100], str(body.get("module", "?"))[:100])
    raise ProtocolError(f"unknown value tag {str(tag)[:40]!r}")


# ---------------------------------------------------------------- messages


class Kind:
    """Every message a worker sends the trusted process, by name: one JSON object per line, its
    kind first (dump_message). The trusted side reads these kinds and drops any other unparsed."""

    STATEMENT = "stmt"  # a top-level statement of the submission's own code begins: key, where
    # the submission's own code ran to its end: cells, cell_errors (each: cell, kind, type, message,
    # and a timeout's statement key), mode, dropped, ...
    READY = "ready"
    START = "start"  # an item's calls begin: item
    CASE = "case"  # one call's result: item, case, ok, value | error, seconds, side_effects, largest_tensor
    # an object item's values: item, ok, values, context, cell, and exercise (the values, context,
    # cell and tested of the value its exercise cell gave, where a later cell replaced it) | missing | error
    OBJECT = "object"
    MISSING = "missing"  # a function item that is not there: item, detail
    END = "end"  # an item's calls are over: item, seconds
    ASK = "ask"  # a question: the reference's answer to helper `function` on args, kwargs
    CRASH = "crash"  # the submission could not be run at all: detail
    OVERSIZE = "oversize"  # stands for a message over the size limit: of, item, case, bytes
    DONE = "done"  # the worker is finished: seconds, max_rss_kb


KINDS = frozenset(v for k, v in vars(Kind).items() if not k.startswith("_"))
ITEM_RESULTS = frozenset({Kind.CASE, Kind.OBJECT, Kind.MISSING})  # the messages a verdict is made from
# how large each kind may be: results and questions carry tensors, the rest are short records
SMALL_MESSAGE_BYTES = 1024 * 1024
LARGE_KINDS = frozenset({Kind.CASE, Kind.OBJECT, Kind.ASK})


class WarmRequest:
    """What the trusted side asks a slot's warm worker (grader.worker.warm_worker), one JSON line each."""

    FORK = "job"  # {"job": ..., fifos, cwd, env, limits, uid, no_network}: fork a child for this run
    KILL = "kill"  # {"kill": pid}: end that child; {"kill": -1}: everything, between two submissions


class WarmReply:
    """What a warm worker answers, one JSON line each."""

    PID = "pid"  # {"pid": n}: the child forked for a request, in order
    EXIT = "exit"  # {"exit": pid, "code": n}: a child ended (negative: killed by that signal)
    FORGOT = "forgot"  # {"forgot": true}: a {"kill": -1} is done


def dump_message(kind: str, **fields: Any) -> bytes:
    """One message: a JSON object on one line, its kind first."""
    line = json.dumps({"kind": kind, **fields}, separators=(",", ":"), allow_nan=False).encode()
    if len(line) > MAX_MESSAGE_BYTES:
        line = json.dumps({"kind": Kind.OVERSIZE, "of": kind, "item": fields.get("item"), "case": fields.get("case"),
                           "bytes": len(line)}).encode()
    return line + b"\n"


KIND_PREFIX = re.compile(rb'\{\s*"kind"\s*:\s*"([a-z]{1,12})"')


def peek_kind(line: bytes) -> str | None:
    """A message's kind read from its first bytes, before parsing it (an unknown or oversized
    message is dropped unparsed: parsing is what costs the trusted side memory)."""
    m = KIND_PREFIX.match(line[:64])
    return m.group(1).decode() if m else None


def message_limit(kind: str) -> int:
    return MAX_MESSAGE_BYTES if kind in LARGE_KINDS else SMALL_MESSAGE_BYTES


def load_message(line: bytes) -> dict:
    kind = peek_kind(line)
    if kind not in KINDS:
        raise ProtocolError("a message of no known kind")
    if len(line) > message_limit(kind):
        raise ProtocolError(f"a {kind!r} message larger than its limit")
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"message is not JSON: {e}") from None
    if type(msg) is not dict or msg.get("kind") != kind:
        raise ProtocolError("message has no kind")
    for name, kinds in ENVELOPE.items():  # what the trusted side reads before any judging: never a crash there
        if msg.get(name) is not None and type(msg[name]) not in kinds:
            raise ProtocolError(f"a message whose {name!r} is a {type(msg[name]).__name__}")
    return msg


# the fields of any kind of message that the trusted side reads as it files them, with their types
ENVELOPE = {"item": (str,), "dropped": (int,), "cell_errors": (list,), "detail": (str,)}
