"""What the suites ask of a sandbox, and the plain data it hands back.

The sandbox runs model-written code and commands and returns plain values; the verdict is
computed by the suites in the parent. Expected values never enter the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Tier = Literal["full", "reduced", "none"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (it could not start, or its set-up broke), as opposed to the
    model's code or command failing inside it: an infrastructure error, not a model failure."""


@dataclass(frozen=True)
class PyCall:
    """One case's call: `setup` runs first (in a copy of the module's namespace), then `call`
    (a Python expression, default `<entry_point>(*args, **kwargs)`) gives the result."""

    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    setup: str | None = None
    call: str | None = None
    timeout_s: float = 10.0


PyStatus = Literal["ok", "raised", "timeout", "crashed", "bad_result", "load_error"]


@dataclass(frozen=True)
class PyOutcome:
    """What one call produced.

    ok: `value` holds the result as a plain value (None, bool, int, float, str, list, tuple,
        dict with str keys), exact types preserved.
    raised: the call raised; `exception` is the exception's type name.
    timeout: the call ran past its deadline.
    crashed: the interpreter died or exited during the call.
    bad_result: the result was not a plain value or was too large/deep.
    load_error: the model's code failed to load or lacks the entry point.
    """

    status: PyStatus
    value: Any = None
    exception: str | None = None
    detail: str = ""
    seconds: float = 0.0


FileKind = Literal["file", "dir", "symlink", "fifo", "socket", "device", "other"]
_KIND_WORDS: dict[str, str] = {
    "file": "a regular file",
    "dir": "a directory",
    "symlink": "a symlink",
    "fifo": "a FIFO",
    "socket": "a socket",
    "device": "a device",
    "other": "an unknown kind of file",
}


@dataclass(frozen=True)
class FileEntry:
    kind: FileKind
    content: bytes | None = None  # regular files only, capped
    truncated: bool = False

    @property
    def kind_in_words(self) -> str:
        """ "a FIFO", "a directory": for details a user reads."""
        return _KIND_WORDS[self.kind]


@dataclass(frozen=True)
class ShellResult:
    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    files: Mapping[str, FileEntry]  # work-dir relative path -> entry, inspected after the run
    seconds: float = 0.0
    output_truncated: bool = False
    # The stream ("stdout" or "stderr") that passed `flood_limit` bytes: the command was
    # stopped there, so it has no exit code.
    flooded: str | None = None
    flood_limit: int = 0


class Sandbox(Protocol):
    tier: Tier

    def run_python(self, code: str, entry_point: str, calls: Sequence[PyCall]) -> list[PyOutcome]:
        """Load `code` once, then run each call with its own deadline; one outcome per call."""
        ...

    def run_shell(
        self,
        command: str,
        files: Mapping[str, str],
        tools: Sequence[str],
        timeout_s: float,
    ) -> ShellResult:
        """Run `command` with /bin/sh in a fresh work dir holding `files`, with only `tools`
        on PATH; report output, exit code and the resulting files."""
        ...

    def close(self) -> None:
        """End whatever the sandbox keeps running between runs (it also ends with the
        process); the sandbox still works afterwards, starting afresh."""
        ...
