"""The `vllm` backend against a fake vLLM server."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask
from fakes.chat_stream import Answer, tokens
from fakes.vllm_server import VLLMFake

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.server import Server
from pytest_llmbench.backends.vllm import VLLMBackend
from pytest_llmbench.exchange import BackendError, BackendUnreachable


def backend_for(fake: VLLMFake) -> VLLMBackend:
    return VLLMBackend(
        Server("vLLM", fake.url, "start vLLM: `vllm serve MODEL`"), timeout_s=10.0, retry=FAST_RETRY
    )


def test_list_and_load_read_the_served_model(serve: Any) -> None:
    fake = serve(VLLMFake(max_model_len=16384))
    backend = make_backend("vllm", fake.url + "/v1", timeout_s=5)
    assert [(m.key, m.context_length, m.loaded) for m in backend.list_models()] == [
        ("Qwen/Qwen3-4B", 16384, True)
    ]
    info = backend.load("Qwen/Qwen3-4B", LoadSettings())
    backend.unload("Qwen/Qwen3-4B")
    assert info.context_length == 16384
    assert fake.paths("POST") == []  # nothing to load or unload on vLLM


def test_another_model_is_refused_at_load(serve: Any) -> None:
    fake = serve(VLLMFake())
    with pytest.raises(BackendError, match="serves Qwen/Qwen3-4B, not 'meta/llama'"):
        backend_for(fake).load("meta/llama", LoadSettings())


def test_reasoning_content_and_server_reasoning_tokens(serve: Any) -> None:
    answer = Answer(tokens("final"), reasoning=tokens("step one step two"))
    fake = serve(VLLMFake(answers={"Qwen/Qwen3-4B": answer}))
    backend = backend_for(fake)
    backend.load("Qwen/Qwen3-4B", LoadSettings())
    completion = backend.chat(ask("Qwen/Qwen3-4B"))
    assert (completion.content, completion.reasoning) == ("final", "step one step two")
    assert completion.usage.reasoning_tokens == 4
    assert completion.usage.reasoning_counted_by == "server"


def test_max_tokens_is_trimmed_to_the_room_the_prompt_leaves(serve: Any) -> None:
    fake = serve(VLLMFake(max_model_len=100))
    backend = backend_for(fake)
    backend.load("Qwen/Qwen3-4B", LoadSettings())
    # 2 words + 4 = 6 prompt tokens: 94 left, though 16384 were asked for
    assert backend.chat(ask("Qwen/Qwen3-4B", "hello there", max_tokens=16384)).content == "ok"
    backend.chat(ask("Qwen/Qwen3-4B", "hello there", max_tokens=10))
    assert fake.events == ["chat Qwen/Qwen3-4B max_tokens=94", "chat Qwen/Qwen3-4B max_tokens=10"]


def test_a_prompt_that_does_not_fit_is_refused(serve: Any) -> None:
    fake = serve(VLLMFake(max_model_len=100))
    backend = backend_for(fake)
    backend.load("Qwen/Qwen3-4B", LoadSettings())
    with pytest.raises(BackendError, match="prompt needs 104 tokens"):
        backend.chat(ask("Qwen/Qwen3-4B", " ".join(["w"] * 100)))
    assert fake.events == []


def test_unreachable(closed_url: str) -> None:
    with pytest.raises(BackendUnreachable) as caught:
        make_backend("vllm", closed_url, timeout_s=2).list_models()
    assert closed_url in caught.value.message and "vllm serve" in caught.value.message
