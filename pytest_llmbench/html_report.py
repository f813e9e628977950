"""The HTML report: one self-contained file from one or more runs of the record.

The page holds everything it shows (CSS, script, plots as inline SVG, the data as JSON), so it
opens from disk with no network. It has:

- the comparison table: per model and run, cases passed per suite and per tier, tasks fully
  passed, time and speed (hovering a model names the server that answered it, with its build);
  a table per token budget when a model was run at several budgets (several runs, or a run
  whose JSONL carries `budgets`), with intervals when the data has them;
- plots (matplotlib): score against token budget, score against generation time, decode speed;
- a grid of tasks by model, each cell one stripe per case coloured by outcome, filtered by suite,
  tier, outcome and text; a cell whose (model, task) is not stable (flaky, budget- or
  batching-sensitive: the `stability` of its run's JSONL line) carries a mark;
- a click on a cell opens the case: its stability label, prompt, answer with its code
  highlighted, reasoning folded, each case's expectation against what it got, the tool
  transcript turn by turn, and what ran in the sandbox with its output.

The record keeps each case's first sample only; what the run learned from all its samples (the
stability labels, pass@k) comes from the model's JSONL line, which the record also keeps.

The grid's data is parsed at load; each model's case details are kept compressed and unpacked on
the first click into that model's column (the browser's own gzip decoder, no network), which
keeps a 10-model, 2,000-case report quick to open and filter.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .backends.provenance import describe
from .outcome import LETTERS, NOTED
from .record import RunData, TaskRecord, read_run, resolve_runs
from .results import SUITES, Label, Stability

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

    @property
    def cases(self) -> list[Any]:
        return [c for t in self.tasks for c in t.cases]


@dataclass
class Figures:
    """One column's numbers, as the table and the plots use them."""

    passed: int = 0
    total: int = 0
    by_suite: dict[str, list[int]] = field(default_factory=dict)
    by_tier: dict[str, list[int]] = field(default_factory=dict)
    tasks_passed: int = 0
    tasks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    generation_s: float = 0.0
    completion_tokens: int = 0
    decode_rates: list[float] = field(default_factory=list)  # per task, tok/s while decoding
    decode_weighted: float | None = None
    load_s: float | None = None
    max_tokens: set[int] = field(default_factory=set)

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.completion_tokens / self.generation_s if self.generation_s > 0 else None


def figures(column: Column) -> Figures:
    out = Figures()
    decode_tokens = decode_seconds = 0.0
    request_s = 0.0
    spans: list[tuple[float, float]] = []
    for task in column.tasks:
        if not task.cases:
            continue
        passed = sum(c.outcome == "passed" for c in task.cases)
        total = len(task.cases)
        out.passed += passed
        out.total += total
        for key, table in ((task.suite, out.by_suite), (task.difficulty or "-", out.by_tier)):
            cell = table.setdefault(key, [0, 0])
            cell[0] += passed
            cell[1] += total
        out.tasks += 1
        out.tasks_passed += passed == total
        out.outcomes.update(c.outcome for c in task.cases)
        result = task.cases[0].result
        gen = result.get("generation", {})
        request_s += gen.get("seconds") or 0.0
        if gen.get("started_at") and gen.get("finished_at") and not gen.get("from_store"):
            spans.append((float(gen["started_at"]), float(gen["finished_at"])))
        tokens = gen.get("completion_tokens") or 0
        out.completion_tokens += tokens
        if gen.get("max_tokens"):
            out.max_tokens.add(int(gen["max_tokens"]))
        rate = gen.get("decode_tok_s")
        if rate:
            out.decode_rates.append(float(rate))
            if tokens:
                decode_tokens += tokens
                decode_seconds += tokens / rate
        if out.load_s is None and result.get("load_s") is not None:
            out.load_s = float(result["load_s"])
    out.decode_weighted = decode_tokens / decode_seconds if decode_seconds > 0 else None
    # The generation phase's wall-clock, as the terminal table gives it: with several requests
    # in flight the sum of request times would count the same seconds several times over.
    if spans:
        out.generation_s = max(end for _, end in spans) - min(start for start, _ in spans)
    else:
        out.generation_s = request_s
    return out


def columns_of(runs: Sequence[RunData]) -> list[Column]:
    """Grid columns: each run's models in its --models order; a model in several runs is
    labelled with its run."""
    seen = Counter(model for run in runs for model in run.models)
    columns = []
    for run in runs:
        for model in run.models:
            label = model if seen[model] == 1 else f"{model} @{run.run_id[:8]}"
            columns.append(Column(label, model, run, [t for t in run.tasks if t.model == model]))
    return columns


# --------------------------------------------------------------------------- the table


def _fraction(cell: Sequence[int] | None) -> str:
    if not cell or not cell[1]:
        return "-"
    return f"{cell[0]}/{cell[1]} <small>{100 * cell[0] / cell[1]:.0f}%</small>"


