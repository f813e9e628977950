"""Reaping supervisor for the reduced tier; runs as the HARNESS user, outside any namespace.

Passed to `python3 -I -S -c` as source (stdlib only). argv: `-c MODE -- COMMAND...` where MODE
is `uid:N` (COMMAND drops to the exclusive uid N) or `tree` (no uid drop was possible).

Without a PID namespace, two things go wrong: orphans of the command are reparented to the
host's PID 1, which on these machines never reaps them (zombies count against the sandbox
uid's process limit forever), and `setsid` daemons escape the process group. So this process
becomes a child subreaper (orphans come to it), and when the command ends, times out (SIGTERM
from the harness) or the harness dies (parent-death signal), it kills every process of the
sandbox uid - by calling `kill(-1)` *as that uid*, which the kernel applies atomically with
respect to fork - and reaps until it has no children left. It exits with the command's status.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _kill_uid(uid: int) -> None:
    """kill(-1, SIGKILL) from a throwaway child running as `uid`: reaches every process of
    that uid (and nothing else), never this supervisor."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if os.getuid() == uid != 0 and os.geteuid() == uid:
                os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        os._exit(0)
    # The throwaway child killed everything else of the uid, including processes that a
    # fork bomb started while it ran; it is reaped by the wait loop below.


def _kill_tree() -> None:
    """Without an exclusive uid: kill our children (orphans come to us as subreaper) and
    their descendants, as far as /proc shows them. Best effort; the full tier does better."""
    pending = [os.getpid()]
    seen = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                children = [int(word) for word in handle.read().split()]
        except OSError:
            children = []
        for child in children:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGSTOP)  # stop it first so it cannot fork further
            pending.append(child)
    for pid in seen - {os.getpid()}:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def main() -> None:
    mode = sys.argv[1]
    command = sys.argv[3:]
    uid = int(mode.split(":", 1)[1]) if mode.startswith("uid:") else None
    if uid == 0:
        sys.exit("refusing to sweep uid 0")

    def sweep() -> None:
        if uid is not None:
            _kill_uid(uid)
        else:
            _kill_tree()

    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sweep())
    if os.getppid() == 1:  # the harness died before the death signal was armed
        sys.exit(125)

    target = os.fork()
    if target == 0:
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execv(command[0], command)
        finally:
            os._exit(127)
    # Keep no copy of the pipes passed through to the command: the harness must see them
    # close when the sandbox is done.
    os.closerange(3, 1 << 16)
    status = 0
    while True:
        try:
            pid, raw = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == target:
            status = os.waitstatus_to_exitcode(raw)
            sweep()
    if status < 0:
        status = 128 - status
    sys.exit(status)


if __name__ == "__main__":
    main()
