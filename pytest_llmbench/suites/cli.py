"""The cli suite: the model writes one shell command; it runs in the sandbox; its effect is
checked."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..sandbox.base import Sandbox, ShellResult
from ..taskfiles.format import CliCase, CliTask
from .answer import SHELL_LANGS, first_block, shell_command
from .base import (
    Chat,
    Generation,
    RequestSettings,
    Verdict,
    missing_answer,
    prompt_messages,
    single_answer,
    single_within_budget,
)

SYSTEM = (
    "You are a shell expert. Answer with one shell command on a single line inside a ```bash "
    "fenced code block, and nothing else. Use only standard POSIX tools and relative paths in "
    "the current directory."
)


def path_violation(command: str) -> str | None:
    """Why `command` leaves the work dir by its paths (absolute, `~`, `..`), or None.

    This is a task rule, parsed with shlex so that quoted programs such as awk '$1 ~ /x/' and
    names such as file.rm are fine; the sandbox, not this check, is the security boundary.
    """
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as exc:
        return f"cannot parse the command: {exc}"
    quoted = _quoted_words(command)
    for word in words:
        if word in quoted:
            # A quoted argument is data to its program (an awk or sed script, a grep pattern
            # such as '/api/'); telling it from a path is guesswork, and the sandbox shows no
            # host files anyway, so quoted words are left alone.
            continue
        if word.startswith("/"):
            return f"absolute path {word!r}"
        if word.startswith("~"):
            return f"home directory in {word!r}"
        if "=" in word and word.split("=", 1)[1].startswith(("/", "~")):
            return f"path outside the work dir in {word!r}"
        for part in word.replace("=", "/").split("/"):
            if part == "..":
                return f"parent directory in {word!r}"
    return None


def _quoted_words(command: str) -> set[str]:
    """The words of `command` that were written inside quotes (their unquoted text)."""
    quoted: set[str] = set()
    lexer = shlex.shlex(command, posix=False, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        for raw in lexer:
            if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0]:
                quoted.add(raw[1:-1])
    except ValueError:
        pass
    return quoted


@dataclass(frozen=True)
class CliExecution:
    verdict: Verdict | None  # set when nothing ran (no command, cut off, rejected)
    command: str
    result: ShellResult | None
    reference: ShellResult | None = None  # the reference command's run, for matches_reference


def effects_differ(run: ShellResult, reference: ShellResult) -> str | None:
    """How the model's run differs from the reference's: stdout, then the work dir's files."""
    if _lines(run.stdout) != _lines(reference.stdout):
        return f"stdout was {run.stdout[:200]!r}, the reference printed {reference.stdout[:200]!r}"
    for name in sorted(set(run.files) | set(reference.files)):
        mine, theirs = run.files.get(name), reference.files.get(name)
        if theirs is None:
            return f"{name} should not exist"
        if mine is None:
            return f"{name} is missing"
        if mine.kind != theirs.kind:
            return f"{name} is {mine.kind_in_words}, expected {theirs.kind_in_words}"
        if mine.kind == "file" and (mine.content or b"").rstrip(b"\n") != (
            theirs.content or b""
        ).rstrip(b"\n"):
            text = (mine.content or b"").decode("utf-8", errors="replace")
            return f"{name} holds {text[:200]!r}, not what the reference writes"
    return None


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


