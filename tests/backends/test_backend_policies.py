"""The small policies every backend shares: retry bounds, the prompt estimate, the fit rule."""

from __future__ import annotations

import pytest

from pytest_llmbench.backends.context_fit import (
    PromptSize,
    check_prompt_fits,
    estimate_prompt_tokens,
)
from pytest_llmbench.backends.retry import RetryPolicy, Transient, run_with_retries
from pytest_llmbench.exchange import BackendError


def test_retries_until_success_and_reports_the_count() -> None:
    slept: list[float] = []
    calls: list[int] = []

    def attempt(retries: int) -> str:
        calls.append(retries)
        if retries < 2:
            raise Transient(BackendError("HTTP 503"))
        return "ok"

    assert run_with_retries(attempt, RetryPolicy(2, (0.5, 2.0)), slept.append) == "ok"
    assert calls == [0, 1, 2]
    assert slept == [0.5, 2.0]


def test_gives_up_with_the_last_error_after_the_bound() -> None:
    calls: list[int] = []

    def attempt(retries: int) -> str:
        calls.append(retries)
        raise Transient(BackendError(f"HTTP 500 #{retries}"))

    with pytest.raises(BackendError, match="HTTP 500 #1"):
        run_with_retries(attempt, RetryPolicy(1, (0.0,)), lambda _: None)
    assert calls == [0, 1]


def test_non_transient_errors_are_not_retried() -> None:
    calls: list[int] = []

    def attempt(retries: int) -> str:
        calls.append(retries)
        raise BackendError("HTTP 400")

    with pytest.raises(BackendError, match="HTTP 400"):
        run_with_retries(attempt, RetryPolicy(5, (0.0,)), lambda _: None)
    assert calls == [0]


def test_estimate_is_conservative_for_prose_and_counts_tools_and_calls() -> None:
    prose = "The quick brown fox jumps over the lazy dog. " * 20  # about 200 real tokens
    estimate = estimate_prompt_tokens([{"role": "user", "content": prose}], None)
    assert not estimate.exact
    assert estimate.tokens >= 200
    tool = {"type": "function", "function": {"name": "get_user", "parameters": {"type": "object"}}}
    with_tools = estimate_prompt_tokens([{"role": "user", "content": prose}], [tool])
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": "get_user"}}],
    }
    with_call = estimate_prompt_tokens([{"role": "user", "content": prose}, call], [tool])
    assert estimate.tokens < with_tools.tokens < with_call.tokens


def test_only_the_prompt_must_fit() -> None:
    check_prompt_fits("m", PromptSize(99, exact=True), 100)  # one token left for the answer
    with pytest.raises(BackendError, match=r"prompt needs 100 tokens .* 100-token context"):
        check_prompt_fits("m", PromptSize(100, exact=True), 100)
    with pytest.raises(BackendError, match="needs about 150 tokens"):
        check_prompt_fits("m", PromptSize(150, exact=False), 100)
