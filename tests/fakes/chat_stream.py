"""Scripted OpenAI-style chat streams with the shapes real servers use.

An `Answer` says what the model "writes"; `Quirks` say how a given server streams it: where
reasoning goes (`reasoning_content`, `reasoning`, or inline `<think>` in the content), whether
usage is sent when asked, whether tool calls carry an index, and extra blocks such as
llama.cpp's `timings`. Each piece of text is one chunk, and one chunk stands for one token; a
request's `max_tokens` stops the stream after that many, with finish_reason `length`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

ReasoningShape = Literal["reasoning_content", "reasoning", "inline", "lone_close"]


@dataclass(frozen=True)
class Answer:
    content: list[str] = field(default_factory=list)  # one string per token
    reasoning: list[str] = field(default_factory=list)
    # (name, args); args as a str are sent as they are (JSON no encoder would write)
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    finish_reason: str | None = None  # default: tool_calls if calls else stop
    model: str | None = None  # the model the server claims answered (default: the one asked)


@dataclass(frozen=True)
class Quirks:
    reasoning: ReasoningShape = "reasoning_content"
    usage: bool = True  # send usage in a last chunk when stream_options.include_usage is set
    reasoning_tokens_in_usage: bool = False  # completion_tokens_details.reasoning_tokens
    tool_call_index: bool = True
    tool_args_split: bool = True  # stream arguments in two pieces
    finish_with_stop_after_calls: bool = False  # some servers say "stop" after tool calls
    extra: dict[str, Any] = field(default_factory=dict)  # merged into the last chunk
    prompt_tokens: int = 42


def tokens(text: str) -> list[str]:
    """Split text into word-ish pieces, each standing for one token."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return [piece for piece in out if piece]  # an empty chunk carries no token


def chunks(request: dict[str, Any], answer: Answer, quirks: Quirks) -> Iterator[dict[str, Any]]:
    model = answer.model or request.get("model")
    base = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    streamed = list(_token_chunks(answer, quirks, chunk))
    finish = answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")
    if answer.tool_calls and quirks.finish_with_stop_after_calls:
        finish = "stop"
    cap = request.get("max_tokens")
    if isinstance(cap, int) and len(streamed) > cap:
        # Like a real server: stop after max_tokens tokens, mid-word or mid-call.
        streamed, finish = streamed[:cap], "length"
    yield from streamed
    last = chunk({}, finish)
    wants_usage = (request.get("stream_options") or {}).get("include_usage")
    if not (quirks.usage and wants_usage):
        yield {**last, **quirks.extra}
        return
    yield last
    completion = len(streamed)
    usage: dict[str, Any] = {
        "prompt_tokens": quirks.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": quirks.prompt_tokens + completion,
    }
    if quirks.reasoning_tokens_in_usage:
        reasoning = min(len(answer.reasoning), completion)
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    yield {**base, "choices": [], "usage": usage, **quirks.extra}


def _token_chunks(
    answer: Answer, quirks: Quirks, chunk: Callable[[dict[str, Any]], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The chunks that carry tokens, in order: one token each."""
    if answer.reasoning:
        if quirks.reasoning in ("reasoning_content", "reasoning"):
            for piece in answer.reasoning:
                yield chunk({quirks.reasoning: piece})
        else:
            if quirks.reasoning == "inline":
                yield chunk({"content": "<think>"})
            for piece in answer.reasoning:
                yield chunk({"content": piece})
            yield chunk({"content": "</think>"})
    for piece in answer.content:
        yield chunk({"content": piece})
    for index, (name, args) in enumerate(answer.tool_calls):
        text = args if isinstance(args, str) else json.dumps(args)
        pieces = (
            [text[: len(text) // 2], text[len(text) // 2 :]] if quirks.tool_args_split else [text]
        )
        for n, piece in enumerate(pieces):
            call: dict[str, Any] = {"function": {"arguments": piece}}
            if quirks.tool_call_index:
                call["index"] = index
            if n == 0:
                call.update(id=f"call_{index}", type="function")
                call["function"]["name"] = name
            yield chunk({"tool_calls": [call]})


def token_count(answer: Answer, quirks: Quirks) -> int:
    """What the fake server reports as completion tokens (the chunks it streamed)."""
    tags = 0
    if answer.reasoning and quirks.reasoning == "inline":
        tags = 2
    elif answer.reasoning and quirks.reasoning == "lone_close":
        tags = 1
    calls = sum(2 if quirks.tool_args_split else 1 for _ in answer.tool_calls)
    return len(answer.content) + len(answer.reasoning) + tags + calls
