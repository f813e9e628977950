"""Rendering results: the comparison table (terminal and markdown), JSONL lines, the oracle.

Below the table: token budgets, repeats (pass@k and pass^k) and stability labels, each
rendered from what results.py computes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats
from .backends import BACKENDS, default_base_url
from .backends.builtin import PSEUDO_MODELS
from .backends.provenance import describe
from .compare import comparison_lines, shortened
from .database import database_path
from .display import printable
from .inflight import answers_note
from .outcome import NOTED
from .results import (
    LABELS,
    SUITES,
    CaseResult,
    ModelReport,
    Score,
    aggregate,
    compare,
)

if TYPE_CHECKING:
    from .options import Settings
    from .selection import Selection
    from .session import RunState
    from .stopping import Ending

COLUMNS = ("model", *SUITES, "total", "tasks", "time", "decode tok/s")
# A model that wrote its calls in a format the server does not parse scores the server's
# limits, not its own: said in the table, with the fix in the README.
CALLS_AS_TEXT = "left as text: the server did not parse them"
INTERVAL_METHOD = (
    f"95 %; cases: cluster bootstrap over tasks ({stats.RESAMPLES} resamples, seed {stats.SEED}); "
    "tasks: Wilson score; differences: paired bootstrap over shared tasks, exact McNemar on tasks"
)
TIED = "~"  # marks a model whose total is not significantly different from the leader's


def _fraction(counts: tuple[int, int]) -> str:
    passed, total = counts
    return f"{passed}/{total}" if total else "-"


def _wall(report: ModelReport) -> str:
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
            for s in SUITES
        ]
        rows.append(
            [
                name,
                *suites,
                with_interval(overall) + (TIED if report.model in ties else " " if ties else ""),
                tasks_cell(overall, detail),
                _wall(report),
                f"{tps:.0f}" if tps is not None else "-",
                ", ".join(notes),
            ]
        )
    return rows


def render_table(reports: Sequence[ModelReport], oracle: str | None = None) -> str:
    header = [*COLUMNS, "notes"]
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


def render_markdown(reports: Sequence[ModelReport], oracle: str | None = None) -> str:
    header = [*COLUMNS, "notes"]
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


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    timestamp: str
    backend: str
    plugin_version: str
    tasks_digest: str  # of the whole run; each line carries its model's own (tasks_digest())
    settings: dict[str, Any]
    # What ended the run early (SIGINT, SIGTERM, -x, internal error, ...), None if nothing did.
    interrupted: str | None = None
    record: dict[str, str] = field(default_factory=dict)  # where the run's transcripts are

    @staticmethod
    def now() -> str:
        return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_settings(settings: Settings, isolation: str = "unused") -> dict[str, Any]:
    """The settings a run records, in each JSONL line and in the record's runs table: all that
    shapes the answers and their scoring. `isolation` is the sandbox tier the run used."""
    return {
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "seed": settings.seed,
        "timeout_s": settings.timeout,
        "context_length": settings.context_length,
        "concurrency": settings.concurrency,
        "batch_invariant": settings.batch_invariant,
        "audit": settings.audit,
        "cache": settings.cache,
        "isolation": isolation,
        "sanitize": settings.sanitize,
    }


def run_info(state: RunState, version: str, interrupted: str | None = None) -> RunInfo:
    """The run's metadata for every JSONL line: id, time, settings, how it ended."""
    settings = state.settings
    return RunInfo(
        run_id=state.run_id,
        timestamp=RunInfo.now(),
        backend=settings.backend,
        plugin_version=version,
        tasks_digest=tasks_digest(settings.rootdir, state.results),
        settings=run_settings(settings, state.isolation_tier),
        interrupted=interrupted,
        record={"database": str(database_path(settings.rootdir)), "run_id": state.run_id},
    )


def tasks_digest(rootdir: Path, results: Sequence[CaseResult]) -> str:
    """Names the case set that ran: the task files' contents and the cases run from them, so
    two lines with the same digest ran the same cases of the same task versions."""
    digest = hashlib.sha256()
    for name in sorted({r.file for r in results}):
        path = rootdir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    for case in sorted(f"{r.file}::{r.task}::{r.case}" for r in results):
        digest.update(b"\0" + case.encode())
    return digest.hexdigest()[:16]


