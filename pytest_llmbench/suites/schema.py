"""JSON-schema checks of tool-call arguments: the one checker the mock tools and the scorer share.

A function's `parameters` schema says which arguments a call must carry (`required`), which it
may carry (`properties`: any other argument is refused, as the Berkeley Function Calling
Leaderboard's checker refuses it), and what each value must be. The subset of JSON Schema that
is checked, at every depth: `type` (a name or a list of names), `enum`, `items`, `properties`,
`anyOf` (some branch fits) and `oneOf` (exactly one branch fits).

Types are exact: a bool is never a number or an integer, an int is a number, and a float is an
integer only when the caller says `whole_float_is_integer` (3.0 then counts, as JSON Schema
itself has it). The mock tools say so: a model that writes 3.0 passengers gets its booking, and
the scorer, which does not, decides whether the call was right (a 3.0 is a float to the
leaderboard's strict check).

Errors are one short line naming the argument by its path (`settings.theme`, `items[2]`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["JSON_TYPES", "arguments_error", "shown", "value_error"]

JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}

# How a string is compared with an enum's strings (the scorer passes the leaderboard's
# normalisation for arguments whose matcher normalises).
Normalize = Callable[[str], str]


def shown(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters, for one-line reasons."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _has_type(value: Any, kind: str, whole_float_is_integer: bool) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer" and whole_float_is_integer and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, JSON_TYPES[kind])


def _in_enum(value: Any, enum: Sequence[Any], normalize: Normalize | None) -> bool:
    if value in enum:
        return True
    if normalize is not None and isinstance(value, str):
        return normalize(value) in {normalize(e) for e in enum if isinstance(e, str)}
    return False


def _branches(schema: Mapping[str, Any], keyword: str) -> list[Mapping[str, Any]]:
    branches = schema.get(keyword)
    if not isinstance(branches, list):
        return []
    return [b for b in branches if isinstance(b, Mapping)]


def value_error(
    value: Any,
    schema: Any,
    path: str,
    *,
    whole_float_is_integer: bool = False,
    normalize: Normalize | None = None,
) -> str | None:
    """A reason if `value` does not fit `schema` (see the module's docstring), else None.

    `normalize`: strings are in an `enum` when they are after it."""

    def check(item: Any, sub: Any, where: str) -> str | None:
        return value_error(
            item, sub, where, whole_float_is_integer=whole_float_is_integer, normalize=normalize
        )

    if not isinstance(schema, Mapping) or not schema:
        return None  # no constraint (JSON Schema's `true`, or a schema the spec left out)
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else []
    known = [k for k in kinds if k in JSON_TYPES]
    if known and not any(_has_type(value, k, whole_float_is_integer) for k in known):
        return f"{path}: expected {'/'.join(known)}, got {type(value).__name__} {shown(value)}"
    enum = schema.get("enum")
    if isinstance(enum, list) and not _in_enum(value, enum, normalize):
        return f"{path}: {shown(value)} is not one of {enum}"
    for keyword in ("anyOf", "oneOf"):
        branches = _branches(schema, keyword)
        if not branches:
            continue
        reasons = [check(value, branch, path) for branch in branches]
        fits = reasons.count(None)
        if fits == 0:
            first = "; ".join(r for r in reasons[:3] if r)
            return f"{path}: fits none of the {len(branches)} schemas of {keyword} ({first})"
        if keyword == "oneOf" and fits > 1:
            return f"{path}: {shown(value)} fits {fits} schemas of oneOf, which takes exactly one"
    if isinstance(value, (list, tuple)):
        items = schema.get("items")
        for index, item in enumerate(value):
            why = check(item, items, f"{path}[{index}]")
            if why:
                return why
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for key, item in value.items():
                why = check(item, properties.get(key), f"{path}.{key}")
                if why:
                    return why
    return None


def arguments_error(
    parameters: Mapping[str, Any] | None,
    arguments: Mapping[str, Any],
    *,
    whole_float_is_integer: bool = False,
    normalize: Mapping[str, Normalize] | None = None,
) -> str | None:
    """A reason if a call's `arguments` are not valid for the function's `parameters` schema:
    a required argument missing, an argument the schema does not have, or a value that does
    not fit its property's schema. None (no schema) checks nothing.

    `normalize`: per argument name, how its strings compare with an enum's."""
    if parameters is None:
        return None
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    for name in parameters.get("required") or ():
        if name not in arguments:
            return f"missing required argument {name!r}"
    for name, value in arguments.items():
        if name not in properties:
            return f"unknown argument {name!r}"
        why = value_error(
            value,
            properties[name],
            name,
            whole_float_is_integer=whole_float_is_integer,
            normalize=(normalize or {}).get(name),
        )
        if why:
            return why
    return None
