"""Time limits count the time a call runs, not the time it waits for a CPU: a busy machine
does not make a right answer time out, and a too-slow one still does."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes.busy_cpu import one_busy_cpu

from pytest_llmbench.sandbox._pychild import _CallClock
from pytest_llmbench.sandbox.base import PyCall
from pytest_llmbench.sandbox.tiers import IsolatedSandbox

# Burns exactly `cpu_s` seconds of CPU time, however long that takes on the wall clock.
BURN = """
import time

def burn(cpu_s):
    start = time.process_time()
    while time.process_time() - start < cpu_s:
        pass
    return True
"""


def test_a_right_answer_on_a_busy_cpu_does_not_time_out(sandbox: IsolatedSandbox) -> None:
    with one_busy_cpu():
        (outcome,) = sandbox.run_python(BURN, "burn", [PyCall(args=(0.4,), timeout_s=1.0)])
    assert (outcome.status, outcome.value) == ("ok", True), outcome
    # The condition the test is about: on the wall clock, the call took longer than its limit.
    assert outcome.seconds > 1.0, outcome


def test_a_too_slow_answer_on_a_busy_cpu_still_times_out(sandbox: IsolatedSandbox) -> None:
    code = BURN + "\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
    calls = [
        PyCall(call="burn(3.0)", timeout_s=1.0),
        PyCall(call="fib(40)", timeout_s=1.0),  # exponential: minutes
        PyCall(call="burn(0.1)", timeout_s=1.0),
    ]
    with one_busy_cpu():
        outcomes = sandbox.run_python(code, "burn", calls)
    assert [o.status for o in outcomes] == ["timeout", "timeout", "ok"], outcomes


@pytest.fixture
def child() -> Iterator[Callable[[str], tuple[subprocess.Popen[str], float]]]:
    """Start `python -c CODE` with its stdout piped; yields (process, start time); kills it."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str) -> tuple[subprocess.Popen[str], float]:
        forked_at = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(process)
        return process, forked_at

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_the_call_clock_counts_sleeping_as_running(child: Any) -> None:
    process, forked_at = child("import time; print('asleep', flush=True); time.sleep(60)")
    assert process.stdout.readline() == "asleep\n"
    time.sleep(0.3)  # surely asleep by now
    clock = _CallClock(process.pid, forked_at)
    before = clock.used()
    time.sleep(1.0)
    # a second asleep counts as a second: sleeping is not waiting for a CPU
    assert clock.used() - before >= 0.95


def test_the_call_clock_leaves_out_waiting_for_a_cpu(child: Any) -> None:
    with one_busy_cpu():
        process, forked_at = child("while True: pass")
        time.sleep(1.4)
        used = _CallClock(process.pid, forked_at).used()
        elapsed = time.monotonic() - forked_at
    # with seven busy processes on one CPU, the child ran for about a seventh of the time
    assert 0 < used < elapsed / 2, (used, elapsed)
