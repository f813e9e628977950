"""Running model-written Python against a task's calls, harness side.

One sandbox session loads the code once and serves calls in order (see `_pychild.py`). A call
that hangs past its deadline, kills the fork-server or breaks the frame protocol ends the
session; it alone gets the bad outcome and a fresh session serves the calls after it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import hostfs
from ._pychild import WALL_FACTOR, _describe_status
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
from .launch import KILL_WAIT_S, Job, Launcher, Running
from .limits import PYTHON_LIMITS, Limits
from .pump import CappedBuffer, Watcher
from .pysession import SESSION_CPU_S, PythonSession, SessionGone, SessionPool, TaskPipes, task_done
from .workdir import work_dir

CHILD_SOURCE = Path(__file__).with_name("_pychild.py").read_text(encoding="utf-8")
# Debian's interpreter as isolated as `-I` makes it (no user site, no script directory on
# sys.path) but reading its environment, which the launcher builds from nothing: `-I` would
# also ignore PYTHONHASHSEED, and with a random seed the order of a set of strings changes from
# run to run, so one answer could pass in one run and fail in the next. With `site`, so the
# model's code sees the usual builtins (`exit`, `quit`, ...).
PYTHON_ARGV = (hostfs.PYTHON, "-s", "-P", "-c", CHILD_SOURCE)
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
    sessions: SessionPool = field(default_factory=SessionPool, compare=False, repr=False)

    def run(self, code: str, entry_point: str, calls: Sequence[PyCall]) -> list[PyOutcome]:
        payloads = [_call_payload(index, call) for index, call in enumerate(calls)]
        outcomes: list[PyOutcome] = []
        while len(outcomes) < len(calls):
            session = self._session(code, entry_point, calls, payloads, len(outcomes))
            outcomes += session.outcomes
            if session.final is not None:
                outcomes += [session.final] * (len(calls) - len(outcomes))
        return outcomes

    def close(self) -> None:
        """End the sandboxes kept between tasks."""
        self.sessions.close()

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
        if self.launcher.keeps_sessions:
            # PID 1 of its own namespace: kill(-1) there reaches only the task's processes.
            spec["kill_all"] = True
            spec["cpu_seconds"] = limits.cpu_seconds
            return self._in_session(spec, calls, start)
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
        """A task in a sandbox of its own: it has ended when the sandbox has."""
        watcher = Watcher(running.pid, [running.stdout, running.stderr, result_read])
        task = _TaskReader(_Tracker(self, calls, start), result_read, running.stdout)
        try:
            while task.running:
                if not task.take(watcher, task.tracker.deadline - time.monotonic()):
                    break
                if watcher.exited:
                    # Frames the fork-server sent just before it exited are still in the pipe.
                    task.take_rest(watcher)
                    if task.running:
                        status = running.wait()
                        task.tracker.died(
                            f"the interpreter exited (status {status})", task.stderr.tail()
                        )
                    break
        finally:
            running.kill()
            left = watcher.drain()
            watcher.close()
            running.close()
        if not task.tracker.started:
            task.stderr_only(left)
            raise SandboxError(f"the python sandbox did not start: {task.stderr.tail().strip()}")
        return task.tracker.session()

    def _in_session(self, spec: dict[str, object], calls: Sequence[PyCall], start: int) -> _Session:
        """A task in a long-lived sandbox: an idle one, or a new one. A sandbox that turns out
        to have ended before the task started is replaced once."""
        data = encode_input(spec)
        for attempt in (1, 2):
            session = self.sessions.take(self._new_session)
            try:
                pipes = session.submit(data)
                try:
                    outcome = self._serve_in(session, pipes, calls, start)
                finally:
                    pipes.close()
            except SessionGone as exc:
                self.sessions.discard(session)
                if attempt == 2:
                    why = f"the python sandbox ended before the task ran: {exc}"
                    raise SandboxError(why) from None
                continue
            self.sessions.give_back(session)
            return outcome
        raise AssertionError("unreachable")

    def _new_session(self) -> PythonSession:
        limits = replace(self.limits, cpu_seconds=SESSION_CPU_S)
        return PythonSession(self.launcher, PYTHON_ARGV, limits, self.startup_s)

    def _serve_in(
        self, session: PythonSession, pipes: TaskPipes, calls: Sequence[PyCall], start: int
    ) -> _Session:
        """A task in a session: it has ended when the session reports its process gone and
        swept. Anything else that stops the task early (a deadline, a flood, a broken
        protocol) ends the session too."""
        channel = session.channel.fileno()
        try:
            watcher = Watcher(
                session.running.pid, [pipes.stdout, pipes.stderr, pipes.result, channel]
            )
        except ProcessLookupError:
            raise SessionGone("the sandbox process is gone") from None
        task = _TaskReader(_Tracker(self, calls, start), pipes.result, pipes.stdout, channel)
        keep = False
        try:
            stopped = False
            while task.running and task.done is None and not watcher.exited:
                if not task.take(watcher, task.tracker.deadline - time.monotonic()):
                    stopped = True
                    break
            if not stopped:
                # Every call answered (or the task's process ended): wait for the sweep.
                deadline = time.monotonic() + self.grace_s + KILL_WAIT_S
                while task.done is None and not watcher.exited:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not task.take(watcher, remaining, calls_done=True):
                        break
                task.take_rest(watcher)
                if task.done is not None:
                    status, keep = task.done
                    if task.running:
                        why = f"the interpreter ended ({_describe_status(status)})"
                        task.tracker.died(why, task.stderr.tail())
                elif task.running:
                    task.tracker.died("the python sandbox ended", task.stderr.tail())
        finally:
            watcher.close()
            if not keep or not task.tracker.started:
                self.sessions.discard(session)
        if not task.tracker.started:
            why = task.stderr.tail().strip() or "no output"
            if watcher.exited:
                raise SessionGone(f"the sandbox ended ({why})")
            raise SandboxError(f"the python task did not start: {why}")
        return task.tracker.session()


class _TaskReader:
    """One task's pipes as they are read: frames to the tracker, output to capped buffers,
    the session's "done" message (when there is a session) to `done`."""

    def __init__(
        self, tracker: _Tracker, result: int, stdout: int, channel: int | None = None
    ) -> None:
        self.tracker = tracker
        self._result = result
        self._stdout = stdout
        self._channel = channel
        self.stdout = CappedBuffer(STDERR_KEEP, OUTPUT_FLOOD)
        self.stderr = CappedBuffer(STDERR_KEEP, OUTPUT_FLOOD)
        self._frames = FrameReader()
        self.done: tuple[int, bool] | None = None

    @property
    def running(self) -> bool:
        """No outcome yet for some call, and nothing has gone wrong."""
        return self.tracker.problem is None and not self.tracker.finished

    def take(self, watcher: Watcher, wait_s: float, calls_done: bool = False) -> bool:
        """Read what arrives within `wait_s`; False when the task must be stopped (its
        deadline passed, it broke the protocol or flooded its output)."""
        if calls_done:  # the outcomes are settled: only read, and tell whether to go on
            self._feed(watcher.poll(wait_s))
            return not (self.stdout.flooded or self.stderr.flooded)
        if wait_s <= 0:
            self.tracker.timed_out()
            return False
        try:
            self._feed(watcher.poll(wait_s))
        except ProtocolError as exc:
            self.tracker.violation(str(exc))
            return False
        if self.stdout.flooded or self.stderr.flooded:
            self.tracker.died("the code flooded its output", "")
            return False
        return True

    def take_rest(self, watcher: Watcher) -> None:
        """What the pipes still hold once their writers are gone."""
        try:
            self._feed(watcher.drain())
        except ProtocolError as exc:
            self.tracker.violation(str(exc))

    def stderr_only(self, chunks: list[tuple[int, bytes]]) -> None:
        for fd, data in chunks:
            if fd not in (self._result, self._stdout, self._channel):
                self.stderr.feed(data)

    def _feed(self, chunks: list[tuple[int, bytes]]) -> None:
        for fd, data in chunks:
            if fd == self._result:
                if self.running:
                    self.tracker.handle(self._frames.feed(data))
            elif fd == self._channel:
                if data:
                    self.done = task_done(data) or (0, False)
            elif fd == self._stdout:
                self.stdout.feed(data)
            else:
                self.stderr.feed(data)


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
