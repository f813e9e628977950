"""The plain data that crosses between the run, the suites and the backends.

Requests, completions, tool calls and the one infrastructure error. Backends produce these,
suites consume them, collection reports the error; none of them imports the others for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# The built-in pseudo-models every backend offers: `reference` answers each task with its
# reference solution, `null` with nothing (how the bundled tasks validate themselves).
PSEUDO_MODELS = ("reference", "null")

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


class BackendError(Exception):
    """Infrastructure trouble (unreachable server, HTTP 5xx, malformed reply, wrong model).

    It is never the model's fault: items that hit it are pytest *errors* with outcome `error`.
    `message` is one line a user can act on (which URL, how to start the server).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # Infrastructure retries spent before giving up (recorded with the failed task).
        self.retries = 0


class BackendUnreachable(BackendError):
    """The server did not answer at all; every later request to it would fail the same way."""


class ModelUnavailable(BackendError):
    """The server does not have the model asked for: asking again will not change that."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def parsed_arguments(self) -> dict[str, Any] | None:
        """The arguments as a dict, or None if the model's JSON is malformed: not JSON, not an
        object, NaN or Infinity (not JSON either, also as an overflowing number like 1e999),
        or nested deeper than MAX_ARGUMENT_DEPTH.

        Model output is hostile input: whatever it holds, the answer is None (the model's
        `failed`), never an exception that would take scoring down."""
        import json

        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments, parse_constant=_not_json, parse_float=_finite)
        except (ValueError, RecursionError):  # also: integers of absurd length
            return None
        if not isinstance(value, dict) or _deeper_than(value, MAX_ARGUMENT_DEPTH):
            return None
        return value


# Far beyond any real tool's arguments, and shallow enough that every recursive walk over them
# (matching, repr, the mocks, json.dumps) stays clear of the recursion limit.
MAX_ARGUMENT_DEPTH = 64


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} overflows a float")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest more than `limit` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    timeout_s: float = 600.0
    # The task's reference answer. Real backends ignore it; the built-in `reference`
    # pseudo-model replies with it (a string, or for tooling a list of turns of calls).
    reference: Any = None
    # The answer must depend on this request alone: the server must not reuse state computed
    # for another request (llama.cpp's prompt cache changes tokens), where it can be told so.
    exact: bool = False


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    # "server" when the server reported the counts, "client" when we counted them ourselves.
    counted_by: Literal["server", "client", "none"] = "none"
    # Servers that count completion tokens often do not split out the reasoning part; then we
    # attribute it ourselves, and say so here.
    reasoning_counted_by: Literal["server", "client", "none"] = "none"


@dataclass(frozen=True)
class Completion:
    content: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    wall_s: float = 0.0
    ttft_s: float | None = None
    model_id: str | None = None  # the model the server says answered
    server_stats: dict[str, Any] = field(default_factory=dict)
    retries: int = 0  # infrastructure retries spent on this request
    # Tokens per second while decoding (prompt processing excluded): the server's own timing
    # where it reports one (llama.cpp's `timings`), else between the first and last streamed token.
    decode_tok_s: float | None = None
    decode_timed_by: Literal["server", "stream", "none"] = "none"
    # Prompt tokens per second as the server timed them (None where it reports no timings).
    prompt_tok_s: float | None = None
    # Every streamed token in order, as (kind, text): "r" a reasoning-field token, "c" a
    # content token (inline <think> tags included), "t<i>" a piece of tool call i's stream
    # (its arguments text; the call's id and name are in `tool_calls`). One streamed chunk is
    # one token on the servers we drive. `budget.cut` replays a prefix of it to get the answer
    # a run capped at fewer tokens would have given; short kinds because it is stored.
    timeline: tuple[tuple[str, str], ...] = ()