def jsonl_line(
    report: ModelReport,
    run: RunInfo,
    backend: str,
    base_url: str | None,
    load_s: float | None,
    others: Sequence[ModelReport] = (),
    *,
    digest: str = "",
    selection: Selection | None = None,
    provenance: dict[str, Any] | None = None,
) -> str:
    results = [task.to_dict() for task in report.tasks]
    if selection is not None:
        for entry, task in zip(results, report.tasks, strict=True):
            entry["declared"] = selection.task_declared.get((task.cases[0].file, task.task))
    record = {
        **{k: v for k, v in asdict(run).items() if k != "settings"},
        "tasks_digest": digest or run.tasks_digest,
        "model": report.model,
        "backend": backend,
        "base_url": base_url,
        "settings": {**run.settings, "max_tokens": report.max_tokens},
        # What answered (backends/provenance.py; {} when the server told nothing), and how.
        "provenance": with_answers_mode(report, provenance),
        "load_seconds": load_s,
        "passed": report.passed,
        "total": report.total,
        # Cases the selected tasks declare, and the selection: `total` of a run cut short or
        # narrowed by -k is not the benchmark's.
        "declared_total": selection.declared.get(report.model) if selection else None,
        "selection": selection.for_model(report.model, report.total) if selection else None,
        "tasks_passed": report.tasks_passed,
        "tasks_total": report.score().tasks_total,  # tasks x repeats
        # 95 % intervals: cases by cluster bootstrap over tasks, tasks by Wilson.
        "scores": {
            "overall": report.score().to_dict(),
            **{suite: report.score(suite).to_dict() for suite in report.suites()},
        },
        "interval_method": INTERVAL_METHOD,
        "compared": [
            {"model": other.model, **compare(report, other).to_dict()}
            for other in others
            if other.model != report.model
        ],
        **({"budgets": budget_records(report)} if report.budgets else {}),
        **({"repeats": repeat_record(report)} if report.repeats > 1 else {}),
        "stability": report.stability_counts(),
        "seconds": round(report.seconds, 3),
        "generation_wall_s": _round(report.wall_seconds, 3),
        "concurrency": report.concurrency[0],
        "concurrency_source": report.concurrency[1],
        **reproducibility_record(report, run.settings),
        "throughput_tok_s": _round(report.throughput, 2),
        "answers_from_store": report.from_store,
        "completion_tokens": report.completion_tokens,
        "tokens_per_second": report.tokens_per_second,
        "decode_tok_s": _round(report.decode_tok_s, 2),
        "decode_timed_by": report.decode_timed_by,
        "prompt_tok_s": _round(report.prompt_tok_s, 2),
        "calls_left_as_text": report.calls_left_as_text,
        "results": results,
    }
    return json.dumps(record, sort_keys=False, default=str)


