"""LM Studio's `lms` command, for servers older than the REST load/unload API (< 0.4)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..exchange import BackendError


def find_lms() -> str | None:
    """`lms` on PATH, else where LM Studio's installer puts it."""
    found = shutil.which("lms")
    if found:
        return found
    default = Path.home() / ".lmstudio" / "bin" / "lms"
    return str(default) if default.is_file() else None


class LmsCli:
    def __init__(self, executable: str, *, timeout_s: float) -> None:
        self.executable = executable
        self.timeout_s = timeout_s

    def list_json(self) -> list[dict[str, Any]]:
        output = self._run(["ls", "--json"], self.timeout_s)
        try:
            models = json.loads(output)
        except json.JSONDecodeError as exc:
            raise BackendError(f"`lms ls --json` did not print JSON: {output[:200]}") from exc
        if not isinstance(models, list):
            raise BackendError("`lms ls --json` did not print a list")
        return [m for m in models if isinstance(m, dict)]

    def load(self, key: str, context_length: int | None, timeout_s: float) -> float:
        """Load `key` under its own name as identifier; returns the seconds it took."""
        args = ["load", key, "-y", "--identifier", key]
        if context_length:
            args += ["--context-length", str(context_length)]
        started = time.monotonic()
        self._run(args, timeout_s)
        return time.monotonic() - started

    def unload(self, identifier: str) -> None:
        self._run(["unload", identifier], self.timeout_s)

    def _run(self, args: list[str], timeout_s: float) -> str:
        command = [self.executable, *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                f"`lms {' '.join(args)}` did not finish within {timeout_s:g}s"
            ) from exc
        except OSError as exc:
            raise BackendError(f"cannot run {self.executable}: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise BackendError(
                f"`lms {' '.join(args)}` failed (exit {done.returncode}): "
                f"{detail[-1] if detail else 'no output'}"
            )
        return done.stdout
