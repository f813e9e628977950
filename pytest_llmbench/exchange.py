"""The plain data that crosses between the run, the suites and the backends.

Requests, completions, tool calls and the one infrastructure error. Backends produce these,
suites consume them, collection reports the error; none of them imports the others for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


class BackendError(Exception):
    """Infrastructure trouble (unreachable server, HTTP 5xx, malformed reply, wrong model).

    It is never the model's fault: items that hit it are pytest *errors* with outcome `error`.
    `message` is one line a user can act on (which URL, how to start the server).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackendUnreachable(BackendError):
    """The server did not answer at all; every later request to it would fail the same way."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def parsed_arguments(self) -> dict[str, Any] | None:
        """The arguments as a dict, or None if the model's JSON is malformed or not an object."""
        import json

        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


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
    # Tokens per second between the first and the last streamed token (prefill excluded).
    decode_tok_s: float | None = None
    # Every streamed token in order, as (kind, text): "r" a reasoning-field token, "c" a
    # content token (inline <think> tags included), "t<i>" a piece of tool call i's stream
    # (its arguments text; the call's id and name are in `tool_calls`). One streamed chunk is
    # one token on the servers we drive. `budget.cut` replays a prefix of it to get the answer
    # a run capped at fewer tokens would have given; short kinds because it is stored.
    timeline: tuple[tuple[str, str], ...] = ()
