"""The outcome vocabulary: one word, letter and note per outcome, read by every output."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.outcome import LETTERS, NOTED, OUTCOMES, VOCABULARY, Outcome
from pytest_llmbench.reporting.html.data import columns_of, figures, grid_data
from pytest_llmbench.reporting.html.page import comparison_table
from pytest_llmbench.reporting.table import render_table
from pytest_llmbench.results.aggregate import aggregate
from pytest_llmbench.run.progress import teststatus as status_of
from pytest_llmbench.storage.record_reader import CaseRecord, RunData, TaskRecord

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_of_outcomes_is_the_vocabulary() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `(.)` \|", README.read_text(encoding="utf-8"), re.M)
    assert dict(rows) == LETTERS
    assert [word for word, _ in rows] == list(OUTCOMES)


def test_each_outcome_has_its_own_letter() -> None:
    assert len(set(LETTERS.values())) == len(OUTCOMES)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_the_status_line_shows_the_vocabulary(outcome: Outcome) -> None:
    report: Any = SimpleNamespace(
        when="call", passed=outcome == "passed", failed=outcome != "passed",
        user_properties=[("llmbench_outcome", outcome)],
    )  # fmt: skip
    status = status_of(report)
    assert status is not None
    _, letter, (word, markup) = status
    shown = VOCABULARY[outcome]
    assert (letter, word, markup) == (shown.letter, shown.word, {shown.colour: True})


def _recorded(outcomes: list[str]) -> RunData:
    results = [CaseResult("m", "python", "t", f"c{i}", cast(Outcome, o))
               for i, o in enumerate(outcomes)]  # fmt: skip
    cases = [CaseRecord("m", "f.yaml::t", r.case, r.outcome, "", {}, None, r.to_dict())
             for r in results]  # fmt: skip
    task = TaskRecord("m", "f.yaml::t", "python", "t", "easy", {}, None, None, {}, cases)
    return RunData("r", "2026-01-01", None, None, {"models": ["m"]}, {}, [task])


def test_the_html_grid_codes_are_the_status_letters() -> None:
    data, _ = grid_data(columns_of([_recorded(list(OUTCOMES))]))
    assert data["cells"] == [["".join(VOCABULARY[o].letter for o in OUTCOMES)]]
    assert data["outcomes"] == {shown.letter: word for word, shown in VOCABULARY.items()}


def test_the_terminal_and_html_tables_note_the_same_outcomes() -> None:
    noted = [outcome for outcome, _ in NOTED]
    assert noted == [o for o, shown in VOCABULARY.items() if shown.note is not None]
    results = [CaseResult("m", "python", "t", f"c{i}", o) for i, o in enumerate(OUTCOMES)]
    table = render_table(aggregate(results, ("m",)))
    column = columns_of([_recorded(list(OUTCOMES))])
    page = comparison_table(column, [figures(column[0])])
    for _, note in NOTED:
        assert f"1 {note}" in table and f"1 {note}" in page
