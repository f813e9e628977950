"""Collecting task files: what the tooling suite knows (its toolbox) is checked at the file's
line, and what the parsed-task cache holds never breaks a run."""

from __future__ import annotations

import pickle

import pytest
from fakes.bench import PYTHON_TASKS, TOOLING_TASKS
from fakes.stale_cache import STALE

from pytest_llmbench.taskfiles.format import TaskFile

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")


def collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--models=reference", "tasks", "--collect-only", "-q", *args, *QUIET)


def test_a_tool_outside_the_toolbox_fails_collection_at_its_line(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "tasks").mkdir()
    text = TOOLING_TASKS.replace("tools: [get_weather, get_time]", "tools: [get_weather, warp]")
    (pytester.path / "tasks" / "tools.yaml").write_text(text)
    for cache in ("use", "off"):
        result = collect(pytester, f"--llmbench-cache={cache}")
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
        where = "*tools.yaml:5: task 'weather': field 'tools'"
        result.stdout.fnmatch_lines([f"{where}: unknown toolbox tool 'warp' (built-in: *"])


@pytest.mark.parametrize("kind", ["moved module", "moved class", "garbage"])
def test_a_stale_task_cache_is_rebuilt_and_collection_goes_on(
    pytester: pytest.Pytester, kind: str
) -> None:
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "python.yaml").write_text(PYTHON_TASKS)
    (pytester.path / "tasks" / "tools.yaml").write_text(TOOLING_TASKS)
    first = collect(pytester)
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    cache = pytester.path / ".llmbench" / "cache" / "tasks"
    written = sorted(cache.glob("*.pickle"))
    assert len(written) == 2
    for entry in written:
        entry.write_bytes(STALE[kind]())  # left by an older layout of the package
    again = collect(pytester)
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    items = [line for line in first.stdout.lines if "::" in line]
    assert len(items) == 6
    assert [line for line in again.stdout.lines if "::" in line] == items
    assert sorted(cache.glob("*.pickle")) == written
    for entry in written:
        assert isinstance(pickle.loads(entry.read_bytes()), TaskFile)
