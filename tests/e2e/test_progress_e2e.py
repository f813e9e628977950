"""What the terminal shows while a benchmark runs: status letters (words under -v), a line
before each model (backend, URL, loading, then load time), and progress lines; the same from
xdist workers, and redrawn in place when the output is a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from typing import Any

import pytest
from fakes.bench import bad_script, good_script
from fakes.openai_server import Reply, by_prompt

SPIN_TASKS = """\
suite: python
tasks:
  - id: spin
    prompt: Write `def spin()` returning 1.
    entry_point: spin
    timeout_s: 1
    reference: |
      def spin():
          return 1
    cases:
      - {id: once, expect: 1}
"""
LOOP = "```python\ndef spin():\n    while True:\n        pass\n```"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture
def bench(bench_dir: pytest.Pytester) -> pytest.Pytester:
    (bench_dir.path / "tasks/python/spin.yaml").write_text(SPIN_TASKS)
    return bench_dir


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai(
        {
            "good": good_script(),
            "bad": bad_script(),
            "looper": by_prompt({"def spin": Reply(LOOP)}),
            "flaky": lambda body: Reply(status=500),
        }
    )


def run(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={url}", "-p", "no:cacheprovider",
        "--llmbench-jsonl=out/results.jsonl", "--tb=no", *args,
    )  # fmt: skip


def letters_of(lines: list[str], prefix: str) -> str:
    """The letters pytest printed after a file's path."""
    return "".join(line[len(prefix) :].split(" ")[0] for line in lines if line.startswith(prefix))


def test_status_letters_per_outcome(bench: pytest.Pytester, server: Any) -> None:
    result = run(bench, server.url, "--models=good,bad,looper,flaky", "tasks/python", "tasks/cli")
    lines = result.stdout.lines
    python = letters_of(lines, "tasks/python/small_python.yaml ")
    spin = letters_of(lines, "tasks/python/spin.yaml ")
    cli = letters_of(lines, "tasks/cli/small_cli.yaml ")
    # models in order: good, bad, looper, flaky
    assert python == "..." + "FFF" + "nnn" + "EEE"
    assert spin == "n" + "n" + "T" + "E"
    assert cli == "." + "t" + "n" + "E"
    # pytest's own counting is unchanged: errors are errors, the rest failed or passed
    result.assert_outcomes(passed=4, failed=11, errors=5)


def test_words_under_verbose(bench: pytest.Pytester, server: Any) -> None:
    result = run(bench, server.url, "--models=bad,looper", "-v", "tasks/python", "tasks/cli")
    words = {
        line.split("::", 1)[1].split(" ")[0].split("/", 1)[1]: line.split(" ")[1]
        for line in result.stdout.lines
        if line.startswith("tasks/") and "::" in line and len(line.split(" ")) > 1
    }
    assert words["small[bad]"] == "FAILED"
    assert words["three[bad]"] == "TRUNCATED"
    assert words["once[bad]"] == "NO"  # "NO ANSWER"
    assert words["once[looper]"] == "TIMEOUT"
    assert "NO ANSWER" in result.stdout.str()


def test_model_lines_and_plain_progress(bench: pytest.Pytester, server: Any) -> None:
    result = run(bench, server.url, "--models=good,bad")
    lines = result.stdout.lines
    text = "\n".join(lines)
    # The first model starts loading when collection ends: its line follows pytest's count.
    collected = next(i for i, line in enumerate(lines) if line.startswith("collected "))
    assert lines[collected + 1] == f"llmbench good: openai at {server.url}, loading..."
    for model in ("good", "bad"):
        loading = f"llmbench {model}: openai at {server.url}, loading..."
        assert loading in lines
        loaded = next(
            i for i, line in enumerate(lines) if line.startswith(f"llmbench {model}: loaded in")
        )
        assert lines.index(loading) < loaded
    # Not a terminal: plain progress lines, tasks done of selected, and a line when done.
    progress = r"llmbench progress: good (\d)/5 tasks, (\d)/(\d) cases passed, \d+ tok/s, ETA \S+"
    assert [int(m[0]) for m in re.findall(progress, text)] == [1, 2, 3, 4]  # tenths of 5 tasks
    assert re.search(r"llmbench good 5/5 tasks, 7/8 cases passed, \d+ tok/s, done in \S+", text)
    assert re.search(r"llmbench bad 5/5 tasks, 0/8 cases passed, \d+ tok/s, done in \S+", text)
    # The loading line of a model comes after the previous model finished.
    assert text.index("llmbench good 5/5 tasks") < text.index("llmbench bad: openai at")
    assert "\x1b[" not in text  # no cursor movement in a log


def test_progress_from_xdist_workers(bench: pytest.Pytester, server: Any) -> None:
    result = run(bench, server.url, "--models=good,bad", "-n", "2")
    text = result.stdout.str()
    for model in ("good", "bad"):
        assert f"llmbench {model}: openai at {server.url}, loading..." in text
        assert re.search(rf"llmbench {model}: loaded in \d+\.\ds", text)
    assert re.search(r"llmbench progress: .*good \d/5 tasks", text)
    assert re.search(r"llmbench good 5/5 tasks, 7/8 cases passed, \d+ tok/s, done in", text)
    assert re.search(r"llmbench bad 5/5 tasks, 0/8 cases passed, \d+ tok/s, done in", text)
    letters = "".join(line for line in result.stdout.lines if re.fullmatch(r"[.FtnTE]+", line))
    # good: 7 passed, spin has no answer; bad: add FFF, spin n, count_lines t, tooling nnF
    assert sorted(letters) == sorted("......." + "n" + "FFF" + "n" + "t" + "nnF")


def test_status_line_is_redrawn_in_place_on_a_terminal(bench: pytest.Pytester, server: Any) -> None:
    output = _run_in_terminal(
        bench,
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=no", "--models=good",
         "--llmbench-backend=openai", f"--llmbench-base-url={server.url}",
         "--llmbench-jsonl=out/results.jsonl"],
    )  # fmt: skip
    # The status goes on the line below the letters and the cursor comes back up...
    assert re.search(r"\n\x1b\[2Kllmbench good \d/5 tasks, \d/\d cases passed, .*ETA", output)
    assert "\x1b[1A" in output and "\x1b[1B\r\x1b[2K" in output  # ...and is erased again
    assert "llmbench progress:" not in output  # no plain lines on a terminal
    plain = ANSI.sub("", output)
    assert "llmbench good: openai at" in plain and "llmbench good 5/5 tasks" in plain
    assert "llmbench results" in plain


def _run_in_terminal(bench: pytest.Pytester, command: list[str]) -> str:
    """Run `command` with a pseudo-terminal (100 columns) as its output; return what it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    child = subprocess.Popen(
        command, cwd=bench.path, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=120)
    os.close(master)
    return b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
