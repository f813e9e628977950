"""The report's figures from recorded runs: budgets (several runs, or a JSONL's `budgets`),
intervals when the data has them, and a page without plots when matplotlib is missing."""

from __future__ import annotations

from typing import Any

from pytest_llmbench.html_report import (
    budget_points,
    budget_table,
    columns_of,
    comparison_table,
    figures,
    grid_data,
    render,
)
from pytest_llmbench.record import CaseRecord, RunData, TaskRecord


def run(run_id: str, model: str, cap: int, outcomes: list[str], **summary: Any) -> RunData:
    tasks = []
    for i, outcome in enumerate(outcomes):
        result = {"generation": {"max_tokens": cap, "seconds": 1.0, "completion_tokens": 10,
                                 "decode_tok_s": 20.0}, "load_s": 2.0}  # fmt: skip
        case = CaseRecord(model, f"f.yaml::t{i}", "c", outcome, "", {"id": "c"}, None, result)
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


def test_budgets_and_intervals_from_the_jsonl_line() -> None:
    swept = run(
        "r1", "m", 4096, ["passed", "passed"],
        interval=[0.4, 0.9],
        budgets=[
            {"max_tokens": 512, "passed": 0, "total": 2, "tasks_passed": 0, "tasks_total": 2,
             "truncated": 2, "interval": [0.0, 0.3]},
            {"max_tokens": 1024, "passed": 1, "total": 2, "suite": "python"},  # per suite: not here
        ],
    )  # fmt: skip
    points = budget_points(columns_of([swept]))
    assert [(p.max_tokens, p.passed, p.interval) for p in points] == [
        (512, 0, (0.0, 0.3)),
        (4096, 2, None),
    ]
    assert "[0-30%]" in budget_table(points)
    columns = columns_of([swept])
    assert "[40-90%]" in comparison_table(columns, [figures(c) for c in columns])


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
    assert abs(figures(columns_of([data])[0]).generation_s - 1.5) < 1e-9
    # Answers from the store carry no time of this run: without spans, the request times add up.
    assert figures(columns_of([run("r2", "m", 512, ["passed"] * 4)])[0]).generation_s == 4.0


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
