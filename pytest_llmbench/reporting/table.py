"""The comparison table and the blocks rendered under it, from ModelReports: one row per model
(terminal and markdown), token budgets, repeats (pass@k and pass^k), stability labels, the tie
mark and the pairwise differences, each from what results/aggregate.py and results/stability.py
compute."""

from __future__ import annotations

from collections.abc import Sequence

from ..caseresult import SUITES
from ..outcome import NOTED
from ..results import stats
from ..results.aggregate import ModelReport, Score, compare
from ..results.comparison import shortened
from ..results.stability import LABELS

COLUMNS = ("model", *SUITES, "total", "tasks", "time", "decode tok/s")


def suite_columns(reports: Sequence[ModelReport]) -> list[str]:
    """The table's suite columns: the three of the task files, then any other suite a model
    ran (test functions' suites, by module or marker), by name."""
    ran = {suite for report in reports for suite in report.suites()}
    return [*SUITES, *sorted(ran - set(SUITES))]


def columns(reports: Sequence[ModelReport]) -> list[str]:
    return ["model", *suite_columns(reports), *COLUMNS[1 + len(SUITES) :]]


# A model that wrote its calls in a format the server does not parse scores the server's
# limits, not its own: said in the table, with the fix in the README.
CALLS_AS_TEXT = "left as text: the server did not parse them"
TIED = "~"  # marks a model whose total is not significantly different from the leader's


def _fraction(counts: tuple[int, int]) -> str:
    passed, total = counts
    return f"{passed}/{total}" if total else "-"


def wall_cell(report: ModelReport) -> str:
    """The generation phase's wall-clock; an answer store that gave every answer left none."""
    wall = report.wall_seconds
    if wall is not None:
        return f"{wall:.1f}s"
    return "stored" if report.from_store else "-"


def with_interval(score: Score) -> str:
    return f"{score.passed}/{score.total} ({score.interval.percent()})" if score.total else "-"


def tasks_cell(score: Score, detail: bool) -> str:
    if not score.tasks_total:
        return "-"
    cell = f"{score.tasks_passed}/{score.tasks_total}"
    return f"{cell} ({score.tasks_interval.percent()})" if detail else cell


def leader_and_ties(reports: Sequence[ModelReport]) -> tuple[str | None, set[str]]:
    """The model with the best total, and the others whose difference from it is not
    significant at 95 % (paired over the tasks both ran). No leader with fewer than 2 models."""
    if len(reports) < 2:
        return None, set()
    best = max(reports, key=lambda r: r.score().rate)  # the first of equals, in run order
    ties = set()
    for report in reports:
        if report is not best:
            diff = compare(best, report).cases
            if diff.tasks and not diff.significant:  # no shared task: nothing to say
                ties.add(report.model)
    return best.model, ties


def table_rows(
    reports: Sequence[ModelReport], oracle: str | None, *, detail: bool = False
) -> list[list[str]]:
    """One row per model. `detail` (markdown) gives every suite and the tasks their interval;
    the terminal keeps it to the total's."""
    _, ties = leader_and_ties(reports)
    suite_names = suite_columns(reports)
    rows: list[list[str]] = []
    for report in reports:
        tps = report.decode_tok_s
        notes = [
            f"{report.count(outcome)} {label}" for outcome, label in NOTED if report.count(outcome)
        ]
        if report.calls_left_as_text:
            calls = report.calls_left_as_text
            notes.append(f"{calls} tool call{'s' if calls > 1 else ''} {CALLS_AS_TEXT}")
        if report.trimmed:
            notes.append(f"{report.trimmed} trimmed")
        name = report.model + (" (oracle)" if report.model == oracle else "")
        overall = report.score()
        suites = [
            with_interval(report.score(s)) if detail else _fraction(report.suite_counts(s))
            for s in suite_names
        ]
        rows.append(
            [
                name,
                *suites,
                with_interval(overall) + (TIED if report.model in ties else " " if ties else ""),
                tasks_cell(overall, detail),
                wall_cell(report),
                f"{tps:.0f}" if tps is not None else "-",
                ", ".join(notes),
            ]
        )
    return rows


