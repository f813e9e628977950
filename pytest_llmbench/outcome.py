"""The outcome vocabulary: every way a case can end, and how each is shown.

One place for each outcome's word (what results, the JSONL and the record hold), its status
letter (pytest's progress line; the HTML report's grid uses the same letter as its code), its
word under `-v` with its colour, and how the table's notes count it. The terminal, the JSONL,
the markdown and the HTML report all read it from here.

Only `error` is not the model's doing: the server or the sandbox failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["passed", "failed", "truncated", "no_answer", "timeout", "error"]


@dataclass(frozen=True)
class Shown:
    """How one outcome is shown."""

    letter: str  # pytest's status letter, and the HTML report's code
    word: str  # the status word under -v
    colour: str  # of the word (terminal markup)
    note: str | None  # how the table's notes count it ("3 no answer"); None: not noted


VOCABULARY: dict[Outcome, Shown] = {
    "passed": Shown(".", "PASSED", "green", None),
    "failed": Shown("F", "FAILED", "red", None),
    "truncated": Shown("t", "TRUNCATED", "yellow", "truncated"),
    "no_answer": Shown("n", "NO ANSWER", "yellow", "no answer"),
    "timeout": Shown("T", "TIMEOUT", "yellow", "timeout"),
    "error": Shown("E", "ERROR", "red", "errors"),
}
OUTCOMES: tuple[Outcome, ...] = tuple(VOCABULARY)
# By word as any reader has it (the record and the JSONL hold plain strings).
LETTERS: dict[str, str] = {outcome: shown.letter for outcome, shown in VOCABULARY.items()}
# The outcomes the table's notes count, with their words, in the vocabulary's order.
NOTED: tuple[tuple[Outcome, str], ...] = tuple(
    (outcome, shown.note) for outcome, shown in VOCABULARY.items() if shown.note is not None
)
