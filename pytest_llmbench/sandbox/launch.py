"""Starting one sandboxed process per tier, and making sure all of it is gone afterwards.

full     prlimit -> setpriv (uid drop, when root) -> bwrap (user/pid/net/ipc/uts namespaces,
         empty read-only root showing only the needed host files, capped work dir) -> command,
         which is PID 1 of its namespace (`--as-pid-1`): orphans are reparented to it (the
         fork-server reaps them), and when it exits or is killed the kernel kills and reaps
         everything else in the namespace *before* bwrap's wait for it returns. (With bwrap's
         own init as PID 1, bwrap exits as soon as the command does, while the namespace is
         still being torn down, and leaves its init as a zombie for the host's PID 1, which
         does not reap it.)
reduced  supervisor (reaps, kills the uid) -> prlimit -> setpriv -> command, scrubbed env.
none     the command as a plain subprocess: for benchmarks' baselines only, never offered by
         `get_sandbox`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .base import Tier
from .hostfs import BindPlan
from .limits import Limits, prlimit_argv

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
SANDBOX_WORKDIR = "/work"
SANDBOX_TOOLDIR = "/opt/llmbench/bin"
SUPERVISOR_SOURCE = (Path(__file__).with_name("_supervisor.py")).read_text(encoding="utf-8")
# The harness may run under an interpreter the sandbox user cannot read (pyenv under /root);
# the supervisor runs as the harness user, but Debian's python starts faster anyway.
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# The whole environment of a sandboxed process, with its PATH, HOME and work dir. A fixed hash
# seed: Python code the model wrote (or a python3 in its command) orders sets of strings the
# same way in every run, so the same answer gets the same verdict.
BASE_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
KILL_WAIT_S = 5.0


@dataclass(frozen=True)
class Job:
    """What to run: `argv` inside the sandbox, seeing `host_paths` (read-only), `tools` on
    PATH, and the work dir as its current, home and temporary directory."""

    argv: Sequence[str]
    workdir: Path
    limits: Limits
    host_paths: Sequence[str] = ()
    tools: Mapping[str, str] = field(default_factory=dict)
    pass_fds: Sequence[int] = ()


class Running(Protocol):
    """A started sandbox. `stdout`/`stderr` are the read ends of its output pipes."""

    pid: int
    stdout: int
    stderr: int

    def kill(self) -> None:
        """End the sandbox now; when this returns no process of it is left."""
        ...

    def wait(self) -> int:
        """Wait for a sandbox that has ended on its own; returns its exit code."""
        ...

    def close(self) -> None:
        """Release the pipes and anything else the launch made (after kill or wait)."""
        ...

    def ran(self) -> bool:
        """After the end: whether the command itself started and exited (as opposed to the
        sandbox failing to set up). Tiers that cannot tell answer True."""
        ...


class Launcher(Protocol):
    tier: Tier
    # Whether a python sandbox may serve task after task (`pysession.py`): only where it is
    # PID 1 of its own namespace, out of reach of the tasks' signals and `kill(-1)`.
    keeps_sessions: bool

    def start(self, job: Job, uid: int | None) -> Running: ...

    def confines_kill_all(self, uid: int | None) -> bool:
        """Whether `kill(-1)` from inside reaches only this sandbox's own processes."""
        ...


