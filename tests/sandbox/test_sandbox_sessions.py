"""The full tier's python sessions: one sandbox serves task after task, and nothing a task
leaves behind (processes, files, SysV IPC objects, limits) reaches the next task."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmbench.sandbox.base import PyCall
from pytest_llmbench.sandbox.launch import BwrapLauncher
from pytest_llmbench.sandbox.pyrunner import PythonRunner
from pytest_llmbench.sandbox.pysession import PythonSession
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

ADD = "def add(a, b):\n    return a + b\n"

# Leaves everything it can behind: a setsid daemon that keeps writing frames claiming 42 to
# every descriptor it has, files (one in an unreadable directory), and SysV shared memory, a
# message queue and a semaphore set.
LITTERER = textwrap.dedent(
    """
    import ctypes, os, struct, time
    libc = ctypes.CDLL(None)
    IPC_CREAT = 0o1000
    libc.shmget(1234, 4096, IPC_CREAT | 0o600)
    libc.msgget(1235, IPC_CREAT | 0o600)
    libc.semget(1236, 1, IPC_CREAT | 0o600)
    os.makedirs("locked/deeper")
    open("locked/deeper/note.txt", "w").write("left")
    open("left.txt", "w").write("left")
    os.chmod("locked", 0)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            frame = struct.pack(">IBI", 0, 3, 3) + b"V42"
            while True:
                for fd in range(3, 64):
                    try:
                        os.write(fd, frame)
                    except OSError:
                        pass
                time.sleep(0.01)
        os._exit(0)

    def add(a, b):
        return a + b
    """
)

OBSERVER = textwrap.dedent(
    """
    import os, resource

    def look():
        processes = [p for p in os.listdir("/proc") if p.isdigit()]
        ipc = {}
        for kind in ("shm", "msg", "sem"):
            with open("/proc/sysvipc/" + kind) as table:
                ipc[kind] = len(table.read().splitlines()) - 1
        return {
            "processes": len(processes),
            "files": sorted(os.listdir(".")),
            "ipc": ipc,
            "cpu": resource.getrlimit(resource.RLIMIT_CPU)[1],
        }
    """
)


@pytest.fixture
def full(full_sandbox: IsolatedSandbox, uid_tracker: Any) -> Iterator[IsolatedSandbox]:
    yield full_sandbox
    full_sandbox.close()
    assert uid_tracker.leftovers() == {}  # closing the session leaves no process behind


def _session(sandbox: IsolatedSandbox) -> PythonSession:
    """The one idle session of a sandbox used by one thread at a time."""
    (session,) = sandbox.python.sessions.idle
    return session


def test_tasks_share_one_sandbox(full: IsolatedSandbox) -> None:
    assert full.run_python(ADD, "add", [PyCall(args=(1, 2))])[0].value == 3
    first = _session(full)
    for n in range(5):
        assert full.run_python(ADD, "add", [PyCall(args=(n, 1))])[0].value == n + 1
    assert _session(full) is first


def test_nothing_a_task_leaves_reaches_the_next(full: IsolatedSandbox) -> None:
    (litter,) = full.run_python(LITTERER, "add", [PyCall(args=(1, 1))])
    assert (litter.status, litter.value) == ("ok", 2)
    session = _session(full)
    (seen,) = full.run_python(OBSERVER, "look", [PyCall(timeout_s=3)])
    assert _session(full) is session  # the same sandbox, cleaned
    assert seen.status == "ok", seen
    # The session, this task's fork-server and this call: the daemon is gone.
    assert seen.value["processes"] == 3
    assert seen.value["files"] == []
    assert seen.value["ipc"] == {"shm": 0, "msg": 0, "sem": 0}
    # The daemon wrote frames claiming 42 while it lived; none reached this task.
    outcomes = full.run_python(ADD, "add", [PyCall(args=(20, 1)), PyCall(args=(2, 2))])
    assert [o.value for o in outcomes] == [21, 4]


def test_each_task_gets_its_own_cpu_limit(full: IsolatedSandbox) -> None:
    (short,) = full.run_python(OBSERVER, "look", [PyCall(timeout_s=1)])
    (long,) = full.run_python(OBSERVER, "look", [PyCall(timeout_s=20)])
    runner = full.python
    assert short.value["cpu"] == runner.limits.with_cpu_for(runner.load_timeout_s + 1).cpu_seconds
    assert long.value["cpu"] == runner.limits.with_cpu_for(runner.load_timeout_s + 20).cpu_seconds


def test_a_task_cannot_end_or_stop_the_session(full: IsolatedSandbox) -> None:
    attack = textwrap.dedent(
        """
        import os, signal
        def attack():
            for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):
                for target in (1, -1):
                    try:
                        os.kill(target, sig)
                    except OSError:
                        pass
            return "tried"
        """
    )
    full.run_python(ADD, "add", [PyCall(args=(1, 1))])
    session = _session(full)
    full.run_python(attack, "attack", [PyCall()])
    assert full.run_python(ADD, "add", [PyCall(args=(3, 4))])[0].value == 7
    assert _session(full) is session


def test_a_session_that_died_between_tasks_is_replaced(full: IsolatedSandbox) -> None:
    full.run_python(ADD, "add", [PyCall(args=(1, 1))])
    session = _session(full)
    # The session is the only child of the bwrap process this test started (PID 1 of the
    # sandbox's namespace); killing it ends the sandbox, as an out-of-memory kill would.
    bwrap = session.running.pid
    with open(f"/proc/{bwrap}/task/{bwrap}/children") as children:
        (child,) = children.read().split()
    os.kill(int(child), signal.SIGKILL)
    assert full.run_python(ADD, "add", [PyCall(args=(2, 3))])[0].value == 5
    assert _session(full) is not session


def test_a_timeout_gives_the_session_up_and_the_next_task_runs(
    full_sandbox: IsolatedSandbox, uid_tracker: Any
) -> None:
    runner = PythonRunner(BwrapLauncher(), load_timeout_s=0.5)
    try:
        # A hang at load time: only the harness's deadline ends it, by ending the session.
        (outcome,) = runner.run("import time\ntime.sleep(60)\n", "f", [PyCall()])
        assert outcome.status == "timeout"
        assert runner.sessions.idle == ()
        assert runner.run(ADD, "add", [PyCall(args=(1, 2))])[0].value == 3
    finally:
        runner.close()
    assert uid_tracker.leftovers() == {}


def test_sessions_serve_any_thread_and_outlive_the_threads_that_used_them(
    full: IsolatedSandbox,
) -> None:
    slow = "import time\ndef f():\n    time.sleep(0.5)\n    return 1\n"

    def work() -> None:
        assert full.run_python(slow, "f", [PyCall()])[0].value == 1

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Two at once needed two sandboxes; both are still there after their threads ended.
    sessions = full.python.sessions.idle
    assert len(sessions) == 2
    assert full.run_python(ADD, "add", [PyCall(args=(1, 1))])[0].value == 2
    assert set(full.python.sessions.idle) == set(sessions)


def test_the_reduced_tier_keeps_no_session(uid_tracker: Any) -> None:
    reduced = make_sandbox("reduced")
    assert reduced.run_python(ADD, "add", [PyCall(args=(1, 1))])[0].value == 2
    assert reduced.python.sessions.idle == ()
    assert uid_tracker.leftovers() == {}
