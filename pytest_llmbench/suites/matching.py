"""Argument matching for the tooling suite, compatible with the Berkeley Function Calling
Leaderboard's AST checker, plus what it lacks (numeric tolerance, schema defaults, parallel
calls matched by best assignment instead of greedily).

How a matcher is written is the task format's (taskfiles/matchers.py, which the loader checks every
task file against); this module gives each kind its meaning:

- a literal (string, number, bool, null) means *equal*, with exact types: a bool is never a
  number, an int is accepted where a float is expected (and either where the schema says
  ``number``), a float is not accepted for an int;
- a literal list means the same length and each element matching in order (elements are
  matchers themselves); a literal dict means the same keys, each value matching (values are
  matchers, so nesting is recursive; a key whose matcher is optional may be absent);
- ``{equals: V}``: V as a literal, with the modifiers below;
- ``{one_of: [A, B, ...]}``: any of the options (each a matcher);
- ``{contains: s}``: a string containing s, case-insensitively;
- ``{approx: x, tol: 1e-6, rel: 0}``: a number within ``max(tol, rel * |x|)`` of x.

Modifiers: ``optional: true`` (the argument may be omitted; if given it must match),
``normalize: true`` on equals/one_of (strings, also inside lists and dicts, compared after the
leaderboard's normalisation: spaces and ``,./-_*^`` removed, lower case, ``'`` read as ``"``;
with ``strict``, a schema ``enum`` is checked the same way, as the leaderboard, which checks no
enum, accepts ``'FASTEST'`` for ``['fastest', 'scenic']``),
``unordered: true`` on equals/one_of (a list matches in any order, as a multiset).

An omitted argument whose matcher is not optional still matches when the tool's schema declares
it optional with a ``default`` that satisfies the matcher. With ``strict=True`` the call must
also be valid for the schema (suites/schema.py, with exact types: 3.0 is no integer) and carry
no argument that has no matcher, as the leaderboard demands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..taskfiles.matchers import head_of, is_optional, parse_matcher
from .schema import arguments_error, shown

if TYPE_CHECKING:
    from ..taskfiles.format import ToolingCase

__all__ = [
    "ToolUse",
    "best_assignment",
    "bfcl_normalize",
    "check_case",
    "match_arguments",
    "match_calls",
    "match_value",
]

_BFCL_STRIP = re.compile(r"[ ,./\-_*^]")


def bfcl_normalize(text: str) -> str:
    """The leaderboard's string normalisation (its `standardize_string`)."""
    return _BFCL_STRIP.sub("", text).lower().replace("'", '"')


# --------------------------------------------------------------------------- value matching


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _schema_type(schema: Mapping[str, Any] | None) -> str | None:
    if not schema:
        return None
    kind = schema.get("type")
    return kind if isinstance(kind, str) else None


def _sub_schema(schema: Mapping[str, Any] | None, key: str | int) -> Mapping[str, Any] | None:
    if not schema:
        return None
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, Mapping) else None
    props = schema.get("properties")
    if isinstance(props, Mapping):
        sub = props.get(key)
        return sub if isinstance(sub, Mapping) else None
    return None


def _match_scalar(
    expected: Any, actual: Any, schema: Mapping[str, Any] | None, normalize: bool, path: str
) -> str | None:
    if expected is None or isinstance(expected, bool):
        if actual is expected or (isinstance(actual, bool) and actual == expected):
            return None
        return f"{path}: expected {shown(expected)}, got {shown(actual)}"
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return f"{path}: expected a string {shown(expected)}, got {shown(actual)}"
        same = (
            bfcl_normalize(actual) == bfcl_normalize(expected) if normalize else actual == expected
        )
        return None if same else f"{path}: expected {shown(expected)}, got {shown(actual)}"
    if _is_number(expected):
        if not _is_number(actual):
            return f"{path}: expected a number {shown(expected)}, got {shown(actual)}"
        kind = _schema_type(schema)
        if kind == "integer" and not isinstance(actual, int):
            return f"{path}: expected an integer, got {shown(actual)}"
        if isinstance(expected, int) and isinstance(actual, float) and kind != "number":
            return f"{path}: expected the integer {expected}, got the float {shown(actual)}"
        if actual != expected:
            return f"{path}: expected {shown(expected)}, got {shown(actual)}"
        return None
    return f"{path}: cannot compare with {shown(expected)}"


