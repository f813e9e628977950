"""The table, markdown and JSONL carry intervals, tasks fully passed, and which gaps are real."""

from __future__ import annotations

import json

from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.reporting.jsonl import RunInfo, jsonl_line
from pytest_llmbench.reporting.markdown import render_markdown
from pytest_llmbench.reporting.table import (
    TIED,
    leader_and_ties,
    render_table,
    table_rows,
    ties_line,
)
from pytest_llmbench.results.aggregate import ModelReport, aggregate, compare

RUN = RunInfo("run1", "2026-01-01T00:00:00+00:00", "openai", "0.1.0", "digest", {})


def results(model: str, failing: set[int], tasks: int = 30, cases: int = 3) -> list[CaseResult]:
    """`tasks` python tasks of `cases` cases; the tasks in `failing` fail their last case."""
    return [
        CaseResult(
            model=model,
            suite="python",
            task=f"t{t}",
            case=f"c{c}",
            outcome="failed" if t in failing and c == cases - 1 else "passed",
            file="tasks/python/x.yaml",
        )
        for t in range(tasks)
        for c in range(cases)
    ]


def reports_for(**failing: set[int]) -> list[ModelReport]:
    everything = [r for model, fails in failing.items() for r in results(model, fails)]
    return aggregate(everything, tuple(failing))


def test_total_carries_its_interval_and_tasks_are_counted_whole() -> None:
    [only] = reports_for(a={0, 1, 2})
    score = only.score()
    assert (score.passed, score.total, score.tasks_passed, score.tasks_total) == (87, 90, 27, 30)
    assert score.interval.contains(87 / 90) and score.interval.low < 0.95
    row = table_rows([only], None)[0]
    assert row[4] == f"87/90 ({score.interval.percent()})"
    assert row[5] == "27/30"
    assert leader_and_ties([only]) == (None, set())


def test_models_within_noise_of_the_leader_are_marked() -> None:
    reports = reports_for(a=set(), b={0}, c=set(range(20)))
    leader, ties = leader_and_ties(reports)
    assert (leader, ties) == ("a", {"b"})
    rows = {row[0]: row for row in table_rows(reports, None)}
    assert rows["b"][4].endswith(TIED)
    assert not rows["a"][4].endswith(TIED) and not rows["c"][4].endswith(TIED)
    legend = ties_line(reports)
    assert (
        legend is not None and legend.startswith(f"{TIED}: not significantly") and " a " in legend
    )
    table = render_table(reports)
    assert table == render_table(reports)  # seeded: the same results print the same table
    assert ties_line(reports_for(a=set(), c=set(range(20)))) is None


def test_markdown_gives_every_interval_and_every_pair() -> None:
    reports = reports_for(a=set(), b={0}, c=set(range(20)))
    text = render_markdown(reports)
    assert "| `b` | 89/90 (" in text and "29/30 (" in text
    pairs = [line for line in text.splitlines() if line.startswith("| `") and "pts" in line]
    assert len(pairs) == 3
    c_vs_a = next(line for line in pairs if line.startswith("| `c` | `a`"))
    assert "| yes |" in c_vs_a and "-22.2 pts" in c_vs_a
    b_vs_a = next(line for line in pairs if line.startswith("| `b` | `a`"))
    assert "| no |" in b_vs_a


def test_jsonl_holds_scores_per_suite_and_comparisons() -> None:
    reports = reports_for(a=set(), c=set(range(20)))
    record = json.loads(jsonl_line(reports[1], RUN, "openai", None, None, reports))
    assert (record["tasks_passed"], record["tasks_total"]) == (10, 30)
    overall = record["scores"]["overall"]
    assert overall == record["scores"]["python"]
    assert (overall["passed"], overall["total"]) == (70, 90)
    low, high = overall["interval"]
    assert low < 70 / 90 < high
    t_low, t_high = overall["tasks_interval"]
    assert t_low < 10 / 30 < t_high
    assert "cluster bootstrap" in record["interval_method"]
    [versus] = record["compared"]
    assert versus["model"] == "a" and versus["shared_tasks"] == 30
    assert versus["difference"] == round(1 - 70 / 90, 4) and versus["significant"]
    assert (versus["tasks_only_this"], versus["tasks_only_other"]) == (0, 20)
    assert versus["tasks_p_value"] < 1e-5


def test_tasks_with_errors_are_left_out_of_comparisons() -> None:
    a = results("a", set(), tasks=4)
    b = [
        r if r.task != "t0" else CaseResult(**{**r.__dict__, "outcome": "error"})
        for r in results("b", {1}, tasks=4)
    ]
    first, second = aggregate(a + b, ("a", "b"))
    diff = compare(first, second)
    assert diff.cases.tasks == 3
    assert diff.tasks.only_old == 1
