"""A CaseResult's JSON (on each item's report, and in the run record) is what asdict would give,
and reads back to an equal result."""

from __future__ import annotations

import json
from dataclasses import asdict

from pytest_llmbench.caseresult import (
    CaseResult,
    GenerationStats,
    case_result_text,
    read_case_result,
)

FULL = CaseResult(
    model="m",
    suite="python",
    task="add",
    case="c1",
    outcome="failed",
    detail="expected 3, got 4",
    file="tasks/p.yaml",
    generation=GenerationStats(seconds=1.5, completion_tokens=30, ttft_s=0.1, started_at=5.0,
                               concurrency=4, concurrency_source="server", from_store=True),
    load_s=2.0,
    answer_key="abc",
    trimmed=True,
    repeat=1,
    budgets=((64, "truncated"), (256, "failed")),
)  # fmt: skip


def test_json_is_what_asdict_gives_and_reads_back() -> None:
    for result in (FULL, CaseResult("m", "cli", "t", "c", "passed")):
        assert json.loads(result.to_json()) == json.loads(json.dumps(asdict(result)))
        assert CaseResult.from_json(result.to_json()) == result


def test_a_report_written_here_is_read_back_without_parsing_others_are_parsed() -> None:
    text = case_result_text(FULL)
    assert read_case_result(text) is FULL  # the report of an item of this process
    foreign = CaseResult("m", "cli", "t", "c", "passed", detail="from a worker").to_json()
    first = read_case_result(foreign)
    assert first == CaseResult.from_json(foreign)
    assert read_case_result(foreign) is first  # the collector and the display share one parse
    for n in range(100):  # only the latest reports are kept
        case_result_text(CaseResult("m", "cli", "t", f"c{n}", "passed"))
    assert read_case_result(text) is not FULL and read_case_result(text) == FULL
