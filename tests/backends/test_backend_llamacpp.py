"""The `llamacpp` backend against a fake llama-server, single-model and router mode."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask
from fakes.chat_stream import Answer, tokens
from fakes.llamacpp_server import LlamaServerFake

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.llamacpp import LlamaCppBackend
from pytest_llmbench.backends.server import Server
from pytest_llmbench.exchange import BackendError, BackendUnreachable


def backend_for(fake: LlamaServerFake) -> LlamaCppBackend:
    server = Server(
        "llama-server", fake.url, "start llama.cpp's server: `llama-server -m MODEL.gguf`"
    )
    return LlamaCppBackend(server, timeout_s=10.0, retry=FAST_RETRY, poll_s=0.01)


def test_single_model_waits_for_health_and_reads_context(serve: Any) -> None:
    fake = serve(LlamaServerFake(loading_polls=3, n_ctx=8192))
    backend = backend_for(fake)
    info = backend.load("qwen3-4b-q4_k_m", LoadSettings())
    assert info.context_length == 8192
    assert fake.paths().count("/health") >= 4
    models = backend.list_models()
    assert [(m.key, m.context_length, m.size_bytes, m.loaded) for m in models] == [
        ("qwen3-4b-q4_k_m.gguf", 8192, 2_400_000_000, True)
    ]


def test_single_model_server_serving_another_model_is_an_error(serve: Any) -> None:
    fake = serve(LlamaServerFake())
    with pytest.raises(BackendError, match=r"serves .*qwen3-4b-q4_k_m\.gguf.*not 'gemma'"):
        backend_for(fake).load("gemma", LoadSettings())


def test_timings_reasoning_and_exact_prompt_count(serve: Any) -> None:
    answer = Answer(tokens("the answer"), reasoning=tokens("thinking hard"))
    fake = serve(LlamaServerFake(answers={"qwen3-4b-q4_k_m.gguf": answer}))
    backend = backend_for(fake)
    backend.load("qwen3-4b-q4_k_m.gguf", LoadSettings())
    completion = backend.chat(ask("qwen3-4b-q4_k_m.gguf"))
    assert completion.content == "the answer" and completion.reasoning == "thinking hard"
    assert completion.server_stats["timings"]["predicted_per_second"] == 42.0
    assert completion.usage.counted_by == "server"
    # the prompt went through the server's own template and tokenizer before sending
    assert fake.paths("POST")[:3] == ["/apply-template", "/tokenize", "/v1/chat/completions"]


def test_context_fit_uses_the_servers_tokenizer(serve: Any) -> None:
    fake = serve(LlamaServerFake(n_ctx=20))
    backend = backend_for(fake)
    backend.load("qwen3-4b-q4_k_m.gguf", LoadSettings())
    backend.chat(ask("qwen3-4b-q4_k_m.gguf", "one two three"))  # 5 tokens rendered
    with pytest.raises(BackendError, match=r"prompt needs 22 tokens .* 20-token context"):
        backend.chat(ask("qwen3-4b-q4_k_m.gguf", " ".join(["w"] * 20)))


def test_older_server_without_template_endpoint_falls_back_to_the_estimate(serve: Any) -> None:
    fake = serve(LlamaServerFake(n_ctx=50, has_template_endpoint=False))
    backend = backend_for(fake)
    backend.load("qwen3-4b-q4_k_m.gguf", LoadSettings())
    with pytest.raises(BackendError, match="prompt needs about"):
        backend.chat(ask("qwen3-4b-q4_k_m.gguf", "x" * 200))


def test_router_lifecycle(serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a.gguf", "b.gguf"], n_ctx=16384))
    backend = backend_for(fake)
    assert {m.key: m.loaded for m in backend.list_models()} == {"a.gguf": False, "b.gguf": False}
    info = backend.load("a.gguf", LoadSettings())
    backend.chat(ask("a.gguf"))
    backend.unload("a.gguf")
    backend.load("b.gguf", LoadSettings())
    backend.chat(ask("b.gguf"))
    backend.unload("b.gguf")
    assert fake.events == [
        "load a.gguf",
        "chat a.gguf",
        "unload a.gguf",
        "load b.gguf",
        "chat b.gguf",
        "unload b.gguf",
    ]
    assert info.context_length == 16384
    assert backend.list_models()[0].context_length == 16384


def test_router_unload_waits_until_the_model_is_gone(serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a.gguf", "b.gguf"], unload_polls=3))
    backend = backend_for(fake)
    backend.load("a.gguf", LoadSettings())
    backend.unload("a.gguf")
    # the router said "loaded" three times more; the unload returned only after "unloaded"
    assert fake.router_status["a.gguf"] == "unloaded"
    assert fake.paths("GET")[-4:] == ["/models"] * 4


def test_router_without_the_model(serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a.gguf"]))
    with pytest.raises(BackendError, match="has no model 'zzz'"):
        backend_for(fake).load("zzz", LoadSettings())


def test_unreachable(closed_url: str) -> None:
    backend = make_backend("llamacpp", closed_url, timeout_s=2)
    with pytest.raises(BackendUnreachable) as caught:
        backend.list_models()
    assert closed_url in caught.value.message and "llama-server -m" in caught.value.message