def render_table(reports: Sequence[ModelReport], oracle: str | None = None) -> str:
    header = [*columns(reports), "notes"]
    rows = table_rows(reports, oracle)
    if not any(r[-1] for r in rows):
        header, rows = header[:-1], [r[:-1] for r in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        out = [first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _aligned(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Rows as text columns: the first `left` columns to the left, the rest to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def all_budgets(reports: Sequence[ModelReport]) -> list[int]:
    return sorted({b for report in reports for b in report.budgets})


def _truncation(report: ModelReport) -> str:
    return f"{report.count('truncated') / report.total:.0%}" if report.total else "-"


def budget_rows(reports: Sequence[ModelReport], *, detail: bool = False) -> list[list[str]]:
    """The score-by-budget grid: per model, cases passed (with interval), tasks passed and the
    share of cases cut off, at each budget."""
    budgets = all_budgets(reports)
    rows = [["max_tokens", "", *map(str, budgets)]]
    for report in reports:
        views = [report.at_budget(b) for b in budgets]
        scores = [view.score() for view in views]
        rows.append([report.model, "cases", *(with_interval(score) for score in scores)])
        rows.append(["", "tasks", *(tasks_cell(score, detail) for score in scores)])
        rows.append(["", "truncated", *(_truncation(view) for view in views)])
    return rows


def budget_lines(reports: Sequence[ModelReport]) -> list[str]:
    budgets = all_budgets(reports)
    if not budgets:
        return []
    return [
        f"llmbench token budgets (one generation at {budgets[-1]}; each smaller budget scores "
        "the answers cut there)",
        *_aligned(budget_rows(reports), left=2),
    ]


def shown_ks(samples: int) -> list[int]:
    """The k of pass@k worth a column: 1, 2, 5, 10, 20, 50, 100 up to the repeats, and all."""
    return sorted({k for k in (1, 2, 5, 10, 20, 50, 100) if k <= samples} | {samples})


def _pass_cell(value: tuple[float, stats.Interval] | None) -> str:
    if value is None:
        return "-"
    rate, interval = value
    return f"{rate:.1%} ({interval.percent()})"


def repeat_rows(reports: Sequence[ModelReport]) -> list[list[str]]:
    """Per model and suite: cases pass@1 averaged over repeats, and tasks pass@k and pass^k
    (pass^1 is pass@1: not repeated)."""
    samples = max(r.repeats for r in reports)
    ks = shown_ks(samples)
    hat_ks = [k for k in ks if k > 1]
    rows = [["model", "suite", "cases pass@1", *(f"tasks pass@{k}" for k in ks),
             *(f"tasks pass^{k}" for k in hat_ks), "unstable"]]  # fmt: skip
    for report in reports:
        unstable = report.unstable()
        for i, suite in enumerate([*report.suites(), None]):
            score = report.score(suite)
            rows.append(
                [
                    report.model if i == 0 else "",
                    suite or "total",
                    f"{score.rate:.1%} ({score.interval.percent()})",
                    *(_pass_cell(report.pass_at_k(k, suite)) for k in ks),
                    *(_pass_cell(report.pass_hat_k(k, suite)) for k in hat_ks),
                    str(sum(1 for u in unstable if suite is None or u.startswith(f"{suite}:"))),
                ]
            )
    return rows


def repeat_lines(reports: Sequence[ModelReport], listed: int = 10) -> list[str]:
    samples = max((r.repeats for r in reports), default=1)
    if samples < 2:
        return []
    lines = [
        f"llmbench repeats ({samples} samples per task; a task's sample passes when all its "
        "cases do)",
        *_aligned(repeat_rows(reports), left=2),
    ]
    for report in reports:
        unstable = report.unstable()
        if unstable:
            lines.append(
                f"unstable cases of {report.model} ({len(unstable)}): {shortened(unstable, listed)}"
            )
        flaky = [
            f"{task.suite}:{task.task} {found.samples_passed} of {found.samples}"
            for task, found in report.not_stable()
            if "flaky" in found.labels
        ]
        if flaky:
            lines.append(
                f"flaky tasks of {report.model} ({len(flaky)}; samples that passed): "
                f"{shortened(flaky, listed)}"
            )
    return lines


def stability_rows(reports: Sequence[ModelReport]) -> list[list[str]]:
    """Per model: the evidence its run gathered, and its tasks per primary stability label."""
    rows = [["model", "evidence", *LABELS]]
    for report in reports:
        evidence = [f"{report.repeats} sample{'s' if report.repeats != 1 else ''}"]
        if report.budgets:
            evidence.append(f"{len(report.budgets)} budgets")
        audited = sum(t.audited for t in report.tasks)
        if audited:
            evidence.append(f"{audited} tasks audited")
        counts = report.stability_counts()
        rows.append([report.model, ", ".join(evidence), *(str(counts[x]) for x in LABELS)])
    return rows


def ties_line(reports: Sequence[ModelReport]) -> str | None:
    """The legend of the tie mark, when some model carries it."""
    leader, ties = leader_and_ties(reports)
    if not ties:
        return None
    return (
        f"{TIED}: not significantly different from {leader} (95 %, paired over the tasks both ran)"
    )


def comparison_rows(reports: Sequence[ModelReport]) -> list[list[str]]:
    """Every pair of models: the difference of their totals and whether it is real."""
    rows = []
    for i, first in enumerate(reports):
        for second in reports[i + 1 :]:
            diff = compare(first, second)
            lo, hi = diff.cases.interval.low, diff.cases.interval.high
            rows.append(
                [
                    second.model,
                    first.model,
                    f"{diff.cases.delta * 100:+.1f} pts",
                    f"{lo * 100:+.1f} to {hi * 100:+.1f}",
                    "yes" if diff.cases.significant else "no",
                    f"{diff.tasks.only_new} / {diff.tasks.only_old}",
                    f"{diff.tasks.p_value:.3g}",
                ]
            )
    return rows
