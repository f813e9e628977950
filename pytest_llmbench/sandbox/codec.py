"""The value format between the harness and the python runner, harness side.

Inputs go in with `marshal` (the sandbox side reads them without importing `json`, which costs
about 7 ms of interpreter start-up). Results come back as JSON text in which lists are arrays,
tuples are `{"t": [...]}` and dicts are `{"d": {...}}`, so every plain type survives the trip
exactly. The bytes that come back were produced by untrusted code: `decode_result` trusts nothing
about them and rebuilds the value from exact builtin types only.
"""

from __future__ import annotations

import json
import marshal
from typing import Any

MAX_RESULT_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000

_SCALARS = (type(None), bool, int, float, str)


class UnsupportedValue(ValueError):
    """A value is not plain data, or is too large or too deep."""


def encode_input(value: Any) -> bytes:
    """Marshal an input after checking it holds plain values only (marshal would also take
    code objects and sets, which have no business crossing into the sandbox)."""
    _check_plain(value, 0, [0])
    return marshal.dumps(value)


def _check_plain(value: Any, depth: int, nodes: list[int]) -> None:
    nodes[0] += 1
    if nodes[0] > MAX_NODES:
        raise UnsupportedValue(f"more than {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise UnsupportedValue(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is list or kind is tuple:
        for item in value:
            _check_plain(item, depth + 1, nodes)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise UnsupportedValue(f"dict key of type {type(key).__name__}")
            _check_plain(item, depth + 1, nodes)
        return
    raise UnsupportedValue(f"value of type {kind.__name__}")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise UnsupportedValue("duplicate key")
    return result


def decode_result(data: bytes) -> Any:
    """Rebuild a result from the sandbox's JSON text; raise UnsupportedValue if it is not
    exactly a plain value within the caps."""
    if len(data) > MAX_RESULT_BYTES:
        raise UnsupportedValue(f"result larger than {MAX_RESULT_BYTES} bytes")
    try:
        raw = json.loads(data.decode("ascii"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UnsupportedValue(f"malformed result: {exc}") from None
    return _untag(raw, 0, [0])


def _untag(raw: Any, depth: int, nodes: list[int]) -> Any:
    nodes[0] += 1
    if nodes[0] > MAX_NODES:
        raise UnsupportedValue(f"more than {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise UnsupportedValue(f"nested deeper than {MAX_DEPTH}")
    if raw is None or type(raw) in (bool, int, float, str):
        return raw
    if type(raw) is list:
        return [_untag(item, depth + 1, nodes) for item in raw]
    if type(raw) is dict and len(raw) == 1:
        ((tag, body),) = raw.items()
        if tag == "t" and type(body) is list:
            return tuple(_untag(item, depth + 1, nodes) for item in body)
        if tag == "d" and type(body) is dict:
            return {key: _untag(item, depth + 1, nodes) for key, item in body.items()}
    raise UnsupportedValue("malformed result: unknown structure")
