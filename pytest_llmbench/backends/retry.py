"""Our bounded retry of infrastructure failures (never of a model's answer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..exchange import BackendError

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try (connection lost, HTTP 5xx); `error` is raised when none is
    left."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    delays_s: tuple[float, ...] = (0.5, 2.0)

    def delay(self, retry: int) -> float:
        if not self.delays_s:
            return 0.0
        return self.delays_s[min(retry, len(self.delays_s) - 1)]


def run_with_retries(
    attempt: Callable[[int], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call `attempt(retries_so_far)` until it returns or raises something not Transient."""
    retries = 0
    while True:
        try:
            return attempt(retries)
        except Transient as exc:
            if retries >= policy.max_retries:
                raise exc.error from exc
            sleep(policy.delay(retries))
            retries += 1
