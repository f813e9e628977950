"""Collecting task files: what the tooling suite knows (its toolbox) is checked at the file's
line, and what the parsed-task cache holds never breaks a run."""

from __future__ import annotations

import pytest
from fakes.bench import TOOLING_TASKS

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
