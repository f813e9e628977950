"""The run record: every case's inputs, answer, tool turns, sandbox output and verdict, written
as the run goes (also under xdist, also when the run is killed half-way)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import GOOD_CODE, bad_script, good_script, read_jsonl
from fakes.openai_server import Reply, by_prompt

from pytest_llmbench.storage.database import database_path
from pytest_llmbench.storage.record_reader import list_runs, read_run
from pytest_llmbench.storage.transcript import OUTPUT_CAP


def run_bench(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai",
        f"--llmbench-base-url={url}",
        "--llmbench-jsonl=out/results.jsonl",
        "-p",
        "no:cacheprovider",
        *args,
    )


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai({"good": good_script(), "bad": bad_script()})


def _tasks(bench: pytest.Pytester, run_id: str) -> dict[tuple[str, str], Any]:
    run = read_run(database_path(bench.path), run_id)
    return {(t.model, t.task): t for t in run.tasks}


def test_record_holds_every_case_with_inputs_answer_and_verdict(
    bench_dir: pytest.Pytester, server: Any
) -> None:
    run_bench(bench_dir, server.url, "--models=good,bad")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    run_id = rows[0]["run_id"]
    # The JSONL line names its record.
    assert rows[0]["record"] == {"database": str(database_path(bench_dir.path)), "run_id": run_id}
    run = read_run(database_path(bench_dir.path), run_id)
    assert run.finished is not None and run.exit_status == 1
    assert {m: s["passed"] for m, s in run.summaries.items()} == {"good": 7, "bad": 0}
    cases = {(t.model, t.task, c.case): c for t in run.tasks for c in t.cases}
    assert len(cases) == 14  # 7 cases x 2 models, each once
    tasks = _tasks(bench_dir, run_id)

    add = tasks[("good", "add")]
    assert add.suite == "python"
    assert add.inputs["prompt"].startswith("Write `def add(a, b)`")
    assert "Python programmer" in add.inputs["system"]
    assert add.inputs["entry_point"] == "add"
    assert add.generation is not None and add.generation["answer"] == GOOD_CODE
    assert add.generation["stats"]["completion_tokens"] > 0
    assert add.execution["code"] == "def add(a, b):\n    return a + b"
    small = cases[("good", "add", "small")]
    assert small.inputs == {"id": "small", "args": [1, 2], "expect": 3}
    assert small.got["status"] == "ok" and small.got["value"]["text"] == "3"
    assert small.outcome == "passed" and small.result["generation"]["requests"] == 1

    wrong = cases[("bad", "add", "negative")]
    assert wrong.outcome == "failed" and wrong.detail == "expected -3, got -7"
    assert wrong.got["value"]["text"] == "-7"

    count = tasks[("good", "count_lines")]
    assert count.inputs["files"] == {"data.txt": "a\nb\nc\n"}
    assert "Files in the current directory: data.txt" in count.inputs["prompt"]
    assert count.execution["command"] == "wc -l < data.txt"
    assert count.execution["run"]["stdout"] == {"text": "3\n", "cut": False}
    assert count.execution["run"]["exit_code"] == 0
    assert count.execution["cap"] == OUTPUT_CAP
    cut = tasks[("bad", "count_lines")]
    assert cut.generation is not None and cut.generation["truncated"] is True
    assert cases[("bad", "count_lines", "three")].outcome == "truncated"

    chain = tasks[("good", "lookup_then_email")]
    assert chain.generation is not None
    turns = chain.generation["turns"]
    assert [[c["name"] for c in t["tool_calls"]] for t in turns] == [
        ["get_user"],
        ["send_email"],
        [],
    ]
    exchanges = chain.generation["exchanges"]
    assert exchanges[0]["parsed"] == {"name": "Alice"}
    assert exchanges[0]["result"]["email"] == "alice@example.com"  # the mock's answer
    assert [t["function"]["name"] for t in chain.inputs["tools"]] == ["get_user", "send_email"]
    emailed = cases[("good", "lookup_then_email", "emailed")]
    assert emailed.inputs["called"] == "send_email"
    assert emailed.inputs["args"]["subject"] == {"contains": "hello"}
    assert [c["name"] for c in emailed.got["calls"]] == ["get_user", "send_email"]


def test_record_under_xdist_is_one_run(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=good,bad", "-n", "2")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    runs = list_runs(database_path(bench_dir.path))
    assert [r.run_id for r in runs] == [rows[0]["run_id"]]
    assert runs[0].cases == 14 and runs[0].finished is not None
    tasks = _tasks(bench_dir, rows[0]["run_id"])
    assert tasks[("bad", "add")].generation["answer"].startswith("```python")  # type: ignore[index]


def test_a_second_run_is_a_second_record(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=good", "-m", "python")
    run_bench(bench_dir, server.url, "--models=bad", "-m", "python")
    runs = list_runs(database_path(bench_dir.path))
    assert [r.models for r in runs] == [["good"], ["bad"]]
    assert [r.cases for r in runs] == [3, 3]


def test_record_survives_sigterm_mid_run(bench_dir: pytest.Pytester, fake_openai: Any) -> None:
    """Cases finished before the kill are in the record, answers and inputs included."""
    release = threading.Event()

    def stuck(body: dict[str, Any]) -> Reply:
        release.wait(60)  # the tooling task never gets its answer before the kill
        return Reply("too late")

    script = by_prompt(
        {
            "def add": Reply(GOOD_CODE),
            "lines": Reply("```bash\nwc -l < data.txt\n```"),
            "weather": Reply("unused"),
        },
        default=Reply("unused"),
    )
    server = fake_openai(
        {"good": lambda body: stuck(body) if "weather" in str(body) else script(body)}
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--models=good",
               "--llmbench-backend=openai", f"--llmbench-base-url={server.url}",
               "--llmbench-jsonl=out/results.jsonl"]  # fmt: skip
    # The child is ours alone: started here, signalled by its pid, waited for.
    child = subprocess.Popen(
        command, cwd=bench_dir.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    database = database_path(bench_dir.path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count_cases(database) < 4:
            time.sleep(0.2)
        assert _count_cases(database) == 4, "the cli and python cases were not recorded"
        os.kill(child.pid, signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        release.set()
        if child.poll() is None:
            child.kill()
            child.wait()
    runs = list_runs(database)
    assert len(runs) == 1 and runs[0].cases == 4
    run = read_run(database, runs[0].run_id)
    # The cases landed while the run was stuck (the writer commits on its own), and the
    # interrupted run was closed in the record.
    assert run.finished is not None and run.exit_status == pytest.ExitCode.INTERRUPTED
    tasks = {t.task: t for t in run.tasks}
    assert set(tasks) == {"add", "count_lines"}
    assert tasks["add"].generation is not None and tasks["add"].generation["answer"] == GOOD_CODE
    assert [c.inputs["args"] for c in tasks["add"].cases] == [[1, 2], [-5, 2], [0.1, 0.2]]
    assert tasks["count_lines"].execution["run"]["stdout"]["text"] == "3\n"


def _count_cases(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM case_records").fetchone()[0])
    except sqlite3.Error:
        return 0  # the schema is being created


def test_a_collection_error_before_any_case_ran_records_nothing(
    bench_dir: pytest.Pytester,
) -> None:
    (bench_dir.path / "tasks" / "broken.yaml").write_text("suite: python\ntasks: [\n")
    result = bench_dir.runpytest("--models=reference", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # the collection error stops the run
    assert "ERROR collecting tasks/broken.yaml" in result.stdout.str()
    assert "record: run" not in result.stdout.str()
    assert not database_path(bench_dir.path).exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_run_that_selects_nothing_records_nothing(
    bench_dir: pytest.Pytester, workers: str
) -> None:
    result = bench_dir.runpytest(
        "--models=reference", "-k", "no_such_task", "-p", "no:cacheprovider", "-n", workers
    )
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "record: run" not in result.stdout.str()
    assert not database_path(bench_dir.path).exists()


def test_the_record_keeps_the_settings_the_jsonl_line_records(
    bench_dir: pytest.Pytester, server: Any
) -> None:
    run_bench(bench_dir, server.url, "--models=good", "-m", "python or tooling")
    (row,) = read_jsonl(bench_dir.path / "out/results.jsonl")
    info = read_run(database_path(bench_dir.path), row["run_id"]).info
    # One builder: the same settings, but for the model's own max_tokens on its JSONL line.
    assert {**info["settings"], "max_tokens": None} == {**row["settings"], "max_tokens": None}
    # The tier the run used (python answers ran in the sandbox), and the one it asked for.
    assert info["settings"]["isolation"] in ("full", "reduced")
    assert info["isolation_asked"] == "auto"