def _match_list(
    expected: Sequence[Any],
    actual: Any,
    schema: Mapping[str, Any] | None,
    normalize: bool,
    unordered: bool,
    path: str,
) -> str | None:
    if not isinstance(actual, (list, tuple)):
        return f"{path}: expected a list, got {shown(actual)}"
    if len(actual) != len(expected):
        return f"{path}: expected {len(expected)} items, got {len(actual)}"
    item_schema = _sub_schema(schema, 0)
    if not unordered:
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            why = match_value(want, got, item_schema, path=f"{path}[{index}]", _normalize=normalize)
            if why:
                return why
        return None
    grid = [
        [
            match_value(want, got, item_schema, path=path, _normalize=normalize) is None
            for got in actual
        ]
        for want in expected
    ]
    assignment = best_assignment(grid)
    missing = [expected[i] for i, col in enumerate(assignment) if col is None]
    if missing:
        return f"{path}: no item matches {shown(missing[0])} (in any order)"
    return None


def _match_dict(
    expected: Mapping[str, Any],
    actual: Any,
    schema: Mapping[str, Any] | None,
    normalize: bool,
    path: str,
) -> str | None:
    if not isinstance(actual, Mapping):
        return f"{path}: expected an object, got {shown(actual)}"
    for key, want in expected.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in actual:
            if parse_matcher(want).optional:
                continue
            return f"{sub}: missing"
        why = match_value(
            want, actual[key], _sub_schema(schema, key), path=sub, _normalize=normalize
        )
        if why:
            return why
    extra = [k for k in actual if k not in expected]
    if extra:
        return f"{path or 'object'}: unexpected key {extra[0]!r}"
    return None


def match_value(
    matcher: Any,
    actual: Any,
    schema: Mapping[str, Any] | None = None,
    *,
    path: str = "value",
    _normalize: bool = False,
) -> str | None:
    """None if `actual` satisfies `matcher`, else a short reason naming `path`.

    `schema` is the JSON schema of the value (it decides whether an int/float mix is fine)."""
    m = parse_matcher(matcher)
    normalize = _normalize or m.normalize
    if m.kind == "contains":
        if not isinstance(actual, str):
            return f"{path}: expected a string containing {shown(m.value)}, got {shown(actual)}"
        if str(m.value).lower() in actual.lower():
            return None
        return f"{path}: {shown(actual)} does not contain {shown(m.value)}"
    if m.kind == "approx":
        if not _is_number(actual):
            return f"{path}: expected a number near {m.value}, got {shown(actual)}"
        if _schema_type(schema) == "integer" and not isinstance(actual, int):
            return f"{path}: expected an integer, got {shown(actual)}"
        target = float(m.value)
        if abs(float(actual) - target) <= max(m.tol, m.rel * abs(target)):
            return None
        allowed = max(m.tol, m.rel * abs(target))
        return f"{path}: {shown(actual)} is not within {allowed:g} of {target:g}"
    if m.kind == "one_of":
        options: list[Any] = m.value if isinstance(m.value, list) else [m.value]
        for option in options:
            why = _literal_or_matcher(option, actual, schema, normalize, m.unordered, path)
            if why is None:
                return None
        listed = ", ".join(shown(o, 30) for o in options[:4])
        more = ", ..." if len(options) > 4 else ""
        return f"{path}: {shown(actual)} is not one of [{listed}{more}]"
    return _literal_or_matcher(m.value, actual, schema, normalize, m.unordered, path, literal=True)


