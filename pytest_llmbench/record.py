"""The run record: every case's transcript, written as the run goes, in the project's SQLite store.

One database per project, `<rootdir>/.llmbench/store.sqlite3` (the answer store lives there
too), in WAL mode so that xdist workers write at once. Tables of the record, keyed by run id:

- `runs`: one row per run: when it started and finished, its models, its settings as its
  JSONL lines record them; written with the run's first case, so that a run that ran no case
  (a collection error, nothing selected) leaves no record;
- `run_models`: at the end of a run, each model's JSONL line (totals, per-task figures);
- `task_records`: one row per (run, model, task): the inputs the model was given, its
  generation (answer, reasoning, every turn and tool call) and what ran (code or command with
  its output);
- `case_records`: one row per (run, model, task, case): the case's inputs, what it observed,
  the verdict with its detail, and the CaseResult (tokens, timings).

Cases are written as the run goes, by a writer thread in batches (one transaction each),
each batch committed at most 0.2 s after its first case's verdict: a run interrupted (Ctrl-C,
SIGTERM, SIGHUP) writes every finished case before it ends, one killed outright (SIGKILL,
power) loses at most its last 0.2 s. Reports read the record; they never talk to servers.

This module writes and reads the record; it makes no report (runend.py writes the HTML report
from the record once the run's end is in it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from . import transcript
from .caseresult import CaseResult
from .database import BatchWriter, Statement, open_database, open_read_only
from .history import LATEST, RunNotFound, resolve_run
from .taskroots import current_name

if TYPE_CHECKING:
    from .spec import Task
    from .suites.base import Generation

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    exit_status INTEGER,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_models (
    run_id TEXT NOT NULL,
    model TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (run_id, model)
);
CREATE TABLE IF NOT EXISTS task_records (
    run_id TEXT NOT NULL,
    model TEXT NOT NULL,
    task_ref TEXT NOT NULL,
    suite TEXT NOT NULL,
    task TEXT NOT NULL,
    difficulty TEXT,
    inputs TEXT NOT NULL,
    answer_key TEXT,
    generation TEXT,
    execution TEXT,
    recorded TEXT NOT NULL,
    PRIMARY KEY (run_id, model, task_ref)
);
CREATE TABLE IF NOT EXISTS case_records (
    run_id TEXT NOT NULL,
    model TEXT NOT NULL,
    task_ref TEXT NOT NULL,
    case_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    inputs TEXT NOT NULL,
    got TEXT,
    result TEXT NOT NULL,
    recorded TEXT NOT NULL,
    PRIMARY KEY (run_id, model, task_ref, case_id)
);
"""


