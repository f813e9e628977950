"""Fork-server for model-written Python; this file runs INSIDE the sandbox.

It is passed to `/usr/bin/python3 -I -c` as source, so it may import only the standard
library and must not import this package (the sandbox user may not be able to read it).
argv: `-c RESULT_FD INPUT_FD` (one task), or `-c --serve CONTROL_FD` (a session serving many
tasks, see `serve`).

It loads the model's code once, then forks one child per call, so a call that monkeypatches
builtins, starts threads or exits the interpreter cannot affect the next call. After each call
every other process it can signal is killed (`kill(-1)`: in the full tier that is everything in
the sandbox's PID namespace, in the reduced tier everything of the sandbox's exclusive uid). In
the full tier this server is PID 1 of the namespace, so orphans come to it to be reaped.

Frames to the harness on RESULT_FD: `>IBI` (call index, kind, payload length) + payload.
None of this is trusted by the harness: model code runs in this process and can forge anything;
the harness checks frame order and decodes values itself.

A call's time limit counts the time the call runs, not the time it waits for a CPU, so a busy
machine does not turn a right answer into a timeout: the call has used up its limit when its
CPU time (all threads), or its elapsed time less the time it sat runnable waiting for a CPU
(`run_delay` in /proc/PID/schedstat), reaches it. The second measure covers calls that sleep or
block. Where schedstat cannot be read only CPU time counts, and a wall-clock backstop of
WALL_FACTOR times the limit ends calls that sleep.
"""

from __future__ import annotations

import _json  # the C helper only: `import json` pulls in `re` (7 ms of start-up)
import builtins
import marshal
import os
import select
import signal
import struct
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing `typing` costs every run ~5 ms of start-up
    from typing import Any

K_LOADED = 1
K_LOAD_ERROR = 2
K_RESULT = 3
K_CRASHED = 4
K_TIMEOUT = 5
K_TOO_LARGE = 6
K_HELLO = 7

_PR_SET_DUMPABLE = 4
# Linux: the CPU-time clock of process PID is ((~PID) << 3) | CPUCLOCK_SCHED (2): all its threads.
_CPUCLOCK_SCHED = 2
_POLL_S = 0.5  # how often a running call's clocks are read
WALL_FACTOR = 10.0  # a call ends at this many times its limit in wall-clock time, whatever
_HEADER = struct.Struct(">IBI")
_LENGTH = struct.Struct(">Q")

# Bound before any model code runs, so the model rebinding `os.fork` & co. in the shared
# modules does not change what this server calls.
_fork = os.fork
_write = os.write
_read = os.read
_kill = os.kill
_waitpid = os.waitpid
_exit = os._exit
_select = select.select
_monotonic = time.monotonic
_clock_gettime = time.clock_gettime
_open = os.open
_close = os.close
_type = type
_repr_int = int.__repr__
_repr_float = float.__repr__
_quote = _json.encode_basestring_ascii
_len = len
_str = str
_dict = dict
_enumerate = enumerate
_isinstance = isinstance
_memoryview = memoryview
_bytes = bytes


class _Unsupported(Exception):
    pass


def _write_all(fd: int, data: bytes) -> None:
    view = _memoryview(data)
    while view:
        view = view[_write(fd, view) :]


def _send(fd: int, index: int, kind: int, payload: bytes = b"") -> None:
    _write_all(fd, _HEADER.pack(index, kind, _len(payload)) + payload)


