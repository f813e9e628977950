"""The report's figures from recorded runs, computed as the terminal table and the JSONL
compute them: budgets (several runs, or one run's --llmbench-budgets), intervals, time; and a
page without plots when matplotlib is missing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes.bench import comparison_cells

from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.outcome import Outcome
from pytest_llmbench.reporting.html.data import (
    ReportError,
    budget_points,
    columns_of,
    figures,
    grid_data,
)
from pytest_llmbench.reporting.html.page import budget_table, comparison_table, render
from pytest_llmbench.reporting.jsonl import budget_records
from pytest_llmbench.results.stats import Interval
from pytest_llmbench.storage.record_reader import CaseRecord, RunData, TaskRecord


def run(
    run_id: str,
    model: str,
    cap: int,
    outcomes: list[Outcome],
    budgets: dict[int, list[Outcome]] | None = None,
    **summary: Any,
) -> RunData:
    """A recorded run of `model`: one python task of one case per outcome (and per budget, the
    outcomes at that budget), each case row holding its CaseResult as the record does."""
    tasks = []
    for i, outcome in enumerate(outcomes):
        generation = GenerationStats(seconds=1.0, completion_tokens=10, decode_tok_s=20.0,
                                     max_tokens=cap)  # fmt: skip
        at_budgets = tuple((b, got[i]) for b, got in (budgets or {}).items())
        result = CaseResult(model, "python", f"t{i}", "c", outcome, file="f.yaml",
                            generation=generation, load_s=2.0, budgets=at_budgets)  # fmt: skip
        case = CaseRecord(model, f"f.yaml::t{i}", "c", outcome, "", {"id": "c"}, None,
                          json.loads(result.to_json()))  # fmt: skip
        tasks.append(TaskRecord(model, f"f.yaml::t{i}", "python", f"t{i}", "easy", {"tags": []},
                                None, {"answer": "x"}, {}, [case]))  # fmt: skip
    summaries = {model: {"model": model, **summary}} if summary else {}
    return RunData(run_id, "2026-01-01", "2026-01-01", 0, {"models": [model]}, summaries, tasks)


def test_a_model_run_at_two_budgets_gets_a_budget_table() -> None:
    runs = [run("r1", "m", 512, ["passed", "truncated"]), run("r2", "m", 2048, ["passed"] * 2)]
    points = budget_points(columns_of(runs))
    assert [(p.max_tokens, p.passed, p.total, p.truncated) for p in points] == [
        (512, 1, 2, 1),
        (2048, 2, 2, 0),
    ]
    table = budget_table(points)
    assert "By token budget" in table and "<td>512</td>" in table and "<td>2048</td>" in table


def test_one_budget_per_model_needs_no_budget_table() -> None:
    runs = [run("r1", "a", 512, ["passed"]), run("r2", "b", 512, ["failed"])]
    assert budget_table(budget_points(columns_of(runs))) == ""


def test_budgets_and_intervals_are_computed_as_the_jsonl_computes_them() -> None:
    swept = run("r1", "m", 4096, ["passed", "passed", "failed"],
                budgets={512: ["passed", "truncated", "truncated"],
                         4096: ["passed", "passed", "failed"]})  # fmt: skip
    [column] = columns_of([swept])
    points = budget_points([column])
    # The JSONL's `budgets` of the same cases: one computation for both.
    expected = {b["max_tokens"]: b for b in budget_records(column.report)}
    assert [p.max_tokens for p in points] == [512, 4096] == sorted(expected)
    for p in points:
        line = expected[p.max_tokens]
        assert (p.passed, p.total, p.tasks_passed, p.tasks, p.truncated) == (
            line["passed"], line["total"], line["tasks_passed"], line["tasks_total"],
            line["truncated"],
        )  # fmt: skip
        assert p.interval is not None and Interval(*p.interval).as_list() == line["interval"]
    table = budget_table(points)
    low, high = expected[512]["interval"]
    assert f"[{100 * low:.0f}-{100 * high:.0f}%]" in table
    # The table's total carries the interval the terminal and the JSONL give it.
    overall = column.report.score().interval
    row = comparison_cells(comparison_table([column], [figures(column)]))[0]
    assert row["total"].endswith(f"[{100 * overall.low:.0f}-{100 * overall.high:.0f}%]")


def test_hovering_a_model_names_the_server_that_answered_it() -> None:
    recorded = run("r1", "m", 512, ["passed"], provenance={"server": "Ollama",
                   "server_version": "0.12.6", "model_digest": "d" * 64})  # fmt: skip
    older = run("r2", "o", 512, ["passed"])  # a run recorded before provenance existed
    columns = columns_of([recorded, older])
    table = comparison_table(columns, [figures(c) for c in columns])
    assert "<th title='run r1; Ollama 0.12.6'>m</th>" in table
    assert "<th title='run r2'>o</th>" in table


def test_same_model_in_two_runs_is_labelled_by_run() -> None:
    labels = [c.label for c in columns_of([run("aaaa1111", "m", 1, ["passed"]),
                                           run("bbbb2222", "m", 1, ["passed"])])]  # fmt: skip
    assert labels == ["m @aaaa1111", "m @bbbb2222"]


def test_without_matplotlib_the_page_says_how_to_get_plots() -> None:
    page = render([run("r1", "m", 512, ["passed"])], plots=None)
    assert "pip install 'pytest-llmbench[report]'" in page
    assert "<svg" not in page and 'id="llmbench-details-0"' in page


def test_time_is_the_generation_wall_clock_not_the_sum_of_requests() -> None:
    # Four requests of 1 s each, in flight together from t=100: the phase took 1.5 s, not 4 s.
    data = run("r1", "m", 512, ["passed"] * 4)
    for i, task in enumerate(data.tasks):
        task.cases[0].result["generation"].update(
            started_at=100.0 + i / 6, finished_at=101.0 + i / 6
        )
    [column] = columns_of([data])
    wall = figures(column).wall_seconds
    assert wall is not None and abs(wall - 1.5) < 1e-9
    assert comparison_cells(comparison_table([column], [figures(column)]))[0]["time"] == "1.5s"
    # Answers from the store carry no time of this run: every one from the store, no time.
    stored = run("r2", "m", 512, ["passed"] * 4)
    for task in stored.tasks:
        task.cases[0].result["generation"].update(from_store=True)
    [column] = columns_of([stored])
    assert figures(column).wall_seconds is None
    row = comparison_cells(comparison_table([column], [figures(column)]))[0]
    assert (row["time"], row["tok/s"], row["decode tok/s"]) == ("stored", "-", "-")


def test_grid_cells_carry_the_stability_of_the_jsonl_line() -> None:
    flaky = {"label": "flaky", "labels": ["flaky", "budget-sensitive"], "samples": 3,
             "samples_passed": 2, "from_budget": 1024, "audited": False}  # fmt: skip
    stable = {**flaky, "label": "stable pass", "labels": ["stable pass"], "samples_passed": 3}
    results = [
        {"file": "f.yaml", "task": "t0", "stability": flaky},
        {"file": "f.yaml", "task": "t1", "stability": stable},
        {"file": "f.yaml", "task": "t2", "stability": None},  # every case errored
        {"file": "f.yaml", "task": "t3"},  # a line from before the labels
    ]
    recorded = run("r1", "m", 512, ["failed", "passed", "error", "passed"], results=results)
    data, _ = grid_data(columns_of([recorded]))
    assert data["stability"] == [
        [
            ["flaky", "flaky (2 of 3), budget-sensitive (from 1024)", 3],
            ["stable pass", "stable pass (3 samples)", 3],
            None,
            None,
        ]
    ]
    assert set(data["marks"]) == {"batching-sensitive", "flaky", "budget-sensitive"}
    # A run that wrote no JSONL line (interrupted before the end): nothing to mark.
    data, _ = grid_data(columns_of([run("r2", "m", 512, ["failed"])]))
    assert data["stability"] == [[None]]


def test_a_case_this_version_cannot_read_is_one_clear_error() -> None:
    data = run("r1", "m", 512, ["passed"])
    data.tasks[0].cases[0].result["moved_elsewhere"] = 1  # written by another version
    with pytest.raises(ReportError, match=r"case f.yaml::t0::c of m cannot be read by this"):
        columns_of([data])
