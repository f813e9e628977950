"""The parsed-task cache: a hit skips the parse, and nothing in the cache can break a load."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import PYTHON_TASKS, TOOLING_TASKS
from fakes.stale_cache import STALE

from pytest_llmbench.taskfiles import cache as taskcache
from pytest_llmbench.taskfiles import format as spec
from pytest_llmbench.taskfiles.format import TaskFile
from pytest_llmbench.taskfiles.loading import TaskFileError


class Parses:
    """Counts the parses load_cached does (a hit does none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = taskcache.load_task_file

        def counted(path: Path, **kwargs: Any) -> TaskFile:
            self.count += 1
            return real(path, **kwargs)

        monkeypatch.setattr(taskcache, "load_task_file", counted)


@pytest.fixture
def task_path(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.yaml"
    path.write_text(PYTHON_TASKS)
    return path


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.pickle"))


def test_the_same_bytes_are_parsed_once(
    task_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = Parses(monkeypatch)
    cache = tmp_path / "cache"
    first = taskcache.load_cached(task_path, cache)
    assert taskcache.load_cached(task_path, cache) == first
    assert parses.count == 1 and len(entries(cache)) == 1
    task_path.write_text(PYTHON_TASKS.replace("returning the sum", "that returns the sum"))
    assert taskcache.load_cached(task_path, cache) != first
    assert parses.count == 2


@pytest.mark.parametrize("kind", sorted(STALE))
def test_a_stale_entry_is_parsed_again_and_overwritten(
    kind: str, task_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    fresh = taskcache.load_cached(task_path, cache)
    (entry,) = entries(cache)
    entry.write_bytes(STALE[kind]())
    parses = Parses(monkeypatch)
    assert taskcache.load_cached(task_path, cache) == fresh
    assert parses.count == 1
    assert entries(cache) == [entry]
    assert pickle.loads(entry.read_bytes()) == fresh
    assert taskcache.load_cached(task_path, cache) == fresh
    assert parses.count == 1  # the rewritten entry serves the next load


def test_a_truncated_entry_is_parsed_again(
    task_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    fresh = taskcache.load_cached(task_path, cache)
    (entry,) = entries(cache)
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    parses = Parses(monkeypatch)
    assert taskcache.load_cached(task_path, cache) == fresh
    assert parses.count == 1 and pickle.loads(entry.read_bytes()) == fresh


def test_a_moved_layout_misses_instead_of_reading_old_entries(
    task_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    taskcache.load_cached(task_path, cache)
    before = taskcache.layout()
    moved = types.ModuleType("pytest_llmbench.taskfiles.elsewhere")
    moved.PythonTask = spec.PythonTask  # type: ignore[attr-defined]
    try:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, moved.__name__, moved)
            patch.setattr(spec.PythonTask, "__module__", moved.__name__)
            taskcache.layout.cache_clear()
            assert taskcache.layout() != before
            assert "pytest_llmbench.taskfiles.elsewhere.PythonTask" in taskcache.layout()
            parses = Parses(patch)
            taskcache.load_cached(task_path, cache)
            assert parses.count == 1  # a miss: the old entry is not even read
            assert len(entries(cache)) == 2
    finally:
        taskcache.layout.cache_clear()
    assert taskcache.layout() == before


def test_the_format_version_is_in_the_key(
    task_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    taskcache.load_cached(task_path, cache)
    try:
        monkeypatch.setattr(taskcache, "FORMAT", taskcache.FORMAT + 1)
        taskcache.layout.cache_clear()
        parses = Parses(monkeypatch)
        taskcache.load_cached(task_path, cache)
        assert parses.count == 1 and len(entries(cache)) == 2
    finally:
        monkeypatch.undo()
        taskcache.layout.cache_clear()


def test_an_unwritable_cache_never_fails_a_load(task_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = taskcache.load_cached(task_path, cache)
    (entry,) = entries(cache)
    entry.unlink()
    entry.mkdir()  # a directory where the entry goes: it can be neither read nor replaced
    assert taskcache.load_cached(task_path, cache) == fresh
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary file left behind
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert taskcache.load_cached(task_path, blocked / "cache") == fresh


def test_entries_checked_for_tool_names_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(
        TOOLING_TASKS.replace("[get_weather, get_time]", "[get_weather, get_time, warp]")
    )
    cache = tmp_path / "cache"
    assert taskcache.load_cached(path, cache).tasks[0].id == "weather"  # names unchecked
    with pytest.raises(TaskFileError, match="unknown toolbox tool 'warp'"):
        taskcache.load_cached(path, cache, builtin_tools=["get_weather", "get_time"])
