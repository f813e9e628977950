"""Frames on the python runner's result pipe, harness side: splitting the byte stream and
turning each call's frame into a PyOutcome."""

from __future__ import annotations

from dataclasses import dataclass

# The frame kinds are defined once, by the child that sends them (it runs from source in the
# sandbox and cannot import this package; the parent can import it).
from ._pychild import _HEADER as HEADER
from ._pychild import K_CRASHED as K_CRASHED
from ._pychild import K_HELLO as K_HELLO
from ._pychild import K_LOAD_ERROR as K_LOAD_ERROR
from ._pychild import K_LOADED as K_LOADED
from ._pychild import K_RESULT as K_RESULT
from ._pychild import K_TIMEOUT as K_TIMEOUT
from ._pychild import K_TOO_LARGE as K_TOO_LARGE
from .base import PyOutcome
from .codec import MAX_RESULT_BYTES, UnsupportedValue, decode_result

CALL_KINDS = frozenset({K_RESULT, K_CRASHED, K_TIMEOUT, K_TOO_LARGE})

MAX_PAYLOAD = MAX_RESULT_BYTES + 64 * 1024


class ProtocolError(Exception):
    """The result pipe carried something the fork-server would never send."""


@dataclass(frozen=True)
class Frame:
    index: int
    kind: int
    payload: bytes


class FrameReader:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= HEADER.size:
            index, kind, length = HEADER.unpack_from(self._buffer)
            if kind not in CALL_KINDS | {K_HELLO, K_LOADED, K_LOAD_ERROR} or length > MAX_PAYLOAD:
                raise ProtocolError(f"bad frame header (kind {kind}, length {length})")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(Frame(index, kind, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


def call_outcome(frame: Frame, seconds: float) -> PyOutcome:
    """The outcome a call frame reports. Every field is rebuilt from checked plain data."""
    if frame.kind == K_TIMEOUT:
        return PyOutcome("timeout", detail="the call ran past its deadline", seconds=seconds)
    if frame.kind == K_TOO_LARGE:
        return PyOutcome(
            "bad_result", detail=f"result larger than {MAX_RESULT_BYTES} bytes", seconds=seconds
        )
    if frame.kind == K_CRASHED:
        return PyOutcome("crashed", detail=_text(frame.payload), seconds=seconds)
    tag, body = frame.payload[:1], frame.payload[1:]
    if tag == b"X":
        return PyOutcome("crashed", detail=_text(body)[:500], seconds=seconds)
    if tag == b"U":
        return PyOutcome("bad_result", detail=_text(body)[:500], seconds=seconds)
    try:
        value = decode_result(body)
    except UnsupportedValue as exc:
        return PyOutcome("bad_result", detail=str(exc), seconds=seconds)
    if tag == b"V":
        return PyOutcome("ok", value=value, seconds=seconds)
    if (
        tag == b"E"
        and type(value) is dict
        and set(value) == {"type", "message"}
        and type(value["type"]) is str
        and type(value["message"]) is str
    ):
        return PyOutcome(
            "raised", exception=value["type"][:200], detail=value["message"], seconds=seconds
        )
    return PyOutcome("bad_result", detail="malformed result frame", seconds=seconds)
