"""Argument matching (BFCL-compatible), best assignment of parallel calls, and case checks."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from pytest_llmbench.suites.base import ToolExchange
from pytest_llmbench.suites.matching import (
    best_assignment,
    bfcl_normalize,
    check_case,
    match_arguments,
    match_calls,
    match_value,
)
from pytest_llmbench.taskfiles.format import ToolingCase
from pytest_llmbench.taskfiles.matchers import MatcherError, check_matcher

NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("matcher", "actual", "schema", "ok"),
    [
        ("Paris", "Paris", None, True),
        ("Paris", "paris", None, False),  # a literal is exact
        (3, 3, None, True),
        (3, 3.0, None, False),  # a float is not accepted for an int
        (3, 3.0, NUMBER, True),  # ... unless the schema says number
        (3, 3.0, INTEGER, False),
        (3.0, 3, None, True),  # an int is accepted for a float
        (2.5, 2.5, None, True),
        (2.5, 2, None, False),
        (1, True, None, False),  # bool is never a number
        (True, 1, None, False),
        (True, True, None, True),
        (False, True, None, False),
        (None, None, None, True),
        (None, "", None, False),
        ("5", 5, None, False),
        (5, "5", None, False),
    ],
)
def test_literal_scalars(matcher: Any, actual: Any, schema: Any, ok: bool) -> None:
    assert (match_value(matcher, actual, schema) is None) is ok


def test_literal_lists_are_ordered_and_element_wise() -> None:
    assert match_value([1, 2, 3], [1, 2, 3]) is None
    assert match_value([1, 2, 3], (1, 2, 3)) is None
    assert "value[1]" in (match_value([1, 2, 3], [1, 3, 2]) or "")
    assert "3 items" in (match_value([1, 2, 3], [1, 2]) or "")
    assert match_value([{"contains": "par"}, 2], ["Paris", 2]) is None
    assert match_value([1], "1") is not None


def test_nested_dicts_are_recursive_strict_on_keys_and_respect_optional() -> None:
    matcher = {"city": {"contains": "paris"}, "geo": {"lat": {"approx": 48.85, "tol": 0.01}}}
    assert match_value(matcher, {"city": "Paris, FR", "geo": {"lat": 48.856}}) is None
    why = match_value(matcher, {"city": "Paris", "geo": {"lat": 48.856, "lon": 2.35}})
    assert why is not None and "unexpected key 'lon'" in why
    assert "geo.lat: missing" in (match_value(matcher, {"city": "Paris", "geo": {}}) or "")
    optional = {"city": "Paris", "zip": {"equals": "75001", "optional": True}}
    assert match_value(optional, {"city": "Paris"}) is None
    assert match_value(optional, {"city": "Paris", "zip": "75002"}) is not None


# --------------------------------------------------------------------------- matcher kinds


def test_contains_is_case_insensitive_and_needs_a_string() -> None:
    assert match_value({"contains": "TOKYO"}, "Asia/Tokyo") is None
    assert match_value({"contains": "osaka"}, "Asia/Tokyo") is not None
    assert match_value({"contains": "250"}, 250) is not None


def test_one_of_options_are_matchers() -> None:
    m = {"one_of": ["celsius", {"contains": "metric"}, 3]}
    assert match_value(m, "celsius") is None
    assert match_value(m, "Metric units") is None
    assert match_value(m, 3) is None
    why = match_value(m, "kelvin")
    assert why is not None and "not one of" in why


def test_bfcl_normalisation() -> None:
    assert bfcl_normalize("New York, NY") == "newyorkny"
    assert bfcl_normalize("it's") == 'it"s'
    assert bfcl_normalize("a-b_c/d.e*f^g") == "abcdefg"
    m = {"one_of": ["New York, NY"], "normalize": True}
    assert match_value(m, "new york ny") is None
    assert match_value({"one_of": ["New York, NY"]}, "new york ny") is not None
    # normalisation reaches strings inside lists
    assert match_value({"equals": ["San Francisco"], "normalize": True}, ["san-francisco"]) is None


def test_unordered_lists_match_as_multisets() -> None:
    m = {"equals": ["a", "b", "b"], "unordered": True}
    assert match_value(m, ["b", "a", "b"]) is None
    assert match_value(m, ["a", "a", "b"]) is not None
    assert match_value({"equals": ["a", "b"]}, ["b", "a"]) is not None
    # elements that are matchers are assigned, not matched greedily
    m2 = {"equals": [{"contains": "a"}, "ab"], "unordered": True}
    assert match_value(m2, ["ab", "xa"]) is None


def test_approx() -> None:
    assert match_value({"approx": 230.0}, 230) is None
    assert match_value({"approx": 230.0}, 230.0000001) is None
    assert match_value({"approx": 230.0}, 230.1) is not None
    assert match_value({"approx": 230.0, "tol": 0.5}, 230.4) is None
    assert match_value({"approx": 1000.0, "rel": 0.01}, 1009.0) is None
    assert match_value({"approx": 1000.0, "rel": 0.01}, 1011.0) is not None
    assert match_value({"approx": 1.0}, True) is not None
    assert match_value({"approx": 1.0}, "1.0") is not None
    assert match_value({"approx": 2.0}, 2.0, INTEGER) is not None


# --------------------------------------------------------------------------- arguments

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        "days": {"type": "integer", "default": 1},
    },
    "required": ["city"],
}


def test_match_arguments_basic() -> None:
    assert match_arguments({"city": "Paris"}, {"city": "Paris", "unit": "celsius"}) is None
    assert match_arguments({}, {"anything": 1}) is None
    assert match_arguments({"city": "Paris"}, {}) == "missing argument 'city'"
    why = match_arguments({"city": "Paris"}, {"city": "Lyon"})
    assert why is not None and why.startswith("city:")


def test_omitted_argument_matches_through_its_schema_default() -> None:
    assert match_arguments({"unit": "celsius"}, {"city": "Paris"}, WEATHER) is None
    assert match_arguments({"days": 1}, {"city": "Paris"}, WEATHER) is None
    why = match_arguments({"unit": "fahrenheit"}, {"city": "Paris"}, WEATHER)
    assert why is not None and "default" in why
    # without the schema there is no default to fall back on
    assert match_arguments({"unit": "celsius"}, {"city": "Paris"}) == "missing argument 'unit'"
    # a required parameter's default does not excuse omitting it
    required = {**WEATHER, "required": ["city", "unit"]}
    assert match_arguments({"unit": "celsius"}, {"city": "Paris"}, required) is not None


def test_optional_matcher_allows_omission() -> None:
    matchers = {"city": "Paris", "unit": {"one_of": ["fahrenheit"], "optional": True}}
    assert match_arguments(matchers, {"city": "Paris"}, WEATHER) is None
    assert match_arguments(matchers, {"city": "Paris", "unit": "celsius"}, WEATHER) is not None


def test_schema_number_accepts_ints_and_floats_for_literals() -> None:
    schema = {"type": "object", "properties": {"t": {"type": "number"}}}
    assert match_arguments({"t": 21}, {"t": 21.0}, schema) is None
    assert match_arguments({"t": 21.0}, {"t": 21}, schema) is None
    assert match_arguments({"t": 21}, {"t": 21.0}) is not None


def test_strict_mode_is_the_bfcl_rule() -> None:
    matchers = {"city": "Paris", "unit": {"one_of": ["celsius"], "optional": True}}
    assert match_arguments(matchers, {"city": "Paris"}, WEATHER, strict=True) is None
    # an argument without a matcher fails
    why = match_arguments(matchers, {"city": "Paris", "days": 2}, WEATHER, strict=True)
    assert why == "unexpected argument 'days'"
    assert match_arguments(matchers, {"city": "Paris", "days": 2}, WEATHER) is None
    # a required argument missing fails even without a matcher for it
    assert match_arguments({}, {}, WEATHER, strict=True) == "missing required argument 'city'"
    # types are checked against the schema
    why = match_arguments(
        {"city": "Paris", "days": {"one_of": [2, "2"]}},
        {"city": "Paris", "days": "2"},
        WEATHER,
        strict=True,
    )
    assert why is not None and "integer" in why
    # unknown to the schema
    matchers = {"city": "Paris", "colour": "red"}
    why = match_arguments(matchers, {"city": "Paris", "colour": "red"}, WEATHER, strict=True)
    assert why is not None and "colour" in why


ROUTE = {
    "type": "object",
    "properties": {
        "mode": {"type": "string", "enum": ["fastest", "scenic"]},
        "avoid": {"type": "array", "items": {"type": "string", "enum": ["tolls", "ferries"]}},
        "prefs": {
            "type": "object",
            "properties": {"units": {"type": "string", "enum": ["metric", "imperial"]}},
        },
    },
    "required": ["mode"],
}


# Matchers that accept any spelling of these values, so that only the enum can object.
ROUTE_MATCHERS = {
    "mode": {"one_of": ["fastest", "quickest"], "normalize": True},
    "avoid": {"one_of": [["tolls", "ferries"], ["tolls", "bridges"]], "normalize": True,
              "optional": True},
    "prefs": {"one_of": [{"units": "metric"}, {"units": "kelvin"}], "normalize": True,
              "optional": True},
}  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "ok"),
    [
        ({"mode": "fastest"}, True),
        ({"mode": "FASTEST"}, True),  # the leaderboard's checker accepts it: so must normalize
        ({"mode": "Fast-est"}, True),
        ({"mode": "quickest"}, False),  # the matcher takes it, the enum does not
        ({"mode": "fastest", "avoid": ["Tolls", "FERRIES"]}, True),  # enums inside a list
        ({"mode": "fastest", "avoid": ["tolls", "bridges"]}, False),
        ({"mode": "fastest", "prefs": {"units": "Metric"}}, True),  # inside an object
        ({"mode": "fastest", "prefs": {"units": "kelvin"}}, False),
    ],
)
def test_strict_normalize_compares_enums_as_the_leaderboard(
    arguments: dict[str, Any], ok: bool
) -> None:
    why = match_arguments(ROUTE_MATCHERS, arguments, ROUTE, strict=True)
    assert (why is None) is ok, why
    if not ok:
        assert "is not one of" in (why or "")


def test_without_normalize_a_strict_enum_stays_exact() -> None:
    why = match_arguments({"mode": "FASTEST"}, {"mode": "FASTEST"}, ROUTE, strict=True)
    assert why == "mode: 'FASTEST' is not one of ['fastest', 'scenic']"
    # a normalize nested inside a literal list counts for its elements
    matchers = {"mode": "fastest", "avoid": [{"equals": "tolls", "normalize": True}]}
    arguments = {"mode": "fastest", "avoid": ["TOLLS"]}
    assert match_arguments(matchers, arguments, ROUTE, strict=True) is None


# --------------------------------------------------------------------------- check_matcher


@pytest.mark.parametrize(
    "matcher",
    [
        {"one_of": []},
        {"one_of": "a"},
        {"contains": 3},
        {"approx": "x"},
        {"approx": 1.0, "tol": -1},
        {"contains": "a", "one_of": ["a"]},
        {"contains": "a", "unordered": True},
        {"equals": 1, "optional": "yes"},
        {"outer": {"inner": {"one_of": []}}},
        [{"contains": 1}],
    ],
)
def test_check_matcher_rejects(matcher: Any) -> None:
    with pytest.raises(MatcherError):
        check_matcher(matcher)


@pytest.mark.parametrize(
    "matcher",
    [
        "x",
        1,
        1.5,
        None,
        True,
        [1, "a"],
        {"a": {"b": [1]}},
        {"one_of": [1, {"contains": "x"}]},
        {"approx": 1, "tol": 0.1, "rel": 0.01, "optional": True},
        {"equals": {"contains": 1}},
    ],
)
def test_check_matcher_accepts(matcher: Any) -> None:
    try:
        check_matcher(matcher)
    except MatcherError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"rejected a well-formed matcher: {exc}")


# --------------------------------------------------------------------------- assignment


def test_best_assignment_beats_greedy() -> None:
    # expectation 0 fits calls 0 and 1, expectation 1 fits only call 0: greedy would give
    # call 0 to expectation 0 and leave expectation 1 unmatched.
    assert best_assignment([[True, True], [True, False]]) == [1, 0]


def test_best_assignment_edges() -> None:
    assert best_assignment([]) == []
    assert best_assignment([[], []]) == [None, None]
    assert best_assignment([[True], [True]]) in ([0, None], [None, 0])
    assert best_assignment([[False, False]]) == [None]


def _brute_force_size(grid: list[list[bool]]) -> int:
    rows, cols = len(grid), len(grid[0]) if grid else 0
    best = 0  # every injective row -> column-or-nothing map (columns >= cols mean nothing)
    for perm in itertools.permutations(range(max(rows, cols)), rows):
        best = max(best, sum(1 for r, c in enumerate(perm) if c < cols and grid[r][c]))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_best_assignment_is_maximum_and_valid(seed: int) -> None:
    rng = random.Random(seed)
    rows, cols = rng.randint(1, 5), rng.randint(1, 5)
    grid = [[rng.random() < 0.4 for _ in range(cols)] for _ in range(rows)]
    result = best_assignment(grid)
    used = [c for c in result if c is not None]
    assert len(used) == len(set(used))
    assert all(grid[r][c] for r, c in enumerate(result) if c is not None)
    assert len(used) == _brute_force_size(grid)


def test_match_calls_parallel() -> None:
    expected: list[tuple[str, dict[str, Any]]] = [
        ("get_weather", {"city": {"one_of": ["Paris", "London"]}}),
        ("get_weather", {"city": "Paris"}),
    ]
    made: list[tuple[str, dict[str, Any] | None]] = [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "London"}),
    ]
    assignment, reasons = match_calls(expected, made)
    assert assignment == [1, 0] and reasons == ["", ""]
    assignment, reasons = match_calls(expected, made[:1])
    assert assignment.count(None) == 1
    assert any("already taken" in r for r in reasons)
    _, reasons = match_calls([("search", {})], made)
    assert reasons == ["search was not called"]
    _, reasons = match_calls([("get_weather", {"city": "Rome"})], [("get_weather", None)])
    assert "not valid JSON" in reasons[0]


# --------------------------------------------------------------------------- check_case


def _uses(*turns: list[tuple[str, dict[str, Any] | None]]) -> list[ToolExchange]:
    return [ToolExchange.of(step, n, a) for step, turn in enumerate(turns) for n, a in turn]


def _case(**data: Any) -> ToolingCase:
    return ToolingCase.model_validate({"id": "c", **data})


def test_check_case_called_and_not_called() -> None:
    uses = _uses([("get_user", {"name": "Bob"})], [("send_email", {"to": "bob@example.com"})])
    assert check_case(_case(called="send_email", args={"to": {"contains": "bob@"}}), uses) is None
    why = check_case(_case(called="send_email", args={"to": "alice@example.com"}), uses)
    assert why is not None and "wrong arguments" in why
    why = check_case(_case(called="search"), uses)
    assert why == "search was not called (calls: get_user, send_email)"
    assert check_case(_case(not_called="search"), uses) is None
    assert check_case(_case(not_called="get_user"), uses) == "called get_user (1x)"
    assert "not valid JSON" in (check_case(_case(called="x"), _uses([("x", None)])) or "")


def test_check_case_strict_uses_the_schema() -> None:
    uses = _uses([("get_weather", {"city": "Paris", "days": 3})])
    case = _case(called="get_weather", args={"city": "Paris"}, strict=True)
    assert check_case(case, uses, lambda name: WEATHER) is not None
    assert check_case(_case(called="get_weather", args={"city": "Paris"}), uses) is None


def test_check_case_calls_same_turn_and_only() -> None:
    paris = ("get_weather", {"city": "Paris"})
    tokyo = ("get_weather", {"city": "Tokyo"})
    both = {
        "calls": [
            {"name": "get_weather", "args": {"city": "Paris"}},
            {"name": "get_weather", "args": {"city": "Tokyo"}},
        ]
    }
    one_turn = _uses([paris, tokyo])
    two_turns = _uses([paris], [tokyo])
    assert check_case(_case(**both), one_turn) is None
    assert check_case(_case(**both), two_turns) is None
    assert check_case(_case(**both, same_turn=True), one_turn) is None
    why = check_case(_case(**both, same_turn=True), two_turns)
    assert why is not None and "single turn" in why
    extra = _uses([paris, tokyo, ("get_weather", {"city": "Oslo"})])
    assert check_case(_case(**both), extra) is None
    why = check_case(_case(**both, only=True), extra)
    assert why is not None and "beyond" in why
    why = check_case(_case(**both), _uses([paris, paris]))
    assert why is not None and "Tokyo" in why


def test_check_case_no_call() -> None:
    assert check_case(_case(no_call=True), []) is None
    assert check_case(_case(no_call=True), _uses([("search", {"query": "x"})])) is not None