def reproducibility(report: ModelReport, settings: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the model's answers of this run can be had again exactly, and why (inflight)."""
    in_flight, why = report.concurrency
    if report.model in PSEUDO_MODELS:
        why = "built-in"
    return answers_note(settings, in_flight, why, report.batched)


def reproducibility_record(report: ModelReport, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The JSONL's word on reproducibility and, with --llmbench-audit, what the audit found."""
    exact, note = reproducibility(report, settings)
    record: dict[str, Any] = {"reproducible": exact, "batched": report.batched,
                              "reproducibility": note}  # fmt: skip
    if settings.get("audit") and report.model not in PSEUDO_MODELS:
        audit = report.audit()
        record["audit"] = (
            audit.to_dict()
            if audit is not None
            else {"tasks": 0, "why": "nothing to audit: every answer was decoded alone"}
            if not report.batched
            else {"tasks": 0, "why": "no task was audited (every audit request failed)"}
        )
    return record


def with_answers_mode(report: ModelReport, provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    """The provenance, with how the answers were decoded (`answers`: alone or batched), so
    that `llmbench compare` says when two runs differ in it."""
    known = any(g.batched is not None for g in report.generations)
    if report.model in PSEUDO_MODELS or not known:
        return dict(provenance or {})
    return {**(provenance or {}), "answers": "batched" if report.batched else "alone"}


def audit_lines(reports: Sequence[ModelReport], spec: str | None, listed: int = 10) -> list[str]:
    """Per audited model: how many answers and verdicts changed when generated alone; the
    `BATCHING FLIPPED` line is the warning the terminal shows in red."""
    if not spec:
        return []
    lines = []
    for report in reports:
        if report.model in PSEUDO_MODELS:
            continue
        audit = report.audit()
        if audit is None:
            why = (
                "nothing to audit: every answer was decoded alone"
                if not report.batched
                else "no task was audited (every audit request failed)"
            )
            lines.append(f"audit of {report.model}: {why}")
            continue
        rate = f"{audit.flip_rate:.0%}, {audit.interval.percent()}"
        head = (
            f"{audit.tasks} tasks generated again alone: {len(audit.answers_changed)} answers "
            f"changed, {len(audit.flipped)} verdicts flipped ({rate})"
        )
        if audit.flipped:
            lines.append(
                f"BATCHING FLIPPED VERDICTS of {report.model}: {head}; its scores depend on "
                f"what else was in flight: {shortened(list(audit.flipped), listed)}"
            )
        else:
            lines.append(f"audit of {report.model}: {head}")
    return lines


def budget_records(report: ModelReport) -> list[dict[str, Any]]:
    """Per budget: the overall score, cases cut off, and the same per suite."""

    def entry(view: ModelReport) -> dict[str, Any]:
        return {**view.score().to_dict(), "truncated": view.count("truncated")}

    out = []
    for budget in report.budgets:
        view = report.at_budget(budget)
        suites = {
            suite: entry(ModelReport(view.model, view.of_suite(suite))) for suite in view.suites()
        }
        out.append({"max_tokens": budget, **entry(view), "suites": suites})
    return out


def repeat_record(report: ModelReport) -> dict[str, Any]:
    """pass@k and pass^k for every k up to the repeats, per suite and overall, and the unstable
    cases."""

    Estimate = Callable[[int, str | None], tuple[float, stats.Interval] | None]

    def per_k(estimate: Estimate, suite: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in range(1, report.repeats + 1):
            value = estimate(k, suite)
            if value is not None:
                out[str(k)] = {"rate": round(value[0], 4), "interval": value[1].as_list()}
        return out

    def by_suite(estimate: Estimate) -> dict[str, Any]:
        return {
            "overall": per_k(estimate, None),
            **{suite: per_k(estimate, suite) for suite in report.suites()},
        }

    return {
        "samples": report.repeats,
        "tasks_pass_at_k": by_suite(report.pass_at_k),
        "tasks_pass_hat_k": by_suite(report.pass_hat_k),
        "unstable": report.unstable(),
    }


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def check_writable(path: Path) -> str | None:
    """Why results could not be appended to `path`, or None: checked before any model is
    called, so a typo in the path costs a second, not a benchmark."""
    if path.is_dir():
        return f"{path} is a directory"
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    if not existed:
        path.unlink(missing_ok=True)  # created by the check only
    return None


def append_jsonl(path: Path, lines: Sequence[str]) -> None:
    """Append whole lines in one write, and make them durable.

    A previous run killed mid-write may have left a line without its newline: ours then
    start on a fresh line, so the torn fragment stays one bad line of its own (readers skip
    it) instead of fusing with the first good one."""
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # Other runs may append at the same moment (xdist is one run; two runs are two): the
        # lock keeps their tail check and write from interleaving with ours.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def oracle_lines(results: Sequence[CaseResult], oracle: str) -> list[str]:
    """The oracle's verdict: suite:task:case it did not pass (errors are not its fault)."""
    suspects = [
        printable(
            f"{r.suite}:{r.task}:{r.case}{f' repeat {r.repeat}' if r.repeat else ''} "
            f"({r.outcome}{': ' + r.detail if r.detail else ''})"
        )
        for r in results
        if r.model == oracle and r.outcome not in ("passed", "error")
    ]
    if not suspects:
        return [f"Oracle OK: {oracle} passed every case it ran"]
    return [f"SUSPECT TASK(S): the oracle {oracle} failed {len(suspects)} case(s); "
            "check these tasks before trusting the other columns:"] + [
        f"  {s}" for s in suspects
    ]  # fmt: skip


def unpassed_tasks(results: Sequence[CaseResult]) -> list[str]:
    """Tasks that no model (other than `null`) passed in full: broken, or very hard."""
    full: dict[tuple[str, str], dict[tuple[str, int], bool]] = {}
    for r in results:
        if r.model == "null" or r.outcome == "error":
            continue  # an error says nothing about the task
        per_sample = full.setdefault((r.suite, r.task), {})
        sample = (r.model, r.repeat)  # passed once by anyone, in any repeat, is passed
        per_sample[sample] = per_sample.get(sample, True) and r.outcome == "passed"
    return [f"{suite}:{task}" for (suite, task), seen in full.items() if not any(seen.values())]


def summary_lines(state: RunState, ending: Ending | None = None) -> list[str]:
    """Everything the terminal summary prints for a run, top to bottom."""
    settings = state.settings
    if not settings.models:
        return []
    lines: list[str] = []
    for url, exc in state.manager.unreachable.items():
        lines.append(f"llmbench: cannot reach {url}")
        lines.append(exc.message)
    if not state.results:
        return lines
    reports = aggregate(state.results, settings.models)
    lines.append("llmbench results")
    lines.append(render_table(reports, settings.oracle))
    caps = {r.model: r.max_tokens for r in reports if r.max_tokens is not None}
    cap_text = (
        str(next(iter(caps.values())))
        if len(set(caps.values())) == 1
        else ", ".join(f"{m} {c}" for m, c in caps.items())
    )
    lines.append(
        f"time: generation wall-clock, model loading excluded; (ranges): 95 % intervals; "
        f"max_tokens: {cap_text or '-'}"
        f"{'' if settings.max_tokens else ' (backend default)'}; "
        f"{_speed_note(reports)}isolation: {state.isolation_tier}; JSONL: {settings.jsonl_path}"
    )
    lines += throughput_lines(reports, run_settings(settings), state.provenance)
    lines += audit_lines(reports, settings.audit)
    legend = ties_line(reports)
    if legend:
        lines.append(legend)
    samples = max(r.repeats for r in reports)
    if samples > 1:
        lines.append(
            f"with {samples} repeats, cases and tasks count every sample: "
            "passed/total is pass@1 averaged over the repeats"
        )
    lines += budget_lines(reports)
    lines += repeat_lines(reports)
    if state.baseline is not None:
        lines.append(f"llmbench against the baseline, {state.baseline.label()}")
        lines += comparison_lines(
            state.baseline.reports,
            reports,
            flips_shown=10,
            provenance=(state.baseline.provenance, state.provenance),
        )
    if state.gate is not None:
        lines += state.gate.lines()
    if ending is not None and ending.interrupted is not None:
        selected = sum(ending.selection.selected.values()) if ending.selection else None
        ran = f"{len(state.results)} of {selected}" if selected else str(len(state.results))
        lines.append(
            f"PARTIAL RUN: ended by {ending.interrupted}; {ran} selected cases ran, and the "
            "JSONL records it"
        )
    if ending is not None and ending.write_error is not None:
        lines.append(f"RESULTS NOT WRITTEN: {ending.write_error}")
    if settings.oracle:
        lines += oracle_lines(state.results, settings.oracle)
    # With one model this would only repeat its failures; across several, or with an oracle,
    # a task nobody passes is worth a look.
    compared = len({r.model for r in state.results} - {"null"}) > 1 or settings.oracle
    never = unpassed_tasks(state.results) if compared else []
    if never:
        lines.append(f"tasks no model passed: {', '.join(never)}")
    return lines


def throughput_lines(
    reports: Sequence[ModelReport],
    settings: Mapping[str, Any],
    provenance: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Per model: requests in flight and whether that keeps its answers reproducible,
    aggregate throughput, answers from the store, and the server that answered with its
    build. `settings` as the JSONL records them (RunInfo.settings)."""
    lines = []
    for report in reports:
        if report.model in PSEUDO_MODELS:
            continue
        parts = []
        in_flight, _ = report.concurrency
        _, note = reproducibility(report, settings)
        parts.append(f"{in_flight} in flight, {note}" if in_flight is not None else note)
        if report.throughput is not None:
            parts.append(f"{report.throughput:.1f} tok/s aggregate")
        if report.from_store:
            parts.append(f"{report.from_store} of {len(report.generations)} answers from the store")
        server = describe((provenance or {}).get(report.model))
        if server:
            parts.append(printable(server))
        if parts:
            lines.append(f"{report.model}: {'; '.join(parts)}")
    return lines


def _speed_note(reports: Sequence[ModelReport]) -> str:
    """Who timed the decode column, and the prompt speed when one model ran: e.g.
    `decode tok/s timed by the server, prompt 412 tok/s; `."""
    timers = {r.decode_timed_by for r in reports} - {"none"}
    if not timers:
        return ""
    timed_by = {"server": "the server", "stream": "the stream"}.get(
        next(iter(timers)) if len(timers) == 1 else "", "the server where it can, else the stream"
    )
    prompt = reports[0].prompt_tok_s if len(reports) == 1 else None
    return f"decode tok/s timed by {timed_by}" + (
        f", prompt {prompt:.0f} tok/s; " if prompt else "; "
    )


def model_lines(
    state: RunState,
    run: RunInfo,
    reports: Sequence[ModelReport],
    selection: Selection | None = None,
) -> list[str]:
    """One JSONL line per model of `reports` (the run's results, aggregated)."""
    settings = state.settings
    lines = []
    for report in reports:
        results = [r for r in state.results if r.model == report.model]
        if report.model in PSEUDO_MODELS:
            backend, url = "builtin", None
        else:
            backend = settings.backend
            url = state.manager.url_for(report.model)
            if url is None and backend in BACKENDS:
                url = default_base_url(backend)
        digest = tasks_digest(settings.rootdir, results)
        lines.append(
            jsonl_line(
                report,
                run,
                backend,
                url,
                report.load_s,
                reports,
                digest=digest,
                selection=selection,
                provenance=state.provenance.get(report.model),
            )
        )
    return lines
