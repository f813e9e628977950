"""What an xdist worker sends the controller instead of writing the project's database.

The controller owns the results: only it writes the answer store and the run record. A worker,
local (`-n 2`) or on another machine (`--tx ssh=...`), writes nothing under its project: it
keeps each answer it generated and each record row of a case in an Outbox, and the worker's
next item report carries them to the controller (run/bench.py), which writes them; what is
left at the worker's end travels in xdist's worker output. A worker reads stored answers from
the copy the controller handed it at start (RelayedAnswers), so a resumed run asks no server
again, wherever its workers run.

Everything here is plain data (JSON text), as reports and xdist's worker input must be.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..suites.base import Generation
from .answers import AnswerKey, AnswerRow, answer_row, decode_generation
from .database import Rows, Statement

RELAY_PROPERTY = "llmbench_relay"  # the report's user property that carries an Outbox's take
ANSWERS_INPUT = "llmbench_answers"  # xdist workerinput: the controller's stored answers


class Outbox:
    """A worker's answers and record rows waiting for the next report. Thread-safe: the
    generation threads add answers, pytest's thread adds record rows and takes them all.

    It has the BatchWriter's interface (`put`, `flush`, `close`), so that a worker's RunRecord
    writes here; the rows are built when they are taken, on pytest's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: list[AnswerRow] = []
        self._writes: list[Rows] = []

    def answer(self, row: AnswerRow) -> None:
        with self._lock:
            self._answers.append(row)

    def put(self, label: str, rows: Rows) -> None:
        with self._lock:
            self._writes.append(rows)

    def flush(self) -> None:
        """Nothing to wait for: the rows leave with the next report."""

    def close(self) -> None:
        """Nothing to close: what is left is taken at the worker's end."""

    def take(self) -> str | None:
        """Everything waiting, as JSON text, and the box emptied; None when it is empty."""
        with self._lock:
            answers, self._answers = self._answers, []
            writes, self._writes = self._writes, []
        if not answers and not writes:
            return None
        statements = [list(statement) for rows in writes for statement in rows()]
        return json.dumps({"answers": answers, "record": statements}, separators=(",", ":"))


def parse(text: str) -> tuple[list[AnswerRow], list[Statement]]:
    """An Outbox's take, as the controller writes it: answer rows and record statements."""
    data: dict[str, Any] = json.loads(text)
    answers = [tuple(row) for row in data.get("answers", ())]
    statements = [(str(sql), tuple(params)) for sql, params in data.get("record", ())]
    return answers, statements


class RelayedAnswers:
    """A worker's stored answers: the controller's, as it handed them over at start (read
    only), and new ones into the outbox."""

    def __init__(self, stored: dict[str, str], policy: str, outbox: Outbox) -> None:
        self._stored = stored
        self._policy = policy
        self._outbox = outbox

    def get(self, key: AnswerKey) -> Generation | None:
        if self._policy != "use":
            return None
        text = self._stored.get(key.digest)
        if text is None:
            return None
        try:
            return decode_generation(text)
        except ValueError:
            return None  # written by an incompatible version: ask again

    def put(self, key: AnswerKey, generation: Generation) -> None:
        if self._policy == "off":
            return
        row = answer_row(key, generation)
        self._stored[row[0]] = row[5]  # asked again in this run (another test's same prompt)
        self._outbox.answer(row)
