"""The built-in toolbox: mock tools with OpenAI function specs and deterministic handlers.

A tooling task names tools from here (or gives bare OpenAI specs, which answer
`FALLBACK_RESULT`). Every handler is pure and deterministic, returns JSON-able data and never
raises: bad input (a missing required argument, a wrong type, an unknown key) gives
`{"error": ...}` so the model can see its mistake and try again.

The first ten tools are the original harness's (their names, specs and results are facts carried
over); the rest serve the larger suite: typed arguments, similar tools to choose among, and chains
whose later arguments (ids, tracking numbers, prices) can only come from an earlier result.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["FALLBACK_RESULT", "TOOLBOX", "MockTool", "safe_arithmetic"]

# What a tool given only as a bare OpenAI spec (no mock behind it) answers. A plain dict so it
# serialises as is; treat it as read-only.
FALLBACK_RESULT: dict[str, Any] = {"status": "ok"}

Handler = Callable[[Mapping[str, Any]], Any]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


def _type_error(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    """A reason if `value` does not have the schema's JSON type (top level plus array items)."""
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            ok = True  # 3.0 is a fine integer for a mock; the matcher decides exactness
        if not ok:
            return f"{where} must be of type {expected}, got {type(value).__name__}"
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"{where} must be one of {enum}, got {value!r}"
    items = schema.get("items")
    if isinstance(items, Mapping) and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            why = _type_error(item, items, f"{where}[{index}]")
            if why:
                return why
    return None


def check_arguments(parameters: Mapping[str, Any], arguments: Mapping[str, Any]) -> str | None:
    """Validate call arguments against a function's `parameters` schema (the subset mocks need):
    required keys present, no unknown keys, JSON types of the given values."""
    properties: Mapping[str, Any] = parameters.get("properties") or {}
    for name in parameters.get("required") or ():
        if name not in arguments:
            return f"missing required argument {name!r}"
    for name, value in arguments.items():
        if name not in properties:
            return f"unknown argument {name!r}"
        why = _type_error(value, properties[name], repr(name))
        if why:
            return why
    return None


@dataclass(frozen=True)
class MockTool:
    """One mock tool: its name, the full OpenAI tool dict, and a deterministic handler."""

    name: str
    spec: dict[str, Any]
    handler: Handler

    @property
    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = self.spec["function"]["parameters"]
        return params

    def run(self, arguments: Mapping[str, Any]) -> Any:
        """The tool's answer to one call; never raises (bad input gives `{"error": ...}`)."""
        if not isinstance(arguments, Mapping):
            return {"error": "arguments must be a JSON object"}
        why = check_arguments(self.parameters, arguments)
        if why:
            return {"error": why}
        try:
            return self.handler(arguments)
        except Exception as exc:  # a handler bug must not break a benchmark run
            return {"error": f"{type(exc).__name__}: {exc}"}


def _spec(
    name: str,
    description: str,
    properties: dict[str, Any],
    required: list[str],
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_STR: dict[str, Any] = {"type": "string"}


# --------------------------------------------------------------------------- safe arithmetic

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_MAX_EXPRESSION = 500


def safe_arithmetic(expression: str) -> float:
    """Evaluate numeric constants with + - * / and unary signs (and parentheses), nothing else.

    Raises ValueError for anything else (names, calls, powers, huge input), SyntaxError for
    text that is not an expression, ZeroDivisionError for division by zero.
    """
    if len(expression) > _MAX_EXPRESSION:
        raise ValueError("expression too long")
    tree = ast.parse(expression.strip(), mode="eval")

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported element {type(node).__name__}")

    value = walk(tree)
    if not math.isfinite(value):
        raise ValueError("result is not finite")
    return value


# --------------------------------------------------------------------------- the seed's tools


def _get_user(a: Mapping[str, Any]) -> Any:
    name: str = a["name"]
    low = name.lower()
    if "alice" in low:
        email = "alice@example.com"
    elif "bob" in low:
        email = "bob@example.com"
    else:
        email = "carol@example.com"
    return {"name": name, "email": email, "id": "u-42"}


def _calculator(a: Mapping[str, Any]) -> Any:
    try:
        return {"result": safe_arithmetic(a["expression"])}
    except (ValueError, SyntaxError, ZeroDivisionError, OverflowError, RecursionError):
        return {"error": "invalid expression"}


def _read_file(a: Mapping[str, Any]) -> Any:
    path: str = a["path"]
    content = "the quick brown fox jumps over the lazy dog" if "report" in path.lower() else "hello"
    return {"path": path, "content": content}


_SEED: list[MockTool] = [
    MockTool(
        "get_user",
        _spec(
            "get_user",
            "Look up a user by name; returns their email address.",
            {"name": _STR},
            ["name"],
        ),
        _get_user,
    ),
    MockTool(
        "send_email",
        _spec(
            "send_email",
            "Send an email to a recipient.",
            {"to": _STR, "subject": _STR, "body": _STR},
            ["to", "subject"],
        ),
        lambda a: {"status": "sent", "to": a["to"]},
    ),
    MockTool(
        "get_weather",
        _spec("get_weather", "Get the current weather for a city.", {"city": _STR}, ["city"]),
        lambda a: {"city": a["city"], "temp_c": 18, "condition": "cloudy"},
    ),
    MockTool(
        "get_time",
        _spec(
            "get_time",
            "Get the current local time for a timezone or city.",
            {"timezone": _STR},
            ["timezone"],
        ),
        lambda a: {"zone": a["timezone"], "time": "14:30"},
    ),
    MockTool(
        "search",
        _spec("search", "Search the web for information.", {"query": _STR}, ["query"]),
        lambda a: [{"title": f"Result for {a['query']}", "url": "https://example.com/a"}],
    ),
    MockTool(
        "read_file",
        _spec("read_file", "Read a text file and return its contents.", {"path": _STR}, ["path"]),
        _read_file,
    ),
    MockTool(
        "word_count",
        _spec(
            "word_count", "Count the number of words in a piece of text.", {"text": _STR}, ["text"]
        ),
        lambda a: {"count": len(a["text"].split())},
    ),
    MockTool(
        "get_exchange_rate",
        _spec(
            "get_exchange_rate",
            "Get the FX rate from one currency to another.",
            {"base": _STR, "quote": _STR},
            ["base", "quote"],
        ),
        lambda a: {"base": a["base"], "quote": a["quote"], "rate": 0.92},
    ),
    MockTool(
        "calculator",
        _spec(
            "calculator",
            "Evaluate an arithmetic expression like '250 * 0.92'.",
            {"expression": _STR},
            ["expression"],
        ),
        _calculator,
    ),
    MockTool(
        "create_ticket",
        _spec(
            "create_ticket",
            "Open a support ticket assigned to an email address.",
            {"title": _STR, "assignee_email": _STR},
            ["title", "assignee_email"],
        ),
        lambda a: {"id": "TICK-1", "title": a["title"], "status": "open"},
    ),
]


def _build(tools: list[MockTool]) -> Mapping[str, MockTool]:
    table: dict[str, MockTool] = {}
    for tool in tools:
        if tool.name in table or tool.spec["function"]["name"] != tool.name:
            raise RuntimeError(f"toolbox: bad or duplicate tool {tool.name!r}")
        table[tool.name] = tool
    return MappingProxyType(table)


TOOLBOX: Mapping[str, MockTool] = _build(_SEED)