def database_path(rootdir: Path) -> Path:
    return rootdir / ".llmbench" / "store.sqlite3"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, separators=(",", ":"))


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection that waits for other writers instead of failing."""
    if read_only:
        return open_read_only(path)
    conn = open_database(path, SCHEMA)
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn


class RecordedItem(Protocol):
    """What the record reads from a benchmark item (collect.CaseItem)."""

    config: pytest.Config
    suite: str
    task: Task
    case: Any  # the task's case: spec.PythonCase, CliCase or ToolingCase
    model: str
    generation: Generation | None

    @property
    def task_key(self) -> tuple[str, str]: ...


def answer_ref(
    generation: Generation | None, result: CaseResult
) -> tuple[str | None, dict[str, Any] | None]:
    """How the record holds the generation behind a case: (answer store key, copy).

    The answer store (same database) holds every generation it was given a key for; the record
    points at it. Without a key (--llmbench-cache=off, the built-in pseudo-models) the record
    keeps its own copy.
    """
    if generation is None:
        return None, None
    if result.answer_key is not None:
        return result.answer_key, None
    return None, transcript.generation_data(generation)


class RunRecord:
    """Writes one run's record. The run's start and end are written at once; cases go through
    a BatchWriter (one transaction per batch, on its own thread, at most LINGER_S late), so
    that recording a case costs pytest's thread no disk wait.

    The process that opens the run (the controller) says so with `begin`; its row is written
    when the run's first case is recorded here (or `open` is called: under xdist the cases are
    the workers'), so a run that ran nothing creates no record. `opened` says whether it was.
    """

    LINGER_S = 0.2  # a run killed without warning loses at most the last 0.2 s of cases

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._local = threading.local()
        self._tasks_written: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.failure: str | None = None  # why the record could not be written, once
        self.opened = False  # the run's row is written
        self._info: Callable[[], dict[str, Any]] | None = None  # begin()'s, until opened
        self._started: str | None = None
        self._writer = BatchWriter(
            lambda: connect(self.path), self._failed, linger_s=self.LINGER_S,
            name="llmbench-record",
        )  # fmt: skip

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _failed(self, what: str, exc: Exception) -> None:
        """A record that cannot be written must not stop the benchmark: say so once."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = f"cannot write the run record at {self.path} ({what}): {exc}"
        print(f"llmbench: {self.failure}; the run goes on without it", file=sys.stderr)

    def _guard(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (sqlite3.Error, OSError) as exc:
            self._failed(what, exc)

    def begin(self, info: Callable[[], dict[str, Any]]) -> None:
        """This process opens the run, which starts now: its row is written with `info()` when
        the first case is recorded (or at `open`)."""
        self._started = _now()
        self._info = info

    def open(self) -> None:
        """Write the run's row now, if `begin` said this process opens it and it is not yet."""
        with self._lock:
            info, self._info = self._info, None
        if info is not None:
            self.start(info(), started=self._started)

    def start(self, info: dict[str, Any], started: str | None = None) -> None:
        """Write the run's row (`started`: when the run started, else now)."""
        self.opened = True

        def insert() -> None:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO runs (run_id, started, info) VALUES (?, ?, ?)",
                    (self.run_id, started or _now(), _dumps(info)),
                )

        self._guard("run start", insert)

    def case(
        self, item: RecordedItem, result: CaseResult, execution: Any, result_json: str | None = None
    ) -> None:
        """Queue a case's rows (and its task's, for the task's first case); `result_json` is
        `result.to_json()` when the caller has it already. The rows are built on the writer's
        thread, from values that do not change (frozen results, the task file's models)."""
        if self._info is not None:
            self.open()  # the run's first case: its row first
        task_ref = f"{result.file}::{result.task}"
        task, case, generation = item.task, item.case, item.generation
        with self._lock:
            first_of_task = (result.model, task_ref) not in self._tasks_written
            self._tasks_written.add((result.model, task_ref))

        def rows() -> list[Statement]:
            out: list[Statement] = []
            if first_of_task:
                key, copied = answer_ref(generation, result)
                ran = transcript.execution_data(result.suite, execution, generation)
                out.append((
                    "INSERT OR REPLACE INTO task_records VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        self.run_id, result.model, task_ref, result.suite, result.task,
                        task.difficulty, _dumps(transcript.task_inputs(result.suite, task)), key,
                        None if copied is None else _dumps(copied), _dumps(ran), recorded,
                    ),
                ))  # fmt: skip
            got = transcript.case_got(result.suite, case, execution, generation)
            out.append((
                "INSERT OR REPLACE INTO case_records VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    self.run_id, result.model, task_ref, result.case, result.outcome,
                    result.detail, _dumps(transcript.case_inputs(case)),
                    None if got is None else _dumps(got),
                    result_json if result_json is not None else result.to_json(), recorded,
                ),
            ))  # fmt: skip
            return out

        recorded = _now()
        self._writer.put(f"case {task_ref}::{result.case}", rows)

    def flush(self) -> None:
        """Return once every case queued so far is in the database (or reported failed)."""
        self._writer.flush()

    def finish(self, summaries: Sequence[dict[str, Any]], exit_status: int) -> None:
        self._writer.close()  # the cases first: a finished run holds all of them

        def update() -> None:
            with self._write() as conn:
                conn.execute(
                    "UPDATE runs SET finished = ?, exit_status = ? WHERE run_id = ?",
                    (_now(), exit_status, self.run_id),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO run_models VALUES (?, ?, ?)",
                    [(self.run_id, s["model"], _dumps(s)) for s in summaries],
                )

        self._guard("run end", update)

    def close(self) -> None:
        """Write every queued case and close this thread's connection."""
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


RECORD = pytest.StashKey[RunRecord]()


def record_case(
    item: RecordedItem, result: CaseResult, execution: Any, result_json: str | None = None
) -> None:
    """Add a case to the run's record (called where collection makes the CaseResult)."""
    record = item.config.stash.get(RECORD, None)
    if record is not None:
        record.case(item, result, execution, result_json)


# --------------------------------------------------------------------------- reading


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
        conn = connect(path, read_only=True)
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
    from .store import decode_generation

    try:
        return transcript.generation_data(decode_generation(row[0]))
    except ValueError:
        return None  # stored by an incompatible version
