"""The shared SQLite opener and the thread-safe parse: each retries the one transient failure it
is there for, and nothing else."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.storage import database
from pytest_llmbench.suites import safe_ast


def test_a_parse_racing_another_thread_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ast.parse
    calls: list[str] = []

    def racing(source: str, mode: str = "exec") -> Any:
        calls.append(mode)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=51, after=62)")
        return real(source, mode=mode)

    monkeypatch.setattr(safe_ast.ast, "parse", racing)
    assert isinstance(safe_ast.parse_expression("1 + 2").body, ast.BinOp)
    assert calls == ["eval", "eval"]


def test_other_system_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(source: str, mode: str = "exec") -> Any:
        raise SystemError("something else")

    monkeypatch.setattr(safe_ast.ast, "parse", broken)
    with pytest.raises(SystemError, match="something else"):
        safe_ast.parse_module("x = 1")


def test_a_locked_database_at_set_up_is_opened_on_a_later_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sqlite3.connect
    attempts: list[int] = []

    class Locked:
        """A first connection whose set-up meets another process's lock."""

        def execute(self, sql: str) -> None:
            raise sqlite3.OperationalError("database is locked")

        def close(self) -> None:
            pass

    def connect(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        return Locked() if len(attempts) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(database.sqlite3, "connect", connect)
    conn = database.open_database(tmp_path / "db" / "store.sqlite3", "CREATE TABLE t (x INTEGER)")
    assert len(attempts) == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("INSERT INTO t VALUES (1)")


def test_other_database_errors_are_not_retried(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        database.open_database(tmp_path / "store.sqlite3", "NOT SQL")