def _encode(value: Any, depth: int, budget: list[int], out: list[str]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unsupported("result has too many values")
    if depth > _LIMITS["max_depth"]:
        raise _Unsupported("result is nested too deeply")
    kind = _type(value)
    if value is None:
        out.append("null")
    elif kind is bool:
        out.append("true" if value else "false")
    elif kind is int:
        try:
            out.append(_repr_int(value))
        except ValueError:
            raise _Unsupported("integer too large") from None
    elif kind is float:
        text = _repr_float(value)
        out.append({"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(text, text))
    elif kind is str:
        out.append(_quote(value))
    elif kind is list or kind is tuple:
        out.append("[" if kind is list else '{"t":[')
        for position, item in _enumerate(value):
            if position:
                out.append(",")
            _encode(item, depth + 1, budget, out)
        out.append("]" if kind is list else "]}")
    elif kind is dict:
        out.append('{"d":{')
        for position, (key, item) in _enumerate(value.items()):
            if _type(key) is not str:
                raise _Unsupported(f"dict key of type {_type(key).__name__}")
            if position:
                out.append(",")
            out.append(_quote(key))
            out.append(":")
            _encode(item, depth + 1, budget, out)
        out.append("}}")
    else:
        raise _Unsupported(f"result of type {kind.__name__} is not plain data")


_LIMITS: dict[str, int] = {"max_depth": 64, "max_nodes": 100_000, "max_result": 1 << 20}


def _exception_name(exc: BaseException) -> str:
    kind = _type(exc)
    if kind.__module__ == "builtins":
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def _safe_str(exc: BaseException) -> str:
    try:
        text = _str(exc)
    except BaseException:
        return "<unprintable exception>"
    return text if _type(text) is str else "<unprintable exception>"


def _run_call(namespace: dict[str, Any], entry: str, call: tuple[Any, ...]) -> bytes:
    """Run one call in this (forked) process and return the payload for the harness."""
    _index, args, kwargs, setup, expression, _timeout = call
    ns = _dict(namespace)
    try:
        if setup:
            exec(compile(setup, "<setup>", "exec"), ns)
        if expression:
            value = eval(compile(expression, "<call>", "eval"), ns)
        else:
            value = ns[entry](*args, **kwargs)
    except SystemExit as exc:
        return b"X" + f"SystemExit({_safe_str(exc)[:200]})".encode("utf-8", "replace")
    except BaseException as exc:
        report = {"type": _exception_name(exc), "message": _safe_str(exc)[:2000]}
        parts: list[str] = []
        _encode(report, 0, [10], parts)
        return b"E" + "".join(parts).encode("ascii")
    parts = []
    try:
        _encode(value, 0, [_LIMITS["max_nodes"]], parts)
    except _Unsupported as exc:
        return b"U" + _str(exc).encode("utf-8", "replace")
    except RecursionError:
        return b"U" + b"result is nested too deeply"
    return b"V" + "".join(parts).encode("ascii")


class _suppress_oserror:  # contextlib would cost 4 ms of start-up here
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return _isinstance(value, OSError)


def _try_kill(pid: int) -> bool:
    try:
        _kill(pid, signal.SIGKILL)
    except OSError:
        return False
    return True


def _sweep(pid: int, kill_all: bool) -> None:
    """Kill everything the call may have left behind, including the call's process."""
    _try_kill(-1 if kill_all else -pid)
    _try_kill(pid)


def _reap_all(block: bool) -> None:
    """Collect every exited child, so zombies do not count against the process limit. After
    `kill(-1)` every child is dying, so waiting for all of them cannot hang."""
    flags = 0 if block else os.WNOHANG
    while True:
        try:
            pid, _ = _waitpid(-1, flags)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _waited_s(schedstat: str) -> float | None:
    """Seconds the process spent runnable but waiting for a CPU (`run_delay`), or None."""
    try:
        fd = _open(schedstat, os.O_RDONLY)
        try:
            data = _read(fd, 256)
        finally:
            _close(fd)
        return int(data.split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class _CallClock:
    """The time a forked call has counted against its limit (see the module docstring). Both
    of the call's counters start at zero at the fork (the kernel resets `sched_info`)."""

    def __init__(self, pid: int, forked_at: float) -> None:
        self._cpu_clock = ((~pid) << 3) | _CPUCLOCK_SCHED
        self._schedstat = f"/proc/{pid}/schedstat"
        self._forked_at = forked_at

    def used(self) -> float:
        try:
            cpu = _clock_gettime(self._cpu_clock)
        except OSError:  # the process is gone
            cpu = 0.0
        waited = _waited_s(self._schedstat)
        if waited is None:
            return cpu
        return max(cpu, _monotonic() - self._forked_at - waited)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = _str(number)
        return f"killed by signal {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)} without returning"


def _serve_call(
    namespace: dict[str, Any], entry: str, call: tuple[Any, ...], result_fd: int, kill_all: bool
) -> tuple[int, int, bytes]:
    index, _args, _kwargs, _setup, _expression, timeout = call
    read_end, write_end = os.pipe()
    forked_at = _monotonic()
    pid = _fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            os.close(result_fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.setpgid(0, 0)
            payload = _run_call(namespace, entry, call)
            _write_all(write_end, _LENGTH.pack(_len(payload)) + payload)
        except BaseException:
            code = 70
        _exit(code)
    os.close(write_end)
    # Also done here, not only in the child, so the group exists before any sweep; it fails
    # harmlessly when the child got there first.
    with _suppress_oserror():
        os.setpgid(pid, pid)
    pidfd = os.pidfd_open(pid)
    clock = _CallClock(pid, forked_at)
    backstop = forked_at + timeout * WALL_FACTOR
    cap = _LIMITS["max_result"] + _LENGTH.size + 1
    buffer = bytearray()
    watch = [read_end, pidfd]
    verdict: tuple[int, bytes] | None = None
    while verdict is None:
        # The counted time grows no faster than the wall clock (but for threads), so waiting
        # for the time left cannot overshoot by more than a poll.
        wait = min(timeout - clock.used(), backstop - _monotonic(), _POLL_S)
        ready, _, _ = _select(watch, [], [], max(wait, 0.0))
        if read_end in ready:
            chunk = _read(read_end, 65536)
            if chunk:
                buffer += chunk
            else:
                watch.remove(read_end)
        if pidfd in ready:
            os.set_blocking(read_end, False)
            try:
                while chunk := _read(read_end, 65536):
                    buffer += chunk
                    if _len(buffer) > cap:
                        break
            except BlockingIOError:
                pass
            watch = []
        if _len(buffer) > cap:
            verdict = (K_TOO_LARGE, b"")
        elif _len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            if _len(buffer) >= _LENGTH.size + length:
                verdict = (K_RESULT, _bytes(buffer[_LENGTH.size : _LENGTH.size + length]))
        if verdict is None and not watch:
            verdict = (K_CRASHED, b"")
        if verdict is None and wait <= 0:
            verdict = (K_TIMEOUT, b"")
    _sweep(pid, kill_all)
    _, status = _waitpid(pid, 0)
    _reap_all(kill_all)
    os.close(read_end)
    os.close(pidfd)
    if verdict[0] == K_CRASHED:
        verdict = (K_CRASHED, _describe_status(status).encode())
    return index, verdict[0], verdict[1]


def _load(code: str, entry: str) -> tuple[dict[str, Any] | None, str]:
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(code, "solution.py", "exec"), namespace)
    except BaseException as exc:
        import linecache
        import traceback

        linecache.cache["solution.py"] = (_len(code), None, code.splitlines(True), "solution.py")
        lines = traceback.format_exception(_type(exc), exc, exc.__traceback__)
        return None, "".join(lines)[-4000:]
    if entry and entry not in namespace:
        return None, f"the code defines no `{entry}`"
    return namespace, ""


def run_task(result_fd: int, input_fd: int) -> None:
    """Serve one task: its spec is read from INPUT_FD, its frames go to RESULT_FD."""
    # Proves the sandbox started: anything that goes wrong before this is the harness's.
    _send(result_fd, 0, K_HELLO)
    chunks: list[bytes] = []
    while chunk := os.pread(input_fd, 1 << 20, sum(_len(part) for part in chunks)):
        chunks.append(chunk)
    os.close(input_fd)
    spec = marshal.loads(b"".join(chunks))
    _LIMITS.update(spec["limits"])
    calls: list[tuple[Any, ...]] = spec["calls"]
    # kill(-1) is how a call's leftovers are removed; as root it would hit the whole host,
    # so it is refused here whatever the harness asked for.
    kill_all: bool = spec["kill_all"] and os.getuid() != 0 and os.geteuid() != 0
    first = calls[0][0] if calls else 0
    cpu_seconds = spec.get("cpu_seconds")
    if cpu_seconds:
        # In a session the rlimit set at its start is the session's; a task gets its own.
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    # Not dumpable: a call's process (same uid) then cannot open /proc/<this>/fd/RESULT_FD or
    # ptrace this server to write frames in its name.
    import ctypes

    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)

    namespace, problem = _load(spec["code"], spec["entry"])
    if namespace is None:
        _send(result_fd, first, K_LOAD_ERROR, problem.encode("utf-8", "replace"))
        return
    if kill_all:
        # Whatever the module started while loading does not get to watch the calls.
        _try_kill(-1)
    _reap_all(kill_all)
    _send(result_fd, first, K_LOADED)
    for call in calls:
        index, kind, payload = _serve_call(namespace, spec["entry"], call, result_fd, kill_all)
        _send(result_fd, index, kind, payload)


def main() -> None:
    run_task(int(sys.argv[1]), int(sys.argv[2]))


# --- The session: one sandbox serving task after task ------------------------------------
#
# Started once (per harness thread) instead of once per task, it saves the sandbox's and the
# interpreter's start-up (~25 ms) for every task. It never runs model code itself: each task
# runs in a child forked from it, exactly as a fresh `run_task` process would, with its own
# result, input, stdout and stderr descriptors, which the harness sends with the request
# (SCM_RIGHTS on CONTROL_FD). When the task's process has exited, the session kills whatever
# is left (`kill(-1)`; as PID 1 of the namespace it is itself out of reach of that and of any
# signal from inside), reaps, empties the work dir and removes SysV IPC objects, and only then
# reports the task done: `D` + `>iB` (the task process's wait status, whether all of that
# succeeded). The harness reads a task's frames from that task's own pipe, so nothing a task
# leaves running can write into the next task's results; a session that is not clean is
# thrown away by the harness.
#
# Used only where `kill(-1)` is confined to the sandbox and the session is its namespace's
# PID 1 (the full tier).

S_READY = b"R"
S_TASK = b"T"
S_DONE = b"D"
DONE = struct.Struct(">iB")
_TASK_FDS = 4  # result, input, stdout, stderr
_IPC_RMID = 0


def _wipe(path: str) -> bool:
    """Empty the work dir (a task may have made its directories unreadable)."""
    import shutil

    def unlock(_function: object, failed: str, _error: object) -> None:
        with _suppress_oserror():
            os.chmod(os.path.dirname(failed), 0o700)
        with _suppress_oserror():
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    try:
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, onerror=unlock)
            else:
                os.unlink(entry.path)
        return not os.listdir(path)
    except (OSError, RecursionError):
        return False


def _remove_ipc(libc: Any) -> bool:
    """Remove the SysV shared memory, message queues and semaphores tasks left in the
    session's IPC namespace (they outlive their processes)."""
    try:
        for kind in ("shm", "msg", "sem"):
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
            for row in rows:
                ident = int(row.split()[1])
                if kind == "sem":
                    libc.semctl(ident, 0, _IPC_RMID)
                else:
                    getattr(libc, f"{kind}ctl")(ident, _IPC_RMID, None)
            with open(f"/proc/sysvipc/{kind}") as table:
                if table.read().splitlines()[1:]:
                    return False
    except (OSError, ValueError, IndexError):
        return False
    return True


def _wait_for(pid: int) -> int:
    """The wait status of child `pid`; orphans reparented here meanwhile are reaped too, so
    their zombies do not count against the process limit."""
    while True:
        try:
            done, status = _waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if done == pid:
            return status


def serve() -> None:
    import ctypes
    import resource  # noqa: F401  (imported once here, not in every task)
    import shutil  # noqa: F401
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    channel = socket.socket(fileno=int(sys.argv[2]))
    workdir = os.getcwd()
    channel.send(S_READY)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(channel, 16, _TASK_FDS)
        except OSError:
            return
        if message != S_TASK or _len(fds) != _TASK_FDS:
            return  # the harness closed the session (or broke the protocol): end it
        result_fd, input_fd, out_fd, err_fd = fds
        pid = _fork()
        if pid == 0:
            code = 70
            try:
                channel.close()
                os.dup2(out_fd, 1)
                os.dup2(err_fd, 2)
                os.close(out_fd)
                os.close(err_fd)
                run_task(result_fd, input_fd)
                code = 0
            finally:
                _exit(code)
        for fd in fds:
            os.close(fd)
        status = _wait_for(pid)
        _try_kill(-1)
        _reap_all(True)
        clean = _wipe(workdir) and _remove_ipc(libc)
        channel.send(S_DONE + DONE.pack(status, clean))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    else:
        main()
