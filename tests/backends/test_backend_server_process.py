"""A server we started does not outlive pytest, even when pytest is killed outright."""

from __future__ import annotations

import os
import subprocess
import sys
import time

CHILD = """
import os, signal, sys
from pytest_llmbench.backends.server_process import ServerProcess
server = ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"])
print(server.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit hook, no finally: only the kernel can help
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_the_server_dies_when_its_parent_is_killed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )  # fmt: skip
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"server {pid} outlived its killed parent"
