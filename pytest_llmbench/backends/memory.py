"""What a loaded model costs in memory: measured from its server processes, or as a server says.

- Measured (the embedded backend, whose llama-server processes run here): a daemon thread reads
  each process's resident memory from /proc every SAMPLE_S while the model is loaded. `steady`
  is the median of the summed samples; `peak` the sum of each process's own high-water mark
  (the kernel's VmHWM: exact for one server, an upper bound for several, whose peaks need not
  coincide).
- Reported (servers elsewhere): what the server says of the model. Ollama's `/api/ps` gives the
  memory the loaded model takes; LM Studio's model listing and llama-server's model metadata
  give the size of its weights, a lower bound of what it takes once loaded.
- Otherwise nothing is known, and reports say "n/a".

Every figure carries its source: a reader can tell a measurement from a server's word.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_S = 0.5  # seconds between samples: benchmarks/memory_sampling.py measures the cost


@dataclass(frozen=True)
class MemoryFigure:
    """A model's memory, in bytes, with where the numbers come from."""

    peak_bytes: int | None = None
    steady_bytes: int | None = None
    source: str = "n/a"
    measured: bool = False
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryFigure:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def known(self) -> int | None:
        """The figure to compare models by: the peak, else the steady level."""
        return self.peak_bytes if self.peak_bytes is not None else self.steady_bytes


NOT_KNOWN = MemoryFigure()


def reported(size_bytes: object, source: str) -> MemoryFigure:
    """A figure a server reported (one number: it says nothing of peaks)."""
    if isinstance(size_bytes, int) and not isinstance(size_bytes, bool) and size_bytes > 0:
        return MemoryFigure(size_bytes, size_bytes, f"reported: {source}", measured=False)
    return NOT_KNOWN


def _status_kib(pid: int, fields: Sequence[str]) -> dict[str, int]:
    """Fields of /proc/<pid>/status in KiB ({} once the process is gone)."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            found[name] = int(value.split()[0])
    return found


def resident(pids: Sequence[int]) -> tuple[int, int]:
    """(resident bytes now, sum of each process's peak resident bytes) of `pids`."""
    now = peak = 0
    for pid in pids:
        fields = _status_kib(pid, ("VmRSS", "VmHWM"))
        now += fields.get("VmRSS", 0) * 1024
        peak += fields.get("VmHWM", 0) * 1024
    return now, peak


class MemorySampler:
    """Samples the resident memory of a model's server processes until stopped."""

    def __init__(
        self, pids: Callable[[], Sequence[int]], what: str, interval_s: float | None = None
    ) -> None:
        self._pids = pids
        self._what = what
        self._interval_s = interval_s if interval_s is not None else SAMPLE_S
        self._samples: list[int] = []
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmbench-memory", daemon=True)

    def start(self) -> MemorySampler:
        self._sample()  # at once: the loaded model, before any request
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        now, peak = resident(self._pids())
        if now <= 0:
            return  # the processes are gone
        with self._lock:
            self._samples.append(now)
            self._peak = max(self._peak, peak, now)

    def reading(self) -> MemoryFigure:
        with self._lock:
            samples, peak = list(self._samples), self._peak
        if not samples:
            return NOT_KNOWN
        every = f"every {self._interval_s:g} s"
        return MemoryFigure(
            peak_bytes=peak,
            steady_bytes=int(statistics.median(samples)),
            source=f"measured: resident memory of {self._what} (/proc, {every})",
            measured=True,
            samples=len(samples),
        )

    def stop(self) -> MemoryFigure:
        """Stop sampling (after one last sample); the figure of the whole load."""
        self._sample()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return self.reading()
