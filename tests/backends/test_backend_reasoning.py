"""Thinking text is separated from the answer in every shape servers and models produce."""

from __future__ import annotations

import pytest

from pytest_llmbench.backends.reasoning import split_reasoning


@pytest.mark.parametrize(
    ("content", "answer", "reasoning"),
    [
        ("plain answer", "plain answer", ""),
        ("<think>hmm</think>\nthe answer", "the answer", "hmm"),
        # The chat template opened the tag in the prompt: only the close reaches us.
        ("hmm, let me see</think>the answer", "the answer", "hmm, let me see"),
        # Cut off while thinking: no answer at all, not the half thought.
        ("<think>still going and go", "", "still going and go"),
        ("<think>a</think>middle<think>b</think>end", "middleend", "a\n\nb"),
        ("<THINKING>upper</THINKING>ok", "ok", "upper"),
        ("before <think>x</think> after", "before  after", "x"),
        ("<think></think>empty thought", "empty thought", ""),
    ],
)
def test_split_reasoning(content: str, answer: str, reasoning: str) -> None:
    assert split_reasoning(content) == (answer, reasoning)


def test_code_inside_thinking_never_reaches_the_answer() -> None:
    content = "<think>```python\nwrong()\n```</think>```python\nright()\n```"
    answer, reasoning = split_reasoning(content)
    assert "wrong" not in answer
    assert "right()" in answer
    assert "wrong()" in reasoning
