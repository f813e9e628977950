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

from .safe_ast import parse_expression
from .schema import arguments_error

__all__ = ["FALLBACK_RESULT", "TOOLBOX", "MockTool", "safe_arithmetic"]

# What a tool given only as a bare OpenAI spec (no mock behind it) answers. A plain dict so it
# serialises as is; treat it as read-only.
FALLBACK_RESULT: dict[str, Any] = {"status": "ok"}

Handler = Callable[[Mapping[str, Any]], Any]


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
        # 3.0 passengers is a fine integer to a mock: the scorer, not the mock, judges exactness.
        why = arguments_error(self.parameters, arguments, whole_float_is_integer=True)
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
    tree = parse_expression(expression.strip())

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
            "Evaluate an arithmetic expression with + - * / and parentheses, like '(2 + 3) * 4'.",
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


# --------------------------------------------------------------------------- the larger suite's
# Fixed little worlds: ids, tracking numbers, prices and emails that a model cannot guess, so a
# later call that uses them proves the earlier result was read.

_ORDERS: dict[str, dict[str, Any]] = {
    "A-1001": {
        "order_id": "A-1001",
        "status": "shipped",
        "tracking_number": "ZX-4471-QP",
        "customer_id": "c-9183",
        "total": 59.9,
    },
    "A-1002": {
        "order_id": "A-1002",
        "status": "processing",
        "tracking_number": None,
        "customer_id": "c-2210",
        "total": 12.5,
    },
}
_PACKAGES: dict[str, dict[str, Any]] = {
    "ZX-4471-QP": {
        "tracking_number": "ZX-4471-QP",
        "status": "in transit",
        "location": "Lyon sorting hub",
        "eta": "2026-07-03",
    },
}
_CUSTOMERS: dict[str, dict[str, Any]] = {
    "c-9183": {"customer_id": "c-9183", "name": "Dana Whitfield", "email": "dana.w@example.net"},
    "c-2210": {"customer_id": "c-2210", "name": "Ravi Menon", "email": "ravi.menon@example.org"},
}
_FLIGHTS: list[dict[str, Any]] = [
    {"flight_id": "LX318", "departs": "07:15", "arrives": "08:50", "price": 245.0},
    {"flight_id": "BA731", "departs": "11:40", "arrives": "13:10", "price": 189.5},
    {"flight_id": "U2841", "departs": "18:05", "arrives": "19:35", "price": 212.0},
]
_STOCKS: dict[str, float] = {"ACME": 123.45, "GLOBX": 88.2, "INIT": 15.75}
_FX: dict[tuple[str, str], float] = {
    ("USD", "EUR"): 0.92,
    ("EUR", "USD"): 1.087,
    ("GBP", "EUR"): 1.17,
    ("EUR", "GBP"): 0.855,
    ("USD", "JPY"): 151.3,
    ("GBP", "USD"): 1.27,
}
_POPULATION: dict[str, int] = {
    "france": 68_170_000,
    "japan": 124_500_000,
    "brazil": 203_100_000,
    "kenya": 55_100_000,
    "norway": 5_520_000,
}
_PRODUCTS: list[dict[str, Any]] = [
    {"product_id": "P-204", "name": "USB-C cable 1m", "price": 9.99, "in_stock": True},
    {"product_id": "P-311", "name": "USB-C cable 2m", "price": 14.5, "in_stock": True},
    {"product_id": "P-318", "name": "USB-C cable 0.5m", "price": 8.5, "in_stock": False},
    {"product_id": "P-120", "name": "HDMI cable 2m", "price": 12.0, "in_stock": True},
    {"product_id": "P-777", "name": "USB-C charger 65W", "price": 39.0, "in_stock": True},
    {"product_id": "P-512", "name": "Wireless mouse", "price": 24.99, "in_stock": True},
]
_COUNTRY_CODES: dict[str, str] = {
    "fr": "france", "fra": "france", "jp": "japan", "jpn": "japan", "br": "brazil",
    "bra": "brazil", "ke": "kenya", "ken": "kenya", "no": "norway", "nor": "norway",
}  # fmt: skip
_FORECAST = ["rain", "cloudy", "sunny", "sunny", "showers", "windy", "snow"]
_NUMBER: dict[str, Any] = {"type": "number"}
_INTEGER: dict[str, Any] = {"type": "integer"}
_BOOLEAN: dict[str, Any] = {"type": "boolean"}


def _lookup(table: Mapping[str, Any], key: str, what: str) -> Any:
    found = table.get(key.strip().upper()) or table.get(key.strip())
    return dict(found) if found is not None else {"error": f"no {what} {key!r}"}


