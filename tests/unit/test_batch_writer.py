"""The run record's writer thread (database.BatchWriter): writes land in batches, one
transaction each, on their own within the linger time, at once on flush and close, at the
process's exit, and a batch that fails is reported while the writer goes on."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_llmbench.storage.database import BatchWriter, Statement, open_database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY);"


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def _insert(n: int) -> list[Statement]:
    return [("INSERT INTO t VALUES (?)", (n,))]


class Traced:
    """Opens the database and counts the transactions committed on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0
        open_database(path, SCHEMA).close()

    def __call__(self) -> sqlite3.Connection:
        conn = open_database(self.path, SCHEMA)
        conn.set_trace_callback(self._trace)
        return conn

    def _trace(self, sql: str) -> None:
        self.commits += sql == "COMMIT"


def test_queued_writes_are_one_transaction_at_flush(tmp_path: Path) -> None:
    traced = Traced(tmp_path / "db.sqlite3")
    writer = BatchWriter(traced, lambda label, exc: None, linger_s=600)
    for n in range(50):
        writer.put(f"row {n}", lambda n=n: _insert(n))  # type: ignore[misc]
    assert _count(traced.path) == 0  # the batch is still gathering
    writer.flush()
    assert _count(traced.path) == 50 and traced.commits == 1
    writer.put("row 50", lambda: _insert(50))
    writer.close()
    assert _count(traced.path) == 51 and traced.commits == 2


def test_a_batch_lands_on_its_own_after_the_linger_time(tmp_path: Path) -> None:
    traced = Traced(tmp_path / "db.sqlite3")
    writer = BatchWriter(traced, lambda label, exc: None, linger_s=0.05)
    writer.put("row", lambda: _insert(1))
    deadline = time.monotonic() + 60
    while _count(traced.path) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _count(traced.path) == 1  # nobody flushed: the writer committed by itself
    writer.close()


def test_a_failed_batch_is_reported_and_the_writer_goes_on(tmp_path: Path) -> None:
    traced = Traced(tmp_path / "db.sqlite3")
    errors: list[tuple[str, str]] = []
    writer = BatchWriter(traced, lambda label, exc: errors.append((label, str(exc))), linger_s=600)
    writer.put("first", lambda: _insert(1))
    writer.put("clash", lambda: _insert(1))  # the same key again: the batch rolls back
    writer.flush()
    assert errors == [("first and 1 more", "UNIQUE constraint failed: t.n")]
    assert _count(traced.path) == 0

    def broken() -> list[Statement]:
        raise ValueError("cannot build the rows")

    writer.put("broken", broken)
    writer.flush()
    writer.put("later", lambda: _insert(2))
    writer.close()
    assert errors[1] == ("broken", "cannot build the rows")
    assert _count(traced.path) == 1


def test_what_is_queued_is_written_when_the_process_exits(tmp_path: Path) -> None:
    """No flush and no close: the exit hook writes the batch before the interpreter goes."""
    path = tmp_path / "db.sqlite3"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from pytest_llmbench.storage.database import BatchWriter, open_database
        path = Path({str(path)!r})
        writer = BatchWriter(lambda: open_database(path, {SCHEMA!r}), print, linger_s=600)
        for n in range(3):
            writer.put("row", lambda n=n: [("INSERT INTO t VALUES (?)", (n,))])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert _count(path) == 3
