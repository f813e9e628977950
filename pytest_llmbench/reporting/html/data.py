"""What the HTML report shows, computed from the record: a column per (run, model) with its
ModelReport (the figures the terminal table and the JSONL give), the points of the budget table
and plots, and the grid of tasks by model with each cell's details. The page
(reporting/html/page.py) and the plots (reporting/html/plots.py) render these; neither computes a
figure of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...caseresult import SUITES, CaseResult
from ...outcome import LETTERS
from ...results.aggregate import ModelReport, aggregate
from ...results.stability import Label, Stability
from ...storage.record_reader import RunData, TaskRecord

TIERS = ("easy", "medium", "hard")
# The mark on a grid cell, by the task's primary label; stable tasks carry none.
MARKS: dict[Label, str] = {"batching-sensitive": "≠", "flaky": "~", "budget-sensitive": "↑"}


class ReportError(Exception):
    """The report cannot be made as asked; the message says why."""


@dataclass
class Column:
    """One model in one run: a column of the grid, a row of the table."""

    label: str
    model: str
    run: RunData
    tasks: list[TaskRecord]
    # The column's case results aggregated as the terminal table and the JSONL aggregate
    # them, so that the three give the same figures (time, speeds, scores, intervals).
    report: ModelReport


def recorded_report(model: str, tasks: Sequence[TaskRecord]) -> ModelReport:
    """The ModelReport of a model's recorded cases (each case row holds its CaseResult)."""
    results = []
    for task in tasks:
        for case in task.cases:
            try:
                results.append(CaseResult.from_dict(case.result))
            except (KeyError, TypeError, ValueError) as exc:
                raise ReportError(
                    f"the record's case {task.task_ref}::{case.case} of {model} cannot be read "
                    f"by this version ({type(exc).__name__}: {exc})"
                ) from None
    reports = aggregate(results, (model,))
    return reports[0] if reports else ModelReport(model, [])


@dataclass(frozen=True)
class Figures:
    """One column's numbers, as the table and the plots show them: its ModelReport's (the
    computation behind the terminal table and the JSONL), and the cases per tier, which only
    the record knows (a task's difficulty)."""

    report: ModelReport
    by_tier: dict[str, tuple[int, int]]

    @property
    def rate(self) -> float | None:
        return self.report.passed / self.report.total if self.report.total else None

    @property
    def wall_seconds(self) -> float | None:
        return self.report.wall_seconds

    @property
    def throughput(self) -> float | None:
        return self.report.throughput

    @property
    def decode_tok_s(self) -> float | None:
        return self.report.decode_tok_s

    @property
    def decode_rates(self) -> list[float]:
        """Per answer generated in this run, its decoding speed: what `decode_tok_s` weighs."""
        return [g.decode_tok_s for g in self.report.generated if g.decode_tok_s]


def figures(column: Column) -> Figures:
    tiers = {task.task_ref: task.difficulty or "-" for task in column.tasks}
    by_tier: dict[str, tuple[int, int]] = {}
    for task in column.report.tasks:
        tier = tiers.get(f"{task.file}::{task.task}", "-")
        passed, total = by_tier.get(tier, (0, 0))
        by_tier[tier] = (passed + task.passed, total + task.total)
    return Figures(column.report, by_tier)


def columns_of(runs: Sequence[RunData]) -> list[Column]:
    """Grid columns: each run's models in its --models order; a model in several runs is
    labelled with its run."""
    seen = Counter(model for run in runs for model in run.models)
    columns = []
    for run in runs:
        for model in run.models:
            label = model if seen[model] == 1 else f"{model} @{run.run_id[:8]}"
            tasks = [t for t in run.tasks if t.model == model]
            columns.append(Column(label, model, run, tasks, recorded_report(model, tasks)))
    return columns


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class BudgetPoint:
    model: str
    max_tokens: int
    passed: int
    total: int
    tasks_passed: int
    tasks: int
    truncated: int
    interval: tuple[float, float] | None  # 95 %, of the case pass rate


def budget_points(columns: Sequence[Column]) -> list[BudgetPoint]:
    """Score per model and token budget: each run's cap, and with --llmbench-budgets every
    budget the run scored (one run can sweep several), computed as the JSONL's `budgets`."""
    points: dict[tuple[str, int], BudgetPoint] = {}
    for column in columns:
        report = column.report
        views = {budget: report.at_budget(budget) for budget in report.budgets}
        if report.max_tokens is not None:
            views.setdefault(report.max_tokens, report)
        for budget, view in views.items():
            score = view.score()
            points[(column.model, budget)] = BudgetPoint(
                column.model,
                budget,
                score.passed,
                score.total,
                score.tasks_passed,
                score.tasks_total,
                view.count("truncated"),
                (score.interval.low, score.interval.high) if score.total else None,
            )
    return sorted(points.values(), key=lambda p: (p.model, p.max_tokens))


# --------------------------------------------------------------------------- choosing a model


@dataclass(frozen=True)
class ChoicePoint:
    """One column on the quality-against-speed scatter, as its JSONL line has it."""

    label: str
    model: str
    rate: float
    interval: tuple[float, float]
    decode_tok_s: float | None
    memory_bytes: int | None
    frontier: bool
    reference: str | None  # the column's model is a variant of this one (same run)


def choice_points(columns: Sequence[Column]) -> list[ChoicePoint]:
    """The columns with a score, with what their run's end said of their cost (a run still
    going has no JSONL line yet: its speed from its cases, no memory, no frontier)."""
    points = []
    for column in columns:
        score = column.report.score()
        if not score.total:
            continue
        summary = column.run.summaries.get(column.model) or {}
        cost = summary.get("cost") or {}
        peak, steady = cost.get("memory_peak_bytes"), cost.get("memory_steady_bytes")
        variant = summary.get("variant_of") or {}
        points.append(
            ChoicePoint(
                column.label,
                column.model,
                score.rate,
                (score.interval.low, score.interval.high),
                column.report.decode_tok_s,
                peak if peak is not None else steady,
                bool(summary.get("frontier")),
                variant.get("reference"),
            )
        )
    return points


