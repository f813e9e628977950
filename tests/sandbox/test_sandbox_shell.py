"""run_shell semantics, on every tier."""

from __future__ import annotations

import os

import pytest

from pytest_llmbench.sandbox.hostfs import ToolNotFound
from pytest_llmbench.sandbox.identity import POOL_SIZE, UID_BASE
from pytest_llmbench.sandbox.tiers import IsolatedSandbox

TOOLS = ["cat", "awk", "sort", "wc", "mkdir", "ls", "sleep", "echo", "head", "yes"]


def sandbox_processes() -> list[int]:
    """Host pids of processes owned by any sandbox uid (no sandbox is running now)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + POOL_SIZE:
                pids.append(int(name))
    return pids


def processes_running(marker: str) -> list[int]:
    """Host pids of sandbox-uid processes whose command line contains `marker`."""
    found = []
    for pid in sandbox_processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def test_output_exit_code_and_files(sandbox: IsolatedSandbox) -> None:
    result = sandbox.run_shell(
        "sort names.txt; wc -l < dir/data.csv 1>&2; mkdir -p out/deep; "
        "awk -F, '{print $2}' dir/data.csv > out/deep/col.txt; exit 3",
        {"names.txt": "b\na\n", "dir/data.csv": "x,1\ny,2\n"},
        TOOLS,
        10,
    )
    assert (result.stdout, result.stderr.strip(), result.exit_code) == ("a\nb\n", "2", 3)
    assert not result.timed_out
    assert result.files["out/deep/col.txt"].content == b"1\n2\n"
    assert result.files["out"].kind == "dir"
    assert result.files["names.txt"].content == b"b\na\n"
    assert set(result.files) == {
        "names.txt", "dir", "dir/data.csv", "out", "out/deep", "out/deep/col.txt",
    }  # fmt: skip


def test_only_the_named_tools_are_on_path(sandbox: IsolatedSandbox) -> None:
    result = sandbox.run_shell(
        "command -v cat; command -v sed || echo no-sed; command -v python3 || echo no-python",
        {},
        ["cat"],
        10,
    )
    assert result.stdout.splitlines()[1:] == ["no-sed", "no-python"]
    assert result.stdout.splitlines()[0].endswith("/cat")


def test_python3_as_a_tool_works(sandbox: IsolatedSandbox) -> None:
    result = sandbox.run_shell(
        "python3 -c 'import json, zlib; print(json.dumps([1]))' > out.json", {}, ["python3"], 10
    )
    assert result.exit_code == 0, result.stderr
    assert result.files["out.json"].content == b"[1]\n"


def test_timeout_kills_everything(sandbox: IsolatedSandbox) -> None:
    # A distinctive argument: other xdist workers run sandboxes of their own meanwhile.
    result = sandbox.run_shell("sleep 31.4159 & sleep 31.4159", {}, ["sleep"], 0.5)
    assert result.timed_out
    assert result.exit_code is None
    assert result.seconds < 5
    assert processes_running("31.4159") == []


def test_output_is_capped(sandbox: IsolatedSandbox) -> None:
    result = sandbox.run_shell("yes | head -c 3000000", {}, ["yes", "head"], 10)
    assert result.exit_code == 0
    assert result.output_truncated
    assert 0 < len(result.stdout) <= 256 * 1024


def test_undecodable_output_is_replaced(sandbox: IsolatedSandbox) -> None:
    result = sandbox.run_shell("printf '\\377ok'", {}, [], 10)
    assert result.stdout == "\ufffdok"


def test_file_names_must_stay_inside_the_work_dir(sandbox: IsolatedSandbox) -> None:
    for name in ("../x", "/etc/x", "a/../../x", ""):
        with pytest.raises(ValueError):
            sandbox.run_shell("true", {name: "x"}, [], 10)


def test_unknown_tools_are_an_error_before_anything_runs(sandbox: IsolatedSandbox) -> None:
    with pytest.raises(ToolNotFound):
        sandbox.run_shell("true", {}, ["no-such-tool-here"], 10)
    with pytest.raises(ToolNotFound):
        sandbox.run_shell("true", {}, ["/bin/cat"], 10)
