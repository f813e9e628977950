"""Running model-written Python against a task's calls, harness side.

One sandbox session loads the code once and serves calls in order (see `_pychild.py`). A call
that hangs past its deadline, kills the fork-server or breaks the frame protocol ends the
session; it alone gets the bad outcome and a fresh session serves the calls after it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import hostfs
from ._pychild import WALL_FACTOR
from .base import PyCall, PyOutcome, SandboxError
from .codec import MAX_DEPTH, MAX_NODES, MAX_RESULT_BYTES, encode_input
from .frames import (
    CALL_KINDS,
    K_HELLO,
    K_LOAD_ERROR,
    K_LOADED,
    Frame,
    FrameReader,
    ProtocolError,
    call_outcome,
)
from .identity import claim_uid
from .launch import Job, Launcher, Running
from .limits import PYTHON_LIMITS, Limits
from .pump import CappedBuffer, Watcher
from .workdir import work_dir

CHILD_SOURCE = Path(__file__).with_name("_pychild.py").read_text(encoding="utf-8")
# Debian's interpreter in isolated mode; with `site`, so the model's code sees the usual
# builtins (`exit`, `quit`, ...).
PYTHON_ARGV = (hostfs.PYTHON, "-I", "-c", CHILD_SOURCE)
STDERR_KEEP = 16 * 1024
OUTPUT_FLOOD = 64 << 20


@dataclass
class _Session:
    """What one sandbox session produced for calls[start:]."""

    outcomes: list[PyOutcome]
    final: PyOutcome | None = None  # applies to every remaining call (load failed / timed out)


@dataclass(frozen=True)
class PythonRunner:
    launcher: Launcher
    limits: Limits = PYTHON_LIMITS
    load_timeout_s: float = 10.0
    startup_s: float = 5.0  # allowance for starting the sandbox on a loaded machine
    grace_s: float = 1.0  # the fork-server times calls out itself; this is the backstop

    def run(self, code: str, entry_point: str, calls: Sequence[PyCall]) -> list[PyOutcome]:
        payloads = [_call_payload(index, call) for index, call in enumerate(calls)]
        outcomes: list[PyOutcome] = []
        while len(outcomes) < len(calls):
            session = self._session(code, entry_point, calls, payloads, len(outcomes))
            outcomes += session.outcomes
            if session.final is not None:
                outcomes += [session.final] * (len(calls) - len(outcomes))
        return outcomes

    def _session(
        self,
        code: str,
        entry_point: str,
        calls: Sequence[PyCall],
        payloads: Sequence[tuple[object, ...]],
        start: int,
    ) -> _Session:
        spec = {
            "code": code,
            "entry": entry_point,
            "calls": list(payloads[start:]),
            "kill_all": False,
            "limits": {
                "max_depth": MAX_DEPTH,
                "max_nodes": MAX_NODES,
                "max_result": MAX_RESULT_BYTES,
            },
        }
        longest = max(call.timeout_s for call in calls[start:])
        limits = self.limits.with_cpu_for(self.load_timeout_s + longest)
        with claim_uid() as uid, work_dir(limits, uid) as workdir:
            # kill(-1) in the fork-server is safe only where it cannot reach the harness's
            # own processes: inside a PID namespace or as an exclusive uid.
            spec["kill_all"] = self.launcher.confines_kill_all(uid)
            result_read, result_write = os.pipe()
            input_fd = os.memfd_create("llmbench-input", os.MFD_CLOEXEC)
            try:
                os.write(input_fd, encode_input(spec))
                job = Job(
                    argv=(*PYTHON_ARGV, str(result_write), str(input_fd)),
                    workdir=workdir,
                    limits=limits,
                    host_paths=hostfs.python_paths(),
                    pass_fds=(result_write, input_fd),
                )
                running = self.launcher.start(job, uid)
            except BaseException:
                os.close(result_read)
                raise
            finally:
                os.close(result_write)
                os.close(input_fd)
            try:
                return self._serve(running, result_read, calls, start)
            finally:
                os.close(result_read)

    def _serve(
        self, running: Running, result_read: int, calls: Sequence[PyCall], start: int
    ) -> _Session:
        watcher = Watcher(running.pid, [running.stdout, running.stderr, result_read])
        tracker = _Tracker(self, calls, start)
        stdout = CappedBuffer(STDERR_KEEP, OUTPUT_FLOOD)
        stderr = CappedBuffer(STDERR_KEEP, OUTPUT_FLOOD)
        reader = FrameReader()

        def take(chunks: list[tuple[int, bytes]]) -> None:
            for fd, data in chunks:
                if fd == result_read:
                    tracker.handle(reader.feed(data))
                elif fd == running.stdout:
                    stdout.feed(data)
                else:
                    stderr.feed(data)

        try:
            while tracker.problem is None and not tracker.finished:
                remaining = tracker.deadline - time.monotonic()
                if remaining <= 0:
                    tracker.timed_out()
                    break
                try:
                    take(watcher.poll(remaining))
                except ProtocolError as exc:
                    tracker.violation(str(exc))
                    break
                if stdout.flooded or stderr.flooded:
                    tracker.died("the code flooded its output", "")
                    break
                if watcher.exited:
                    # Frames the fork-server sent just before it exited are still in the pipe.
                    try:
                        take(watcher.drain())
                    except ProtocolError as exc:
                        tracker.violation(str(exc))
                    if not tracker.finished and tracker.problem is None:
                        status = running.wait()
                        tracker.died(f"the interpreter exited (status {status})", stderr.tail())
                    break
        finally:
            running.kill()
            take_quietly = watcher.drain()
            watcher.close()
            running.close()
        if not tracker.started:
            for fd, data in take_quietly:
                if fd == running.stderr:
                    stderr.feed(data)
            raise SandboxError(f"the python sandbox did not start: {stderr.tail().strip()}")
        return tracker.session()


def _call_payload(index: int, call: PyCall) -> tuple[object, ...]:
    return (
        index,
        tuple(call.args),
        dict(call.kwargs),
        call.setup,
        call.call,
        float(call.timeout_s),
    )


class _Tracker:
    """Checks frames against the order the fork-server must send them in, times each call
    and turns what happened into outcomes."""

    def __init__(self, runner: PythonRunner, calls: Sequence[PyCall], start: int) -> None:
        self._runner = runner
        self._calls = calls
        self._start = start
        self.current = start
        self.started = False
        self.loaded = False
        self.outcomes: list[PyOutcome] = []
        self.problem: PyOutcome | None = None
        self.final: PyOutcome | None = None
        self.blamed = False
        self._since = time.monotonic()
        self.deadline = self._since + runner.startup_s + runner.load_timeout_s

    @property
    def finished(self) -> bool:
        return self.current >= len(self._calls) or self.final is not None

    def _next_deadline(self) -> None:
        # The fork-server ends a call when it has *run* for its limit (CPU time, or elapsed
        # time less time spent waiting for a CPU), which on a busy machine is later in wall
        # time; this deadline only catches a fork-server that stopped answering.
        self._since = time.monotonic()
        limit = self._calls[self.current].timeout_s * WALL_FACTOR
        self.deadline = self._since + limit + self._runner.grace_s

    def handle(self, frames: list[Frame]) -> None:
        for frame in frames:
            if self.finished or self.problem is not None:
                return
            if not self.started:
                if frame.kind != K_HELLO:
                    raise ProtocolError("the sandbox did not introduce itself")
                self.started = True
                continue
            if not self.loaded:
                if frame.kind == K_LOADED and frame.index == self._start:
                    self.loaded = True
                    self._next_deadline()
                elif frame.kind == K_LOAD_ERROR:
                    detail = frame.payload.decode("utf-8", errors="replace")
                    self.final = PyOutcome("load_error", detail=detail)
                else:
                    raise ProtocolError("a call frame arrived before the code was loaded")
                continue
            if frame.index == self.current - 1 and self.current > self._start:
                # A second frame for the call just finished: that call wrote frames in the
                # server's name. It fails; the calls after it get a fresh session.
                self.outcomes[-1] = PyOutcome("crashed", detail="the call forged result frames")
                self.blamed = True
                raise ProtocolError("forged frame")
            if frame.index != self.current or frame.kind not in CALL_KINDS:
                raise ProtocolError(f"unexpected frame for call {frame.index}")
            self.outcomes.append(call_outcome(frame, time.monotonic() - self._since))
            self.current += 1
            if not self.finished:
                self._next_deadline()

    def timed_out(self) -> None:
        if not self.loaded:
            seconds = self._runner.load_timeout_s
            self.final = PyOutcome("timeout", detail=f"loading the code took over {seconds} s")
        else:
            self.problem = PyOutcome(
                "timeout",
                detail="the call ran past its deadline",
                seconds=time.monotonic() - self._since,
            )

    def violation(self, why: str) -> None:
        if self.blamed:
            return  # already blamed on the call that forged frames
        self.died(f"the sandbox broke the result protocol ({why})", "")

    def died(self, why: str, stderr_tail: str) -> None:
        detail = f"{why}\n{stderr_tail}".strip()
        if not self.loaded:
            self.final = PyOutcome("load_error", detail=detail)
        else:
            seconds = time.monotonic() - self._since
            self.problem = PyOutcome("crashed", detail=detail, seconds=seconds)

    def session(self) -> _Session:
        outcomes = list(self.outcomes)
        if self.problem is not None:
            outcomes.append(self.problem)
        return _Session(outcomes, self.final)