def choice_notes(columns: Sequence[Column]) -> list[str]:
    """Each run's recommendation lines and where its memory figures come from, once."""
    notes: dict[str, None] = {}
    for column in columns:
        summary = column.run.summaries.get(column.model) or {}
        source = (summary.get("cost") or {}).get("memory_source")
        if source and source != "n/a":
            notes[f"memory of {column.label}: {source}"] = None
    for column in columns:
        summary = column.run.summaries.get(column.model) or {}
        notes.update(dict.fromkeys(summary.get("recommendations") or ()))
    return list(notes)


# --------------------------------------------------------------------------- grid and details


def grid_data(columns: Sequence[Column]) -> tuple[dict[str, Any], list[list[Any]]]:
    """The grid (rows of tasks, one cell per column) and, per column, each cell's details."""
    order: dict[str, int] = {s: i for i, s in enumerate(SUITES)}
    rows: dict[str, dict[str, Any]] = {}
    for column in columns:
        for task in column.tasks:
            row = rows.setdefault(
                task.task_ref,
                {
                    "suite": task.suite,
                    "tier": task.difficulty or "",
                    "task": task.task,
                    "file": task.task_ref.rsplit("::", 1)[0],
                    "tags": task.inputs.get("tags", []),
                    "cases": [],
                },
            )
            for case in task.cases:
                if case.case not in row["cases"]:
                    row["cases"].append(case.case)
    first_seen = {ref: i for i, ref in enumerate(rows)}
    ordered = sorted(
        rows,
        key=lambda ref: (
            order.get(rows[ref]["suite"], len(order)),
            rows[ref]["file"],
            first_seen[ref],
        ),
    )
    index = {ref: i for i, ref in enumerate(ordered)}
    cells: list[list[str | None]] = [[None] * len(ordered) for _ in columns]
    details: list[list[Any]] = [[None] * len(ordered) for _ in columns]
    labels: list[list[list[Any] | None]] = [[None] * len(ordered) for _ in columns]
    for c, column in enumerate(columns):
        judged = stabilities(column)
        for task in column.tasks:
            r = index[task.task_ref]
            found = judged.get(task.task_ref)
            if found is not None:
                labels[c][r] = [found.label, found.text(), found.samples]
            by_case = {case.case: case for case in task.cases}
            cells[c][r] = "".join(
                LETTERS.get(by_case[k].outcome, "?") if k in by_case else " "
                for k in rows[task.task_ref]["cases"]
            )
            details[c][r] = task_details(task)
    data = {
        "columns": [
            {"label": col.label, "model": col.model, "run": col.run.run_id} for col in columns
        ],
        "rows": [_grid_row(rows[ref]) for ref in ordered],
        "cells": cells,
        "stability": labels,  # per column, per row: [label, its text, samples] or null
        "marks": MARKS,
        "outcomes": {code: name for name, code in LETTERS.items()},
    }
    return data, details


def stabilities(column: Column) -> dict[str, Stability]:
    """The stability of each task of a column, by task_ref, from its run's JSONL line (a run
    that did not finish, or wrote none, has none)."""
    summary = column.run.summaries.get(column.model) or {}
    out = {}
    for entry in summary.get("results") or []:
        try:
            out[f"{entry['file']}::{entry['task']}"] = Stability.from_dict(entry["stability"])
        except (KeyError, TypeError, ValueError):
            continue  # a line from before the labels, or an all-error task: no mark
    return out


def _grid_row(row: dict[str, Any]) -> list[Any]:
    """[suite, tier, task, file, the words the text filter searches, case ids]"""
    words = " ".join([row["task"], *row["tags"], *row["cases"]]).lower()
    return [row["suite"], row["tier"], row["task"], row["file"], words, row["cases"]]


def task_details(task: TaskRecord) -> dict[str, Any]:
    """What the drill-down shows for one model's answer to one task."""
    gen = task.generation or {}
    turns = gen.get("turns") or []
    exchanges = gen.get("exchanges") or []
    shown_turns = []
    if len(turns) > 1 or exchanges:
        for step, turn in enumerate(turns):
            shown_turns.append(
                {
                    "content": turn.get("content", ""),
                    "reasoning": turn.get("reasoning", ""),
                    "finish": turn.get("finish_reason"),
                    "calls": [
                        {"name": e["name"], "arguments": e["arguments"], "result": e["result"]}
                        for e in exchanges
                        if e.get("step") == step
                    ],
                }
            )
    inputs = task.inputs
    return {
        "inputs": {k: v for k, v in inputs.items() if k not in ("id", "suite", "tags")},
        "answer": gen.get("answer"),
        "reasoning": gen.get("reasoning", ""),
        "truncated": gen.get("truncated", False),
        "finish": [t.get("finish_reason") for t in turns],
        "turns": shown_turns,
        "exec": task.execution,
        "stats": gen.get("stats") or (task.cases[0].result.get("generation") if task.cases else {}),
        "load_s": task.cases[0].result.get("load_s") if task.cases else None,
        "answer_key": task.answer_key,
        "cases": [
            {
                "id": c.case,
                "outcome": c.outcome,
                "detail": c.detail,
                "expect": {k: v for k, v in c.inputs.items() if k != "id"},
                "got": c.got,
            }
            for c in task.cases
        ],
    }
