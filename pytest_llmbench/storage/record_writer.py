"""Writing the run record as the run goes: every case's transcript, in the project's SQLite store.

One database per project, `<rootdir>/.llmbench/store.sqlite3` (storage/database.py opens it; the
answer store lives there too), in WAL mode so that xdist workers write at once. Tables of the
record, keyed by run id:

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
power) loses at most its last 0.2 s. Reports read the record (storage/record_reader.py); they never
talk to servers.

This module only writes the record; it makes no report (run/ending.py writes the HTML report
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from ..caseresult import CaseResult
from . import transcript
from .database import BatchWriter, Statement, open_database

if TYPE_CHECKING:
    from ..suites import Execution
    from ..suites.base import Generation
    from ..taskfiles.format import Case, Task
    from .relay import Outbox

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


INSERT_TASK = "INSERT OR REPLACE INTO task_records VALUES (?,?,?,?,?,?,?,?,?,?,?)"
INSERT_CASE = "INSERT OR REPLACE INTO case_records VALUES (?,?,?,?,?,?,?,?,?,?)"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, separators=(",", ":"))


def connect(path: Path) -> sqlite3.Connection:
    """A connection that waits for other writers instead of failing."""
    conn = open_database(path, SCHEMA)
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn


class RecordedItem(Protocol):
    """What the record reads from a benchmark item (run.items.CaseItem)."""

    config: pytest.Config
    suite: str
    task: Task
    case: Case
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

    def __init__(self, path: Path, run_id: str, outbox: Outbox | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self._local = threading.local()
        self._tasks_written: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.failure: str | None = None  # why the record could not be written, once
        self.opened = False  # the run's row is written
        self._info: Callable[[], dict[str, Any]] | None = None  # begin()'s, until opened
        self._started: str | None = None
        # An xdist worker's cases go to the controller, which alone writes the record
        # (storage/relay.py).
        self._writer: BatchWriter | Outbox = outbox or BatchWriter(
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
        self,
        item: RecordedItem,
        result: CaseResult,
        execution: Execution,
        result_json: str | None = None,
    ) -> None:
        """Queue a task file's case's rows (and its task's, for the task's first case);
        `result_json` is `result.to_json()` when the caller has it already. The rows are built
        on the writer's thread, from values that do not change (frozen results, the task
        file's models)."""
        task, case, generation = item.task, item.case, item.generation
        self._queue(
            result,
            result_json,
            generation,
            task.difficulty,
            lambda: transcript.task_inputs(result.suite, task),
            lambda: transcript.execution_data(execution, generation),
            lambda: transcript.case_inputs(case),
            lambda: transcript.case_got(result.suite, case, execution, generation),
        )

    def function_case(
        self,
        result: CaseResult,
        inputs: dict[str, Any],
        generation: Generation | None,
        result_json: str | None = None,
    ) -> None:
        """Queue a test function's case (run/functions.py): its prompts as the inputs, its
        answers as the generation; it ran nothing the record keeps, and observed nothing but
        its verdict."""
        self._queue(
            result, result_json, generation, None,
            lambda: transcript.plain(inputs), dict, lambda: {"test": inputs.get("test")},
            lambda: None,
        )  # fmt: skip

    def _queue(
        self,
        result: CaseResult,
        result_json: str | None,
        generation: Generation | None,
        difficulty: str | None,
        task_inputs: Callable[[], Any],
        ran: Callable[[], Any],
        case_inputs: Callable[[], Any],
        got: Callable[[], Any],
    ) -> None:
        if self._info is not None:
            self.open()  # the run's first case: its row first
        task_ref = f"{result.file}::{result.task}"
        with self._lock:
            first_of_task = (result.model, task_ref) not in self._tasks_written
            self._tasks_written.add((result.model, task_ref))

        def rows() -> list[Statement]:
            out: list[Statement] = []
            if first_of_task:
                key, copied = answer_ref(generation, result)
                out.append((
                    INSERT_TASK,
                    (
                        self.run_id, result.model, task_ref, result.suite, result.task,
                        difficulty, _dumps(task_inputs()), key,
                        None if copied is None else _dumps(copied), _dumps(ran()), recorded,
                    ),
                ))  # fmt: skip
            observed = got()
            out.append((
                INSERT_CASE,
                (
                    self.run_id, result.model, task_ref, result.case, result.outcome,
                    result.detail, _dumps(case_inputs()),
                    None if observed is None else _dumps(observed),
                    result_json if result_json is not None else result.to_json(), recorded,
                ),
            ))  # fmt: skip
            return out

        recorded = _now()
        self._writer.put(f"case {task_ref}::{result.case}", rows)

    def relayed(self, statements: Sequence[Statement]) -> None:
        """Queue the rows of cases a worker recorded (storage/relay.py); the run's row first."""
        if not statements:
            return
        if any(sql not in (INSERT_TASK, INSERT_CASE) for sql, _ in statements):
            self._failed("rows from a worker", ValueError("not rows of the record's cases"))
            return
        self.open()
        self._writer.put(f"{len(statements)} rows from a worker", lambda: list(statements))

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
    item: RecordedItem, result: CaseResult, execution: Execution, result_json: str | None = None
) -> None:
    """Add a case to the run's record (called where collection makes the CaseResult)."""
    record = item.config.stash.get(RECORD, None)
    if record is not None:
        record.case(item, result, execution, result_json)
