"""Earlier runs read back from the JSONL results files: one run by reference, per model.

The one reader of the JSONL (`read_jsonl`: torn lines skipped and counted) and the one
resolver of a run reference (`resolve_run`: `latest`, a run id or a unique prefix; the run
record's reader uses it too) are here. A run's models come back as ModelReports rebuilt from
their lines (`report_of`), with what answered each (its `provenance`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..caseresult import CaseResult
from ..taskfiles.roots import current_name
from .aggregate import ModelReport
from .comparison import shortened
from .stability import TaskResult


class RunNotFound(ValueError):
    """A run reference that names no run (or several) where runs were looked up."""


@dataclass(frozen=True)
class Run:
    """One run read back from JSONL: one record per model."""

    run_id: str
    timestamp: str
    source: str
    reports: list[ModelReport]
    # Per model, what answered it (its line's `provenance`); None for lines written before
    # runs recorded it.
    provenance: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def label(self) -> str:
        return f"run {self.run_id} ({self.timestamp}, {self.source})"


def report_of(record: dict[str, Any]) -> ModelReport:
    """A model's report rebuilt from its JSONL record (outcomes per case; enough to compare)."""
    model = str(record["model"])
    tasks = []
    for entry in record.get("results", []):
        # Files named as they are now: a run recorded before the bundled tasks moved compares.
        suite, task, file = entry["suite"], entry["task"], current_name(entry.get("file", ""))
        cases = [
            CaseResult(
                model,
                suite,
                task,
                c["id"],
                c["outcome"],
                c.get("detail", ""),
                file,
                repeat=c.get("repeat", 0),
                budgets=tuple((int(b), o) for b, o in (c.get("budgets") or {}).items()),
                audit_outcome=c.get("audit"),
                audit_same_answer=c.get("audit_same_answer"),
            )
            for c in entry.get("cases", [])
        ]
        if cases:
            tasks.append(TaskResult(suite, task, cases))
    return ModelReport(model, tasks)


@dataclass(frozen=True)
class JsonlRecords:
    """The results lines of a JSONL file, and how many of its lines were not one."""

    records: list[dict[str, Any]]
    # Lines that are not a whole JSON object naming its run and model: the torn last line of
    # a run killed mid-write (the writer starts the next run on a fresh line), or a foreign line.
    unreadable: int


def parse_jsonl(lines: Iterable[str | bytes]) -> JsonlRecords:
    """The records among `lines`, skipping (and counting) those that are not whole records;
    blank lines are neither."""
    records: list[dict[str, Any]] = []
    unreadable = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            unreadable += 1
            continue
        if isinstance(record, dict) and "run_id" in record and "model" in record:
            records.append(record)
        else:
            unreadable += 1
    return JsonlRecords(records, unreadable)


def read_jsonl(path: Path) -> JsonlRecords:
    """The records of a results file (`--llmbench-jsonl`), by the rule of `parse_jsonl`."""
    # Decoded line by line: a torn line may end inside a UTF-8 sequence, which makes it one bad
    # line, not a file that cannot be read.
    return parse_jsonl(path.read_bytes().split(b"\n"))


def _run(records: list[dict[str, Any]], run_id: str, source: str) -> Run:
    mine = [r for r in records if r["run_id"] == run_id]
    provenance = {
        str(r["model"]): r["provenance"] if isinstance(r.get("provenance"), dict) else None
        for r in mine
    }
    return Run(
        run_id,
        str(mine[0].get("timestamp", "?")),
        source,
        [report_of(r) for r in mine],
        provenance,
    )


LATEST = "latest"  # names the newest run, wherever a run can be named


def matching_runs(wanted: str, runs: Sequence[str]) -> list[str]:
    """The runs among `runs` (oldest first, each once) that `wanted` names: `latest` names the
    newest, a run id itself, anything else every run it is a prefix of."""
    if wanted == LATEST:
        return list(runs[-1:])
    if wanted in runs:
        return [wanted]
    return [run for run in runs if run.startswith(wanted)]


def resolve_run(wanted: str, runs: Sequence[str], where: str) -> str:
    """The run `wanted` names among `runs` (oldest first), held in `where` (a JSONL file, the
    run record): `latest`, a run id, or a unique prefix of one. Raises RunNotFound, one line,
    when it names no run or several."""
    if not runs:
        raise RunNotFound(f"{where} holds no runs yet")
    match = matching_runs(wanted, runs)
    if len(match) > 1:
        raise RunNotFound(f"run {wanted!r} matches several runs in {where}: {shortened(match, 10)}")
    if not match:
        raise RunNotFound(f"run {wanted!r} is not in {where}; known runs: {', '.join(runs[-10:])}")
    return match[0]


def run_ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The runs of JSONL records, oldest first (a run's lines are written together)."""
    return list(dict.fromkeys(str(r["run_id"]) for r in records))


def load_run(reference: str, jsonl: Sequence[Path]) -> Run:
    """A run by reference: a JSONL file (its latest run), or `latest`, a run id or a unique
    prefix of one, looked up in the `jsonl` files (the first of them that names a run)."""
    path = Path(reference)
    if path.is_file():
        records = read_jsonl(path).records
        return _run(records, resolve_run(LATEST, run_ids(records), str(path)), str(path))
    searched = []
    for source in jsonl:
        if not source.is_file():
            continue
        searched.append(str(source))
        records = read_jsonl(source).records
        ids = run_ids(records)
        if matching_runs(reference, ids):
            return _run(records, resolve_run(reference, ids, str(source)), str(source))
    missing = f"no JSONL file (none of: {', '.join(str(p) for p in jsonl)})"
    if reference == LATEST:
        why = f"none recorded in {', '.join(searched)}" if searched else missing
        raise RunNotFound(f"no run to take as {LATEST!r}: {why}")
    where = ", ".join(searched) if searched else missing
    raise RunNotFound(f"{reference!r} is neither a file nor a run id in {where}")
