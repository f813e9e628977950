"""Fold a streamed chat completion (OpenAI chunk dicts) into one Completion.

Kept free of any client library so that every server's quirks can be fed to it as plain data:
reasoning in `reasoning_content`, `reasoning` or inline tags, tool calls spread over deltas,
usage in the last chunk or nowhere, server timing blocks (`timings`, `stats`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exchange import Completion, FinishReason, ToolCall, Usage
from .reasoning import reasoning_spans, split_reasoning

# Extra top-level keys some servers add to chunks with their own measurements.
SERVER_STAT_KEYS = ("timings", "stats")

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}


def normalise_finish_reason(raw: str | None) -> FinishReason:
    if raw is None:
        return "unknown"
    return _FINISH.get(raw.lower(), "unknown")


class MalformedChunk(ValueError):
    """A decoded chunk that is not shaped like a chat completion chunk."""


def _kind(value: object) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class StreamAccumulator:
    """Feed chunks with the time they arrived; `finish()` gives the Completion."""

    started_at: float
    content: list[str] = field(default_factory=list)
    field_reasoning: list[str] = field(default_factory=list)
    # Each token-bearing chunk: ("content", start, end) offsets into the content, or
    # ("reasoning", 0, 0) / ("tool", 0, 0). One chunk is one token on the servers we drive.
    token_chunks: list[tuple[str, int, int]] = field(default_factory=list)
    timeline: list[tuple[str, str]] = field(default_factory=list)  # see Completion.timeline
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_raw: str | None = None
    model_id: str | None = None
    usage: dict[str, Any] | None = None
    server_stats: dict[str, Any] = field(default_factory=dict)
    first_token_at: float | None = None
    last_token_at: float | None = None
    chunks: int = 0  # decoded chunks seen, token-bearing or not
    _content_len: int = 0

    def feed(self, chunk: object, at: float) -> None:
        """Take one decoded chunk; raise MalformedChunk when it is not shaped like one."""
        if not isinstance(chunk, Mapping):
            raise MalformedChunk(f"a chunk is {_kind(chunk)}, not an object")
        self.chunks += 1
        if not self.model_id and chunk.get("model"):
            self.model_id = str(chunk["model"])
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = dict(chunk["usage"])
        for key in SERVER_STAT_KEYS:
            if isinstance(chunk.get(key), dict):
                self.server_stats[key] = chunk[key]
        choices = chunk.get("choices")
        if choices is None:
            return
        if not isinstance(choices, list):
            raise MalformedChunk(f"'choices' is {_kind(choices)}, not a list")
        for choice in choices:
            if not isinstance(choice, Mapping):
                raise MalformedChunk(f"a choice is {_kind(choice)}, not an object")
            if choice.get("index", 0) != 0:
                continue  # we ask for one choice; ignore anything else a server sends
            if choice.get("finish_reason"):
                self.finish_raw = str(choice["finish_reason"])
            delta = choice.get("delta") or choice.get("message") or {}
            if not isinstance(delta, Mapping):
                raise MalformedChunk(f"a delta is {_kind(delta)}, not an object")
            if self._take_delta(delta):
                self.first_token_at = at if self.first_token_at is None else self.first_token_at
                self.last_token_at = at

    def _take_delta(self, delta: Mapping[str, Any]) -> bool:
        got_token = False
        for key in ("reasoning_content", "reasoning"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self.field_reasoning.append(text)
                self.token_chunks.append(("reasoning", 0, 0))
                self.timeline.append(("r", text))
                got_token = True
        text = delta.get("content")
        if text is not None and not isinstance(text, str):
            raise MalformedChunk(f"'content' is {_kind(text)}, not a string")
        if text:
            self.content.append(text)
            self.token_chunks.append(("content", self._content_len, self._content_len + len(text)))
            self._content_len += len(text)
            self.timeline.append(("c", text))
            got_token = True
        calls = delta.get("tool_calls") or ()
        if not isinstance(calls, (list, tuple)):
            raise MalformedChunk(f"'tool_calls' is {_kind(calls)}, not a list")
        for call in calls:
            if not isinstance(call, Mapping) or not isinstance(call.get("function") or {}, Mapping):
                raise MalformedChunk("a tool call is not an object with a 'function' object")
            self._take_call(call)
            got_token = True
        return got_token

    def _take_call(self, call: Mapping[str, Any]) -> None:
        index = call.get("index")
        if not isinstance(index, int):
            # Servers that omit the index send each call whole: a new id starts a new call.
            last = max(self.calls) if self.calls else None
            if last is None:
                index = 0
            elif call.get("id") and call["id"] != self.calls[last].id:
                index = last + 1
            else:
                index = last
        partial = self.calls.setdefault(index, _PartialCall())
        if call.get("id"):
            partial.id = str(call["id"])
        function = call.get("function") or {}
        if function.get("name") and not partial.name:
            partial.name = str(function["name"])
        arguments = function.get("arguments")
        piece = ""
        if isinstance(arguments, str):
            piece = arguments
        elif isinstance(arguments, dict):  # some servers send the arguments already parsed
            try:
                piece = json.dumps(arguments)
            except (ValueError, RecursionError):
                # Too deep to write back: left unparsable, so it scores as malformed arguments.
                piece = "<arguments too deeply nested>"
        if isinstance(arguments, (str, dict)):
            partial.arguments.append(piece)
        self.token_chunks.append(("tool", 0, 0))
        self.timeline.append((f"t{index}", piece))

    def finish(self, finished_at: float, *, retries: int = 0) -> Completion:
        raw_content = "".join(self.content)
        answer, inline_reasoning = split_reasoning(raw_content)
        reasoning = "\n\n".join(
            part for part in ("".join(self.field_reasoning).strip(), inline_reasoning) if part
        )
        tool_calls = tuple(
            ToolCall(id=p.id or f"call_{i}", name=p.name, arguments="".join(p.arguments))
            for i, p in sorted(self.calls.items())
        )
        finish = normalise_finish_reason(self.finish_raw)
        if tool_calls and finish == "stop":
            # Some servers say "stop" after emitting calls; the calls are what matters.
            finish = "tool_calls"
        usage = self._usage(raw_content)
        server_decode, prompt_rate = self._server_rates()
        stream_decode = self._decode_rate(usage)
        decode_rate = server_decode or stream_decode
        return Completion(
            content=answer,
            reasoning=reasoning,
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=usage,
            wall_s=finished_at - self.started_at,
            ttft_s=None if self.first_token_at is None else self.first_token_at - self.started_at,
            model_id=self.model_id,
            server_stats=dict(self.server_stats),
            retries=retries,
            decode_tok_s=decode_rate,
            decode_timed_by="server" if server_decode else "stream" if stream_decode else "none",
            prompt_tok_s=prompt_rate,
            timeline=tuple(self.timeline),
        )

    def _usage(self, raw_content: str) -> Usage:
        reasoning_chunks = self._reasoning_chunk_count(raw_content)
        server = self.usage or {}
        completion = server.get("completion_tokens")
        details = server.get("completion_tokens_details") or {}
        server_reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if isinstance(completion, int):
            reasoning_by: Literal["server", "client"] = "client"
            reasoning = reasoning_chunks
            # Servers that do not split out reasoning often report 0: trust a 0 only if we
            # saw no thinking either.
            if isinstance(server_reasoning, int) and (server_reasoning or not reasoning_chunks):
                reasoning, reasoning_by = server_reasoning, "server"
            prompt = server.get("prompt_tokens")
            return Usage(
                prompt_tokens=prompt if isinstance(prompt, int) else None,
                completion_tokens=completion,
                reasoning_tokens=reasoning,
                counted_by="server",
                reasoning_counted_by=reasoning_by,
            )
        return Usage(
            prompt_tokens=None,
            completion_tokens=len(self.token_chunks),
            reasoning_tokens=reasoning_chunks,
            counted_by="client",
            reasoning_counted_by="client",
        )

    def _reasoning_chunk_count(self, raw_content: str) -> int:
        spans = reasoning_spans(raw_content)
        count = 0
        for kind, start, end in self.token_chunks:
            in_thought = any(start < s.end and end > s.start for s in spans)
            if kind == "reasoning" or (kind == "content" and in_thought):
                count += 1
        return count

    def _server_rates(self) -> tuple[float | None, float | None]:
        """(decode, prompt) tokens per second from llama.cpp's `timings` block, where given."""
        timings = self.server_stats.get("timings")
        if not isinstance(timings, Mapping):
            return None, None

        def rate(count: str, millis: str, per_second: str) -> float | None:
            n, ms = timings.get(count), timings.get(millis)
            if isinstance(n, (int, float)) and isinstance(ms, (int, float)) and n > 0 and ms > 0:
                return float(n) * 1000.0 / float(ms)
            value = timings.get(per_second)
            return float(value) if isinstance(value, (int, float)) and value > 0 else None

        return (
            rate("predicted_n", "predicted_ms", "predicted_per_second"),
            rate("prompt_n", "prompt_ms", "prompt_per_second"),
        )

    def _decode_rate(self, usage: Usage) -> float | None:
        if self.first_token_at is None or self.last_token_at is None:
            return None
        span = self.last_token_at - self.first_token_at
        tokens = usage.completion_tokens
        if span <= 0 or tokens is None or tokens < 2:
            return None
        # The first token ends prefill; the rate covers the tokens decoded after it.
        return (tokens - 1) / span
