"""The report's plots, drawn with matplotlib (the `report` extra).

Figures are made with matplotlib's object API (no pyplot), so drawing them inside a pytest run
touches no global backend state. They go into the page as inline SVG with text kept as text,
and to PNG files for `llmbench report --plots DIR`.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .data import BudgetPoint, ChoicePoint, Column, Figures

SIZE = (5.6, 3.6)  # inches
FILES = {
    "Score against token budget": "score_vs_budget.png",
    "Score against generation time": "score_vs_time.png",
    "Decode speed per model": "decode_speed.png",
    "Quality against decode speed": "quality_vs_speed.png",
}


def _colours(models: Sequence[str]) -> dict[str, Any]:
    palette = matplotlib.colormaps["tab10"].colors  # type: ignore[attr-defined]
    return {m: palette[i % len(palette)] for i, m in enumerate(dict.fromkeys(models))}


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    return fig, ax


def score_vs_budget(points: Sequence[BudgetPoint], colours: dict[str, Any]) -> Figure:
    fig, ax = _figure("Score against token budget")
    by_model: dict[str, list[BudgetPoint]] = defaultdict(list)
    for p in points:
        if p.total:
            by_model[p.model].append(p)
    for model, pts in by_model.items():
        xs = [p.max_tokens for p in pts]
        ys = [100 * p.passed / p.total for p in pts]
        ax.plot(xs, ys, marker="o", label=model, color=colours.get(model))
        spans = [(p, p.passed / p.total, p.interval) for p in pts if p.interval]
        if spans:
            ax.errorbar(
                [p.max_tokens for p, _, _ in spans],
                [100 * rate for _, rate, _ in spans],
                yerr=[
                    [100 * (rate - low) for _, rate, (low, _) in spans],
                    [100 * (high - rate) for _, rate, (_, high) in spans],
                ],
                fmt="none",
                ecolor=colours.get(model),
                capsize=3,
            )
    if by_model:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("max_tokens")
    ax.set_ylabel("cases passed (%)")
    ax.set_ylim(-2, 102)
    if by_model and all(len(v) == 1 for v in by_model.values()):
        ax.text(0.5, 0.02, "one budget per model: report several runs for a curve",
                transform=ax.transAxes, ha="center", fontsize=8, alpha=0.7)  # fmt: skip
    if by_model:
        ax.legend(fontsize=8)
    return fig


def score_vs_time(
    columns: Sequence[Column], stats: Sequence[Figures], colours: dict[str, Any]
) -> Figure:
    fig, ax = _figure("Score against generation time")
    for column, fig_stats in zip(columns, stats, strict=True):
        if fig_stats.rate is None or fig_stats.wall_seconds is None:
            continue  # nothing scored, or nothing generated (every answer from the store)
        x, y = fig_stats.wall_seconds, 100 * fig_stats.rate
        ax.scatter([x], [y], color=colours.get(column.model), s=40, zorder=3)
        ax.annotate(column.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("generation time (s, loading excluded)")
    ax.set_ylabel("cases passed (%)")
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0)
    return fig


def decode_speed(
    columns: Sequence[Column], stats: Sequence[Figures], colours: dict[str, Any]
) -> Figure:
    fig, ax = _figure("Decode speed per model")
    labels = [c.label for c in columns]
    rates = [s.decode_rates for s in stats]
    if any(rates):
        positions = [i + 1 for i, r in enumerate(rates) if r]
        box = ax.boxplot([r for r in rates if r], positions=positions, orientation="horizontal",
                         widths=0.5, patch_artist=True, showfliers=True)  # fmt: skip
        for patch, i in zip(box["boxes"], positions, strict=True):
            patch.set_facecolor(colours.get(columns[i - 1].model))
            patch.set_alpha(0.6)
        for i, s in enumerate(stats):
            if s.decode_tok_s is not None:
                ax.plot([s.decode_tok_s], [i + 1], marker="D", color="black", markersize=4)
        ax.set_xlabel("tokens/s while decoding, per task (diamond: over all tokens)")
    else:
        values = [s.throughput or 0.0 for s in stats]
        ax.barh(range(1, len(values) + 1), values,
                color=[colours.get(c.model) for c in columns])  # fmt: skip
        ax.set_xlabel("completion tokens/s (the server reported no decode timings)")
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    return fig


def quality_vs_speed(points: Sequence[ChoicePoint], colours: dict[str, Any]) -> Figure:
    """Each model's cases passed (with its interval) against its decode speed; the point's
    area grows with its memory (hollow: memory not known), the frontier is drawn through its
    models, and a variant is joined to its reference by a dashed line."""
    fig, ax = _figure("Quality against decode speed")
    placed = [p for p in points if p.decode_tok_s is not None]
    sizes = [p.memory_bytes for p in placed if p.memory_bytes]
    largest = max(sizes) if sizes else None
    where = {p.model: (p.decode_tok_s or 0.0, 100 * p.rate) for p in placed}
    for p in placed:
        x, y = where[p.model]
        low, high = (100 * v for v in p.interval)
        colour = colours.get(p.model)
        # Drawn over the point: a narrow interval would hide behind a large one.
        ax.errorbar([x], [y], yerr=[[y - low], [high - y]], fmt="none", ecolor="black",
                    capsize=3, alpha=0.6, zorder=4)  # fmt: skip
        if p.memory_bytes and largest:
            area = 40 + 400 * p.memory_bytes / largest
            ax.scatter([x], [y], s=area, color=colour, alpha=0.75, zorder=3,
                       edgecolors="black" if p.frontier else "none")  # fmt: skip
        else:
            ax.scatter([x], [y], s=60, facecolors="none", edgecolors=colour, zorder=3)
        ax.annotate(p.label, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8)
        if p.reference in where:
            rx, ry = where[p.reference]
            ax.plot([rx, x], [ry, y], linestyle="--", color="grey", linewidth=1, zorder=2)
    front = sorted((where[p.model] for p in placed if p.frontier), key=lambda xy: xy[0])
    if len(front) > 1:
        ax.plot([x for x, _ in front], [y for _, y in front], color="black", linewidth=1,
                alpha=0.5, label="frontier", zorder=2)  # fmt: skip
        ax.legend(fontsize=8, loc="lower left")
    if not placed:
        ax.text(0.5, 0.5, "no decode speeds: every answer came from the store",
                transform=ax.transAxes, ha="center", fontsize=8, alpha=0.7)  # fmt: skip
    ax.set_xlabel("decode tokens/s (point area: memory; hollow: not known)")
    ax.set_ylabel("cases passed (%)")
    ax.set_ylim(-2, 102)
    fastest = max((x for x, _ in where.values()), default=0.0)
    ax.set_xlim(0, fastest * 1.2 if fastest else None)  # room for the labels on the right
    return fig


def figures_for(
    columns: Sequence[Column],
    stats: Sequence[Figures],
    points: Sequence[BudgetPoint],
    choice: Sequence[ChoicePoint] = (),
) -> dict[str, Figure]:
    colours = _colours([c.model for c in columns])
    return {
        "Score against token budget": score_vs_budget(points, colours),
        "Score against generation time": score_vs_time(columns, stats, colours),
        "Decode speed per model": decode_speed(columns, stats, colours),
        "Quality against decode speed": quality_vs_speed(choice, colours),
    }


def svg(fig: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element (text kept as text, no XML prologue), its
    internal ids prefixed so that several figures can share one page."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "llmbench"}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return re.sub(r'(id="|url\(#|href="#)([^")]+)', rf"\1{prefix}\2", text)


def write_pngs(figs: dict[str, Figure], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for title, fig in figs.items():
        path = directory / FILES.get(title, re.sub(r"\W+", "_", title.lower()) + ".png")
        fig.savefig(path, format="png", dpi=150)
        written.append(path)
    return written


def close(figs: dict[str, Figure]) -> None:
    """Figures made without pyplot are freed with their last reference; drop ours."""
    figs.clear()
