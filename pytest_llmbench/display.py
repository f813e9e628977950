"""Text a model wrote, made safe to print in a terminal.

A model's answer can hold anything: ANSI escapes that recolour or clear the screen, OSC
sequences that retitle the window or write the clipboard, NUL bytes, bidirectional overrides
that make text read differently from what it is. The JSONL and junit XML escape it by their
formats; the terminal shows it through `printable`, which spells every such character out as
an escape (`\\x1b`, `\\u202e`) and keeps newlines and tabs.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _spelled(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character spelled out; newlines and tabs kept."""
    return _UNSAFE.sub(_spelled, text)
