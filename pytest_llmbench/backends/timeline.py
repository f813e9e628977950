"""Token timelines: the answer a run capped at fewer tokens would have given, from one run.

Sampling a token does not depend on the cap, so the first B tokens of an answer generated under
a larger cap are exactly what a run capped at B would have streamed before stopping with
`length`. Replaying those tokens through the same accumulator that folds a live stream gives
that run's completion: same content, reasoning split, tool calls (a call cut halfway keeps its
partial arguments, as it would live) and token counts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..exchange import Completion, ToolCall
from .stream import StreamAccumulator

Timeline = tuple[tuple[str, str], ...]


def timeline_of(content: str, calls: tuple[ToolCall, ...] = ()) -> Timeline:
    """A timeline for a reply nobody streamed: each word (with the space before it) is a token,
    each tool call one more."""
    words = content.split(" ") if content else []
    pieces = [("c", word if i == 0 else " " + word) for i, word in enumerate(words)]
    return (*(p for p in pieces if p[1]), *((f"t{i}", c.arguments) for i, c in enumerate(calls)))


def token_count(completion: Completion) -> int | None:
    """The completion tokens a budget is counted against: the streamed ones, or failing a
    timeline the server's count (None: unknown)."""
    if completion.timeline:
        return len(completion.timeline)
    if not completion.content and not completion.reasoning and not completion.tool_calls:
        return 0
    return completion.usage.completion_tokens


def cut(completion: Completion, budget: int) -> Completion:
    """`completion` as a run capped at `budget` completion tokens (reasoning counts) would
    have returned it: unchanged when it fits, else its first `budget` tokens with
    finish_reason `length`. Timings of a cut answer are unknown and left empty."""
    if budget < 1:
        raise ValueError(f"a token budget must be at least 1 (got {budget})")
    used = token_count(completion)
    if used is not None and used <= budget:
        return completion
    if not completion.timeline:
        raise ValueError("this answer has no token timeline to cut (it was not streamed)")
    # Tool call i of the stream is the i-th of the finished calls, in index order.
    indices = sorted({int(kind[1:]) for kind, _ in completion.timeline if kind.startswith("t")})
    calls = dict(zip(indices, completion.tool_calls, strict=False))
    accumulator = StreamAccumulator(started_at=0.0)
    for kind, text in completion.timeline[:budget]:
        accumulator.feed({"choices": [{"index": 0, "delta": _delta(kind, text, calls)}]}, 0.0)
    accumulator.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}, 0.0)
    replayed = accumulator.finish(0.0)
    return replace(
        replayed,
        usage=replace(replayed.usage, prompt_tokens=completion.usage.prompt_tokens),
        ttft_s=completion.ttft_s,  # the first token came when it came, whatever the cap
        wall_s=0.0,
        decode_tok_s=None,
        model_id=completion.model_id,
    )


def _delta(kind: str, text: str, calls: dict[int, ToolCall]) -> dict[str, Any]:
    if kind == "r":
        return {"reasoning_content": text}
    if kind == "c":
        return {"content": text}
    index = int(kind[1:])
    call = calls.get(index)
    function: dict[str, Any] = {"arguments": text}
    part: dict[str, Any] = {"index": index, "function": function}
    if call is not None:
        part["id"] = call.id
        function["name"] = call.name
    return {"tool_calls": [part]}
