"""Read what a shell run left in its work dir, as plain data.

Runs in the harness after every sandboxed process is gone. It never follows a symlink, never
opens anything but a regular file (a FIFO would block, a device could do anything), and caps
what it reads, so a hostile work dir can neither redirect nor stall the inspection.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .base import FileEntry, FileKind

MAX_ENTRIES = 10_000
MAX_FILE_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 8 << 20


def _read_regular(path: str, budget: int) -> tuple[bytes, bool]:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"", True  # it changed under us; no sandboxed process should be left
        limit = min(MAX_FILE_BYTES, budget)
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        return data[:limit], len(data) > limit
    finally:
        os.close(fd)


def _special_kind(mode: int) -> FileKind:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def snapshot(root: Path) -> dict[str, FileEntry]:
    """Every entry under `root` (relative posix path -> FileEntry), at most MAX_ENTRIES."""
    entries: dict[str, FileEntry] = {}
    budget = MAX_TOTAL_BYTES
    pending = [""]
    while pending and len(entries) < MAX_ENTRIES:
        relative_dir = pending.pop()
        directory = os.path.join(root, relative_dir) if relative_dir else str(root)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if len(entries) >= MAX_ENTRIES:
                break
            relative = f"{relative_dir}/{name}" if relative_dir else name
            full = os.path.join(directory, name)
            try:
                mode = os.lstat(full).st_mode
            except OSError:
                continue
            key = os.fsdecode(relative)
            if stat.S_ISLNK(mode):
                entries[key] = FileEntry(kind="symlink")
            elif stat.S_ISDIR(mode):
                entries[key] = FileEntry(kind="dir")
                pending.append(relative)
            elif stat.S_ISREG(mode):
                try:
                    content, truncated = _read_regular(full, budget)
                except OSError:
                    entries[key] = FileEntry(kind="file", content=None, truncated=True)
                    continue
                budget -= len(content)
                entries[key] = FileEntry(kind="file", content=content, truncated=truncated)
            else:
                entries[key] = FileEntry(kind=_special_kind(mode))
    return dict(sorted(entries.items()))
