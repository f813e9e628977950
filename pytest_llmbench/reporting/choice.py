"""The "choosing a model" block under the comparison table (terminal and markdown): each model's
cost with the frontier marked, where the memory figures come from, each variant against its
reference, and the recommendation lines, from what results/choice.py computes."""

from __future__ import annotations

from collections.abc import Sequence

from ..results.aggregate import ModelReport
from ..results.choice import Choice, VariantResult, size_text

HEADER = ["model", "memory peak", "steady", "load", "prompt tok/s", "decode tok/s",
          "TTFT median", "TTFT p90", "frontier"]  # fmt: skip
FRONTIER = "*"
FRONTIER_LEGEND = (
    f"{FRONTIER}: on the frontier (no other model is better on quality, decode speed and "
    "memory at once)"
)


def _seconds(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.{digits}f}s"


def _rate(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def cost_rows(choice: Choice, reports: Sequence[ModelReport]) -> list[list[str]]:
    rows = [HEADER]
    for report in reports:
        cost = choice.costs.get(report.model)
        if cost is None:
            continue
        rows.append(
            [
                report.model,
                size_text(cost.memory.peak_bytes),
                size_text(cost.memory.steady_bytes),
                _seconds(cost.load_s, 1),
                _rate(cost.prompt_tok_s),
                _rate(cost.decode_tok_s),
                _seconds(cost.ttft_median_s),
                _seconds(cost.ttft_p90_s),
                FRONTIER if report.model in choice.frontier else "",
            ]
        )
    return rows


def variant_line(variant: VariantResult) -> str:
    diff, tasks = variant.comparison.cases, variant.comparison.tasks
    low, high = (round(100 * x) for x in (diff.interval.low, diff.interval.high))
    ratios = [
        f"{value:.2f}x {name}"
        for name, value in (
            ("decode speed", variant.speed_ratio),
            ("memory", variant.memory_ratio),
            ("TTFT", variant.ttft_ratio),
        )
        if value is not None
    ]
    flips = [f"lost {', '.join(variant.lost)}" if variant.lost else "",
             f"gained {', '.join(variant.gained)}" if variant.gained else ""]  # fmt: skip
    text = (
        f"variant {variant.variant} of {variant.reference}: {100 * diff.delta:+.0f} points of "
        f"cases ({low:+d} to {high:+d}, paired 95 %{', significant' if diff.significant else ''}"
        f"), tasks {tasks.only_new} gained / {tasks.only_old} lost (McNemar p "
        f"{tasks.p_value:.2f})"
    )
    if ratios:
        text += "; " + ", ".join(ratios)
    flipped = "; ".join(f for f in flips if f)
    return text + (f"; {flipped}" if flipped else "")


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def says_something(choice: Choice) -> bool:
    """Two models or more to choose between, or variants to compare."""
    return bool(choice.recommendations or choice.variants)


def choice_lines(choice: Choice, reports: Sequence[ModelReport]) -> list[str]:
    """The terminal block (empty when there is nothing to choose)."""
    if not says_something(choice):
        return []
    rows = cost_rows(choice, reports)
    lines = ["llmbench choosing a model", *_aligned(rows)]
    sources = dict.fromkeys(c.memory.source for c in choice.costs.values())
    lines.append("memory: " + "; ".join(sources))
    if choice.frontier:
        lines.append(FRONTIER_LEGEND)
    lines += [variant_line(v) for v in choice.variants]
    lines += list(choice.recommendations)
    return lines


def choice_markdown(choice: Choice, reports: Sequence[ModelReport]) -> list[str]:
    if not says_something(choice):
        return []
    rows = cost_rows(choice, reports)
    lines = ["", "## Choosing a model", "", "| " + " | ".join(rows[0]) + " |",
             "|" + "---|" * len(rows[0])]  # fmt: skip
    lines += ["| " + " | ".join([f"`{row[0]}`", *row[1:]]) + " |" for row in rows[1:]]
    sources = dict.fromkeys(c.memory.source for c in choice.costs.values())
    lines += ["", "Memory: " + "; ".join(sources) + "."]
    if choice.frontier:
        lines.append(f"`{FRONTIER}`{FRONTIER_LEGEND[len(FRONTIER) :]}.")
    lines += [""] + [f"- {variant_line(v)}" for v in choice.variants]
    lines += [f"- **{line}**" for line in choice.recommendations]
    return lines
