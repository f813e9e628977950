"""Our bounded retry of infrastructure failures (never of a model's answer)."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..exchange import BackendError

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try (connection lost, HTTP 5xx, HTTP 429, a stream cut short);
    `error` is raised when none is left. `wait_s` is how long the server asked us to wait
    (HTTP 429's Retry-After), if it said."""

    def __init__(self, error: BackendError, wait_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.wait_s = wait_s


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    delays_s: tuple[float, ...] = (0.5, 2.0)
    # A server asking for a longer pause than this (Retry-After) is not waited for: the
    # request fails at once instead of stalling the run.
    max_wait_s: float = 60.0

    def delay(self, retry: int) -> float:
        if not self.delays_s:
            return 0.0
        return self.delays_s[min(retry, len(self.delays_s) - 1)]


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def run_with_retries(
    attempt: Callable[[int], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call `attempt(retries_so_far)` until it returns or raises something not Transient.

    The BackendError finally raised carries the number of retries spent (`retries`)."""
    retries = 0
    while True:
        try:
            return attempt(retries)
        except Transient as exc:
            wait = policy.delay(retries)
            if exc.wait_s is not None:
                if exc.wait_s > policy.max_wait_s:
                    exc.error.message += (
                        f" (the server asked to retry after {exc.wait_s:g}s, longer than the "
                        f"{policy.max_wait_s:g}s we wait)"
                    )
                    exc.error.args = (exc.error.message,)
                    exc.error.retries = retries
                    raise exc.error from exc
                wait = max(wait, exc.wait_s)
            if retries >= policy.max_retries:
                exc.error.retries = retries
                raise exc.error from exc
            sleep(wait)
            retries += 1
        except BackendError as exc:
            exc.retries = retries
            raise
