"""Folding streamed chunks into a Completion: text, reasoning, tool calls, usage, timing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes.chat_stream import Answer, Quirks, chunks

from pytest_llmbench.backends.stream import StreamAccumulator, normalise_finish_reason

REQUEST = {"model": "m", "stream_options": {"include_usage": True}}


def fold(stream: list[dict[str, Any]], step: float = 0.1) -> Any:
    acc = StreamAccumulator(started_at=0.0)
    for i, chunk in enumerate(stream):
        acc.feed(chunk, 1.0 + i * step)
    return acc.finish(1.0 + len(stream) * step)


@pytest.mark.parametrize("shape", ["reasoning_content", "reasoning", "inline", "lone_close"])
def test_reasoning_is_separated_and_counted_in_every_shape(shape: Any) -> None:
    answer = Answer(content=["The", " answer"], reasoning=["let", " me", " think"])
    quirks = Quirks(reasoning=shape, usage=False)
    completion = fold(list(chunks(REQUEST, answer, quirks)))
    assert completion.content == "The answer"
    assert completion.reasoning == "let me think"
    assert completion.usage.counted_by == "client"
    # Every token-bearing chunk counts once; inline tags are part of the reasoning.
    tags = {"inline": 2, "lone_close": 1}.get(shape, 0)
    assert completion.usage.reasoning_tokens == 3 + tags
    assert completion.usage.completion_tokens == 5 + tags


def test_server_usage_wins_and_reasoning_split_is_labelled_ours() -> None:
    answer = Answer(content=["a", "b"], reasoning=["r1", "r2", "r3"])
    completion = fold(list(chunks(REQUEST, answer, Quirks(prompt_tokens=17))))
    assert completion.usage.counted_by == "server"
    assert completion.usage.prompt_tokens == 17
    assert completion.usage.completion_tokens == 5
    assert completion.usage.reasoning_tokens == 3
    assert completion.usage.reasoning_counted_by == "client"


def test_server_reasoning_tokens_are_used_when_given() -> None:
    answer = Answer(content=["a"], reasoning=["r1", "r2"])
    quirks = Quirks(reasoning_tokens_in_usage=True)
    completion = fold(list(chunks(REQUEST, answer, quirks)))
    assert completion.usage.reasoning_tokens == 2
    assert completion.usage.reasoning_counted_by == "server"


def test_timing_from_first_and_last_token() -> None:
    # chunk 0 is the empty role chunk at t=1.0; tokens arrive at 1.1 .. 1.4
    answer = Answer(content=["a", "b", "c", "d"])
    completion = fold(list(chunks(REQUEST, answer, Quirks())), step=0.1)
    assert completion.ttft_s == pytest.approx(1.1)
    # 4 tokens; 3 decoded after the first, over 0.3 s
    assert completion.decode_tok_s == pytest.approx(10.0)
    assert completion.wall_s == pytest.approx(1.0 + 7 * 0.1)


def test_timing_is_the_servers_own_where_it_reports_one() -> None:
    # llama.cpp's `timings`: 4 tokens decoded in 50 ms, 120 prompt tokens in 300 ms; the
    # stream's own clock (10 tok/s here) would also count network and client time.
    timings = {"prompt_n": 120, "prompt_ms": 300.0, "predicted_n": 4, "predicted_ms": 50.0,
               "prompt_per_second": 400.0, "predicted_per_second": 80.0}  # fmt: skip
    answer = Answer(content=["a", "b", "c", "d"])
    completion = fold(list(chunks(REQUEST, answer, Quirks(extra={"timings": timings}))))
    assert completion.decode_tok_s == pytest.approx(80.0)
    assert completion.decode_timed_by == "server"
    assert completion.prompt_tok_s == pytest.approx(400.0)
    plain = fold(list(chunks(REQUEST, answer, Quirks())))
    assert (plain.decode_timed_by, plain.prompt_tok_s) == ("stream", None)
    assert fold([]).decode_timed_by == "none"


@pytest.mark.parametrize("index", [True, False])
@pytest.mark.parametrize("split", [True, False])
def test_tool_calls_are_assembled_from_deltas(index: bool, split: bool) -> None:
    answer = Answer(tool_calls=[("get_user", {"name": "Alice"}), ("word_count", {"text": "a b"})])
    quirks = Quirks(tool_call_index=index, tool_args_split=split)
    completion = fold(list(chunks(REQUEST, answer, quirks)))
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("get_user", {"name": "Alice"}),
        ("word_count", {"text": "a b"}),
    ]
    assert [c.id for c in completion.tool_calls] == ["call_0", "call_1"]
    assert completion.finish_reason == "tool_calls"


def test_stop_after_tool_calls_is_normalised_to_tool_calls() -> None:
    answer = Answer(tool_calls=[("f", {})])
    completion = fold(list(chunks(REQUEST, answer, Quirks(finish_with_stop_after_calls=True))))
    assert completion.finish_reason == "tool_calls"


def test_server_stats_and_model_id_are_kept() -> None:
    timings = {"predicted_per_second": 55.5, "prompt_n": 12}
    answer = Answer(content=["x"], model="served-name")
    completion = fold(list(chunks(REQUEST, answer, Quirks(extra={"timings": timings}))))
    assert completion.server_stats == {"timings": timings}
    assert completion.model_id == "served-name"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("stop", "stop"), ("eos", "stop"), ("length", "length"), ("max_tokens", "length"),
     ("tool_calls", "tool_calls"), ("function_call", "tool_calls"), (None, "unknown"),
     ("weird", "unknown")],
)  # fmt: skip
def test_finish_reason_normalised(raw: str | None, normal: str) -> None:
    assert normalise_finish_reason(raw) == normal


def test_truncated_generation_keeps_length() -> None:
    answer = Answer(content=["```python", "\ndef f("], finish_reason="length")
    completion = fold(list(chunks(REQUEST, answer, Quirks())))
    assert completion.finish_reason == "length"
