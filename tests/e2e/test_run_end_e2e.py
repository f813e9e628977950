"""End-to-end: however a run ends, the finished results are written first, say how the run
ended, and the model is unloaded after them, within a bound. Signals go to a real pytest
process that each test starts itself, by its pid."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import GOOD_CODE, read_jsonl
from fakes.chat_stream import Answer, tokens
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.signals import default_signals

from pytest_llmbench.run.stopping import EXIT_UNLOAD_S
from pytest_llmbench.storage.database import database_path
from pytest_llmbench.storage.record_reader import list_runs


def alpha_server(serve: Any, **knobs: Any) -> LMStudioFake:
    """An LM Studio fake serving the one model `alpha`, its answers from `answer_for`."""
    fake: LMStudioFake = serve(
        LMStudioFake(models=[Model("alpha")], answers={"alpha": answer_for}, **knobs)
    )
    return fake


def answer_for(body: dict[str, Any]) -> Answer:
    prompt = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
    if "def add" in prompt:
        return Answer(content=tokens(GOOD_CODE))
    if "data.txt" in prompt:
        return Answer(content=tokens("```bash\nwc -l < data.txt\n```"))
    if "Alice" in prompt:  # the last task: long enough to be cut short by the signal
        return Answer(content=tokens("I would rather not. " * 150))
    return Answer(content=tokens("No tools needed."))


class Pytest:
    """A pytest process of our own, its output read as it comes."""

    def __init__(self, cwd: Path, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            # Four in flight: every task's answer is on its way while the first items report,
            # so a signal always finds generation going on (one at a time, the run can end
            # before the signal lands).
            [sys.executable, "-m", "pytest", f"--llmbench-base-url={url}", "--models=alpha",
             "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider", "--llmbench-concurrency=4",
             *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=0,
            preexec_fn=default_signals,
        )  # fmt: skip
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while char := self.proc.stdout.read(1):
            self.output.append(char)

    def results_shown(self) -> int:
        """How many items pytest has reported so far (its progress characters)."""
        text = "".join(self.output)
        shown = 0
        for line in text.splitlines():
            progress = re.fullmatch(r"(?:\S+\.yaml )?([.FEsx]+)(?:\s+\[ *\d+%\])?", line.strip())
            if progress and not line.startswith(("platform", "rootdir", "plugins")):
                shown += len(progress.group(1))
        return shown

    def finish(self, timeout_s: float = 120.0) -> str:
        self.proc.wait(timeout_s)
        self._reader.join(10)
        return "".join(self.output)


def interrupt_mid_run(
    bench: pytest.Pytester, fake: LMStudioFake, sig: signal.Signals, *args: str
) -> tuple[int, str]:
    """Start a run, wait for its first four items (cli and python) and the last task's
    generation, send `sig` to the pytest process, and return its status and output."""
    run = Pytest(bench.path, fake.url, *args)
    wait_for(lambda: run.results_shown() >= 4 and chats(fake) >= 4, "the last task")
    run.proc.send_signal(sig)
    output = run.finish()
    return run.proc.returncode, output


def wait_for(condition: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def chats(fake: LMStudioFake) -> int:
    return sum(r.path.endswith("/chat/completions") for r in fake.requests)


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_writes_finished_results_then_unloads(
    bench_dir: pytest.Pytester, serve: Any, sig: signal.Signals, workers: str
) -> None:
    jsonl = bench_dir.path / "out.jsonl"
    written_before_unload: list[bool] = []
    fake = alpha_server(
        serve, chunk_delay_s=0.05, on_unload=lambda: written_before_unload.append(jsonl.exists())
    )
    status, output = interrupt_mid_run(bench_dir, fake, sig, "-n", workers)
    assert status == pytest.ExitCode.INTERRUPTED, output
    assert fake.instances == [], f"still loaded: {fake.instances}\n{output}"
    assert written_before_unload == [True], output
    (row,) = read_jsonl(jsonl)
    assert row["interrupted"] == sig.name
    finished = {t["task"]: t for t in row["results"]}
    assert finished["add"]["passed"] == 3 and finished["count_lines"]["passed"] == 1, (
        {task: entry["outcomes"] for task, entry in finished.items()},
        output,
    )
    # a partial run says what it set out to do: 7 cases selected, fewer ran
    assert row["selection"]["selected"] == row["declared_total"] == 7
    assert row["selection"]["ran"] == row["total"] < 7
    assert f"PARTIAL RUN: ended by {sig.name}" in output


def test_a_hung_unload_at_exit_is_abandoned_after_a_bound(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = alpha_server(serve, chunk_delay_s=0.05, unload_delay_s=EXIT_UNLOAD_S + 30)
    status, output = interrupt_mid_run(bench_dir, fake, signal.SIGTERM)
    assert status == pytest.ExitCode.INTERRUPTED, output
    # the process left while the server was still busy with the unload
    assert fake.instances, "the unload was not abandoned"
    assert f"its unload was still going after {EXIT_UNLOAD_S:g}s" in output
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert row["interrupted"] == "SIGTERM"


def test_a_second_interrupt_during_the_exit_unload_loses_nothing(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = alpha_server(serve, chunk_delay_s=0.05, unload_delay_s=EXIT_UNLOAD_S + 30)
    run = Pytest(bench_dir.path, fake.url)
    wait_for(lambda: run.results_shown() >= 4 and chats(fake) >= 4, "the last task")
    run.proc.send_signal(signal.SIGINT)
    wait_for(lambda: any(r.path.endswith("/unload") for r in fake.requests), "the unload")
    run.proc.send_signal(signal.SIGINT)
    output = run.finish()
    assert run.proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "its unload was interrupted" in output
    assert "Traceback" not in output
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert row["interrupted"] == "SIGINT"
    assert {t["task"] for t in row["results"]} >= {"add", "count_lines"}


def test_a_complete_run_writes_before_it_unloads(bench_dir: pytest.Pytester, serve: Any) -> None:
    jsonl, table, page = (bench_dir.path / name for name in ("out.jsonl", "table.md", "r.html"))

    def written() -> dict[str, bool]:
        runs = list_runs(database_path(bench_dir.path))
        return {"jsonl": jsonl.exists(), "markdown": table.exists(), "html": page.exists(),
                "record": len(runs) == 1 and runs[0].finished is not None}  # fmt: skip

    written_before_unload: list[dict[str, bool]] = []
    fake = alpha_server(serve, on_unload=lambda: written_before_unload.append(written()))
    result = bench_dir.runpytest(
        f"--llmbench-base-url={fake.url}", "--models=alpha", "--llmbench-jsonl=out.jsonl",
        "--llmbench-markdown=table.md", "--llmbench-html=r.html",
        "-p", "no:cacheprovider", "-m", "python",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    everything = {"jsonl": True, "markdown": True, "html": True, "record": True}
    assert written_before_unload == [everything] and fake.instances == []
    (row,) = read_jsonl(jsonl)
    assert row["interrupted"] is None
    # The table, then where the record and the page are, both before pytest's last line.
    lines = result.stdout.lines
    table_at = lines.index(next(line for line in lines if "llmbench results" in line))
    record_at = lines.index(next(line for line in lines if line.startswith("record: run")))
    assert table_at < record_at < len(lines) - 1 and "HTML report: r.html" in lines[record_at]


# The process signals itself at the start of the run's end, after the last item: exactly when
# a Ctrl-C that comes "just as the run finishes" lands.
SIGNAL_AT_THE_END = """
import os, signal
from pytest_llmbench.run import scheduler

_close = scheduler.Scheduler.close

def close(self):
    os.kill(os.getpid(), signal.SIGINT)
    _close(self)

scheduler.Scheduler.close = close
"""


def test_a_signal_just_after_the_last_item_still_writes_every_result(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = alpha_server(serve)
    bench_dir.makeconftest(SIGNAL_AT_THE_END)
    run = Pytest(bench_dir.path, fake.url)
    output = run.finish()
    assert run.proc.returncode == pytest.ExitCode.INTERRUPTED, output
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert row["interrupted"] == "SIGINT"
    assert row["total"] == row["selection"]["ran"] == 7  # every case ran and was written
    assert fake.instances == [], output
