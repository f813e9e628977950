"""Repeats and budgets: derived seeds, cut generations, shared executions, and the figures."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmbench.backends.timeline import timeline_of
from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.exchange import Completion, ToolCall
from pytest_llmbench.outcome import Outcome
from pytest_llmbench.results import stats
from pytest_llmbench.results.aggregate import aggregate
from pytest_llmbench.run.sampling import budget_runs, repeat_seed
from pytest_llmbench.suites.base import ToolExchange, generation_of
from pytest_llmbench.suites.python import PythonSuite
from pytest_llmbench.suites.tooling import ToolingSuite, run_tool
from pytest_llmbench.taskfiles.format import ToolingTask


def test_repeat_seeds_are_derived_distinct_and_stable() -> None:
    assert repeat_seed(7, 0) == 7  # one repeat is an ordinary run
    seeds = [repeat_seed(7, r) for r in range(50)]
    assert len(set(seeds)) == 50
    assert seeds == [repeat_seed(7, r) for r in range(50)]
    assert all(s is not None and 0 <= s < 2**31 for s in seeds)
    assert repeat_seed(8, 1) != repeat_seed(7, 1)
    assert repeat_seed(None, 3) is None  # no run seed: the server draws


def streamed(content: str, reasoning: str = "") -> Completion:
    timeline = tuple(("r", text) for _, text in timeline_of(reasoning)) + timeline_of(content)
    return Completion(content, reasoning=reasoning, timeline=timeline)


CODE = "```python\ndef f():\n    return 1\n```\nThat is all there is to it."


class CountingPython(PythonSuite):
    def __init__(self) -> None:
        self.runs: list[str] = []

    def execute(self, task: Any, generation: Any, sandbox: Any) -> Any:
        self.runs.append(generation.answer)
        return ("ran", generation.answer, generation.truncated)


def test_budget_runs_reuse_what_fits_and_share_equal_cut_answers() -> None:
    suite = CountingPython()
    whole = generation_of((streamed(CODE, "let me think about it"),), GenerationStats())
    execution = ("ran", whole.answer, False)
    tokens = len(whole.completions[0].timeline)  # 5 thinking + 12 answer
    runs = budget_runs(suite, None, whole, execution, [2, 3, 9, 13, tokens, 100], None)
    assert runs[tokens] == (whole, execution) and runs[100] == (whole, execution)
    # 2 and 3 cut the thinking: the same empty answer, run once; 9 cuts the code; 13 cuts
    # the prose after the code's closing fence (a whole block: it runs).
    cut_2, cut_3 = runs[2][0], runs[3][0]
    assert cut_2.answer == cut_3.answer == "" and cut_2.truncated
    assert runs[2][1] is runs[3][1]
    assert runs[9][0].answer.startswith("```python") and runs[9][0].truncated
    assert runs[13][0].answer.endswith("```\nThat is") and runs[13][0].truncated
    assert len(suite.runs) == 3


def test_tooling_chain_within_budget_matches_the_live_rule() -> None:
    suite = ToolingSuite()
    task = ToolingTask.model_validate(
        {"id": "t", "prompt": "p", "tools": ["get_user", "send_email"], "max_steps": 4,
         "reference": [], "cases": [{"id": "c", "called": "send_email"}]}
    )  # fmt: skip

    def turn(calls: list[ToolCall], reasoning: str) -> Completion:
        timeline = tuple(("r", w) for _, w in timeline_of(reasoning)) + tuple(
            (f"t{i}", c.arguments) for i, c in enumerate(calls)
        )
        return Completion("", reasoning, tuple(calls), "tool_calls", timeline=timeline)

    first = turn([ToolCall("a", "get_user", '{"name": "Alice"}')], "look up")  # 3 tokens
    second = turn(
        [ToolCall("b", "send_email", '{"to": "alice@example.com"}')], "now the mail itself"
    )
    done = Completion("Sent.", timeline=(("c", "Sent."),))
    exchanges = (
        ToolExchange(0, first.tool_calls[0], *run_tool(task, first.tool_calls[0])),
        ToolExchange(1, second.tool_calls[0], *run_tool(task, second.tool_calls[0])),
    )
    whole = generation_of((first, second, done), GenerationStats(), exchanges)
    assert suite.within_budget(task, whole, 5) is whole
    # 3 tokens: the lookup turn fits, the mail turn (5) is cut in its thinking: chain ends.
    at_3 = suite.within_budget(task, whole, 3)
    assert [e.call.name for e in at_3.exchanges] == ["get_user"]
    assert len(at_3.completions) == 2 and at_3.truncated
    assert suite.score(task, task.cases[0], at_3, None).outcome == "failed"
    at_2 = suite.within_budget(task, whole, 2)
    assert at_2.exchanges == () and len(at_2.completions) == 1
    assert suite.score(task, task.cases[0], at_2, None).outcome == "truncated"


def case(task: str, case_id: str, outcome: Outcome, repeat: int = 0, **kw: Any) -> CaseResult:
    return CaseResult("m", "python", task, case_id, outcome, file="f.yaml", repeat=repeat, **kw)


def test_repeats_count_every_sample_and_give_pass_at_k() -> None:
    results = [
        # task a: repeat 0 and 2 fully pass, repeat 1 fails one case
        *(case("a", c, "passed", r) for r in (0, 2) for c in ("x", "y")),
        case("a", "x", "passed", 1), case("a", "y", "failed", 1),
        # task b: never passes; task c: always
        *(case("b", "x", "failed", r) for r in range(3)),
        *(case("c", "x", "passed", r) for r in range(3)),
    ]  # fmt: skip
    [report] = aggregate(results, ("m",))
    assert report.repeats == 3
    score = report.score()
    assert (score.passed, score.total) == (5 + 0 + 3, 6 + 3 + 3)
    assert (score.tasks_passed, score.tasks_total) == (2 + 0 + 3, 9)
    for k in (1, 2, 3):
        rate, interval = report.pass_at_k(k) or (None, None)
        expected = (stats.pass_at_k(3, 2, k) + 0 + 1) / 3
        assert rate == pytest.approx(expected)
        assert interval is not None and interval.contains(expected)
    assert report.pass_at_k(4) is None
    assert report.unstable() == ["python:a:y"]


def test_an_error_next_to_a_pass_is_not_instability() -> None:
    results = [case("a", "x", "passed", 0), case("a", "x", "error", 1)]
    [report] = aggregate(results, ("m",))
    assert report.unstable() == []


def test_budget_views_score_each_budget() -> None:
    results = [
        case("a", "x", "passed", budgets=((8, "truncated"), (64, "passed"))),
        case("a", "y", "passed", budgets=((8, "truncated"), (64, "passed"))),
        case("b", "x", "failed", budgets=((8, "passed"), (64, "failed"))),
        case("c", "x", "error"),  # no budgets: an error at every budget
    ]
    [report] = aggregate(results, ("m",))
    assert report.budgets == [8, 64]
    small = report.at_budget(8)
    assert (small.passed, small.total, small.count("truncated")) == (1, 4, 2)
    assert small.score().tasks_passed == 1
    big = report.at_budget(64)
    assert [c.outcome for t in big.tasks for c in t.cases] == [c.outcome for c in results]


def test_jsonl_and_notes_count_samples() -> None:
    import json

    from pytest_llmbench.reporting.jsonl import RunInfo, jsonl_line
    from pytest_llmbench.run.summary import unpassed_tasks

    results = [
        case("a", "x", "passed", 0), case("a", "x", "failed", 1),  # passed in one repeat
        case("b", "x", "failed", 0), case("b", "x", "failed", 1),
    ]  # fmt: skip
    reports = aggregate(results, ("m",))
    run = RunInfo("r", "t", "openai", "0", "d", {})
    record = json.loads(jsonl_line(reports[0], run, "openai", None, None, reports))
    assert (record["tasks_passed"], record["tasks_total"]) == (1, 4)
    assert record["repeats"]["samples"] == 2
    assert record["repeats"]["tasks_pass_at_k"]["overall"]["2"]["rate"] == 0.5
    assert [c.get("repeat") for c in record["results"][0]["cases"]] == [0, 1]
    assert unpassed_tasks(results) == ["python:b"]
