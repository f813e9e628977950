"""The `llamacpp` backend against the real llama-server (built by `make llama-server`), with the
bundled SmolLM2-135M: what the fake llama-server claims, checked on the real thing.

Kept few and short: answers are capped at a few tokens, and one server (two slots) serves the
module. Every test here needs the executable and the model, which `make test` provides.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.bundled_models import resolve
from pytest_llmbench.backends.embedded import EmbeddedBackend, find_llama_server
from pytest_llmbench.backends.llamacpp import LlamaCppBackend
from pytest_llmbench.backends.server_process import ServerProcess, free_port
from pytest_llmbench.exchange import BackendError, ChatRequest, Completion, ToolCall
from pytest_llmbench.suites.base import RequestSettings
from pytest_llmbench.suites.tooling import ToolingSuite
from pytest_llmbench.taskfiles.format import ToolingTask

pytestmark = pytest.mark.embedded

MODEL = "smollm2"
WEATHER = ToolingTask.model_validate(
    {
        "id": "weather",
        "prompt": "What is the weather in Paris right now?",
        "tools": ["get_weather"],
        "reference": [[{"name": "get_weather", "arguments": {"city": "Paris"}}]],
        "cases": [{"id": "called", "called": "get_weather"}],
    }
)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A real llama-server on SmolLM2 with two slots, started through the embedded backend."""
    backend = EmbeddedBackend(timeout_s=300, servers=1, slots=2)
    backend.load(MODEL, LoadSettings())
    try:
        yield backend.base_url
    finally:
        backend.close()


def llamacpp(url: str) -> LlamaCppBackend:
    backend = make_backend("llamacpp", url, timeout_s=120)
    assert isinstance(getattr(backend, "inner", backend), LlamaCppBackend)  # make_backend guards it
    return backend


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=[{"role": "user", "content": text}],
        max_tokens=kwargs.pop("max_tokens", 12),
        temperature=0.0,
        seed=1,
        timeout_s=120,
        **kwargs,
    )


def test_list_load_and_slots(served: str) -> None:
    backend = llamacpp(served)
    assert [(m.key, m.context_length, m.loaded) for m in backend.list_models()] == [
        (MODEL, 8192, True)
    ]
    info = backend.load(MODEL, LoadSettings())
    assert info.context_length == 8192  # per slot, as /props reports it
    assert backend.parallel_slots(MODEL) == 2
    with pytest.raises(BackendError, match=r"serves .*smollm2.*not 'gemma'"):
        backend.load("gemma", LoadSettings())


def test_provenance_is_what_the_real_server_reports(served: str) -> None:
    """/props of the real llama-server: its build (a local build calls itself `b0-unknown`, the
    format of llama_build_info()), the model file it loaded, and the template it applies,
    which is ours for SmolLM2 (without the file's final newline, which llama.cpp's template
    engine drops as Jinja does)."""
    import hashlib
    import re

    from pytest_llmbench.backends.bundled_models import chat_template
    from pytest_llmbench.backends.provenance import file_identity, provenance_of

    backend = llamacpp(served)
    backend.load(MODEL, LoadSettings())
    found = provenance_of(backend, MODEL)
    assert found["server"] == "llama.cpp llama-server"
    assert re.fullmatch(r"b\d+-\S+", found["server_version"]), found["server_version"]
    assert found["model_file"] == file_identity(resolve(MODEL)[0])
    template = chat_template(MODEL)
    assert template is not None
    served_template = template.read_bytes().removesuffix(b"\n")
    assert found["chat_template_sha256"] == hashlib.sha256(served_template).hexdigest()
    # Each answer's system_fingerprint is the same build string.
    reply = backend.rest.post(
        "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    )
    assert reply["system_fingerprint"] == found["server_version"]


def test_streaming_metrics_are_the_servers(served: str) -> None:
    backend = llamacpp(served)
    backend.load(MODEL, LoadSettings())
    completion = backend.chat(ask("Count from one to twenty.", max_tokens=16))
    assert completion.usage.counted_by == "server"
    assert 0 < (completion.usage.completion_tokens or 0) <= 16
    assert (completion.usage.prompt_tokens or 0) > 10
    assert completion.decode_timed_by == "server"
    assert completion.decode_tok_s is not None and completion.decode_tok_s > 0
    assert completion.prompt_tok_s is not None and completion.prompt_tok_s > 0
    assert completion.server_stats["timings"]["predicted_n"] == completion.usage.completion_tokens
    assert completion.ttft_s is not None and completion.ttft_s <= completion.wall_s
    assert completion.finish_reason in ("stop", "length")
    assert completion.model_id == MODEL


def test_a_tool_call_comes_back_parsed(served: str) -> None:
    """SmolLM2 is served with a template that lists the tools and writes calls as <tool_call>
    JSON: once the model opens a call, llama-server holds it to the tools' schemas and returns
    it parsed. (Asked to, the 135M model opens one; it rarely does on its own.)"""
    backend = llamacpp(served)
    backend.load(MODEL, LoadSettings())
    prompt = 'Get the weather in Paris. Reply with "<tool_call>" and nothing else.'
    # The 135M model is sensitive to every word: this spec and prompt make it open a call.
    spec = {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    }
    tools = [{"type": "function", "function": spec}]
    completion = backend.chat(ask(prompt, tools=tools, max_tokens=40))
    assert completion.tool_calls, completion
    call = completion.tool_calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.id  # the server's, which the next turn's tool message answers
    assert "<tool_call>" not in completion.content


def test_a_two_turn_chain_is_accepted(served: str) -> None:
    """The chain's second request (the assistant turn with its call, then the result) is taken:
    the model's first turn is scripted, its second is the real server's answer."""
    backend = llamacpp(served)
    backend.load(MODEL, LoadSettings())
    sent: list[ChatRequest] = []
    first = Completion("", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),))

    def chat(request: ChatRequest) -> Completion:
        sent.append(request)
        return first if len(sent) == 1 else backend.chat(request)

    settings = RequestSettings(max_tokens=12, temperature=0.0, seed=1, timeout_s=120)
    generation = ToolingSuite().generate(WEATHER.model_copy(update={"max_steps": 2}), MODEL,
                                         chat, settings)  # fmt: skip
    assert len(generation.completions) == 2
    assert generation.exchanges[0].result["city"] == "Paris"
    assert sent[1].messages[2]["content"] == ""
    assert generation.completions[1].usage.counted_by == "server"  # a real answer came back


