"""The HTML report: one self-contained file from one or more runs of the record. This module
renders the page; what it shows is computed in reporting/html/data.py, the plots drawn in
reporting/html/plots.py.

The page holds everything it shows (CSS, script, plots as inline SVG, the data as JSON), so it
opens from disk with no network. It has:

- the comparison table: per model and run, cases passed per suite and per tier, tasks fully
  passed, time and speed (hovering a model names the server that answered it, with its build);
  a table per token budget when a model was run at several budgets (several runs, or one run
  with --llmbench-budgets); 95 % intervals. Every figure is an aggregate.ModelReport's, built from
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

from ...backends.provenance import describe
from ...caseresult import SUITES
from ...outcome import NOTED
from ...results.choice import size_text
from ...storage.record_reader import RunData, read_run, resolve_runs
from ..table import wall_cell
from .data import (
    TIERS,
    BudgetPoint,
    Column,
    Figures,
    ReportError,
    budget_points,
    choice_notes,
    choice_points,
    columns_of,
    figures,
    grid_data,
)


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


def _memory(cost: dict[str, Any] | None) -> str:
    """The peak memory cell, `~` marking a figure a server reported rather than a measurement."""
    if not cost:
        return "-"
    peak = cost.get("memory_peak_bytes") or cost.get("memory_steady_bytes")
    if peak is None:
        return "n/a"
    return size_text(peak) + ("" if cost.get("memory_measured") else " ~")


def comparison_table(columns: Sequence[Column], stats: Sequence[Figures]) -> str:
    ran = {s for f in stats for s in f.report.suites()}
    suites = [s for s in SUITES if s in ran] + sorted(ran - set(SUITES))
    tiers = [t for t in TIERS if any(t in f.by_tier for f in stats)]
    head = ["model", *suites, *tiers, "total", "tasks", "time", "tok/s", "decode tok/s", "load",
            "memory", "max_tokens", "notes"]  # fmt: skip
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
            f"<td>{wall_cell(report)}</td>",
            f"<td>{_number(report.throughput, '.0f')}</td>",
            f"<td>{_number(report.decode_tok_s, '.0f')}</td>",
            f"<td>{_number(load, '.1f')}{'s' if load is not None else ''}</td>",
            f"<td>{html.escape(_memory((summary or {}).get('cost')))}</td>",
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
        "while decoding, prompt processing excluded; memory: peak resident memory of the "
        "model's server (~: as the server reports the model, not measured); as the terminal "
        "table and the JSONL give them.</p>"
    )


def choice_list(columns: Sequence[Column]) -> str:
    """The run's recommendations and the memory figures' sources, as its JSONL has them."""
    notes = choice_notes(columns)
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f"<ul id=choice>{items}</ul>"


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
    return (resources.files("pytest_llmbench") / "reporting" / "html" / "assets" / name).read_text(
        "utf-8"
    )


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
        "table": comparison_table(columns, stats)
        + choice_list(columns)
        + budget_table(budget_points(columns)),
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
    stats = [figures(c) for c in columns]
    return plots.figures_for(columns, stats, budget_points(columns), choice_points(columns))


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
