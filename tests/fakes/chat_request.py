"""Small builders the backend tests share."""

from __future__ import annotations

from typing import Any

from pytest_llmbench.backends.retry import RetryPolicy
from pytest_llmbench.exchange import ChatRequest

# Retries without waiting, so failure paths stay fast.
FAST_RETRY = RetryPolicy(max_retries=2, delays_s=(0.0,))


def ask(model: str, text: str = "Say hi.", **kwargs: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=kwargs.pop("max_tokens", 64),
        temperature=kwargs.pop("temperature", 0.2),
        timeout_s=kwargs.pop("timeout_s", 10.0),
        **kwargs,
    )
