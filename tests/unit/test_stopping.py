"""How a run ends: signal handling, the exit status scheme, the bounded exit unload."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmbench.results.gate import GATE_FAILED
from pytest_llmbench.run.stopping import (
    EXIT_INFRA_ERROR,
    EXIT_UNLOAD_COMPLETE_S,
    EXIT_UNLOAD_S,
    SignalGuard,
    exit_status,
    exit_unload_bound,
    finish_within,
    gated_exit_status,
)


@pytest.fixture
def guard() -> Iterator[SignalGuard]:
    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    guard = SignalGuard()
    try:
        yield guard
    finally:
        guard.restore()
        for number, handler in saved.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_become_keyboard_interrupts_and_the_first_is_remembered(
    guard: SignalGuard, sig: signal.Signals
) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    guard.install()
    with pytest.raises(KeyboardInterrupt, match=sig.name):
        os.kill(os.getpid(), sig)
        threading.Event().wait(5)  # the handler runs at the next bytecode
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(5)
    assert guard.received == sig.name


def test_while_deferring_a_signal_is_noted_not_raised(guard: SignalGuard) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    guard.install()
    guard.defer()
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Event().wait(0.2)
    assert guard.received == "SIGTERM" and guard.deferred
    guard.allow()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(5)


def test_handlers_someone_else_installed_are_left_alone(guard: SignalGuard) -> None:
    def mine(number: int, frame: Any) -> None:
        return None

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    signal.signal(signal.SIGTERM, mine)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    guard.install()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is mine
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    guard.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("pytest_status", "maxfail", "error", "write_failed", "expected"),
    [(0, False, False, False, 0),
     (1, False, False, False, 1),  # wrong answers
     (1, False, True, False, EXIT_INFRA_ERROR),  # an `error` case, with or without wrong ones
     (0, False, False, True, EXIT_INFRA_ERROR),  # the results could not be written
     (2, True, False, False, 1),  # -x under xdist, reported there as an interruption
     (2, True, True, False, EXIT_INFRA_ERROR),
     (2, False, True, False, 2),  # interrupted: pytest's code, whatever ran
     (3, False, True, False, 3),  # internal error
     (4, False, False, False, 4),  # usage error
     (5, False, False, False, 5)],  # nothing collected
)  # fmt: skip
def test_the_exit_status_scheme(
    pytest_status: int, maxfail: bool, error: bool, write_failed: bool, expected: int
) -> None:
    status = exit_status(
        pytest_status, stopped_by_maxfail=maxfail, any_error=error, write_failed=write_failed
    )
    assert status == expected


@pytest.mark.parametrize(
    ("pytest_status", "passed", "failed", "wrong", "expected"),
    [(0, True, 0, 0, 0),
     (1, True, 2, 2, 0),  # only the models' wrong answers: the gate passed
     (1, True, 3, 2, 1),  # a test that is not a benchmark case failed too
     (0, False, 0, 0, GATE_FAILED),
     (1, False, 2, 2, GATE_FAILED),
     (EXIT_INFRA_ERROR, True, 1, 0, EXIT_INFRA_ERROR),  # whatever the gate says
     (EXIT_INFRA_ERROR, False, 1, 0, EXIT_INFRA_ERROR),
     (2, False, 0, 0, 2)],  # interrupted
)  # fmt: skip
def test_the_gate_decides_only_between_pass_and_wrong_answers(
    pytest_status: int, passed: bool, failed: int, wrong: int, expected: int
) -> None:
    status = gated_exit_status(
        pytest_status, gate_passed=passed, tests_failed=failed, wrong_answers=wrong
    )
    assert status == expected


def test_the_exit_unload_is_brief_after_a_run_cut_short() -> None:
    guard = SignalGuard()
    assert exit_unload_bound(guard, None, 600.0) == EXIT_UNLOAD_COMPLETE_S
    assert exit_unload_bound(guard, None, 5.0) == 5.0  # never more than a request may take
    assert exit_unload_bound(guard, "-x", 600.0) == EXIT_UNLOAD_S
    guard.received = "SIGTERM"
    assert exit_unload_bound(guard, None, 600.0) == EXIT_UNLOAD_S
    guard.deferred = True  # a signal while the results were written: the user wants out
    assert exit_unload_bound(guard, "SIGTERM", 600.0) == 1.0


def test_the_infrastructure_code_is_not_one_of_pytests() -> None:
    assert EXIT_INFRA_ERROR not in {int(code) for code in pytest.ExitCode}


def test_finish_within_reports_work_left_behind() -> None:
    release = threading.Event()
    assert finish_within(lambda: None, 1.0) is None
    assert finish_within(lambda: release.wait(10) and None, 0.1) == "still going after 0.1s"
    release.set()

    def fails() -> None:
        raise ConnectionError("gone")

    assert finish_within(fails, 1.0) == "ConnectionError: gone"


def test_a_closed_scoring_pool_takes_no_new_work() -> None:
    # A generation that finishes after the run stopped must not start a sandbox run that the
    # exiting process would leave behind.
    from pytest_llmbench.run.scheduler import _Pool

    pool = _Pool(1, "test-pool")
    pool.close()
    pool.submit(lambda: None)
    assert not pool._queue
