"""The built-in mock tools: specs, the seed's results, bad input answered, never raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.suites.toolbox import FALLBACK_RESULT, TOOLBOX, MockTool, safe_arithmetic

SEED_TOOLS = [
    "get_user",
    "send_email",
    "get_weather",
    "get_time",
    "search",
    "read_file",
    "word_count",
    "get_exchange_rate",
    "calculator",
    "create_ticket",
]


def test_the_seed_tools_are_all_there() -> None:
    assert set(SEED_TOOLS) <= set(TOOLBOX)


@pytest.mark.parametrize("name", sorted(TOOLBOX))
def test_spec_is_a_full_openai_tool(name: str) -> None:
    tool = TOOLBOX[name]
    assert isinstance(tool, MockTool)
    assert tool.name == name
    assert tool.spec["type"] == "function"
    function = tool.spec["function"]
    assert function["name"] == name
    assert function["description"]
    params = function["parameters"]
    assert params["type"] == "object"
    assert set(params["required"]) <= set(params["properties"])
    json.dumps(tool.spec)  # plain data


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        (
            "get_user",
            {"name": "Alice"},
            {"name": "Alice", "email": "alice@example.com", "id": "u-42"},
        ),
        (
            "get_user",
            {"name": "bob smith"},
            {"name": "bob smith", "email": "bob@example.com", "id": "u-42"},
        ),
        (
            "get_user",
            {"name": "Dave"},
            {"name": "Dave", "email": "carol@example.com", "id": "u-42"},
        ),
        ("send_email", {"to": "x@y.z", "subject": "s"}, {"status": "sent", "to": "x@y.z"}),
        ("get_weather", {"city": "Oslo"}, {"city": "Oslo", "temp_c": 18, "condition": "cloudy"}),
        ("get_time", {"timezone": "Asia/Tokyo"}, {"zone": "Asia/Tokyo", "time": "14:30"}),
        (
            "search",
            {"query": "mars"},
            [{"title": "Result for mars", "url": "https://example.com/a"}],
        ),
        (
            "read_file",
            {"path": "Report.txt"},
            {"path": "Report.txt", "content": "the quick brown fox jumps over the lazy dog"},
        ),
        ("read_file", {"path": "notes.txt"}, {"path": "notes.txt", "content": "hello"}),
        ("word_count", {"text": "a b  c\nd"}, {"count": 4}),
        (
            "get_exchange_rate",
            {"base": "USD", "quote": "EUR"},
            {"base": "USD", "quote": "EUR", "rate": 0.92},
        ),
        ("calculator", {"expression": "250 * 0.92"}, {"result": 230.0}),
        ("calculator", {"expression": "-(2 + 3) / 2"}, {"result": -2.5}),
        (
            "create_ticket",
            {"title": "t", "assignee_email": "b@x"},
            {"id": "TICK-1", "title": "t", "status": "open"},
        ),
    ],
)
def test_seed_results(name: str, arguments: dict[str, Any], expected: Any) -> None:
    assert TOOLBOX[name].run(arguments) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "2 ** 10",
        "abs(-1)",
        "1 / 0",
        "1 +",
        "x",
        "'a' * 3",
        "True + 1",
        "9" * 600,
    ],
)
def test_calculator_rejects_everything_but_arithmetic(expression: str) -> None:
    assert TOOLBOX["calculator"].run({"expression": expression}) == {"error": "invalid expression"}


def test_safe_arithmetic_raises_the_documented_errors() -> None:
    with pytest.raises(ZeroDivisionError):
        safe_arithmetic("1/0")
    with pytest.raises(SyntaxError):
        safe_arithmetic("1 +")
    with pytest.raises(ValueError):
        safe_arithmetic("a + 1")
    assert safe_arithmetic("(1 + 2) * -3") == -9.0


@pytest.mark.parametrize("name", sorted(TOOLBOX))
@pytest.mark.parametrize(
    "arguments",
    [{}, {"unexpected": 1}, {"name": None, "city": 3, "text": [], "expression": {}}, None, "text"],
)
def test_bad_input_is_an_error_result_never_an_exception(name: str, arguments: Any) -> None:
    result = TOOLBOX[name].run(arguments)
    assert isinstance(result, dict)
    assert set(result) == {"error"}
    assert isinstance(result["error"], str)


def test_missing_and_wrong_type_name_the_argument() -> None:
    assert TOOLBOX["send_email"].run({"to": "a@b"}) == {
        "error": "missing required argument 'subject'"
    }
    assert TOOLBOX["get_weather"].run({"city": 12}) == {
        "error": "city: expected string, got int 12"
    }


def test_a_crashing_handler_becomes_an_error_result() -> None:
    def boom(arguments: Any) -> Any:
        raise RuntimeError("kaput")

    tool = MockTool(
        "boom", {"type": "function", "function": {"name": "boom", "parameters": {}}}, boom
    )
    assert tool.run({}) == {"error": "RuntimeError: kaput"}


@pytest.mark.parametrize("name", sorted(TOOLBOX))
def test_results_are_json_and_deterministic(name: str) -> None:
    tool = TOOLBOX[name]
    params = tool.spec["function"]["parameters"]
    sample = {"string": "Alice", "integer": 2, "number": 1.5, "boolean": True, "array": []}
    arguments = {}
    for key in params["required"]:
        prop = params["properties"][key]
        arguments[key] = prop["enum"][0] if "enum" in prop else sample.get(prop.get("type"), "x")
    first = tool.run(arguments)
    json.dumps(first)
    assert tool.run(arguments) == first


def test_fallback_result_is_small_plain_data() -> None:
    assert FALLBACK_RESULT == {"status": "ok"}
    assert json.loads(json.dumps(FALLBACK_RESULT)) == FALLBACK_RESULT


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("wireless mouse", ["P-512"]),
        ("wireless mice", ["P-512"]),  # what a prompt asking for "wireless mice" leads to
        ("USB-C cables", ["P-204", "P-311", "P-318"]),
        ("HDMI cables", ["P-120"]),
        ("wireless keyboards", []),
        ("glass", []),
    ],
)
def test_product_search_takes_plurals(query: str, found: list[str]) -> None:
    result = TOOLBOX["search_products"].run({"query": query})
    assert [p["product_id"] for p in result["results"]] == found


def test_no_tool_description_gives_a_task_answer_away() -> None:
    """A description's example must not be what a bundled task asks the model to work out
    (the calculator's once showed rate_then_calc's reference expression)."""
    from pytest_llmbench.taskfiles.format import ToolingTask
    from pytest_llmbench.taskfiles.loading import load_task_file

    repo = Path(__file__).resolve().parents[2]
    answers = set()
    for path in sorted((repo / "tasks" / "tooling").glob("*.yaml")):
        for task in load_task_file(path).tasks:
            assert isinstance(task, ToolingTask)
            for turn in task.reference:
                for call in turn:
                    answers |= {v for v in call.arguments.values() if isinstance(v, str)}
    for name, tool in TOOLBOX.items():
        text = json.dumps(tool.spec)
        choices = set(_enum_values(tool.spec))  # an enum lists the allowed values: no leak
        leaked = sorted(a for a in answers - choices if len(a) > 3 and a in text)
        assert leaked == [], (name, leaked)


def _enum_values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.get("enum", [])) + [v for x in node.values() for v in _enum_values(x)]
    if isinstance(node, list):
        return [v for x in node for v in _enum_values(x)]
    return []
