"""The one JSON-schema checker of tool-call arguments, in the two modes its callers use: the
mock tools (a whole float is an integer) and the scorer's strict check (exact types)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmbench.suites.matching import match_arguments
from pytest_llmbench.suites.schema import arguments_error, value_error
from pytest_llmbench.suites.toolbox import MockTool

# Every kind of constraint the checker knows, at the top level and nested.
ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "note": {"type": ["string", "null"]},
        "size": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["S", "M", "L"]}]},
        "ship": {
            "oneOf": [
                {"type": "string", "enum": ["pickup"]},
                {"type": "object", "properties": {"zip": {"type": "string"}}},
            ]
        },
        "address": {
            "type": "object",
            "properties": {
                "floor": {"type": "integer"},
                "zip": {"type": "string"},
                "label": {"type": ["string", "null"]},
                "door": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "lines": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
    "required": ["count"],
}

# (arguments, the mocks accept them, the strict scorer accepts them)
CASES: list[tuple[dict[str, Any], bool, bool]] = [
    ({"count": 3}, True, True),
    ({"count": 3.0}, True, False),  # a whole float: an integer to the mocks only
    ({"count": 3.5}, False, False),
    ({"count": True}, False, False),  # a bool is never an integer
    ({}, False, False),  # required
    ({"count": 1, "colour": "red"}, False, False),  # not in the schema
    # type lists
    ({"count": 1, "note": None}, True, True),
    ({"count": 1, "note": "x"}, True, True),
    ({"count": 1, "note": 5}, False, False),
    # anyOf: some branch fits
    ({"count": 1, "size": 42}, True, True),
    ({"count": 1, "size": "M"}, True, True),
    ({"count": 1, "size": "XL"}, False, False),
    ({"count": 1, "size": 4.0}, True, False),
    ({"count": 1, "size": [1]}, False, False),
    # oneOf: exactly one branch fits
    ({"count": 1, "ship": "pickup"}, True, True),
    ({"count": 1, "ship": {"zip": "75001"}}, True, True),
    ({"count": 1, "ship": {"zip": 75001}}, False, False),
    ({"count": 1, "ship": "drone"}, False, False),
    # nested properties, and unions inside them
    ({"count": 1, "address": {"floor": 2, "zip": "75001"}}, True, True),
    ({"count": 1, "address": {"floor": 2.0}}, True, False),
    ({"count": 1, "address": {"floor": "2"}}, False, False),
    ({"count": 1, "address": {"zip": 75001}}, False, False),
    ({"count": 1, "address": {"label": None, "door": "B"}}, True, True),
    ({"count": 1, "address": {"label": 1}}, False, False),
    ({"count": 1, "address": {"door": 7.0}}, True, False),
    ({"count": 1, "address": {"door": None}}, False, False),
    ({"count": 1, "address": {"lines": ["a", 2]}}, False, False),
    ({"count": 1, "address": "Paris"}, False, False),
]


@pytest.mark.parametrize(("arguments", "mocks", "strict"), CASES)
def test_one_checker_two_rules_for_integers(
    arguments: dict[str, Any], mocks: bool, strict: bool
) -> None:
    lenient = arguments_error(ORDER, arguments, whole_float_is_integer=True)
    exact = arguments_error(ORDER, arguments)
    assert (lenient is None) is mocks, lenient
    assert (exact is None) is strict, exact


def _mock(parameters: dict[str, Any]) -> MockTool:
    spec = {"type": "function", "function": {"name": "order", "parameters": parameters}}
    return MockTool("order", spec, lambda arguments: {"ok": True})


@pytest.mark.parametrize(("arguments", "mocks", "strict"), CASES)
def test_mock_tools_check_with_whole_floats_as_integers(
    arguments: dict[str, Any], mocks: bool, strict: bool
) -> None:
    result = _mock(ORDER).run(arguments)
    assert (result == {"ok": True}) is mocks, result


def _accept_anything(value: Any) -> Any:
    """A matcher that takes `value` whatever the schema says, so only the schema can object."""
    return {"one_of": [value]}


@pytest.mark.parametrize(("arguments", "mocks", "strict"), CASES)
def test_the_strict_scorer_checks_with_exact_types(
    arguments: dict[str, Any], mocks: bool, strict: bool
) -> None:
    matchers = {name: _accept_anything(value) for name, value in arguments.items()}
    why = match_arguments(matchers, arguments, ORDER, strict=True)
    assert (why is None) is strict, why


@pytest.mark.parametrize(
    ("value", "schema", "reason"),
    [
        (3.0, {"type": "integer"}, "count: expected integer, got float 3.0"),
        ("XL", {"enum": ["S", "M"]}, "count: 'XL' is not one of ['S', 'M']"),
        ({"floor": "2"}, ORDER["properties"]["address"], "count.floor: expected integer"),
        (["a", 2], {"items": {"type": "string"}}, "count[1]: expected string, got int 2"),
        ([1], ORDER["properties"]["size"], "count: fits none of the 2 schemas of anyOf"),
        (1, {"oneOf": [{"type": "integer"}, {"type": "number"}]}, "fits 2 schemas of oneOf"),
    ],
)
def test_reasons_name_the_path(value: Any, schema: Any, reason: str) -> None:
    assert reason in (value_error(value, schema, "count") or "")


def test_enum_strings_compare_through_the_callers_normalisation() -> None:
    schema = {"type": "object", "properties": {"mode": {"enum": ["fastest"]}}}
    assert arguments_error(schema, {"mode": "FASTEST"}) is not None
    assert arguments_error(schema, {"mode": "FASTEST"}, normalize={"mode": str.lower}) is None
    assert arguments_error(schema, {"mode": "FASTEST"}, normalize={"other": str.lower})


def test_no_schema_or_an_empty_one_constrains_nothing() -> None:
    assert arguments_error(None, {"anything": 1}) is None
    assert value_error(3.5, {}, "x") is None
    assert value_error(3.5, True, "x") is None
    assert arguments_error({}, {"anything": 1}) == "unknown argument 'anything'"
