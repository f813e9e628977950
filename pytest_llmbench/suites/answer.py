"""Reading a model's answer: thinking text apart, the fenced block that holds the answer.

Backends already move server-side reasoning out of `content`; the suites split inline `<think>`
text again (`split_reasoning`) so that a code block inside thinking is never taken as the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..backends.reasoning import split_reasoning

__all__ = ["CodeBlock", "code_blocks", "first_block", "shell_command", "split_reasoning"]

# A fence opens at the start of a line with three or more backticks (or tildes) and an info
# string; it closes with the same run of characters on a line of its own.
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$", re.MULTILINE)


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str
    closed: bool  # False when the answer ended before the closing fence


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block in `text`, in order; a final unclosed block is marked as such."""
    blocks: list[CodeBlock] = []
    pos = 0
    while True:
        opening = _FENCE_OPEN.search(text, pos)
        if opening is None:
            return blocks
        fence = opening.group("fence")
        language = (
            opening.group("info").strip().split(" ")[0].lower()
            if opening.group("info").strip()
            else ""
        )
        body_start = opening.end() + 1
        closing = re.compile(
            rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE
        ).search(text, body_start)
        if closing is None:
            blocks.append(CodeBlock(language, text[body_start:], closed=False))
            return blocks
        blocks.append(CodeBlock(language, text[body_start : closing.start()].rstrip("\n"), True))
        pos = closing.end()


def first_block(text: str, languages: tuple[str, ...]) -> CodeBlock | None:
    """The first block labelled with one of `languages`; failing that, the first unlabelled one."""
    blocks = code_blocks(text)
    for block in blocks:
        if block.language in languages:
            return block
    for block in blocks:
        if not block.language:
            return block
    return None


PYTHON_LANGS = ("python", "py", "python3")
SHELL_LANGS = ("bash", "sh", "shell", "console", "zsh")


def shell_command(block: CodeBlock) -> str:
    """The command a cli answer gives: the first non-blank line, without a `$ ` prompt."""
    for line in block.code.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped[2:] if stripped.startswith("$ ") else stripped
    return ""
