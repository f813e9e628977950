"""The run record's storage: concurrent writers, reading runs back, clear errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.bench import ADD_ANSWER, ADD_TASK, add_generation

from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.storage.record_reader import RecordError, list_runs, read_run, resolve_runs
from pytest_llmbench.storage.record_writer import RECORD, RunRecord, record_case
from pytest_llmbench.storage.transcript import OUTPUT_CAP, capped
from pytest_llmbench.taskfiles.format import PythonCase

TASK = ADD_TASK
ANSWER = ADD_ANSWER


def _item(record: RunRecord, model: str, case: PythonCase) -> Any:
    generation = add_generation()
    config = SimpleNamespace(stash={RECORD: record})
    return SimpleNamespace(
        config=config, suite="python", task=TASK, case=case, model=model, generation=generation
    )


def _result(model: str, case: PythonCase) -> CaseResult:
    return CaseResult(model, "python", "add", case.id, "passed", file="tasks/p.yaml")


def _write_model(path: str, run_id: str, model: str) -> None:
    record = RunRecord(Path(path), run_id)
    for case in TASK.cases:
        record_case(_item(record, model, case), _result(model, case), None)
    record.close()


def test_processes_write_one_run_at_once(tmp_path: Path) -> None:
    """xdist workers are processes writing the same database: nothing is lost or locked out."""
    path = tmp_path / "store.sqlite3"
    starter = RunRecord(path, "run1")
    starter.start({"models": [f"m{i}" for i in range(4)]})
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_model, args=(str(path), "run1", f"m{i}")) for i in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert starter.failure is None
    run = read_run(path, "run1")
    assert run.models == ["m0", "m1", "m2", "m3"]
    assert sorted(len(t.cases) for t in run.tasks) == [3, 3, 3, 3]
    assert all(t.generation and t.generation["answer"] == ANSWER for t in run.tasks)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_runs_are_found_by_id_prefix_or_latest(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    for run_id in ("aaa111", "aab222", "ccc333"):
        RunRecord(path, run_id).start({"models": ["m"]})
    assert [r.run_id for r in list_runs(path)] == ["aaa111", "aab222", "ccc333"]
    assert resolve_runs(path, []) == ["ccc333"]
    assert resolve_runs(path, ["latest", "aaa"]) == ["ccc333", "aaa111"]
    with pytest.raises(RecordError, match="'aa' matches several runs"):
        resolve_runs(path, ["aa"])
    with pytest.raises(RecordError, match="'zzz' is not in the record"):
        resolve_runs(path, ["zzz"])


def test_a_missing_record_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no run record at"):
        list_runs(tmp_path / "nothing.sqlite3")
    (tmp_path / "junk.sqlite3").write_text("not a database")
    with pytest.raises(RecordError, match="holds no readable run record"):
        list_runs(tmp_path / "junk.sqlite3")


def test_an_unwritable_record_warns_once_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    record = RunRecord(blocker / "store.sqlite3", "run1")  # its parent is a file
    record.start({})
    for case in TASK.cases:
        record.case(_item(record, "m", case), _result("m", case), None)
    assert record.failure is not None and "cannot write the run record" in record.failure
    assert capsys.readouterr().err.count("cannot write the run record") == 1


def test_cases_that_cannot_be_written_warn_once_when_they_are_flushed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    record = RunRecord(blocker / "store.sqlite3", "run1")
    for case in TASK.cases:
        record.case(_item(record, "m", case), _result("m", case), None)
    record.flush()
    assert record.failure is not None and "(case tasks/p.yaml::add::c0" in record.failure
    record.case(_item(record, "m", TASK.cases[0]), _result("m", TASK.cases[0]), None)
    record.close()
    assert capsys.readouterr().err.count("cannot write the run record") == 1


def test_cases_are_in_the_record_after_a_flush_before_the_run_ends(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    record = RunRecord(path, "run1")
    record.start({"models": ["m"]})
    for case in TASK.cases:
        record_case(_item(record, "m", case), _result("m", case), None)
    record.flush()
    run = read_run(path, "run1")
    assert [c.case for t in run.tasks for c in t.cases] == ["c0", "c1", "c2"]
    assert run.tasks[0].generation is not None and run.finished is None
    record.finish([], 0)
    assert read_run(path, "run1").finished is not None


def test_outputs_are_capped_and_say_so() -> None:
    assert capped("abc") == {"text": "abc", "cut": False}
    long = capped("x" * (OUTPUT_CAP + 5))
    assert long["cut"] is True and long["length"] == OUTPUT_CAP + 5
    assert len(long["text"]) == OUTPUT_CAP


def test_a_run_recorded_before_the_bundled_tasks_moved_reads_with_todays_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    record = RunRecord(path, "old")
    record.start({"models": ["m"]})
    for case in TASK.cases:
        result = CaseResult("m", "python", "add", case.id, "passed",
                            file="pytest_llmbench/tasks/python/seed.yaml")  # fmt: skip
        record_case(_item(record, "m", case), result, None)
    record.close()
    (task,) = read_run(path, "old").tasks
    assert task.task_ref == "tasks/python/seed.yaml::add"
    assert {c.task_ref for c in task.cases} == {"tasks/python/seed.yaml::add"}
