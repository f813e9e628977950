"""Progress counting and status letters, without a terminal."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.run.progress import Tally, duration
from pytest_llmbench.run.progress import teststatus as status_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ids(model: str, tasks: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"f.yaml::{task}/c{i}[{model}]", model) for task, n in tasks.items() for i in range(n)]


def result(model: str, task: str, outcome: Any, tokens: int = 100, seconds: float = 2.0) -> Any:
    stats = GenerationStats(seconds=seconds, completion_tokens=tokens)
    return CaseResult(model, "python", task, "c", outcome, file="f.yaml", generation=stats)


def test_tasks_done_cases_passed_speed_and_eta() -> None:
    clock = Clock()
    tally = Tally(clock)
    tally.select(ids("a", {"t1": 2, "t2": 1, "t3": 1}) + ids("b", {"t1": 2, "t2": 1, "t3": 1}))
    tally.start("a")
    clock.now = 10.0
    tally.add("f.yaml::t1/c0[a]", result("a", "t1", "passed"))
    assert tally.models["a"].tasks_done == 0  # one of its two cases
    tally.add("f.yaml::t1/c1[a]", result("a", "t1", "failed"))  # same generation: counted once
    a = tally.models["a"]
    assert (a.tasks_done, a.cases_done, a.cases_passed, a.tokens) == (1, 2, 1, 100)
    assert a.tokens_per_second == 50.0
    # 10 s for 1 task; 2 left for a and 3 for b, one model running at a time
    assert tally.eta() == pytest.approx(50.0)
    assert tally.status() == "a 1/3 tasks, 1/2 cases passed, 50 tok/s, ETA 50s"
    clock.now = 30.0
    tally.add("f.yaml::t2/c0[a]", result("a", "t2", "passed"))
    tally.add("f.yaml::t3/c0[a]", result("a", "t3", "passed"))
    assert a.finished == 30.0 and not a.running
    tally.start("b")
    assert tally.eta() == pytest.approx(30.0)  # b's 3 tasks at a's 10 s per task


def test_models_side_by_side_share_the_eta() -> None:
    clock = Clock()
    tally = Tally(clock)
    tally.select(ids("a", {"t1": 1, "t2": 1}) + ids("b", {"t1": 1, "t2": 1}))
    tally.start("a")
    tally.start("b")
    clock.now = 4.0
    tally.add("f.yaml::t1/c0[a]", result("a", "t1", "passed"))
    tally.add("f.yaml::t1/c0[b]", result("b", "t1", "passed"))
    assert tally.eta() == pytest.approx(4.0)  # 2 tasks left at 4 s each, 2 models at once
    assert " | " in tally.status()


def test_no_estimate_before_a_task_is_done() -> None:
    tally = Tally(Clock())
    tally.select(ids("a", {"t1": 1}))
    tally.start("a")
    assert tally.eta() is None and tally.status().endswith("ETA -")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (59, "59s"), (61, "1m01s"), (3725, "1h02m")]
)
def test_durations_read_like_a_clock(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _report(when: str, passed: bool, outcome: str | None) -> Any:
    props = [("llmbench_outcome", outcome)] if outcome else []
    return SimpleNamespace(when=when, passed=passed, failed=not passed, user_properties=props)


@pytest.mark.parametrize(
    ("outcome", "letter", "word"),
    [
        ("passed", ".", "PASSED"),
        ("failed", "F", "FAILED"),
        ("truncated", "t", "TRUNCATED"),
        ("no_answer", "n", "NO ANSWER"),
        ("timeout", "T", "TIMEOUT"),
    ],
)
def test_letters_and_words(outcome: str, letter: str, word: str) -> None:
    category, got_letter, (got_word, _) = status_of(_report("call", outcome == "passed", outcome))  # type: ignore[misc]
    assert (got_letter, got_word) == (letter, word)
    assert category == ("passed" if outcome == "passed" else "failed")


def test_errors_keep_their_category_and_other_reports_are_pytests() -> None:
    assert status_of(_report("setup", False, "error")) == ("error", "E", ("ERROR", {"red": True}))  # type: ignore[arg-type]
    assert status_of(_report("setup", True, None)) is None
    assert status_of(_report("teardown", True, "passed")) is None
    assert status_of(_report("call", True, None)) is None  # not a benchmark item
