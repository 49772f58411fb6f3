"""The boundary: what a worker can send, and that nothing odd gets past decode."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch as t

from grader.protocol import (Cache, LinearFit, Opaque, ProtocolError, Scalar, decode, dump_message, encode,
                             load_message)


def roundtrip(value):
    return decode(json.loads(json.dumps(encode(value))))


def test_tensors_keep_dtype_shape_and_values():
    x = t.randn(3, 4, dtype=t.float64)
    got = roundtrip(x)
    assert got.dtype == np.float64 and got.shape == (3, 4)
    assert np.array_equal(got, x.numpy())
    assert roundtrip(t.tensor([True, False])).dtype == np.bool_
    assert roundtrip(t.ones(2, dtype=t.bfloat16)).dtype == np.float32


def test_builtins_tuples_dicts_and_numpy_scalars():
    assert roundtrip((1, "a", None, [True])) == (1, "a", None, [True])
    assert roundtrip({"x": 1.5}) == {"x": 1.5}
    assert roundtrip(np.float32(0.5)) == Scalar("float32", 0.5)
    assert roundtrip(float("nan")) != roundtrip(float("nan"))  # NaN survives as NaN


def test_tensor_subclass_is_sent_as_plain_data():
    class Liar(t.Tensor):
        def __eq__(self, other):  # noqa: D105
            return True

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs or {})

    x = t.arange(4.0).as_subclass(Liar)
    got = roundtrip(x)
    assert type(got) is np.ndarray and got.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_activation_cache_and_linear_regression_become_plain_records():
    from sklearn.linear_model import LinearRegression
    from transformer_lens import ActivationCache

    cache = ActivationCache({"a": t.ones(2)}, model=None)
    assert isinstance(roundtrip(cache), Cache)
    fit = LinearRegression().fit(np.eye(3), np.eye(3))
    got = roundtrip(fit)
    assert isinstance(got, LinearFit) and got.coef.shape == (3, 3)


def test_unknown_objects_are_described_not_sent():
    class Weird:
        def __repr__(self):
            raise RuntimeError("no")

    got = roundtrip(Weird())
    assert isinstance(got, Opaque) and got.type == "Weird"


@pytest.mark.parametrize("bad", [
    {"$tensor": {"dtype": "object", "shape": [1], "b64": ""}},
    {"$tensor": {"dtype": "float32", "shape": [10**9], "b64": ""}},
    {"$tensor": {"dtype": "float32", "shape": [2], "b64": base64.b64encode(b"abc").decode()}},
    {"$pickle": "gASV"},
    {"$tuple": "x"},
    {"a": 1, "b": 2},
])
def test_malformed_values_raise_protocol_error(bad):
    with pytest.raises(ProtocolError):
        decode(bad)


def test_deep_nesting_is_refused_on_both_sides():
    value = []
    for _ in range(20):
        value = [value]
    with pytest.raises(ProtocolError):
        encode(value)
    deep: object = 1
    for _ in range(30):
        deep = [deep]
    with pytest.raises(ProtocolError):
        decode(deep)


def test_huge_tensors_are_refused_by_the_worker():
    with pytest.raises(ProtocolError):
        encode(t.zeros(5_000_000))


def test_messages_are_single_json_lines():
    line = dump_message("case", item="x", value=encode(t.ones(2)))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert load_message(line.strip())["kind"] == "case"
    for bad in (b"not json", b"[1, 2]", b'{"no": "kind"}'):
        with pytest.raises(ProtocolError):
            load_message(bad)


@pytest.mark.parametrize("fields", [{"kind": "start", "item": ["get_WOV"]}, {"kind": "end", "item": {"a": 1}},
                                    {"kind": "ready", "dropped": "many"}, {"kind": "ready", "dropped": 1e309},
                                    {"kind": "ready", "cell_errors": 7}, {"kind": "crash", "detail": [1]}])
def test_a_forged_message_whose_fields_the_trusted_side_reads_is_refused_as_it_arrives(fields):
    """What the trusted side reads while it files messages (an item's name, a count) is checked
    with the message: a list for a name made the whole submission an error (unhashable)."""
    line = json.dumps(fields).encode().replace(b"Infinity", b"1e309")
    with pytest.raises(ProtocolError, match="whose"):
        load_message(line)
    assert load_message(dump_message(fields["kind"], item="get_WOV", dropped=2, cell_errors=[], detail="x").strip())