class _ThinkingServer(EmbeddedBackend):
    """The same model, made to think: a grammar has every answer open with a <think> block."""

    def argv(self, *args: Any, **kwargs: Any) -> list[str]:
        grammar = 'root ::= "<think>" [a-z ]{2,24} "</think>" [A-Za-z ]{1,12}'
        return [*super().argv(*args, **kwargs), "--grammar", grammar]


def test_reasoning_is_separated_by_the_server() -> None:
    backend = _ThinkingServer(timeout_s=300, servers=1, slots=1)
    backend.load(MODEL, LoadSettings())
    try:
        completion = backend.chat(ask("Is the sky blue?", max_tokens=48))
    finally:
        backend.close()
    assert completion.reasoning.strip(), completion
    assert "<think>" not in completion.content and "</think>" not in completion.content
    assert "<think>" not in completion.reasoning


def _wait_listening(port: int, process: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.exit_code() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise AssertionError(f"llama-server did not listen:\n{process.log_tail()}")


def test_load_waits_while_health_says_503() -> None:
    path, _ = resolve(MODEL)
    port = free_port()
    argv = ["--model", str(path), "--alias", MODEL, "--ctx-size", "2048", "--threads", "1"]
    process = ServerProcess([find_llama_server(), *argv, "--port", str(port)])
    try:
        _wait_listening(port, process)
        backend = llamacpp(f"http://127.0.0.1:{port}")
        seen: list[int] = []
        status = backend.rest.status

        def recorded(path: str, **kwargs: Any) -> int:
            seen.append(status(path, **kwargs))
            return seen[-1]

        backend.rest.status = recorded  # type: ignore[method-assign]
        info = backend.load(MODEL, LoadSettings())
    finally:
        process.stop()
    assert info.context_length == 2048
    assert seen[-1] == 200
    assert 503 in seen, seen  # it answered, but was still loading


def test_router_mode_loads_and_unloads(tmp_path: Path) -> None:
    path, _ = resolve(MODEL)
    models = tmp_path / "models"
    models.mkdir()
    (models / f"{MODEL}.gguf").symlink_to(path)
    port = free_port()
    argv = ["--models-dir", str(models), "--ctx-size", "2048", "--threads", "1"]
    process = ServerProcess([find_llama_server(), *argv, "--port", str(port)])
    try:
        _wait_listening(port, process)
        backend = llamacpp(f"http://127.0.0.1:{port}")
        assert backend.is_router()
        assert [(m.key, m.loaded) for m in backend.list_models()] == [(MODEL, False)]
        info = backend.load(MODEL, LoadSettings())
        answer = backend.chat(ask("Say hi.", max_tokens=4))
        backend.unload(MODEL)
        after = {m.key: m.loaded for m in backend.list_models()}
    finally:
        process.stop()
    assert info.context_length == 2048
    assert answer.usage.completion_tokens
    assert after == {MODEL: False}
