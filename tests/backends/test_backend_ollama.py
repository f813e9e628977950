"""The `ollama` backend against a fake Ollama."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask
from fakes.chat_stream import Answer, tokens
from fakes.ollama_server import OllamaFake, OllamaModel

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.ollama import OllamaBackend
from pytest_llmbench.backends.server import Server
from pytest_llmbench.exchange import BackendError, BackendUnreachable

MODELS = [
    OllamaModel("qwen3:4b", capabilities=("completion", "tools", "thinking")),
    OllamaModel("gemma3:latest", size=3_300_000_000, trained_context=131072,
                capabilities=("completion",), quantization="Q8_0"),
]  # fmt: skip


def backend_for(fake: OllamaFake, **kwargs: Any) -> OllamaBackend:
    server = Server("Ollama", fake.url, "start Ollama: `ollama serve`")
    return OllamaBackend(server, timeout_s=10.0, retry=FAST_RETRY, **kwargs)


def test_list_models(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS))
    fake.running["gemma3:latest"] = 8192
    models = {m.key: m for m in make_backend("ollama", fake.url, timeout_s=5).list_models()}
    qwen, gemma = models["qwen3:4b"], models["gemma3:latest"]
    assert (qwen.tool_use, qwen.reasoning, qwen.context_length, qwen.loaded) == (
        True,
        True,
        40960,
        False,
    )
    assert (gemma.tool_use, gemma.reasoning, gemma.loaded) == (False, False, True)
    assert (gemma.size_bytes, gemma.quantization, gemma.context_length) == (
        3_300_000_000,
        "Q8_0",
        131072,
    )


def test_lifecycle_order_keep_alive_and_context(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS))
    backend = backend_for(fake, context_length=16384)
    info = backend.load("qwen3:4b", LoadSettings())
    backend.chat(ask("qwen3:4b"))
    backend.unload("qwen3:4b")
    backend.load("gemma3", LoadSettings(context_length=8192))
    backend.chat(ask("gemma3"))
    backend.unload("gemma3")
    assert fake.events == [
        "load qwen3:4b ctx=16384 keep_alive=-1", "chat qwen3:4b", "unload qwen3:4b",
        "load gemma3:latest ctx=8192 keep_alive=-1", "chat gemma3", "unload gemma3:latest",
    ]  # fmt: skip
    assert (info.seconds, info.context_length) == (2.5, 16384)


def test_temperature_is_always_sent(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS))
    backend = backend_for(fake)
    backend.chat(ask("qwen3:4b", temperature=0.0))
    backend.chat(ask("qwen3:4b", temperature=0.2))
    assert fake.temperatures == [0.0, 0.2]
    assert all("tool_choice" not in b for b in fake.bodies("/v1/chat/completions"))


def test_reasoning_field_and_whole_tool_calls(serve: Any) -> None:
    answers = {
        "qwen3:4b": Answer(tokens("done"), reasoning=tokens("I should call it"),
                           tool_calls=[("get_user", {"name": "Alice"})]),
    }  # fmt: skip
    fake = serve(OllamaFake(models=MODELS, answers=answers))
    completion = backend_for(fake).chat(ask("qwen3:4b"))
    assert completion.reasoning == "I should call it"
    assert completion.content == "done"
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("get_user", {"name": "Alice"})
    ]
    assert completion.usage.reasoning_tokens == 4


def test_tag_latest_is_the_same_model_but_another_name_is_not(serve: Any) -> None:
    fake = serve(
        OllamaFake(models=MODELS, answers={"gemma3": Answer(["x"], model="gemma3:latest")})
    )
    assert backend_for(fake).chat(ask("gemma3")).content == "x"
    fake.answers["qwen3:4b"] = Answer(["x"], model="qwen3:8b")
    with pytest.raises(BackendError, match="asked for model 'qwen3:4b' but 'qwen3:8b' answered"):
        backend_for(fake).chat(ask("qwen3:4b"))


def test_prompt_beyond_the_loaded_context_is_refused(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS))
    backend = backend_for(fake)
    backend.load("qwen3:4b", LoadSettings(context_length=64))
    with pytest.raises(BackendError, match="64-token context"):
        backend.chat(ask("qwen3:4b", "word " * 100))
    assert "chat qwen3:4b" not in fake.events


def test_a_silent_reload_with_a_smaller_context_is_caught(serve: Any) -> None:
    # The /v1 layer made Ollama reload the model with 128 tokens: the prompt was cut.
    fake = serve(OllamaFake(models=MODELS, v1_reload_context=128))
    backend = backend_for(fake)
    backend.load("qwen3:4b", LoadSettings(context_length=8192))
    with pytest.raises(BackendError, match="128-token context"):
        backend.chat(ask("qwen3:4b", "word " * 100))
    assert backend.loaded_context["qwen3:4b"] == 128


def test_older_ollama_without_context_in_ps_keeps_the_requested_context(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS, report_ps_context=False))
    backend = backend_for(fake)
    info = backend.load("qwen3:4b", LoadSettings(context_length=2048))
    assert info.context_length == 2048
    assert backend.chat(ask("qwen3:4b")).content == "ok"


def test_loading_a_model_that_is_not_pulled(serve: Any) -> None:
    fake = serve(OllamaFake(models=MODELS))
    with pytest.raises(BackendError, match="ollama pull llama9"):
        backend_for(fake).load("llama9", LoadSettings())


def test_unreachable(closed_url: str) -> None:
    backend = make_backend("ollama", closed_url, timeout_s=2)
    with pytest.raises(BackendUnreachable) as caught:
        backend.load("qwen3:4b", LoadSettings())
    assert closed_url in caught.value.message and "`ollama serve`" in caught.value.message
