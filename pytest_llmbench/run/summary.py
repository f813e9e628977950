"""The run's lines in the terminal summary: the comparison table and, under it, speed and
reproducibility per model, the audit, choosing a model (cost, variants, recommendations),
budgets, repeats, the baseline, the gate, how the run ended, the oracle's verdict and the tasks
no model passed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..backends.provenance import describe
from ..caseresult import CaseResult
from ..display import printable
from ..exchange import PSEUDO_MODELS
from ..reporting.choice import choice_lines
from ..reporting.jsonl import reproducibility, run_settings
from ..reporting.table import budget_lines, render_table, repeat_lines, ties_line
from ..results.aggregate import ModelReport, aggregate
from ..results.choice import Choice, choose
from ..results.comparison import comparison_lines, shortened

if TYPE_CHECKING:
    from .session import RunState
    from .stopping import Ending


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
    lines += choice_lines(run_choice(state, reports), reports)
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


def run_choice(state: RunState, reports: Sequence[ModelReport]) -> Choice:
    """What the run says about choosing among its models (results/choice.py)."""
    settings = state.settings
    return choose(reports, state.memory, settings.variants, settings.limits)


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