def _interval(summary: dict[str, Any] | None) -> str:
    """A 95 % interval as the statistics of the JSONL give it (`interval: [low, high]`)."""
    interval = (summary or {}).get("interval")
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = interval
        return f" <small class=ci>[{100 * low:.0f}-{100 * high:.0f}%]</small>"
    return ""


def _number(value: float | None, fmt: str) -> str:
    return format(value, fmt) if value is not None else "-"


def comparison_table(columns: Sequence[Column], stats: Sequence[Figures]) -> str:
    suites = [s for s in SUITES if any(s in f.by_suite for f in stats)]
    suites += sorted({s for f in stats for s in f.by_suite} - set(suites))
    tiers = [t for t in TIERS if any(t in f.by_tier for f in stats)]
    head = ["model", *suites, *tiers, "total", "tasks", "time", "tok/s", "decode tok/s", "load",
            "max_tokens", "notes"]  # fmt: skip
    rows = []
    for column, fig in zip(columns, stats, strict=True):
        notes = ", ".join(f"{fig.outcomes[o]} {label}" for o, label in NOTED if fig.outcomes[o])
        summary = column.run.summaries.get(column.model)
        server = describe((summary or {}).get("provenance"))
        title = html.escape(f"run {column.run.run_id}" + (f"; {server}" if server else ""))
        cells = [
            f"<th title='{title}'>{html.escape(column.label)}</th>",
            *(f"<td>{_fraction(fig.by_suite.get(s))}</td>" for s in suites),
            *(f"<td>{_fraction(fig.by_tier.get(t))}</td>" for t in tiers),
            f"<td class=total>{_fraction([fig.passed, fig.total])}{_interval(summary)}</td>",
            f"<td>{fig.tasks_passed}/{fig.tasks}</td>",
            f"<td>{fig.generation_s:.1f}s</td>",
            f"<td>{_number(fig.tokens_per_second, '.0f')}</td>",
            f"<td>{_number(fig.decode_weighted, '.0f')}</td>",
            f"<td>{_number(fig.load_s, '.1f')}{'s' if fig.load_s is not None else ''}</td>",
            f"<td>{', '.join(map(str, sorted(fig.max_tokens))) or '-'}</td>",
            f"<td class=notes>{html.escape(notes)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        f"<table id=comparison><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<p class=legend>Cases passed per suite and tier (totals are the declared case counts); "
        "tasks: tasks with every case passed; time: generation wall-clock, model loading "
        "excluded; tok/s: completion tokens over generation time; decode tok/s: while "
        "decoding, prompt processing excluded.</p>"
    )


@dataclass(frozen=True)
class BudgetPoint:
    model: str
    max_tokens: int
    passed: int
    total: int
    tasks_passed: int | None = None
    tasks: int | None = None
    truncated: int | None = None
    interval: tuple[float, float] | None = None


def budget_points(columns: Sequence[Column]) -> list[BudgetPoint]:
    """Score per model and token budget: each run's own cap, and the budgets a run's JSONL
    line reports (one run can sweep several); the JSONL's figures win for a budget both give."""
    points: dict[tuple[str, int], BudgetPoint] = {}
    for column in columns:
        by_budget: dict[int, list[Any]] = defaultdict(list)
        for task in column.tasks:
            cap = (task.cases[0].result.get("generation", {}) if task.cases else {}).get(
                "max_tokens"
            )
            if cap:
                by_budget[int(cap)].append(task)
        for cap, tasks in by_budget.items():
            cases = [c for t in tasks for c in t.cases]
            points[(column.model, cap)] = BudgetPoint(
                column.model,
                cap,
                sum(c.outcome == "passed" for c in cases),
                len(cases),
                sum(all(c.outcome == "passed" for c in t.cases) for t in tasks),
                len(tasks),
                sum(c.outcome == "truncated" for c in cases),
            )
        summary = column.run.summaries.get(column.model) or {}
        for entry in summary.get("budgets") or []:
            if not isinstance(entry, dict) or entry.get("suite") not in (None, "all", "total"):
                continue
            try:
                interval = entry.get("interval")
                points[(column.model, int(entry["max_tokens"]))] = BudgetPoint(
                    column.model,
                    int(entry["max_tokens"]),
                    int(entry["passed"]),
                    int(entry["total"]),
                    entry.get("tasks_passed"),
                    entry.get("tasks_total"),
                    entry.get("truncated"),
                    (float(interval[0]), float(interval[1])) if interval else None,
                )
            except (KeyError, TypeError, ValueError, IndexError):
                continue  # a shape this report does not know: the table above still holds
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
        interval = (
            f" <small class=ci>[{100 * p.interval[0]:.0f}-{100 * p.interval[1]:.0f}%]</small>"
            if p.interval
            else ""
        )
        tasks = f"{p.tasks_passed}/{p.tasks}" if p.tasks is not None else "-"
        rows.append(
            f"<tr><th>{html.escape(p.model)}</th><td>{p.max_tokens}</td>"
            f"<td>{_fraction([p.passed, p.total])}{interval}</td><td>{tasks}</td>"
            f"<td>{p.truncated if p.truncated is not None else '-'}</td></tr>"
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
