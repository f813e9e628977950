"""Refuse a prompt the loaded context cannot hold.

Servers silently drop the start of a prompt that overflows the context (Ollama) or fail in
their own words; either way the model would be scored on a question it never saw. A prompt that
does not fit is an infrastructure `error`, raised before anything is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..exchange import BackendError

# Conservative (high) guess of tokens per character for servers without a tokenizer endpoint:
# English prose runs about 4 characters a token, code and JSON nearer 3.
CHARS_PER_TOKEN = 3
# Role markers and separators a chat template adds around each message.
TEMPLATE_TOKENS_PER_MESSAGE = 8


@dataclass(frozen=True)
class PromptSize:
    tokens: int
    exact: bool  # the server rendered the template and tokenized it: this is the true count
    tokenized: bool = False  # the model's tokenizer counted the text (template maybe added)


def prompt_text(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None) -> str:
    """All the text a chat template would render, without the template itself."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif content is not None:
            parts.append(json.dumps(content))
        if message.get("tool_calls"):
            parts.append(json.dumps(message["tool_calls"]))
    if tools:
        parts.append(json.dumps(list(tools)))
    return "\n".join(parts)


def estimate_prompt_tokens(
    messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None
) -> PromptSize:
    text = prompt_text(messages, tools)
    tokens = math.ceil(len(text) / CHARS_PER_TOKEN) + TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    return PromptSize(tokens, exact=False)


def check_prompt_fits(model: str, prompt: PromptSize, context_length: int) -> None:
    """Raise unless the prompt leaves room for at least one answer token.

    Only the prompt must fit: an answer that runs into the end of the context is the model's
    `truncated` outcome, not ours.
    """
    if prompt.tokens < context_length:
        return
    how = "" if prompt.exact else "about "
    raise BackendError(
        f"prompt needs {how}{prompt.tokens} tokens but model {model!r} is loaded with a "
        f"{context_length}-token context; load it with a larger context"
    )
