"""A python sandbox that serves task after task: the harness side of `_pychild.serve`.

Starting a sandbox and an interpreter costs about 25 ms; a task's code usually loads and runs
its cases in a few. So where the tier allows it (the full tier: its own PID namespace, whose
PID 1 is the session), one sandbox is kept per harness thread and each task runs in a process
forked from it, with pipes of its own. See `_pychild.py` for what the session does between
two tasks, and why a task cannot reach the next one's results.

bwrap's `--die-with-parent` ties a sandbox to the *thread* that started it (the parent-death
signal fires when that thread ends), so sessions are started from one thread that lives as long
as the process; any thread may then use an idle one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from . import hostfs
from ._pychild import DONE, S_DONE, S_READY, S_TASK
from .base import SandboxError
from .identity import claim_uid
from .launch import Job, Launcher, Running
from .limits import Limits
from .workdir import work_dir

# The session's own CPU-time limit: it spends about a millisecond per task; each task's
# process gets the task's limit from the session before it runs anything of the model's.
SESSION_CPU_S = 24 * 3600


class SessionGone(Exception):
    """The session ended between two tasks (nothing of the task ran)."""


@dataclass
class TaskPipes:
    """The harness's read ends of one task's pipes."""

    result: int
    stdout: int
    stderr: int

    def close(self) -> None:
        for fd in (self.result, self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)


def task_done(message: bytes) -> tuple[int, bool] | None:
    """(wait status of the task's process, whether the session is clean again) from a
    control message; None for anything else."""
    if len(message) != 1 + DONE.size or message[:1] != S_DONE:
        return None
    status, clean = DONE.unpack_from(message, 1)
    return status, bool(clean)


class PythonSession:
    """One long-lived sandbox running `_pychild.serve`."""

    def __init__(
        self, launcher: Launcher, argv: tuple[str, ...], limits: Limits, startup_s: float
    ) -> None:
        self._stack = contextlib.ExitStack()
        self.ended = False
        try:
            uid = self._stack.enter_context(claim_uid())
            workdir = self._stack.enter_context(work_dir(limits, uid))
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._stack.callback(ours.close)
            self.channel = ours
            try:
                job = Job(
                    argv=(*argv, "--serve", str(theirs.fileno())),
                    workdir=workdir,
                    limits=limits,
                    host_paths=hostfs.python_paths(),
                    pass_fds=(theirs.fileno(),),
                )
                self.running: Running = launcher.start(job, uid)
            finally:
                theirs.close()
            self._stack.callback(self._stop)
            self._await_ready(startup_s)
        except BaseException:
            self._stack.close()
            raise

    def _await_ready(self, startup_s: float) -> None:
        deadline = time.monotonic() + startup_s
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.channel], [], [], remaining)
            if ready:
                message = self.channel.recv(16)
                if message == S_READY:
                    return
                break  # end of file: the sandbox failed to start
        raise SandboxError(f"the python sandbox did not start: {self._stderr_tail()}")

    def _stderr_tail(self) -> str:
        self.running.kill()
        with contextlib.suppress(OSError):
            os.set_blocking(self.running.stderr, False)
            return os.read(self.running.stderr, 1 << 16)[-2000:].decode(errors="replace").strip()
        return ""

    def submit(self, spec: bytes) -> TaskPipes:
        """Start a task whose input is `spec`; its pipes. Raises SessionGone when the session
        has ended."""
        result_read, result_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        input_fd = os.memfd_create("llmbench-input", os.MFD_CLOEXEC)
        pipes = TaskPipes(result_read, out_read, err_read)
        try:
            os.write(input_fd, spec)
            socket.send_fds(self.channel, [S_TASK], [result_write, input_fd, out_write, err_write])
        except OSError as exc:
            pipes.close()
            raise SessionGone(str(exc)) from exc
        finally:
            for fd in (result_write, out_write, err_write, input_fd):
                os.close(fd)
        return pipes

    def _stop(self) -> None:
        self.running.kill()
        self.running.close()

    def close(self) -> None:
        """End the sandbox (every process of it is gone when this returns) and release its
        work dir and uid."""
        self.ended = True
        self._stack.close()


class _Starter:
    """The one thread sessions are started from (see the module docstring)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], PythonSession], Future[PythonSession]]]
        self._requests = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, make: Callable[[], PythonSession]) -> PythonSession:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="llmbench-sandbox-starter", daemon=True
                )
                self._thread.start()
        future: Future[PythonSession] = Future()
        self._requests.put((make, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            make, future = self._requests.get()
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)


_STARTER = _Starter()


class SessionPool:
    """Idle sessions, handed to one user at a time; all of them ended by `close` (and at
    exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[PythonSession] = []
        self._open: set[PythonSession] = set()
        atexit.register(self.close)

    def take(self, make: Callable[[], PythonSession]) -> PythonSession:
        """An idle session, or a new one from `make`."""
        with self._lock:
            while self._idle:
                session = self._idle.pop()
                if not session.ended:
                    return session
        session = _STARTER.start(make)
        with self._lock:
            self._open.add(session)
        return session

    def give_back(self, session: PythonSession) -> None:
        with self._lock:
            if not session.ended and session in self._open:
                self._idle.append(session)

    def discard(self, session: PythonSession) -> None:
        session.close()
        with self._lock:
            self._open.discard(session)

    @property
    def idle(self) -> tuple[PythonSession, ...]:
        with self._lock:
            return tuple(self._idle)

    def close(self) -> None:
        with self._lock:
            sessions, self._open, self._idle = list(self._open), set(), []
        for session in sessions:
            session.close()
