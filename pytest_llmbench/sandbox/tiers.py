"""A Sandbox is a launcher (how processes are isolated) plus the two runners."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .base import PyCall, PyOutcome, ShellResult, Tier
from .launch import BwrapLauncher, Launcher, ReducedLauncher, UnisolatedLauncher
from .pyrunner import PythonRunner
from .shell import ShellRunner


class IsolatedSandbox:
    """Implements the `Sandbox` protocol for one tier."""

    def __init__(self, launcher: Launcher) -> None:
        self.tier: Tier = launcher.tier
        self.python = PythonRunner(launcher)
        self.shell = ShellRunner(launcher)

    def run_python(self, code: str, entry_point: str, calls: Sequence[PyCall]) -> list[PyOutcome]:
        return self.python.run(code, entry_point, calls)

    def run_shell(
        self,
        command: str,
        files: Mapping[str, str],
        tools: Sequence[str],
        timeout_s: float,
    ) -> ShellResult:
        return self.shell.run(command, files, tools, timeout_s)

    def close(self) -> None:
        """End the python sandboxes kept between tasks (they also end with the process)."""
        self.python.close()

    def __repr__(self) -> str:
        return f"IsolatedSandbox(tier={self.tier!r})"


def make_sandbox(tier: Tier) -> IsolatedSandbox:
    """A sandbox of exactly `tier`, without checking that it works here (that is the
    self-test's job; use `get_sandbox`). `none` exists for benchmark baselines only."""
    launchers: dict[Tier, Launcher] = {
        "full": BwrapLauncher(),
        "reduced": ReducedLauncher(),
        "none": UnisolatedLauncher(),
    }
    return IsolatedSandbox(launchers[tier])
