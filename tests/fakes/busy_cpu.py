"""A busy machine on demand: this process pinned to one CPU shared with busy loops."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_busy_cpu(spinners: int = 6) -> Iterator[None]:
    """Pin this process (all its threads: sandboxes are started from a thread of their own),
    and so every sandbox it starts, to one CPU shared with `spinners` busy loops (6: a call gets
    about 1/7 of the CPU)."""
    saved = os.sched_getaffinity(0)
    started: list[subprocess.Popen[bytes]] = []
    try:
        _pin_threads({min(saved)})
        for _ in range(spinners):  # started after the pinning: they inherit it
            started.append(
                subprocess.Popen(
                    # each its own session: with autogroup scheduling, a session shares the
                    # CPU as one, and the sandbox starts a session of its own
                    [sys.executable, "-c", "while True: pass"],
                    start_new_session=True,
                )
            )
        time.sleep(0.5)  # until they spin
        yield
    finally:
        for process in started:
            process.kill()
            process.wait()
        _pin_threads(saved)


def _pin_threads(cpus: set[int]) -> None:
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread has ended meanwhile
            os.sched_setaffinity(int(thread), cpus)