class CliSuite:
    name = "cli"
    uses_sandbox = True

    def shown(self, task: CliTask) -> dict[str, Any]:
        return {"messages": prompt_messages(task.system or SYSTEM, self.prompt(task))}

    def generate(
        self, task: CliTask, model: str, chat: Chat, settings: RequestSettings
    ) -> Generation:
        messages = self.shown(task)["messages"]
        return single_answer(model, messages, self.reply_for(task.reference), chat, settings)

    def within_budget(self, task: CliTask, generation: Generation, budget: int) -> Generation:
        return single_within_budget(generation, budget)

    @staticmethod
    def reply_for(answer: str) -> str:
        """What a pseudo-model says to give `answer` (the reference, or a control's)."""
        return f"```bash\n{answer}\n```"

    @staticmethod
    def prompt(task: CliTask) -> str:
        files = ", ".join(sorted(task.files)) or "none"
        tools = ", ".join(task.tools)
        return (
            f"{task.prompt}\n\nFiles in the current directory: {files}.\nAvailable tools: {tools}."
        )

    def execute(
        self, task: CliTask, generation: Generation, sandbox: Sandbox | None
    ) -> CliExecution:
        block = first_block(generation.answer, SHELL_LANGS)
        command = shell_command(block) if block is not None else ""
        if not command or (generation.truncated and block is not None and not block.closed):
            return CliExecution(missing_answer(generation, "shell command"), command, None)
        problem = path_violation(command)
        if problem is not None:
            return CliExecution(
                Verdict("failed", f"rejected before running: {problem}"), command, None
            )
        assert sandbox is not None, "the cli suite runs commands in the sandbox"
        reference = None
        if any(case.matches_reference for case in task.cases):
            # The twin run: the reference command on the same files, in its own sandbox.
            reference = sandbox.run_shell(task.reference, task.files, task.tools, task.timeout_s)
        run = sandbox.run_shell(command, task.files, task.tools, task.timeout_s)
        return CliExecution(None, command, run, reference)

    def score(
        self, task: CliTask, case: CliCase, generation: Generation, execution: CliExecution
    ) -> Verdict:
        if execution.verdict is not None:
            return execution.verdict
        run = execution.result
        assert run is not None
        if run.timed_out:
            return Verdict(
                "timeout", f"`{execution.command}` ran past its {task.timeout_s:g}s limit"
            )
        if run.flooded:
            return Verdict(
                "failed",
                f"{run.flooded} exceeded {run.flood_limit:,} bytes, so `{execution.command}` "
                "was stopped",
            )
        if case.matches_reference:
            reference = execution.reference
            assert reference is not None
            if run.exit_code != reference.exit_code:
                return Verdict(
                    "failed", f"exit code {run.exit_code}, the reference's {reference.exit_code}"
                )
            why = effects_differ(run, reference)
            return Verdict("passed") if why is None else Verdict("failed", why)
        if case.exit_code is not None:
            return self._check(
                run.exit_code == case.exit_code,
                f"exit code {run.exit_code}, expected {case.exit_code}",
            )
        if run.exit_code != 0:
            tail = run.stderr.strip().splitlines()[-1:] or [""]
            return Verdict(
                "failed", f"`{execution.command}` exited {run.exit_code}: {tail[0][:200]}"
            )
        if case.stdout is not None:
            return self._check(
                run.stdout.rstrip("\n") == case.stdout.rstrip("\n"),
                f"stdout was {run.stdout[:200]!r}",
            )
        if case.stdout_lines is not None:
            return self._check(
                _lines(run.stdout) == _lines("\n".join(case.stdout_lines)),
                f"stdout lines were {_lines(run.stdout)[:20]!r}",
            )
        if case.stdout_words is not None:
            return self._check(
                run.stdout.split() == case.stdout_words,
                f"stdout words were {run.stdout.split()[:20]!r}",
            )
        assert case.file is not None
        entry = run.files.get(case.file.name)
        if entry is None or entry.kind != "file" or entry.content is None:
            kind = "missing" if entry is None else entry.kind_in_words
            return Verdict("failed", f"{case.file.name} is {kind}, expected a regular file")
        text = entry.content.decode("utf-8", errors="replace")
        return self._check(
            text.rstrip("\n") == case.file.content.rstrip("\n"),
            f"{case.file.name} holds {text[:200]!r}",
        )

    @staticmethod
    def _check(ok: bool, why_not: str) -> Verdict:
        return Verdict("passed") if ok else Verdict("failed", why_not)
