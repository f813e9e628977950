"""Isolation for model-written code and commands.

The suites call only `get_sandbox()` and the `Sandbox` methods; see `base.py` for the contract
and DESIGN.md section 5 for the facts the tiers are built on.
"""

from __future__ import annotations

import threading
from typing import Literal

from .base import (
    FileEntry,
    PyCall,
    PyOutcome,
    PyStatus,
    Sandbox,
    SandboxError,
    ShellResult,
    Tier,
)
from .selftest import INSTALL_HINT, SelfTest, run_self_test
from .tiers import make_sandbox

__all__ = [
    "FileEntry",
    "PyCall",
    "PyOutcome",
    "PyStatus",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "SelfTest",
    "ShellResult",
    "Tier",
    "get_sandbox",
    "self_test",
]

Required = Literal["auto", "full", "reduced"]
_STRENGTH: dict[str, int] = {"reduced": 1, "full": 2}
_lock = threading.Lock()
_result: SelfTest | None = None


class SandboxUnavailable(Exception):
    """The isolation asked for cannot be provided here; the message says what is missing."""


def self_test() -> SelfTest:
    """The self-test's verdict, computed once per process."""
    global _result
    with _lock:
        if _result is None:
            _result = run_self_test()
        return _result


def _explain(result: SelfTest, required: str) -> str:
    lines = [f"sandbox isolation {required!r} is not available on this machine."]
    for tier, problems in result.problems.items():
        lines += [f"  {tier} tier: {problem}" for problem in problems]
    if "full" in result.problems:
        lines.append(f"For full isolation, {INSTALL_HINT}.")
    return "\n".join(lines)


def get_sandbox(required: Required = "auto") -> Sandbox:
    """The strongest sandbox that works here, at least as strong as `required` ("auto": the
    strongest there is, but never none). Raises SandboxUnavailable otherwise."""
    if required not in ("auto", "full", "reduced"):
        raise ValueError(f"required must be 'auto', 'full' or 'reduced', not {required!r}")
    result = self_test()
    best = result.best
    if best is None or (required != "auto" and _STRENGTH[best] < _STRENGTH[required]):
        raise SandboxUnavailable(_explain(result, "full" if required == "auto" else required))
    return make_sandbox(best)
