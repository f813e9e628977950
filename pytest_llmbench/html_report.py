"""The HTML report: one self-contained file from one or more runs of the record.

The page holds everything it shows (CSS, script, plots as inline SVG, the data as JSON), so it
opens from disk with no network. It has:

- the comparison table: per model and run, cases passed per suite and per tier, tasks fully
  passed, time and speed (hovering a model names the server that answered it, with its build);
  a table per token budget when a model was run at several budgets (several runs, or one run
  with --llmbench-budgets); 95 % intervals. Every figure is a results.ModelReport's, built from
  the recorded CaseResults: the computation the terminal table and the JSONL use, so the three
  agree (also on a run resumed from the answer store);
- plots (matplotlib): score against token budget, score against generation time, decode speed;
- a grid of tasks by model, each cell one stripe per case coloured by outcome, filtered by suite,
  tier, outcome and text; a cell whose (model, task) is not stable (flaky, budget- or
  batching-sensitive: the `stability` of its run's JSONL line) carries a mark;
- a click on a cell opens the case: its stability label, prompt, answer with its code
  highlighted, reasoning folded, each case's expectation against what it got, the tool
  transcript turn by turn, and what ran in the sandbox with its output.

The record keeps each case's first sample only, so with --llmbench-repeat the table's figures
are the first sample's; what the run learned from all its samples (the stability labels) comes
from the model's JSONL line, which the record also keeps.

The grid's data is parsed at load; each model's case details are kept compressed and unpacked on
the first click into that model's column (the browser's own gzip decoder, no network), which
keeps a 10-model, 2,000-case report quick to open and filter.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .backends.provenance import describe
from .outcome import LETTERS, NOTED
from .record_reader import RunData, TaskRecord, read_run, resolve_runs
from .results import (
    SUITES,
    CaseResult,
    Label,
    ModelReport,
    Stability,
    aggregate,
)

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


def _fraction(cell: Sequence[int] | None) -> str:
    if not cell or not cell[1]:
        return "-"
    return f"{cell[0]}/{cell[1]} <small>{100 * cell[0] / cell[1]:.0f}%</small>"


def _interval(interval: tuple[float, float] | None) -> str:
    """A 95 % interval of a pass rate, `(low, high)` fractions."""
    if interval is None:
        return ""
    low, high = interval
    return f" <small class=ci>[{100 * low:.0f}-{100 * high:.0f}%]</small>"


def _number(value: float | None, fmt: str) -> str:
    return format(value, fmt) if value is not None else "-"


def _wall(report: ModelReport) -> str:
    """The generation phase's wall-clock; an answer store that gave every answer left none."""
    if report.wall_seconds is not None:
        return f"{report.wall_seconds:.1f}s"
    return "stored" if report.from_store else "-"


def comparison_table(columns: Sequence[Column], stats: Sequence[Figures]) -> str:
    ran = {s for f in stats for s in f.report.suites()}
    suites = [s for s in SUITES if s in ran] + sorted(ran - set(SUITES))
    tiers = [t for t in TIERS if any(t in f.by_tier for f in stats)]
    head = ["model", *suites, *tiers, "total", "tasks", "time", "tok/s", "decode tok/s", "load",
            "max_tokens", "notes"]  # fmt: skip
    rows = []
    for column, fig in zip(columns, stats, strict=True):
        report = fig.report
        notes = ", ".join(f"{report.count(o)} {label}" for o, label in NOTED if report.count(o))
        summary = column.run.summaries.get(column.model)
        server = describe((summary or {}).get("provenance"))
        title = html.escape(f"run {column.run.run_id}" + (f"; {server}" if server else ""))
        score = report.score()
        interval = (score.interval.low, score.interval.high) if score.total else None
        load = report.load_s
        cells = [
            f"<th title='{title}'>{html.escape(column.label)}</th>",
            *(f"<td>{_fraction(report.suite_counts(s))}</td>" for s in suites),
            *(f"<td>{_fraction(fig.by_tier.get(t))}</td>" for t in tiers),
            f"<td class=total>{_fraction((score.passed, score.total))}{_interval(interval)}</td>",
            f"<td>{score.tasks_passed}/{score.tasks_total}</td>",
            f"<td>{_wall(report)}</td>",
            f"<td>{_number(report.throughput, '.0f')}</td>",
            f"<td>{_number(report.decode_tok_s, '.0f')}</td>",
            f"<td>{_number(load, '.1f')}{'s' if load is not None else ''}</td>",
            f"<td>{_number(report.max_tokens, 'd')}</td>",
            f"<td class=notes>{html.escape(notes)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        f"<table id=comparison><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<p class=legend>Cases passed per suite and tier (totals are the declared case counts), "
        "the total with its 95 % interval; tasks: tasks with every case passed; time: "
        "generation wall-clock, model loading excluded (stored: every answer came from the "
        "answer store); tok/s: completion tokens generated over that time; decode tok/s: "
        "while decoding, prompt processing excluded; as the terminal table and the JSONL give "
        "them.</p>"
    )


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


