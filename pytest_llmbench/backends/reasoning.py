"""Separate inline thinking text from the answer.

Servers hand reasoning over in a separate field (`reasoning_content`, `reasoning`) or leave it in
the content between `<think>` tags. Chat templates that open the tag themselves make the model
emit only the closing `</think>`, and a generation cut off mid-thought has an opening tag and no
closing one. All three shapes are handled here so that scoring never sees thinking text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN = re.compile(r"<(think|thinking)>", re.IGNORECASE)
_CLOSE = re.compile(r"</(think|thinking)>", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """A stretch of thinking: [start, end) with the tags, [inner_start, inner_end) without."""

    start: int
    end: int
    inner_start: int
    inner_end: int


def reasoning_spans(content: str) -> list[Span]:
    """Where the thinking text sits in `content`, in order."""
    spans: list[Span] = []
    pos = 0
    first_open = _OPEN.search(content)
    first_close = _CLOSE.search(content)
    if first_close and (first_open is None or first_close.start() < first_open.start()):
        # The template opened the tag in the prompt: everything before the lone close is thought.
        spans.append(Span(0, first_close.end(), 0, first_close.start()))
        pos = first_close.end()
    while True:
        opened = _OPEN.search(content, pos)
        if opened is None:
            break
        closed = _CLOSE.search(content, opened.end())
        if closed is None:
            # Cut off while thinking: the rest is thought, and there is no answer after it.
            spans.append(Span(opened.start(), len(content), opened.end(), len(content)))
            break
        spans.append(Span(opened.start(), closed.end(), opened.end(), closed.start()))
        pos = closed.end()
    return spans


def split_reasoning(content: str) -> tuple[str, str]:
    """Return (answer, reasoning) for a reply that may carry inline thinking tags.

    The answer is what remains outside the thinking spans, stripped; the reasoning is the text
    inside them (tags removed), stretches joined by a blank line.
    """
    spans = reasoning_spans(content)
    if not spans:
        return content.strip(), ""
    answer_parts: list[str] = []
    thoughts: list[str] = []
    pos = 0
    for span in spans:
        answer_parts.append(content[pos : span.start])
        thought = content[span.inner_start : span.inner_end].strip()
        if thought:
            thoughts.append(thought)
        pos = span.end
    answer_parts.append(content[pos:])
    return "".join(answer_parts).strip(), "\n\n".join(thoughts)
