"""The markdown file's text: the comparison table and the blocks under it, from reporting/table.py's
rows."""

from __future__ import annotations

from collections.abc import Sequence

from ..results.aggregate import ModelReport
from ..results.choice import Choice
from .choice import choice_markdown
from .table import (
    TIED,
    all_budgets,
    budget_rows,
    columns,
    comparison_rows,
    repeat_rows,
    stability_rows,
    table_rows,
    ties_line,
)


def render_markdown(
    reports: Sequence[ModelReport], oracle: str | None = None, choice: Choice | None = None
) -> str:
    header = [*columns(reports), "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table_rows(reports, oracle, detail=True):
        row = [cell.strip() for cell in row]  # the terminal's alignment padding
        row[0] = f"`{row[0]}`"
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Cases passed with a 95 % interval from a cluster bootstrap over tasks; tasks fully "
        "passed with a Wilson 95 % interval."
    )
    legend = ties_line(reports)
    if legend:
        lines.append(f"`{TIED}`{legend[len(TIED) :]}.")
    if all_budgets(reports):
        rows = budget_rows(reports, detail=True)
        lines += ["", "Token budgets (one generation at the largest; smaller ones scored from the "
                  "answers cut there):", "", "| " + " | ".join(rows[0]) + " |",
                  "|" + "---|" * len(rows[0])]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    if max(r.repeats for r in reports) > 1:
        rows = repeat_rows(reports)
        lines += ["", f"Repeats ({max(r.repeats for r in reports)} samples per task):", "",
                  "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        for report in reports:
            if report.unstable():
                lines.append(
                    f"\nUnstable cases of `{report.model}`: {', '.join(report.unstable())}"
                )
    lines += stability_markdown(reports)
    pairs = comparison_rows(reports)
    if pairs:
        lines += [
            "",
            "| model | vs | difference (cases) | 95 % interval | significant "
            "| tasks only model / only vs | McNemar p (tasks) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in pairs:
            row[0], row[1] = f"`{row[0]}`", f"`{row[1]}`"
            lines.append("| " + " | ".join(row) + " |")
    if choice is not None:
        lines += choice_markdown(choice, reports)
    return "\n".join(lines) + "\n"


def stability_markdown(reports: Sequence[ModelReport]) -> list[str]:
    """Tasks per stability label for every model, and the tasks that are not stable."""
    rows = stability_rows(reports)
    lines = ["", "Stability (per task, primary label; stable: no instability shown by the "
             "samples, budgets and audit of this run):", "", "| " + " | ".join(rows[0]) + " |",
             "|" + "---|" * len(rows[0])]  # fmt: skip
    lines += ["| " + " | ".join([f"`{row[0]}`", *row[1:]]) + " |" for row in rows[1:]]
    for report in reports:
        shaky = report.not_stable()
        if shaky:
            lines += ["", f"Not stable in `{report.model}`:", ""]
            lines += [f"- `{t.suite}:{t.task}`: {found.text()}" for t, found in shaky]
    return lines
