"""End-to-end: workers on "other machines" (execnet socket servers in copies of the project),
with the controller owning every result.

Each node is execnet's socket server started in its own directory holding a copy of a small
project; `--tx socket=...//chdir=DIR` runs an xdist worker there, as `--tx ssh=...` would on
another machine.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import add_task_number, add_tasks, case_outcomes, read_jsonl
from fakes.openai_server import FakeOpenAI, Reply
from fakes.socket_nodes import SocketNode, snapshot

TASKS = add_tasks(6)


def answer(body: dict[str, Any]) -> Reply:
    n = add_task_number(body)
    op = "+" if n % 2 == 0 else "-"  # odd tasks wrong: the verdicts are not all alike
    return Reply(f"```python\ndef add{n}(a, b):\n    return a + b {op} {n}\n```")


def make_project(directory: Path, tasks: str = TASKS) -> Path:
    (directory / "tasks" / "python").mkdir(parents=True)
    (directory / "tasks" / "python" / "many.yaml").write_text(tasks)
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    a, b = FakeOpenAI({"a": answer}).start(), FakeOpenAI({"b": answer}).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def bench_args(servers: tuple[FakeOpenAI, FakeOpenAI]) -> list[str]:
    a, b = servers
    return [
        "-p", "no:cacheprovider", "--llmbench-backend=openai", "--models=a,b",
        f"--llmbench-endpoint=a={a.url}", f"--llmbench-endpoint=b={b.url}",
    ]  # fmt: skip


class Ran:
    """A pytest run in a directory of its own (the controller's), as a user types it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        self.ret = done.returncode
        self.out = done.stdout
        self.errlines = done.stderr.splitlines()

    def __repr__(self) -> str:
        return f"exit {self.ret}\n{self.out[-4000:]}\n" + "\n".join(self.errlines[-20:])


def chats(servers: tuple[FakeOpenAI, FakeOpenAI]) -> int:
    return sum(len(server.chat_requests()) for server in servers)


def recorded_cases(root: Path, run_id: str) -> list[tuple[str, str, str, str | None, str | None]]:
    """(model, case, outcome, the answer's store key, the answer's text) of each case the
    controller's record holds for the run."""
    with sqlite3.connect(root / ".llmbench" / "store.sqlite3") as conn:
        rows = conn.execute(
            "SELECT c.model, c.task_ref || '/' || c.case_id, c.outcome, t.answer_key, "
            "json_extract(a.generation, '$.completions[0].content') "
            "FROM case_records c JOIN task_records t USING (run_id, model, task_ref) "
            "LEFT JOIN answers a ON a.key = t.answer_key WHERE c.run_id = ?",
            (run_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_socket_nodes_run_one_benchmark_the_controller_keeps_and_resumes(
    servers: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path
) -> None:
    local = make_project(tmp_path / "local")
    controller = make_project(tmp_path / "controller")
    copies = [make_project(tmp_path / f"node{i}") for i in (1, 2)]
    before = [snapshot(copy) for copy in copies]
    # The reference: the same benchmark under a local -n 2.
    reference = Ran(local, *bench_args(servers), "-n", "2", "--llmbench-cache=off")
    assert reference.ret == 1, reference
    asked_locally = chats(servers)
    assert asked_locally == 12

    nodes = [SocketNode(copy) for copy in copies]
    try:
        # The defaulted roots, then a path named: each reaches the nodes as the project's.
        runs = [
            Ran(controller, *bench_args(servers), "-d", *(node.tx for node in nodes), *args)
            for args in ([], ["tasks/python"])
        ]
    finally:
        for node in nodes:
            node.stop()
    for result in runs:
        assert result.ret == 1, result
        assert "12 failed, 12 passed" in result.out, result
    # Each answer was generated once, by the first run; the second asked nothing.
    assert chats(servers) == asked_locally + 12

    rows = read_jsonl(controller / ".llmbench" / "results.jsonl")
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    assert len(by_run) == 2
    local_outcomes = case_outcomes(read_jsonl(local / ".llmbench" / "results.jsonl"))
    for run_rows in by_run.values():
        assert case_outcomes(run_rows) == local_outcomes
    first_id, second_id = by_run
    stored = [task["from_store"] for row in by_run[second_id] for task in row["results"]]
    assert stored and all(stored), "the second run took every answer from the store"

    for run_id in (first_id, second_id):
        cases = recorded_cases(controller, run_id)
        assert len(cases) == 24
        assert all(key is not None and text and "def add" in text for *_, key, text in cases)
    assert {(m, c, o) for m, c, o, *_ in recorded_cases(controller, first_id)} == {
        (m, c, o) for m, c, o, *_ in recorded_cases(controller, second_id)
    }
    # Nothing was written under the nodes' projects: no store, no cache, no copy of pytest.
    assert [snapshot(copy) for copy in copies] == before


@pytest.mark.parametrize("differs", ["version", "task file"])
def test_a_node_that_differs_is_refused_with_one_line_before_any_model_is_asked(
    servers: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path, differs: str
) -> None:
    controller = make_project(tmp_path / "controller")
    same = make_project(tmp_path / "same")
    other = make_project(tmp_path / "other", add_tasks(5) if differs == "task file" else TASKS)
    older = tmp_path / "older" / "pytest_llmbench"
    older.mkdir(parents=True)
    (older / "__init__.py").write_text('__version__ = "0.0.0-other"\n')
    nodes = [
        SocketNode(same),
        SocketNode(other, other_plugin=older.parent if differs == "version" else None),
    ]
    try:
        result = Ran(controller, *bench_args(servers), "-d", *(node.tx for node in nodes))
    finally:
        for node in nodes:
            node.stop()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result
    lines = [line for line in result.errlines if line.startswith("Exit: llmbench: node")]
    assert len(lines) == 1, result
    (line,) = lines
    assert f"chdir={other}" in line
    if differs == "version":
        assert "runs pytest-llmbench 0.0.0-other, this machine" in line
    else:
        assert "task file tasks/python/many.yaml differs there" in line
    assert chats(servers) == 0
    assert not (other / ".llmbench").exists()


def test_a_node_without_the_task_files_is_told_which_is_missing(
    servers: tuple[FakeOpenAI, FakeOpenAI], tmp_path: Path
) -> None:
    controller = make_project(tmp_path / "controller")
    empty = tmp_path / "empty"
    empty.mkdir()
    node = SocketNode(empty)
    try:
        result = Ran(controller, *bench_args(servers), "-d", node.tx)
    finally:
        node.stop()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result
    (line,) = [line for line in result.errlines if line.startswith("Exit: llmbench: node gw0")]
    assert "task file tasks/python/many.yaml is missing there" in line
    assert line.endswith("(--tx ...//chdir=PATH)")
    assert chats(servers) == 0
    assert list(empty.iterdir()) == []