def setpriv_argv(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return [
        SETPRIV,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _env(workdir: str, tooldir: str) -> dict[str, str]:
    return {**BASE_ENV, "PATH": tooldir, "HOME": workdir, "TMPDIR": workdir, "PWD": workdir}


class _Process:
    """A Popen'd sandbox with its pipes; subclasses know how to end it completely."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None, pass_fds: Sequence[int]
    ) -> None:
        self._proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            pass_fds=tuple(pass_fds),
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self.pid = self._proc.pid
        self.stdout = self._proc.stdout.fileno()
        self.stderr = self._proc.stderr.fileno()
        self._returncode: int | None = None

    def wait(self) -> int:
        if self._returncode is None:
            self._returncode = self._proc.wait()
        return self._returncode

    def ran(self) -> bool:
        return True

    def close(self) -> None:
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def _wait_or_kill(self) -> None:
        try:
            self._returncode = self._proc.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._returncode = self._proc.wait()


class _BwrapProcess(_Process):
    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], pass_fds: Sequence[int], status_fd: int
    ) -> None:
        super().__init__(argv, env, None, pass_fds)
        self._status_fd = status_fd
        self._status = b""
        self._namespace_pid: int | None = None
        self._exit_seen = False

    def _read_status(self, wait_for_pid_s: float = 0.0) -> None:
        """Read bwrap's --json-status-fd: `{"child-pid": N, ...}` (N = host pid of the
        namespace's PID 1) right after the clone, and `{"exit-code": N}` once the command has
        run; no exit-code means bwrap failed before or while starting the command. Reads what
        is there, or waits up to `wait_for_pid_s` for the child-pid record."""
        deadline = time.monotonic() + wait_for_pid_s
        while self._status_fd >= 0:
            if wait_for_pid_s and self._namespace_pid is not None:
                return
            remaining = max(0.0, deadline - time.monotonic()) if wait_for_pid_s else 0.0
            if not select.select([self._status_fd], [], [], remaining)[0]:
                return
            chunk = os.read(self._status_fd, 4096)
            if not chunk:
                os.close(self._status_fd)
                self._status_fd = -1
                return
            self._status += chunk
            for line in self._status.splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        if type(record.get("child-pid")) is int:
                            self._namespace_pid = record["child-pid"]
                        if "exit-code" in record:
                            self._exit_seen = True

    def ran(self) -> bool:
        self._read_status()
        return self._exit_seen

    def kill(self) -> None:
        if self._returncode is None and self._proc.poll() is None:
            self._read_status(wait_for_pid_s=KILL_WAIT_S)
            # Killing the namespace's PID 1 (not bwrap) makes the kernel kill everything in
            # the namespace before bwrap can reap it, so bwrap exiting means all of it is gone.
            target = self._namespace_pid if self._namespace_pid is not None else self.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        self._wait_or_kill()

    def close(self) -> None:
        super().close()
        if self._status_fd >= 0:
            os.close(self._status_fd)
            self._status_fd = -1


class BwrapLauncher:
    tier: Tier = "full"
    keeps_sessions = True

    def confines_kill_all(self, uid: int | None) -> bool:
        return True  # its own PID namespace

    def __init__(self, extra_ops: Sequence[str] = ()) -> None:
        self._extra_ops = list(extra_ops)

    def bwrap_args(self, job: Job, status_fd: int) -> list[str]:
        plan = BindPlan()
        for path in job.host_paths:
            plan.add(path)
        for name, host_path in job.tools.items():
            plan.add_tool_link(SANDBOX_TOOLDIR, name, host_path)
        return [
            "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--as-pid-1",
            # A nested user namespace would make the code root there, free to mount a tmpfs
            # that no limit here accounts for.
            "--disable-userns",
            "--hostname", "sandbox",
            "--json-status-fd", str(status_fd),
            *plan.ops,
            "--dir", SANDBOX_TOOLDIR,
            "--proc", "/proc",
            "--dev", "/dev",
            "--bind", str(job.workdir), SANDBOX_WORKDIR,
            "--chdir", SANDBOX_WORKDIR,
            *self._extra_ops,
            # The root and /dev are bwrap-made tmpfs owned by the sandbox user: without
            # these, they would be writable (and unbounded) places besides the work dir.
            "--remount-ro", "/dev",
            "--remount-ro", "/",
        ]  # fmt: skip

    def start(self, job: Job, uid: int | None) -> Running:
        status_read, status_write = os.pipe()
        args_fd = os.memfd_create("bwrap-args", os.MFD_CLOEXEC)
        try:
            # Passed through a file descriptor, the mount plan (host paths) does not show in
            # the sandbox's /proc/1/cmdline.
            args = self.bwrap_args(job, status_write)
            os.write(args_fd, b"".join(os.fsencode(arg) + b"\0" for arg in args))
            os.lseek(args_fd, 0, os.SEEK_SET)
            argv = [
                *prlimit_argv(job.limits),
                *setpriv_argv(uid),
                BWRAP, "--args", str(args_fd), "--", *job.argv,
            ]  # fmt: skip
            env = _env(SANDBOX_WORKDIR, SANDBOX_TOOLDIR)
            return _BwrapProcess(argv, env, (args_fd, status_write, *job.pass_fds), status_read)
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
            os.close(args_fd)


class _ToolDir:
    """A host directory of symlinks to the allowed tools: the reduced tier's PATH."""

    def __init__(self, tools: Mapping[str, str]) -> None:
        self.path = tempfile.mkdtemp(prefix="llmbench-tools-")
        os.chmod(self.path, 0o755)
        for name, host_path in tools.items():
            os.symlink(host_path, os.path.join(self.path, name))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class _SupervisedProcess(_Process):
    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        pass_fds: Sequence[int],
        tooldir: _ToolDir,
        uid: int | None,
    ) -> None:
        self._tooldir = tooldir
        self._uid = uid
        super().__init__(argv, env, cwd, pass_fds)

    def kill(self) -> None:
        if self._returncode is None and self._proc.poll() is None:
            # The supervisor kills the sandbox uid and reaps before it exits.
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
        self._wait_or_kill()

    def close(self) -> None:
        super().close()
        self._tooldir.remove()


class ReducedLauncher:
    tier: Tier = "reduced"
    keeps_sessions = False

    def confines_kill_all(self, uid: int | None) -> bool:
        return uid is not None  # an exclusive uid; without one it would hit the user's session

    def start(self, job: Job, uid: int | None) -> Running:
        tooldir = _ToolDir(job.tools)
        mode = f"uid:{uid}" if uid is not None else "tree"
        argv = [
            HOST_PYTHON, "-I", "-S", "-c", SUPERVISOR_SOURCE, mode, "--",
            *prlimit_argv(job.limits), *setpriv_argv(uid), *job.argv,
        ]  # fmt: skip
        env = _env(str(job.workdir), tooldir.path)
        try:
            return _SupervisedProcess(argv, env, str(job.workdir), job.pass_fds, tooldir, uid)
        except BaseException:
            tooldir.remove()
            raise


class _PlainProcess(_Process):
    def kill(self) -> None:
        if self._returncode is None and self._proc.poll() is None:
            self._proc.kill()
        self._wait_or_kill()


class UnisolatedLauncher:
    """A bare subprocess, for measuring what isolation costs. Not a sandbox."""

    tier: Tier = "none"
    keeps_sessions = False

    def confines_kill_all(self, uid: int | None) -> bool:
        return False

    def start(self, job: Job, uid: int | None) -> Running:
        env = {**BASE_ENV, "PATH": "/usr/bin:/bin", "HOME": str(job.workdir)}
        return _PlainProcess(job.argv, env, str(job.workdir), job.pass_fds)
