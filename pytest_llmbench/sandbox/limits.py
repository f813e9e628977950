"""Resource limits for one sandboxed run, and their `prlimit` command line."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-process limits (rlimits) plus the work dir's capacity.

    The address-space cap times the process cap bounds what one sandbox can commit, so both
    stay small: a fork bomb of memory bombs is at most `processes * address_space`.
    """

    address_space: int = 768 * MIB
    processes: int = 24
    open_files: int = 64
    file_size: int = 16 * MIB
    cpu_seconds: int = 30
    workdir_bytes: int = 16 * MIB
    workdir_inodes: int = 2048

    def with_cpu_for(self, wall_seconds: float) -> Limits:
        """A CPU-time backstop a little above the wall-clock deadline (the deadline is what
        normally ends a run; this catches a process whose parent lost track of it)."""
        return replace(self, cpu_seconds=max(1, math.ceil(wall_seconds) + 2))


PYTHON_LIMITS = Limits()
SHELL_LIMITS = Limits(processes=32)


def prlimit_argv(limits: Limits) -> list[str]:
    """`prlimit` options that set every limit hard and soft, so the sandbox cannot raise them."""

    def both(name: str, value: int) -> str:
        return f"--{name}={value}:{value}"

    return [
        "/usr/bin/prlimit",
        both("as", limits.address_space),
        both("nproc", limits.processes),
        both("nofile", limits.open_files),
        both("fsize", limits.file_size),
        both("cpu", limits.cpu_seconds),
        both("core", 0),
        "--",
    ]