def _literal_or_matcher(
    value: Any,
    actual: Any,
    schema: Mapping[str, Any] | None,
    normalize: bool,
    unordered: bool,
    path: str,
    literal: bool = False,
) -> str | None:
    if not literal and head_of(value) is not None:
        return match_value(value, actual, schema, path=path, _normalize=normalize)
    if isinstance(value, Mapping):
        return _match_dict(value, actual, schema, normalize, path)
    if isinstance(value, (list, tuple)):
        return _match_list(value, actual, schema, normalize, unordered, path)
    return _match_scalar(value, actual, schema, normalize, path)


# --------------------------------------------------------------------------- arguments


def _normalizes(matcher: Any) -> bool:
    """Whether `matcher`, or a matcher nested in it, compares strings normalised."""
    m = parse_matcher(matcher)
    if m.normalize:
        return True
    if m.kind == "one_of" and isinstance(m.value, list):
        return any(_normalizes(option) for option in m.value)
    if m.kind in ("literal", "equals") and isinstance(m.value, Mapping):
        return any(_normalizes(sub) for sub in m.value.values())
    if m.kind in ("literal", "equals") and isinstance(m.value, (list, tuple)):
        return any(_normalizes(sub) for sub in m.value)
    return False


def match_arguments(
    matchers: Mapping[str, Any],
    arguments: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    *,
    strict: bool = False,
) -> str | None:
    """None if the call's `arguments` satisfy every matcher, else a short human reason.

    `schema` is the function's `parameters` JSON schema (types, required, defaults). With
    `strict`, the call must also be schema-valid and have no argument without a matcher."""
    properties: Mapping[str, Any] = (schema or {}).get("properties") or {}
    required = set((schema or {}).get("required") or ())
    if strict:
        # Exact types: a 3.0 for an integer is a float, as the leaderboard's checker sees it.
        normalized = {
            name: bfcl_normalize
            for name in arguments
            if name in matchers and _normalizes(matchers[name])
        }
        why = arguments_error(schema, arguments, normalize=normalized)
        if why:
            return why
        unmatched = next((name for name in arguments if name not in matchers), None)
        if unmatched is not None:
            return f"unexpected argument {unmatched!r}"
    for name, matcher in matchers.items():
        sub = properties.get(name)
        sub_schema = sub if isinstance(sub, Mapping) else None
        if name not in arguments:
            if is_optional(matcher):
                continue
            if sub_schema is not None and "default" in sub_schema and name not in required:
                if match_value(matcher, sub_schema["default"], sub_schema, path=name) is None:
                    continue
                default = shown(sub_schema["default"])
                return f"{name}: omitted, and its default {default} does not match"
            return f"missing argument {name!r}"
        why = match_value(matcher, arguments[name], sub_schema, path=name)
        if why:
            return why
    return None


# --------------------------------------------------------------------------- assignment


def best_assignment(compatible: Sequence[Sequence[bool]]) -> list[int | None]:
    """A maximum matching of rows (expectations) to columns (calls) where `compatible[r][c]`.

    Returns, per row, the column it got or None. Each column is used at most once. Unlike a
    greedy pass, a call that fits several expectations goes where it leaves the most satisfied
    (Kuhn's augmenting paths; deterministic: lower columns are tried first)."""
    rows = len(compatible)
    cols = max((len(r) for r in compatible), default=0)
    owner: list[int | None] = [None] * cols

    def augment(row: int, seen: list[bool]) -> bool:
        for col, ok in enumerate(compatible[row]):
            if not ok or seen[col]:
                continue
            seen[col] = True
            current = owner[col]
            if current is None or augment(current, seen):
                owner[col] = row
                return True
        return False

    for row in range(rows):
        augment(row, [False] * cols)
    result: list[int | None] = [None] * rows
    for col, owned_by in enumerate(owner):
        if owned_by is not None:
            result[owned_by] = col
    return result


class ToolUse(Protocol):
    """A call the model made, as the scorer records it (the suite's ToolExchange fits)."""

    @property
    def step(self) -> int: ...

    @property
    def arguments(self) -> dict[str, Any] | None: ...  # None: malformed JSON


def _call_name(use: Any) -> str:
    call = getattr(use, "call", None)
    name = getattr(call, "name", None) if call is not None else getattr(use, "name", None)
    return str(name)


