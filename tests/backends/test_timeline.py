"""Token timelines and the cut: the answer a capped run gives, from the uncapped run's stream.

The proof at the stream level: for every budget, folding what a server capped at that budget
streams gives the same completion as cutting the uncapped completion's timeline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fakes.chat_stream import Answer, Quirks, chunks

from pytest_llmbench.backends.builtin import BuiltinBackend
from pytest_llmbench.backends.stream import StreamAccumulator
from pytest_llmbench.backends.timeline import cut, timeline_of, token_count
from pytest_llmbench.exchange import ChatRequest, Completion, ToolCall, Usage

REQUEST: dict[str, Any] = {"model": "m", "stream_options": {"include_usage": True}}


def fold(stream: list[dict[str, Any]]) -> Completion:
    acc = StreamAccumulator(started_at=0.0)
    for i, chunk in enumerate(stream):
        acc.feed(chunk, 1.0 + i * 0.1)
    return acc.finish(1.0 + len(stream) * 0.1)


def served(answer: Answer, quirks: Quirks, max_tokens: int | None = None) -> Completion:
    request = dict(REQUEST, max_tokens=max_tokens) if max_tokens is not None else REQUEST
    return fold(list(chunks(request, answer, quirks)))


ANSWERS = {
    "code": Answer(content=["```python\n", "def", " f():", "\n    return", " 1", "\n```"]),
    "thinking": Answer(content=["The", " end"], reasoning=["let", " me", " think"]),
    "calls": Answer(
        content=["Calling."],
        reasoning=["plan"],
        tool_calls=[("get_user", {"name": "Alice"}), ("get_time", {"city": "Paris"})],
    ),
}
SHAPES = ["reasoning_content", "reasoning", "inline", "lone_close"]


def test_timeline_holds_every_token_in_order() -> None:
    completion = served(ANSWERS["calls"], Quirks(reasoning="reasoning_content"))
    assert completion.timeline == (
        ("r", "plan"),
        ("c", "Calling."),
        ("t0", '{"name":'),
        ("t0", ' "Alice"}'),
        ("t1", '{"city":'),
        ("t1", ' "Paris"}'),
    )
    assert token_count(completion) == completion.usage.completion_tokens == 6


def test_inline_thinking_stays_in_the_content_stream() -> None:
    completion = served(ANSWERS["thinking"], Quirks(reasoning="inline"))
    assert [kind for kind, _ in completion.timeline] == ["c"] * 7
    assert "".join(text for _, text in completion.timeline) == "<think>let me think</think>The end"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_cut_equals_a_capped_stream_at_every_budget(name: str, shape: Any) -> None:
    answer = ANSWERS[name]
    quirks = Quirks(reasoning=shape, usage=False)
    whole = served(answer, quirks)
    for budget in range(1, len(whole.timeline) + 2):
        capped = served(answer, quirks, max_tokens=budget)
        replayed = cut(whole, budget)
        assert (replayed.content, replayed.reasoning) == (capped.content, capped.reasoning)
        assert replayed.tool_calls == capped.tool_calls, budget
        assert replayed.finish_reason == capped.finish_reason, budget
        assert replayed.timeline == capped.timeline
        assert replayed.usage.completion_tokens == capped.usage.completion_tokens
        assert replayed.usage.reasoning_tokens == capped.usage.reasoning_tokens


def test_cut_short_of_the_end_says_length_and_keeps_partial_calls() -> None:
    whole = served(ANSWERS["calls"], Quirks())
    partial = cut(whole, 5)
    assert partial.finish_reason == "length"
    assert [c.name for c in partial.tool_calls] == ["get_user", "get_time"]
    assert partial.tool_calls[0].parsed_arguments() == {"name": "Alice"}
    assert partial.tool_calls[1].parsed_arguments() is None  # cut halfway through its JSON
    assert partial.usage.completion_tokens == 5
    assert partial.usage.prompt_tokens == whole.usage.prompt_tokens


def test_a_completion_that_fits_is_left_alone() -> None:
    whole = served(ANSWERS["code"], Quirks())
    assert cut(whole, len(whole.timeline)) is whole
    assert cut(whole, 10_000) is whole


def test_cut_refuses_what_it_cannot_do() -> None:
    whole = served(ANSWERS["code"], Quirks())
    with pytest.raises(ValueError, match="at least 1"):
        cut(whole, 0)
    unstreamed = Completion("a long answer", usage=Usage(completion_tokens=40))
    with pytest.raises(ValueError, match="no token timeline"):
        cut(unstreamed, 10)
    assert cut(unstreamed, 40) is unstreamed  # it fits by the server's count
    empty = Completion("")
    assert cut(empty, 1) is empty


def test_builtin_models_record_a_timeline_and_stop_at_max_tokens() -> None:
    backend = BuiltinBackend()
    reference = "```python\ndef add(a, b):\n    return a + b\n```"

    def ask(max_tokens: int, answer: Any = reference) -> Completion:
        return backend.chat(ChatRequest("reference", [], max_tokens, 0.0, reference=answer))

    whole = ask(1000)
    assert whole.timeline == timeline_of(reference)
    assert "".join(text for _, text in whole.timeline) == reference
    capped = ask(3)
    assert capped.finish_reason == "length"
    assert capped.content == "```python\ndef add(a, b):"
    assert capped == replace(cut(whole, 3), model_id="reference")

    turns = [[{"name": "get_user", "arguments": {"name": "Alice"}}]]
    calls = ask(1000, turns)
    assert calls.timeline == (("t0", '{"name": "Alice"}'),)
    assert calls.tool_calls == (ToolCall("call_0_0", "get_user", '{"name": "Alice"}'),)