def budget_table(points: Sequence[BudgetPoint]) -> str:
    """Only when some model was scored at more than one budget."""
    per_model = Counter(p.model for p in points)
    if not any(n > 1 for n in per_model.values()):
        return ""
    rows = []
    for p in points:
        if per_model[p.model] < 2:
            continue
        rows.append(
            f"<tr><th>{html.escape(p.model)}</th><td>{p.max_tokens}</td>"
            f"<td>{_fraction((p.passed, p.total))}{_interval(p.interval)}</td>"
            f"<td>{p.tasks_passed}/{p.tasks}</td><td>{p.truncated}</td></tr>"
        )
    return (
        "<h3>By token budget</h3><table id=budgets><thead><tr><th>model</th><th>max_tokens</th>"
        "<th>cases passed</th><th>tasks</th><th>truncated</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


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


# --------------------------------------------------------------------------- the page


def _json_script(element_id: str, value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    # Inside <script> only "</" can end the element early; JSON allows "<\/" for it.
    text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _packed_script(element_id: str, value: Any) -> str:
    """JSON compressed (gzip, base64) into a script element: a column's case details are read
    only when a cell of it is opened, and compressed they cost the browser a fifth of the
    parsing at load (and the file a fifth of its size)."""
    raw = json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")
    packed = base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")
    return f'<script type="application/gzip+base64" id="{element_id}">{packed}</script>'


def _asset(name: str) -> str:
    return (resources.files("pytest_llmbench") / "report_page" / name).read_text("utf-8")


def _runs_header(runs: Sequence[RunData]) -> str:
    items = []
    for run in runs:
        info = run.info
        settings = info.get("settings", {})
        state = (
            f"finished {html.escape(run.finished)}"
            if run.finished
            else "<b>unfinished</b> (interrupted, or still running)"
        )
        models = ", ".join(html.escape(m) for m in run.models) or "no cases recorded"
        tiers = {str(s.get("settings", {}).get("isolation")) for s in run.summaries.values()}
        if tiers - {"None"}:  # the tier the run had, rather than the one it asked for
            settings = {**settings, "isolation": ", ".join(sorted(tiers - {"None"}))}
        knobs = ", ".join(
            f"{k} {html.escape(str(v))}" for k, v in settings.items() if v is not None
        )
        items.append(
            f"<li><b>run {html.escape(run.run_id)}</b>: started {html.escape(run.started)}, "
            f"{state}; {html.escape(str(info.get('backend', '?')))}; models {models}; {knobs}"
            "</li>"
        )
    return "<ul class=runs>" + "".join(items) + "</ul>"


def render(runs: Sequence[RunData], plots: dict[str, str] | None) -> str:
    """The whole page for `runs`; `plots` maps titles to inline SVG (None: no plotting library)."""
    columns = columns_of(runs)
    if not columns:
        raise ReportError("the runs asked for hold no recorded cases yet")
    stats = [figures(c) for c in columns]
    data, details = grid_data(columns)
    if plots is None:
        plot_html = (
            "<p class=note>Plots need matplotlib: <code>pip install 'pytest-llmbench[report]'"
            "</code>, then make the report again.</p>"
        )
    else:
        plot_html = "".join(
            f"<figure title='{html.escape(title)}'>{svg}</figure>" for title, svg in plots.items()
        )
    page = _asset("report.html")
    parts = {
        "title": html.escape(
            "llmbench report: " + ", ".join(dict.fromkeys(c.model for c in columns))
        ),
        "css": _asset("report.css"),
        "runs": _runs_header(runs),
        "table": comparison_table(columns, stats) + budget_table(budget_points(columns)),
        "plots": plot_html,
        "data": _json_script("llmbench-data", data)
        + "".join(_packed_script(f"llmbench-details-{i}", d) for i, d in enumerate(details)),
        "js": _asset("report.js"),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def make_plots(runs: Sequence[RunData]) -> dict[str, Any] | None:
    """The figures, or None when matplotlib is not installed."""
    try:
        from . import plots
    except ImportError:
        return None
    columns = columns_of(runs)
    return plots.figures_for(columns, [figures(c) for c in columns], budget_points(columns))


@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    plots: bool
    pngs: list[Path]


def write_report(
    database: Path, run_ids: Sequence[str], out: Path, *, plots_dir: Path | None = None
) -> Written:
    """Read the runs from the record and write the page (and the plots as PNG, if asked)."""
    runs = [read_run(database, run_id) for run_id in resolve_runs(database, run_ids)]
    figs = make_plots(runs)
    if figs is None and plots_dir is not None:
        raise ReportError("--plots needs matplotlib: pip install 'pytest-llmbench[report]'")
    svgs: dict[str, str] | None = None
    pngs: list[Path] = []
    if figs is not None:
        from . import plots

        svgs = {title: plots.svg(fig, f"p{i}-") for i, (title, fig) in enumerate(figs.items())}
        if plots_dir is not None:
            pngs = plots.write_pngs(figs, plots_dir)
        plots.close(figs)
    page = render(runs, svgs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return Written(out, len(page.encode("utf-8")), figs is not None, pngs)


__all__ = ["ReportError", "Written", "render", "write_report"]
