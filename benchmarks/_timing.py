"""Shared by the benchmarks: time whole commands, alternating, and report medians and ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    """The user's environment, with bytecode caching on (as users have it) and no LLMBENCH_*
    settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMBENCH_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(
    command: Sequence[str], cwd: Path, env: dict[str, str] | None = None, ok: Sequence[int] = (0, 1)
) -> float:
    """Seconds one run of `command` took, start-up included; its output is discarded. Exit
    codes other than `ok` stop the benchmark (1, some cases failed, is a result)."""
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env or environment(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def spread(values: Sequence[float]) -> str:
    return (
        f"median {statistics.median(values):.2f}s "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
