"""The answer store: every finished generation, durable, keyed by everything that shapes it.

One SQLite database per project (`.llmbench/store.sqlite3`) in WAL mode, so that xdist workers
and the generation threads of one process can write at once while readers never block. A
generation is written (and committed) the moment it finishes: a run that is interrupted, killed
or crashes finds it next time, and a run whose task cases changed (not what the model is shown)
scores the stored answers again without asking the model.

The key is a hash of: the backend, the model as the server identifies it, what the model is
shown (messages, tool specs, the chain's length), the sampling settings (max_tokens,
temperature, seed), the repeat index, whether the answer was decoded alone or batched
beside other requests (backends/inflight.py), and the server settings a backend says change the
tokens (the embedded servers' threads). Nothing else we know of changes what the model would answer,
so nothing else is in the key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter

from ..suites.base import Generation
from .database import open_database

Policy = Literal["use", "refresh", "off"]
# Part of every key: a change of what is stored invalidates old answers. 2: completions carry
# their token timeline (budgets cut answers from it).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key        TEXT PRIMARY KEY,
    backend    TEXT NOT NULL,
    model      TEXT NOT NULL,
    created    REAL NOT NULL,
    request    TEXT NOT NULL,   -- JSON: what the key was made of
    generation TEXT NOT NULL    -- JSON: the Generation (completions, tool turns, usage, timings)
)
"""


@dataclass(frozen=True)
class AnswerKey:
    """What shapes an answer; `digest` is its store key."""

    backend: str
    model: str  # the model as the server identifies it
    shown: dict[str, Any]  # what the model is shown: messages, tools, chain length
    max_tokens: int
    temperature: float
    seed: int | None
    repeat: int = 0
    # Decoded beside other requests on one server: batched decoding changes tokens, so an
    # answer generated alone is another answer (and the only kind a reproducible run reuses).
    batched: bool = False
    # Server settings that change the tokens (the embedded servers' threads): keyed only
    # where a backend names some, so other backends' keys are as they were.
    server: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(
            {
                "v": SCHEMA_VERSION,
                "backend": self.backend,
                "model": self.model,
                "shown": self.shown,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "seed": self.seed,
                "repeat": self.repeat,
                "batched": self.batched,
                **({"server": self.server} if self.server else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


@functools.cache
def _codec() -> TypeAdapter[Generation]:
    # Built on first use: building it costs more than collecting a thousand tasks.
    return TypeAdapter(Generation)


def encode_generation(generation: Generation) -> str:
    return _codec().dump_json(generation).decode()


def decode_generation(text: str) -> Generation:
    return _codec().validate_json(text)


# One row of the answers table: key, backend, model, created, request, generation. It is also
# what an xdist worker sends the controller (storage/relay.py), which alone writes the table.
AnswerRow = tuple[str, str, str, float, str, str]
_INSERT = (
    "INSERT OR REPLACE INTO answers (key, backend, model, created, request, generation) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def answer_row(key: AnswerKey, generation: Generation) -> AnswerRow:
    return (
        key.digest, key.backend, key.model, time.time(), key.as_json(),
        encode_generation(generation),
    )  # fmt: skip


class Answers(Protocol):
    """What the scheduler asks of stored answers: the project's store (AnswerStore), or on an
    xdist worker the controller's answers and an outbox (storage/relay.py)."""

    def get(self, key: AnswerKey) -> Generation | None: ...

    def put(self, key: AnswerKey, generation: Generation) -> None: ...


class AnswerStore:
    """Thread-safe: each thread gets its own connection (sqlite3 connections are per thread)."""

    def __init__(self, path: Path, policy: Policy = "use") -> None:
        self.path = path
        self.policy = policy
        self._local = threading.local()
        self.hits = 0
        self.writes = 0
        self._count_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_database(self.path, _SCHEMA)
            self._local.conn = conn
        return conn

    def get(self, key: AnswerKey) -> Generation | None:
        if self.policy != "use":
            return None
        row = (
            self._connection()
            .execute("SELECT generation FROM answers WHERE key = ?", (key.digest,))
            .fetchone()
        )
        if row is None:
            return None
        try:
            generation = decode_generation(row[0])
        except ValueError:
            return None  # written by an incompatible version: ask again, overwrite
        with self._count_lock:
            self.hits += 1
        return generation

    def put(self, key: AnswerKey, generation: Generation) -> None:
        if self.policy == "off":
            return
        self._connection().execute(_INSERT, answer_row(key, generation))
        with self._count_lock:
            self.writes += 1

    def put_rows(self, rows: Sequence[AnswerRow]) -> None:
        """Write rows a worker generated (storage/relay.py), in one transaction."""
        if self.policy == "off" or not rows:
            return
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        with self._count_lock:
            self.writes += len(rows)

    def stored(
        self, backend: str, models: Iterable[str], temperature: float, seeds: Iterable[int | None]
    ) -> dict[str, str]:
        """The stored answers a run could reuse, by key, as stored: those of `models` on
        `backend` sampled at `temperature` with one of `seeds` (the controller hands them to
        its xdist workers, which do not read this database; answers of other settings would
        only weigh on the hand-over). Nothing when the policy does not read the store, or
        there is no store yet."""
        names = sorted(set(models))
        if self.policy != "use" or not names or not self.path.exists():
            return {}
        wanted = set(seeds)
        marks = ",".join("?" * len(names))
        rows = self._connection().execute(
            "SELECT key, json_extract(request, '$.seed'), generation FROM answers "
            f"WHERE backend = ? AND model IN ({marks}) "
            "AND json_extract(request, '$.temperature') = ?",
            (backend, *names, temperature),
        )
        return {key: generation for key, seed, generation in rows if seed in wanted}

    def load(self, digest: str) -> Generation | None:
        """A stored generation by its key, whatever the policy (reports read through this)."""
        row = (
            self._connection()
            .execute("SELECT generation FROM answers WHERE key = ?", (digest,))
            .fetchone()
        )
        return decode_generation(row[0]) if row is not None else None

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
