"""How a benchmark run ends: signals, why it stopped, the exit status (the gate's too), the
exit unload and its bound. The policies only; run/ending.py applies them, in order.

SIGTERM (`kill`, `timeout`, a CI cancel) and SIGHUP (a closed ssh session) end a run the way
Ctrl-C does: pytest unwinds, the results of finished cases are written, the model is
unloaded. A second signal while results are being written waits until they are; one during
the exit unload abandons the unload, which is bounded anyway: the results are already safe.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from ..results.gate import GATE_FAILED

if TYPE_CHECKING:
    from ..taskfiles.selection import Selection

# Infrastructure failed for some case (`error`), or the results could not be written: the
# run says nothing reliable about the models. pytest uses 0 to 6 (and may add the next few);
# 10 keeps clear of them, and below the shell's 126+ range.
EXIT_INFRA_ERROR = 10
# How long the exit unload may take before it is abandoned (the results are written by then):
# briefly on a run cut short (someone is waiting for the prompt), longer after a complete one.
EXIT_UNLOAD_S = 10.0
EXIT_UNLOAD_COMPLETE_S = 60.0

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class SignalGuard:
    """Turns SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt and remembers the first one.

    Handlers are installed only where nobody else installed one (a SIGHUP ignored by `nohup`
    stays ignored), only in the main thread, and restored when the run ends."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.deferred = False  # a signal came while deferring
        self._deferring = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in _SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue  # not on this platform
            current = signal.getsignal(number)
            if current in (signal.SIG_DFL, signal.default_int_handler):
                self._previous[number] = current
                signal.signal(number, self._handle)

    def restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def defer(self) -> None:
        """From now on a signal is noted, not raised: results are being written."""
        self._deferring = True

    def allow(self) -> None:
        self._deferring = False

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.received is None:
            self.received = name
        if self._deferring:
            self.deferred = True
            return
        raise KeyboardInterrupt(name)


@dataclass
class Ending:
    """How the run is ending, gathered on the process that writes the results."""

    guard: SignalGuard = field(default_factory=SignalGuard)
    selection: Selection | None = None
    interrupted: str | None = None  # why_stopped
    write_error: str | None = None  # why the results could not be written


def why_stopped(
    session: pytest.Session, exitstatus: int, guard: SignalGuard, *, cases_left: bool
) -> str | None:
    """What ended the run early, or None when it ran what was selected.

    A signal's name, `-x` / `--maxfail=N` (when it left cases unrun), `internal error`, or
    pytest's own reason (`interrupted`, a plugin's stop request)."""
    if guard.received is not None:
        return guard.received
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        return "internal error"
    maxfail = int(session.config.getoption("maxfail", 0) or 0)
    if session.shouldfail and maxfail:
        if not cases_left:
            return None  # the last case failed: nothing was cut short
        return "-x" if maxfail == 1 else f"--maxfail={maxfail}"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted"
    if session.shouldstop:
        return str(session.shouldstop)
    return None


def exit_status(
    exitstatus: int, *, stopped_by_maxfail: bool, any_error: bool, write_failed: bool
) -> int:
    """The run's exit status: 0 all selected cases passed, 1 some were wrong, EXIT_INFRA_ERROR
    when a case ended in `error` or the results could not be written, pytest's own codes for
    interruptions and usage errors. `-x` gives the same code with and without xdist (xdist
    reports its stop as an interruption)."""
    if exitstatus == pytest.ExitCode.INTERRUPTED and stopped_by_maxfail:
        exitstatus = pytest.ExitCode.TESTS_FAILED
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return exitstatus
    if any_error or write_failed:
        return EXIT_INFRA_ERROR
    return exitstatus


def gated_exit_status(
    exitstatus: int, *, gate_passed: bool, tests_failed: int, wrong_answers: int
) -> int:
    """With a gate option, the gate decides the exit status: GATE_FAILED (7) when it fails; 0
    when it passes and the only failures were the models' wrong answers. Infrastructure errors
    (EXIT_INFRA_ERROR), interruptions and failures of other tests keep their own status."""
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return exitstatus
    if not gate_passed:
        return GATE_FAILED
    return pytest.ExitCode.OK if tests_failed == wrong_answers else exitstatus


def exit_unload_bound(guard: SignalGuard, interrupted: str | None, timeout_s: float) -> float:
    """Seconds the exit unload may take: someone waiting for the prompt after a run cut short
    gets it soon; after a complete run the unload gets the request timeout, up to a minute."""
    if guard.deferred:
        return 1.0  # a signal came while the results were written: the user wants out
    if guard.received is not None or interrupted is not None:
        return EXIT_UNLOAD_S
    return min(timeout_s, EXIT_UNLOAD_COMPLETE_S)


def finish_within(work: Callable[[], None], seconds: float) -> str | None:
    """Run `work` (the exit unload) in a helper thread; wait at most `seconds`.

    Returns None when it finished, else why it was left behind (it goes on in the background
    until the process exits, which a stuck server cannot delay)."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported below; a daemon thread has nobody else to tell
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="llmbench-exit-unload", daemon=True).start()
    try:
        finished = done.wait(seconds)
    except KeyboardInterrupt:
        return "interrupted"
    if not finished:
        return f"still going after {seconds:g}s"
    if failure:
        return f"{type(failure[0]).__name__}: {failure[0]}"
    return None


def warn(text: str) -> None:
    """One line on stderr, for the exit path where the terminal reporter may be gone."""
    with contextlib.suppress(OSError, ValueError):  # a closed terminal has nobody to tell
        print(f"llmbench: {text}", file=sys.stderr, flush=True)


def lighten_exit() -> None:
    """Spare the interpreter's exit a garbage collection of everything a benchmark run loaded.

    At exit the interpreter empties its modules and collects them as garbage: with the `openai`
    client's types loaded, that takes about 0.15 s after the results are out. At exit (an
    atexit handler, so that a pytest run inside another process, as under pytester, changes
    nothing for it), the garbage that exists is collected, its finalizers run as they would
    have, and the objects still alive are frozen: the exit's collection skips them, as it would
    if the process ended outright. The process's end frees them.
    """
    global _EXIT_LIGHTENED
    if not _EXIT_LIGHTENED:
        import atexit
        import gc

        def collect_then_freeze() -> None:
            gc.collect()
            gc.freeze()

        atexit.register(collect_then_freeze)
        _EXIT_LIGHTENED = True


_EXIT_LIGHTENED = False
