"""Reading a sandbox's pipes without ever blocking on them, and noticing when it ends."""

from __future__ import annotations

import os
import selectors
from collections.abc import Sequence

READ_CHUNK = 1 << 16


class CappedBuffer:
    """Keeps the first `keep` bytes of a stream and counts the rest.

    The rest is still read (a writer blocked on a full pipe would turn a chatty command into a
    timeout) up to `flood` bytes in total; beyond that the run is ended as a flood.
    """

    def __init__(self, keep: int, flood: int) -> None:
        self.keep = keep
        self.flood = flood
        self.data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    @property
    def flooded(self) -> bool:
        return self.total > self.flood

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def tail(self, size: int = 2000) -> str:
        return self.data[-size:].decode("utf-8", errors="replace")


class Watcher:
    """Multiplexes the read ends of a sandbox's pipes and its exit (through a pidfd)."""

    def __init__(self, pid: int, fds: Sequence[int]) -> None:
        self._selector = selectors.DefaultSelector()
        self._pidfd = os.pidfd_open(pid)
        self._selector.register(self._pidfd, selectors.EVENT_READ)
        self._open: set[int] = set()
        for fd in fds:
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ)
            self._open.add(fd)
        self.exited = False

    def poll(self, timeout: float) -> list[tuple[int, bytes]]:
        """Chunks read within `timeout` seconds (an empty chunk means end of file); sets
        `exited` once the process has ended."""
        chunks: list[tuple[int, bytes]] = []
        for key, _ in self._selector.select(max(timeout, 0.0)):
            fd = int(key.fd)
            if fd == self._pidfd:
                self.exited = True
                self._selector.unregister(fd)
                continue
            chunks.extend(self._read(fd))
        return chunks

    def _read(self, fd: int) -> list[tuple[int, bytes]]:
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return []
        except ConnectionResetError:  # a socket whose peer died with data unread: its end
            chunk = b""
        if not chunk:
            self._selector.unregister(fd)
            self._open.discard(fd)
        return [(fd, chunk)]

    def drain(self, limit: int = 64 << 20) -> list[tuple[int, bytes]]:
        """Whatever the pipes still hold once every writer is gone (bounded by `limit`)."""
        chunks: list[tuple[int, bytes]] = []
        budget = limit
        for fd in sorted(self._open):
            while fd in self._open and budget > 0:
                read = self._read(fd)
                if not read:
                    break
                chunks.extend(read)
                budget -= len(read[0][1])
        return chunks

    def close(self) -> None:
        self._selector.close()
        os.close(self._pidfd)
