"""What the table and JSONL say about speed (decode tok/s, who timed it, prompt tok/s) and
about tool calls the server left as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.exchange import Completion, ToolCall, Usage
from pytest_llmbench.reporting.jsonl import RunInfo, jsonl_line
from pytest_llmbench.reporting.table import render_table
from pytest_llmbench.results.aggregate import aggregate
from pytest_llmbench.suites.base import RequestSettings
from pytest_llmbench.suites.tooling import ToolingSuite
from pytest_llmbench.taskfiles.format import ToolingTask

SETTINGS = RequestSettings(max_tokens=64, temperature=0.0, seed=None, timeout_s=5.0)
TASK = ToolingTask.model_validate(
    {
        "id": "t",
        "prompt": "p",
        "tools": ["get_weather", "get_user"],
        "reference": [],
        "cases": [{"id": "c", "called": "get_weather"}],
    }
)


def scripted(*replies: Completion) -> Any:
    turns: Iterator[Completion] = iter(replies)
    return lambda request: next(turns)


def test_turns_whose_call_stayed_text_are_counted_in_the_generation() -> None:
    as_text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    generation = ToolingSuite().generate(TASK, "m", scripted(Completion(as_text)), SETTINGS)
    assert generation.stats.calls_left_as_text == 1
    # A parsed call first, then a call written as text: one turn left as text.
    made = Completion("", tool_calls=(ToolCall("c1", "get_user", '{"name": "Al"}'),))
    mixed = scripted(made, Completion('{"name": "get_weather", "arguments": {}}'))
    assert ToolingSuite().generate(TASK, "m", mixed, SETTINGS).stats.calls_left_as_text == 1
    prose = scripted(Completion("It is sunny, says get_weather."))
    assert ToolingSuite().generate(TASK, "m", prose, SETTINGS).stats.calls_left_as_text == 0


def _result(task: str, case: str, **stats: Any) -> CaseResult:
    return CaseResult("m", "tooling", task, case, "failed", generation=GenerationStats(**stats))


def test_the_table_notes_calls_left_as_text_per_model_counting_turns_not_cases() -> None:
    results = [
        _result("a", "one", calls_left_as_text=2),
        _result("a", "two", calls_left_as_text=2),  # the same generation, another case
        _result("b", "one", calls_left_as_text=1),
        _result("c", "one"),
    ]
    table = render_table(aggregate(results, ("m",)))
    assert "3 tool calls left as text: the server did not parse them" in table
    one = render_table(aggregate([_result("b", "one", calls_left_as_text=1)], ("m",)))
    assert "1 tool call left as text" in one


def test_decode_column_and_jsonl_speed_fields() -> None:
    results = [
        # 100 tokens at 50 tok/s (2 s) and 60 at 20 tok/s (3 s): 160 tokens in 5 s decoding
        _result("a", "x", completion_tokens=100, decode_tok_s=50.0, decode_timed_by="server",
                prompt_tokens=300, prompt_tok_s=600.0, seconds=9.0),
        _result("b", "x", completion_tokens=60, decode_tok_s=20.0, decode_timed_by="server",
                prompt_tokens=100, prompt_tok_s=100.0, seconds=9.0),
    ]  # fmt: skip
    (report,) = aggregate(results, ("m",))
    header, _, row = render_table([report]).splitlines()
    assert header.split()[-2:] == ["decode", "tok/s"]
    assert row.split()[-1] == "32"  # 160 / 5, not the end-to-end 160 / 18
    run = RunInfo("r", "t", "embedded", "0", "d", {})
    line = json.loads(jsonl_line(report, run, "embedded", "http://127.0.0.1:1", 1.0))
    assert line["decode_tok_s"] == 32.0 and line["decode_timed_by"] == "server"
    assert line["prompt_tok_s"] == 266.67  # 400 tokens in 0.5 + 1.0 s
    assert line["tokens_per_second"] == 160 / 18
    assert line["results"][0]["prompt_tok_s"] == 600.0


def test_requests_keep_who_timed_their_decoding() -> None:
    from pytest_llmbench.suites.base import stats_of

    server = Completion("a", usage=Usage(completion_tokens=10), decode_tok_s=10.0,
                        decode_timed_by="server", prompt_tok_s=50.0)  # fmt: skip
    stream = Completion("b", usage=Usage(completion_tokens=10), decode_tok_s=10.0,
                        decode_timed_by="stream")  # fmt: skip
    assert stats_of((server, server), 64).decode_timed_by == "server"
    assert stats_of((server, stream), 64).decode_timed_by == "server+stream"
    assert stats_of((Completion("c"),), 64).decode_timed_by == "none"