def _convert(a: Mapping[str, Any]) -> Any:
    pair = (a["from_currency"].strip().upper(), a["to_currency"].strip().upper())
    rate = 1.0 if pair[0] == pair[1] else _FX.get(pair)
    if rate is None:
        return {"error": f"no rate for {pair[0]} to {pair[1]}"}
    return {
        "amount": a["amount"],
        "from_currency": pair[0],
        "to_currency": pair[1],
        "rate": rate,
        "converted": round(a["amount"] * rate, 2),
    }


_IRREGULAR_PLURALS = {"mice": "mouse"}


def _word_forms(word: str) -> set[str]:
    """A query word and its singular, so "cables" and "mice" find "cable" and "mouse": a
    catalogue search that needs the prompt's plural turned singular would fail the model for
    the mock's sake."""
    forms = {word, _IRREGULAR_PLURALS.get(word, word)}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
        elif word.endswith("es"):
            forms.add(word[:-2])
    return forms


def _search_products(a: Mapping[str, Any]) -> Any:
    words = [w for w in str(a["query"]).lower().replace("-", " ").split() if w]
    limit = a.get("limit", 10)
    found = [
        dict(p)
        for p in _PRODUCTS
        if all(
            any(form in p["name"].lower().replace("-", " ") for form in _word_forms(w))
            for w in words
        )
        and ("max_price" not in a or p["price"] <= a["max_price"])
        and (p["in_stock"] or not a.get("in_stock_only", False))
    ]
    return {"results": found[: max(0, limit)]}


def _add_to_cart(a: Mapping[str, Any]) -> Any:
    if not any(p["product_id"] == a["product_id"] for p in _PRODUCTS):
        return {"error": f"no product {a['product_id']!r}"}
    quantity = a.get("quantity", 1)
    if quantity < 1:
        return {"error": "quantity must be at least 1"}
    return {"status": "added", "product_id": a["product_id"], "quantity": quantity}


def _book_flight(a: Mapping[str, Any]) -> Any:
    if not any(f["flight_id"] == a["flight_id"] for f in _FLIGHTS):
        return {"error": f"no flight {a['flight_id']!r}"}
    if a["passengers"] < 1:
        return {"error": "passengers must be at least 1"}
    return {
        "booking_id": f"BK-{a['flight_id']}-{a['passengers']}",
        "status": "confirmed",
        "seat_class": a.get("seat_class", "economy"),
    }


def _forecast(a: Mapping[str, Any]) -> Any:
    days = a.get("days", 3)
    if not 1 <= days <= 7:
        return {"error": "days must be between 1 and 7"}
    return {
        "city": a["city"],
        "days": [{"day": i + 1, "condition": _FORECAST[i], "high_c": 14 + i} for i in range(days)],
    }


def _population(a: Mapping[str, Any]) -> Any:
    name = a["country"].strip().lower()
    count = _POPULATION.get(_COUNTRY_CODES.get(name, name))
    if count is None:
        return {"error": f"no data for {a['country']!r}"}
    return {"country": a["country"], "population": count}


