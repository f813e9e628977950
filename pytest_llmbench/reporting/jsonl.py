"""What a model's JSONL line holds, and writing the lines: the run's metadata and settings,
scores with intervals, budgets, repeats, reproducibility and the audit."""

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

from ..backends.inflight import answers_note
from ..caseresult import CaseResult
from ..exchange import PSEUDO_MODELS
from ..results import stats
from ..results.aggregate import ModelReport, compare
from ..results.choice import Choice

if TYPE_CHECKING:
    from ..options import Settings
    from ..taskfiles.selection import Selection

INTERVAL_METHOD = (
    f"95 %; cases: cluster bootstrap over tasks ({stats.RESAMPLES} resamples, seed {stats.SEED}); "
    "tasks: Wilson score; differences: paired bootstrap over shared tasks, exact McNemar on tasks"
)


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
    choice: Choice | None = None,
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
        **(choice_record(choice, report.model) if choice is not None else {}),
        "results": results,
    }
    return json.dumps(record, sort_keys=False, default=str)


def choice_record(choice: Choice, model: str) -> dict[str, Any]:
    """The model's cost (each figure with its source), whether it is on the frontier, how it
    compares with its reference when it is a variant, and the run's recommendations."""
    cost = choice.costs.get(model)
    if cost is None:
        return {}
    variant = choice.variant_of(model)
    return {
        "cost": cost.to_dict(),
        "frontier": model in choice.frontier,
        **({"variant_of": variant.to_dict()} if variant is not None else {}),
        "recommendations": list(choice.recommendations),
    }


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