SchemaLookup = Callable[[str], "Mapping[str, Any] | None"]


def match_calls(
    expected: Sequence[tuple[str, Mapping[str, Any]]],
    made: Sequence[tuple[str, Mapping[str, Any] | None]],
    schema_of: SchemaLookup | None = None,
    *,
    strict: bool = False,
) -> tuple[list[int | None], list[str]]:
    """Match expected calls (name, matchers) to calls made (name, arguments or None for
    malformed JSON), one call per expectation, by best assignment.

    Returns the assignment (per expectation, the index of its call or None) and, per
    expectation, the reason it failed against its best candidate ("" when assigned)."""
    grid: list[list[bool]] = []
    reasons: list[list[str]] = []
    for name, matchers in expected:
        row: list[bool] = []
        why_row: list[str] = []
        schema = schema_of(name) if schema_of else None
        for made_name, arguments in made:
            if made_name != name:
                row.append(False)
                why_row.append("")
            elif arguments is None:
                row.append(False)
                why_row.append(f"{name}: arguments were not valid JSON")
            else:
                why = match_arguments(matchers, arguments, schema, strict=strict)
                row.append(why is None)
                why_row.append(why or "")
        grid.append(row)
        reasons.append(why_row)
    assignment = best_assignment(grid)
    explained: list[str] = []
    for index, (name, _) in enumerate(expected):
        if assignment[index] is not None:
            explained.append("")
            continue
        candidates = [r for r in reasons[index] if r]
        if candidates:
            explained.append(f"{name} called with wrong arguments: {candidates[0]}")
        elif any(made_name == name for made_name, _ in made):
            explained.append(f"{name}: its matching call is already taken by another expectation")
        else:
            explained.append(f"{name} was not called")
    return assignment, explained


def _group_by_step(uses: Iterable[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = {}
    for use in uses:
        groups.setdefault(int(getattr(use, "step", 0)), []).append(use)
    return groups


def check_case(
    case: ToolingCase, uses: Sequence[Any], schema_of: SchemaLookup | None = None
) -> str | None:
    """Check one tooling case against every call the model made: None if it passes, else why.

    `uses` are the calls in order, each with `.call.name` (or `.name`), `.arguments` (a dict,
    or None for malformed JSON) and `.step` (the assistant turn it came in)."""
    made = [(_call_name(u), getattr(u, "arguments", None)) for u in uses]
    if getattr(case, "no_call", False):
        if made:
            return f"expected no tool call, got {', '.join(n for n, _ in made)}"
        return None
    if case.not_called is not None:
        count = sum(1 for n, _ in made if n == case.not_called)
        return f"called {case.not_called} ({count}x)" if count else None
    if case.called is not None:
        schema = schema_of(case.called) if schema_of else None
        reasons: list[str] = []
        for name, arguments in made:
            if name != case.called:
                continue
            if arguments is None:
                reasons.append("arguments were not valid JSON")
                continue
            why = match_arguments(case.args, arguments, schema, strict=case.strict)
            if why is None:
                return None
            reasons.append(why)
        if not reasons:
            calls = ", ".join(n for n, _ in made) or "none"
            return f"{case.called} was not called (calls: {calls})"
        return f"{case.called} called with wrong arguments: {'; '.join(reasons)}"
    expected = [(c.name, c.args) for c in case.calls or ()]
    scopes = list(_group_by_step(uses).values()) if case.same_turn else [list(uses)]
    best: str = "no tool call"
    for scope in scopes:
        scoped = [(_call_name(u), getattr(u, "arguments", None)) for u in scope]
        _, explained = match_calls(expected, scoped, schema_of, strict=case.strict)
        failed = [e for e in explained if e]
        if not failed:
            if case.only and len(scoped) != len(expected):
                extra = len(scoped) - len(expected)
                best = f"{extra} call(s) beyond the {len(expected)} expected"
                continue
            return None
        best = failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
    if case.same_turn and len(scopes) > 1:
        return f"no single turn has all {len(expected)} calls: {best}"
    return best
