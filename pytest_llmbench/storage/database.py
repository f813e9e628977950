"""Opening the run's SQLite database (`.llmbench/store.sqlite3`): the answer store and the run
record share it, from many threads and, under xdist, several processes."""

from __future__ import annotations

import atexit
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_S = 30.0


def database_path(rootdir: Path) -> Path:
    return rootdir / ".llmbench" / "store.sqlite3"


# Switching a new database to WAL and creating tables take locks for which SQLite does not
# always wait (a lock upgrade that would deadlock fails at once with "database is locked"), so
# first connections in this process set up one at a time, and retry against other processes.
_SETUP = threading.Lock()
_SETUP_ATTEMPTS = 40


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection in WAL mode, in autocommit, that waits for other writers; `schema` (idempotent
    statements) applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _SETUP:
        for attempt in range(_SETUP_ATTEMPTS):
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit survives the process being killed; only a power
                # cut may lose the last ones.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(schema)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or attempt == _SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


Statement = tuple[str, tuple[Any, ...]]  # SQL and its parameters
Rows = Callable[[], list[Statement]]  # makes the statements of one write, on the writer's thread
# What the writer's queue carries: (label, rows) to commit, an Event to set once everything
# queued before it is committed, None to stop.
_Item = tuple[str, Rows] | threading.Event | None


class BatchWriter:
    """Writes on a thread of its own, a batch per transaction, so that the thread that queues
    the writes (pytest's, once per case) neither builds rows nor waits for the disk.

    A batch is committed at most `linger_s` after its first write was queued, and at once by
    flush() and close(): a process killed without warning loses at most the writes of the last
    `linger_s` (plus one commit's time). A batch that cannot be written goes to `on_error`
    (with the label its first write was queued under) and the writer goes on.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_error: Callable[[str, Exception], None],
        *,
        linger_s: float = 0.2,
        name: str = "llmbench-db-writer",
    ) -> None:
        self._connect = connect
        self._on_error = on_error
        self.linger_s = linger_s
        self._name = name
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        # Set by flush() and close(): commit now. The writer waits on it rather than on the
        # queue, so only the first write of a batch wakes it (each wake-up costs the queuing
        # thread a switch of the GIL).
        self._now = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def put(self, label: str, rows: Rows) -> None:
        """Queue a write; `rows` is called on the writer's thread, so what it reads must not
        change after this call."""
        with self._start:
            if self._thread is None:
                # A daemon, so that a stuck disk cannot hold the interpreter at exit; close()
                # (the run's end, also when interrupted) and the exit hook write what is queued.
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                atexit.register(self.close)
        self._queue.put((label, rows))

    def flush(self) -> None:
        """Return once everything queued before the call is committed (or reported failed)."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        self._now.set()
        done.wait()

    def close(self) -> None:
        """Commit what is queued and stop the thread (a later put starts a new one)."""
        with self._start:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        atexit.unregister(self.close)
        if thread.is_alive():
            self._queue.put(None)
            self._now.set()
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stop = False
        while not stop:
            items = [self._queue.get()]
            self._now.wait(self.linger_s)  # let the batch gather
            self._now.clear()
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._queue.get_nowait())
            batch = [item for item in items if isinstance(item, tuple)]
            stop = None in items
            try:
                if batch:
                    conn = conn or self._connect()
                    self._commit(conn, batch)
            except Exception as exc:  # the writer must outlive any failure: the run goes on
                label = batch[0][0] + (f" and {len(batch) - 1} more" if len(batch) > 1 else "")
                self._on_error(label, exc)
            finally:
                for item in items:
                    if isinstance(item, threading.Event):
                        item.set()
        if conn is not None:
            conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: list[tuple[str, Rows]]) -> None:
        statements = [statement for _, rows in batch for statement in rows()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                conn.execute(sql, params)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
