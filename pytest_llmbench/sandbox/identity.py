"""Which uid a sandboxed run gets.

When the harness runs as root, each run gets a uid of its own from a pool (claimed with an
`flock`, so parallel pytest-xdist workers never share one). Exclusivity is what makes two of
the defences sound: `kill(-1)` from inside the sandbox reaches only that run's processes, and
RLIMIT_NPROC (which counts per uid) is not shared with a neighbouring run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

UID_BASE = 2_000_000_000  # far above login and subordinate-uid ranges
POOL_SIZE = 256
LOCK_DIR = Path("/run/llmbench")


def running_as_root() -> bool:
    return os.geteuid() == 0


def _uid_is_free(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return True
    return False


@contextlib.contextmanager
def claim_uid() -> Iterator[int | None]:
    """Yield an exclusive sandbox uid for the duration of a run; None when not root (the
    sandbox then runs as the harness user, which is all an unprivileged user can do)."""
    if not running_as_root():
        yield None
        return
    # 0711: the work dirs' mount points live below it and the sandbox user must reach them.
    LOCK_DIR.mkdir(mode=0o711, exist_ok=True)
    os.chmod(LOCK_DIR, 0o711)
    for slot in range(POOL_SIZE):
        uid = UID_BASE + slot
        fd = os.open(LOCK_DIR / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not _uid_is_free(uid):
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # closing releases the lock
        return
    raise RuntimeError(f"all {POOL_SIZE} sandbox uids are in use")
