"""Reading recorded runs back from the run record (storage/record_writer.py writes it): the runs it
holds, which ones a user means, and one run's tasks with their cases, read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results.history import LATEST, RunNotFound, resolve_run
from ..taskfiles.roots import current_name
from . import transcript
from .database import open_read_only


@dataclass
class CaseRecord:
    model: str
    task_ref: str
    case: str
    outcome: str
    detail: str
    inputs: dict[str, Any]
    got: Any
    result: dict[str, Any]


@dataclass
class TaskRecord:
    model: str
    task_ref: str
    suite: str
    task: str
    difficulty: str | None
    inputs: dict[str, Any]
    answer_key: str | None
    generation: dict[str, Any] | None
    execution: dict[str, Any]
    cases: list[CaseRecord] = field(default_factory=list)


@dataclass
class RunData:
    run_id: str
    started: str
    finished: str | None
    exit_status: int | None
    info: dict[str, Any]
    summaries: dict[str, dict[str, Any]]  # model -> its JSONL line, for finished runs
    tasks: list[TaskRecord]  # in the order they were recorded

    @property
    def models(self) -> list[str]:
        """The run's models in --models order, then any others the record holds."""
        named = [m for m in self.info.get("models", []) if any(t.model == m for t in self.tasks)]
        seen = dict.fromkeys(named)
        for task in self.tasks:
            seen.setdefault(task.model)
        return list(seen)


@dataclass(frozen=True)
class RunListing:
    run_id: str
    started: str
    finished: str | None
    models: list[str]
    cases: int


class RecordError(Exception):
    """The record asked for does not exist or cannot be read; the message says which."""


def _open_for_reading(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise RecordError(f"no run record at {path} (a pytest run with --models writes one)")
    try:
        conn = open_read_only(path)
        conn.execute("SELECT 1 FROM runs LIMIT 1")
    except sqlite3.Error as exc:
        raise RecordError(f"{path} holds no readable run record: {exc}") from None
    return conn


def list_runs(path: Path) -> list[RunListing]:
    """Every run in the record, oldest first."""
    conn = _open_for_reading(path)
    try:
        counts = dict(
            conn.execute("SELECT run_id, count(*) FROM case_records GROUP BY run_id").fetchall()
        )
        rows = conn.execute("SELECT run_id, started, finished, info FROM runs ORDER BY started")
        return [
            RunListing(run_id, started, finished, json.loads(info).get("models", []),
                       counts.get(run_id, 0))
            for run_id, started, finished, info in rows
        ]  # fmt: skip
    finally:
        conn.close()


def resolve_runs(path: Path, wanted: Sequence[str]) -> list[str]:
    """Run ids for `wanted` (full ids, unique prefixes, or `latest`); none means the latest."""
    runs = [r.run_id for r in list_runs(path)]
    chosen: list[str] = []
    for want in wanted or [LATEST]:
        try:
            run_id = resolve_run(want, runs, f"the record at {path}")
        except RunNotFound as exc:
            raise RecordError(str(exc)) from None
        if run_id not in chosen:
            chosen.append(run_id)
    return chosen


def read_run(path: Path, run_id: str) -> RunData:
    """One run's record, tasks in recording order with their cases."""
    conn = _open_for_reading(path)
    try:
        row = conn.execute(
            "SELECT started, finished, exit_status, info FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise RecordError(f"run {run_id!r} is not in the record at {path}")
        summaries = {
            model: json.loads(summary)
            for model, summary in conn.execute(
                "SELECT model, summary FROM run_models WHERE run_id = ?", (run_id,)
            )
        }
        tasks: dict[tuple[str, str], TaskRecord] = {}
        for r in conn.execute(
            "SELECT model, task_ref, suite, task, difficulty, inputs, answer_key, generation, "
            "execution FROM task_records WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ):
            tasks[(r[0], r[1])] = TaskRecord(
                model=r[0],
                task_ref=_current_ref(r[1]),
                suite=r[2],
                task=r[3],
                difficulty=r[4],
                inputs=json.loads(r[5]),
                answer_key=r[6],
                generation=json.loads(r[7]) if r[7] else _stored_answer(conn, r[6]),
                execution=json.loads(r[8]) if r[8] else {},
            )
        for r in conn.execute(
            "SELECT model, task_ref, case_id, outcome, detail, inputs, got, result "
            "FROM case_records WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ):
            task = tasks.get((r[0], r[1]))
            if task is not None:
                task.cases.append(
                    CaseRecord(r[0], task.task_ref, r[2], r[3], r[4], json.loads(r[5]),
                               json.loads(r[6]) if r[6] else None, json.loads(r[7]))
                )  # fmt: skip
        return RunData(run_id, row[0], row[1], row[2], json.loads(row[3]), summaries,
                       list(tasks.values()))  # fmt: skip
    finally:
        conn.close()


def _current_ref(task_ref: str) -> str:
    """`file::task` with the file named as it is now (runs recorded before the bundled tasks
    moved to the top-level tasks/ compare with later ones task by task)."""
    file, sep, task = task_ref.rpartition("::")
    return f"{current_name(file)}{sep}{task}" if sep else task_ref


def _stored_answer(conn: sqlite3.Connection, key: str | None) -> dict[str, Any] | None:
    """A generation the answer store holds, for records that reference it by key."""
    if key is None:
        return None
    try:
        row = conn.execute("SELECT generation FROM answers WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None  # no answer store in this database
    if not row or not row[0]:
        return None
    from .answers import decode_generation

    try:
        return transcript.generation_data(decode_generation(row[0]))
    except ValueError:
        return None  # stored by an incompatible version
