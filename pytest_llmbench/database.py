"""Opening the run's SQLite database (`.llmbench/store.sqlite3`): the answer store and the run
record share it, from many threads and, under xdist, several processes."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

BUSY_TIMEOUT_S = 30.0

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