_LARGER: list[MockTool] = [
    MockTool(
        "get_order",
        _spec(
            "get_order",
            "Look up an order by its id (like A-0000); returns its status, tracking number "
            "and customer id.",
            {"order_id": _STR},
            ["order_id"],
        ),
        lambda a: _lookup(_ORDERS, a["order_id"], "order"),
    ),
    MockTool(
        "track_package",
        _spec(
            "track_package",
            "Track a shipped package by its carrier tracking number.",
            {"tracking_number": _STR},
            ["tracking_number"],
        ),
        lambda a: _lookup(_PACKAGES, a["tracking_number"], "package"),
    ),
    MockTool(
        "get_customer",
        _spec(
            "get_customer",
            "Look up a customer by customer id; returns their name and email address.",
            {"customer_id": _STR},
            ["customer_id"],
        ),
        lambda a: _lookup(_CUSTOMERS, a["customer_id"].strip().lower(), "customer"),
    ),
    MockTool(
        "find_flights",
        _spec(
            "find_flights",
            "List the flights between two cities on a date (YYYY-MM-DD), with their prices in EUR.",
            {"origin": _STR, "destination": _STR, "date": _STR},
            ["origin", "destination", "date"],
        ),
        lambda a: {
            "origin": a["origin"],
            "destination": a["destination"],
            "date": a["date"],
            "flights": [dict(f) for f in _FLIGHTS],
        },
    ),
    MockTool(
        "book_flight",
        _spec(
            "book_flight",
            "Book seats on a flight by flight id.",
            {
                "flight_id": _STR,
                "passengers": {**_INTEGER, "description": "number of passengers"},
                "seat_class": {
                    "type": "string",
                    "enum": ["economy", "premium", "business"],
                    "default": "economy",
                },
            },
            ["flight_id", "passengers"],
        ),
        _book_flight,
    ),
    MockTool(
        "get_stock_price",
        _spec(
            "get_stock_price",
            "Get the latest price in USD of one share, by ticker symbol.",
            {"symbol": _STR},
            ["symbol"],
        ),
        lambda a: (
            {"symbol": a["symbol"].upper(), "price": _STOCKS[a["symbol"].strip().upper()]}
            if a["symbol"].strip().upper() in _STOCKS
            else {"error": f"unknown symbol {a['symbol']!r}"}
        ),
    ),
    MockTool(
        "convert_currency",
        _spec(
            "convert_currency",
            "Convert an amount of money from one currency to another (ISO codes like USD).",
            {"amount": _NUMBER, "from_currency": _STR, "to_currency": _STR},
            ["amount", "from_currency", "to_currency"],
        ),
        _convert,
    ),
    MockTool(
        "get_forecast",
        _spec(
            "get_forecast",
            "Get the daily weather forecast for a city for the coming days.",
            {
                "city": _STR,
                "days": {**_INTEGER, "description": "1 to 7", "default": 3},
            },
            ["city"],
        ),
        _forecast,
    ),
    MockTool(
        "send_sms",
        _spec(
            "send_sms",
            "Send a text message (SMS) to a phone number.",
            {"phone_number": _STR, "message": _STR},
            ["phone_number", "message"],
        ),
        lambda a: {"status": "queued", "to": a["phone_number"]},
    ),
    MockTool(
        "create_event",
        _spec(
            "create_event",
            "Create a calendar event.",
            {
                "title": _STR,
                "start": {**_STR, "description": "ISO 8601 local date-time, YYYY-MM-DDTHH:MM"},
                "duration_minutes": _INTEGER,
                "attendees": {
                    "type": "array",
                    "items": _STR,
                    "description": "attendee email addresses",
                },
                "send_invites": {**_BOOLEAN, "default": True},
            },
            ["title", "start", "duration_minutes"],
        ),
        lambda a: {"event_id": "EV-301", "title": a["title"], "start": a["start"]},
    ),
    MockTool(
        "set_thermostat",
        _spec(
            "set_thermostat",
            "Set the target temperature of a room's thermostat.",
            {
                "room": _STR,
                "temperature": _NUMBER,
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            },
            ["room", "temperature"],
        ),
        lambda a: {
            "room": a["room"],
            "target": a["temperature"],
            "unit": a.get("unit", "celsius"),
        },
    ),
    MockTool(
        "update_user_settings",
        _spec(
            "update_user_settings",
            "Change a user's account settings (only the settings given are changed).",
            {
                "user_id": _STR,
                "settings": {
                    "type": "object",
                    "properties": {
                        "language": {**_STR, "description": "ISO 639-1 code like en"},
                        "theme": {"type": "string", "enum": ["light", "dark", "system"]},
                        "notifications": {
                            "type": "object",
                            "properties": {"email": _BOOLEAN, "sms": _BOOLEAN},
                        },
                    },
                },
            },
            ["user_id", "settings"],
        ),
        lambda a: {"status": "updated", "user_id": a["user_id"], "changed": sorted(a["settings"])},
    ),
    MockTool(
        "search_products",
        _spec(
            "search_products",
            "Search the shop's catalogue; every word of the query (or its singular) must appear "
            "in the product name.",
            {
                "query": _STR,
                "max_price": {**_NUMBER, "description": "highest price in USD"},
                "in_stock_only": {**_BOOLEAN, "default": False},
                "limit": {**_INTEGER, "default": 10},
            },
            ["query"],
        ),
        _search_products,
    ),
    MockTool(
        "add_to_cart",
        _spec(
            "add_to_cart",
            "Put a product in the shopping cart by product id.",
            {"product_id": _STR, "quantity": {**_INTEGER, "default": 1}},
            ["product_id"],
        ),
        _add_to_cart,
    ),
    MockTool(
        "get_population",
        _spec(
            "get_population",
            "Get the current population of a country.",
            {"country": _STR},
            ["country"],
        ),
        _population,
    ),
    MockTool(
        "translate",
        _spec(
            "translate",
            "Translate a text into a target language.",
            {"text": _STR, "target_language": _STR},
            ["text", "target_language"],
        ),
        lambda a: {
            "target_language": a["target_language"],
            "translation": f"[{a['target_language']}] {a['text']}",
        },
    ),
]


def _build(tools: list[MockTool]) -> Mapping[str, MockTool]:
    table: dict[str, MockTool] = {}
    for tool in tools:
        if tool.name in table or tool.spec["function"]["name"] != tool.name:
            raise RuntimeError(f"toolbox: bad or duplicate tool {tool.name!r}")
        table[tool.name] = tool
    return MappingProxyType(table)


TOOLBOX: Mapping[str, MockTool] = _build(_SEED + _LARGER)
