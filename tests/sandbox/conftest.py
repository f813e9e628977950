"""Fixtures for the sandbox tests: one sandbox per tier this project promises on Linux.

A tier that does not work here makes its tests fail with the self-test's reasons; it is never
skipped (CI runs as root with bubblewrap installed).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from pytest_llmbench.sandbox import identity
from pytest_llmbench.sandbox.base import Tier
from pytest_llmbench.sandbox.selftest import probe
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

TIERS: tuple[Tier, ...] = ("full", "reduced")


@functools.cache
def _problems(tier: Tier) -> tuple[str, ...]:
    return tuple(probe(tier))


@pytest.fixture(params=TIERS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[IsolatedSandbox]:
    tier: Tier = request.param
    problems = _problems(tier)
    if problems:
        pytest.fail(f"the {tier} tier does not work here: " + "; ".join(problems))
    sandbox = make_sandbox(tier)
    yield sandbox
    sandbox.close()  # the python session it kept, so that no process of it is left


@pytest.fixture
def full_sandbox() -> Iterator[IsolatedSandbox]:
    problems = _problems("full")
    if problems:
        pytest.fail("the full tier does not work here: " + "; ".join(problems))
    sandbox = make_sandbox("full")
    yield sandbox
    sandbox.close()


def _processes_of(uid: int) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    with open(f"/proc/{name}/stat") as handle:
                        found.append(handle.read()[:80])
            except OSError:
                continue
    return found


class UidTracker:
    """Records the sandbox uids runs claimed, to check afterwards that none of them has a
    process left. A uid's lock is taken (waiting for whoever holds it now, e.g. another
    xdist worker) before looking, so a process seen then is a leftover of a finished run."""

    def __init__(self) -> None:
        self.uids: set[int] = set()

    def wrap(
        self, original: Callable[[], AbstractContextManager[int | None]]
    ) -> Callable[[], AbstractContextManager[int | None]]:
        @contextlib.contextmanager
        def claim() -> Iterator[int | None]:
            with original() as uid:
                if uid is not None:
                    self.uids.add(uid)
                yield uid

        return claim

    def leftovers(self) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for uid in sorted(self.uids):
            fd = os.open(identity.LOCK_DIR / f"uid-{uid}.lock", os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                processes = _processes_of(uid)
            finally:
                os.close(fd)
            if processes:
                found[uid] = processes
        return found


@pytest.fixture
def uid_tracker(monkeypatch: pytest.MonkeyPatch) -> UidTracker:
    from pytest_llmbench.sandbox import pyrunner, pysession, shell

    tracker = UidTracker()
    monkeypatch.setattr(pyrunner, "claim_uid", tracker.wrap(identity.claim_uid))
    monkeypatch.setattr(pysession, "claim_uid", tracker.wrap(identity.claim_uid))
    monkeypatch.setattr(shell, "claim_uid", tracker.wrap(identity.claim_uid))
    return tracker
