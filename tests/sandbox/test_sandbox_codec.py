"""The wire format: the sandbox-side encoder, the harness-side decoder, and frame kinds."""

from __future__ import annotations

import importlib.util
import json
import marshal
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_llmbench.sandbox import frames
from pytest_llmbench.sandbox.base import PyOutcome
from pytest_llmbench.sandbox.codec import UnsupportedValue, decode_result, encode_input


def _child() -> ModuleType:
    path = Path(frames.__file__).with_name("_pychild.py")
    spec = importlib.util.spec_from_file_location("llmbench_pychild", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHILD = _child()


def encode(value: Any) -> bytes:
    parts: list[str] = []
    CHILD._encode(value, 0, [100_000], parts)
    return "".join(parts).encode("ascii")


VALUES: list[Any] = [
    None, True, False, 0, 1, -(2**70), 0.1, -0.0, float("inf"), float("-inf"), "", "a\"b\\c\n",
    "\u00e9\U0001f600\udc80", [], (), {}, [(), []], ((1,),), {"": [1, (2,)], "k": {"n": None}},
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_keeps_exact_types(value: Any) -> None:
    back = decode_result(encode(value))
    assert repr(back) == repr(value)


def test_nan_round_trips() -> None:
    back = decode_result(encode(float("nan")))
    assert type(back) is float and back != back


class RiggedInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [RiggedInt(1), {1, 2}, b"x", {1: 2}, object(), [RiggedInt(0)], {"k": {"k2": frozenset()}}],
    # Fixed ids: xdist workers must collect the same names (object()'s repr has an address).
    ids=["int-subclass", "set", "bytes", "int-keys", "object", "nested-subclass", "frozenset"],
)
def test_encoder_rejects_anything_but_exact_plain_types(value: Any) -> None:
    with pytest.raises(CHILD._Unsupported):
        encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"x": 1}',
        b'{"t": [1], "d": {}}',
        b'{"d": [1]}',
        b'{"t": {"a": 1}}',
        b'{"d": {"a": 1, "a": 2}}',
        b"[" * 100 + b"]" * 100,
        b"[" * 100_000 + b"]" * 100_000,
        b"not json",
        '["\u00e9"]'.encode(),
        b"[1]" + b" " * (2 << 20),
    ],
)
def test_decoder_rejects_malformed_or_oversized_results(data: bytes) -> None:
    with pytest.raises(UnsupportedValue):
        decode_result(data)


def test_decoder_caps_the_number_of_values() -> None:
    with pytest.raises(UnsupportedValue):
        decode_result(json.dumps(list(range(200_000))).encode())


def test_inputs_are_marshalled_plain_values_only() -> None:
    value = {"a": (1, [2.5, None, True]), "b": "x"}
    assert marshal.loads(encode_input(value)) == value
    for bad in ({1, 2}, {1: "x"}, b"bytes", RiggedInt(3)):
        with pytest.raises(UnsupportedValue):
            encode_input(bad)


def test_frame_kinds_match_the_sandbox_side() -> None:
    kinds = ("K_HELLO", "K_LOADED", "K_LOAD_ERROR", "K_RESULT", "K_CRASHED", "K_TIMEOUT")
    for name in (*kinds, "K_TOO_LARGE"):
        assert getattr(frames, name) == getattr(CHILD, name), name
    assert frames.HEADER.format == CHILD._HEADER.format


def test_frame_reader_splits_a_stream_and_rejects_garbage() -> None:
    reader = frames.FrameReader()
    stream = frames.HEADER.pack(0, frames.K_LOADED, 0) + frames.HEADER.pack(0, frames.K_RESULT, 3)
    assert [f.kind for f in reader.feed(stream + b"V1")] == [frames.K_LOADED]
    (frame,) = reader.feed(b"2")
    assert frames.call_outcome(frame, 0.0) == PyOutcome("ok", value=12)
    with pytest.raises(frames.ProtocolError):
        frames.FrameReader().feed(struct.pack(">IBI", 0, 99, 0))
    with pytest.raises(frames.ProtocolError):
        frames.FrameReader().feed(struct.pack(">IBI", 0, frames.K_RESULT, 1 << 30))


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b'E{"d":{"type":"ValueError","message":"m"}}', "raised"),
        (b'E{"d":{"type":1,"message":"m"}}', "bad_result"),
        (b'E{"d":{"type":"X"}}', "bad_result"),
        (b"E[1]", "bad_result"),
        (b"Uwhy", "bad_result"),
        (b"XSystemExit(0)", "crashed"),
        (b"Q", "bad_result"),
        (b"", "bad_result"),
    ],
)
def test_call_payloads_map_to_statuses(payload: bytes, status: str) -> None:
    frame = frames.Frame(0, frames.K_RESULT, payload)
    assert frames.call_outcome(frame, 0.0).status == status
