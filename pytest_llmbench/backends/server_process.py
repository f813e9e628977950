"""A model server we run ourselves: started in its own process group, stopped with its children."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

_RUNNING: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: have the kernel kill the server if pytest dies, even by
    SIGKILL, when no exit hook runs (Linux only; elsewhere the atexit hook is all there is)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerProcess:
    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        handle, name = tempfile.mkstemp(prefix="llmbench-server-", suffix=".log")
        self.log_path = Path(name)
        with os.fdopen(handle, "wb") as log:
            # A session of its own: Ctrl-C at the terminal reaches us, not the server, and
            # stop() can signal the whole group (uvicorn workers, compiler helpers, ...).
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _RUNNING.add(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exit_code(self) -> int | None:
        return self._popen.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, grace_s: float = 5.0) -> None:
        """Terminate the process group, kill it if it lingers, and reap the server."""
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._popen.wait(timeout=grace_s)
        # Children that outlived the leader still belong to its group.
        self._signal_group(signal.SIGKILL)
        _wait_group_gone(self._popen.pid, grace_s)
        _RUNNING.discard(self)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, from /proc; empty where there is none."""
    members = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        # After the command name: state, ppid, pgrp, ...
        if fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.parent.name))
    return members


def _wait_group_gone(pgid: int, timeout_s: float) -> None:
    """A killed process takes a moment to die: return once none of the group is left."""
    deadline = time.monotonic() + timeout_s
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


@atexit.register
def _stop_all() -> None:
    # Whatever path the run took out (an error, a missed unload), no server outlives it.
    for server in list(_RUNNING):
        server.stop(grace_s=2.0)
