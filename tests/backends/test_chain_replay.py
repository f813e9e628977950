"""A two-turn tool chain (a call, its result, then the answer) against every fake server.

Each fake judges the messages the way its server does (tests/fakes/messages.py): the second
request carries the assistant turn with the tool call, which llama-cpp-python's server refuses
when its content is null. The same replay against the real llama-server is in
test_llamacpp_real_server.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fakes.chat_stream import Answer, tokens
from fakes.http_fake import FakeHttpServer
from fakes.llama_cpp_python_server import LlamaCppPythonFake
from fakes.llamacpp_server import LlamaServerFake
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel
from fakes.openai_server import FakeOpenAI, Reply, assistant_turns
from fakes.vllm_server import VLLMFake

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.exchange import BackendError, ChatRequest
from pytest_llmbench.suites.base import RequestSettings
from pytest_llmbench.suites.tooling import ToolingSuite
from pytest_llmbench.taskfiles.format import ToolingTask

TASK = ToolingTask.model_validate(
    {
        "id": "lookup",
        "prompt": "What is Alice's email address?",
        "tools": ["get_user"],
        "reference": [[{"name": "get_user", "arguments": {"name": "Alice"}}]],
        "cases": [{"id": "looked_up", "called": "get_user", "args": {"name": "Alice"}}],
    }
)
SETTINGS = RequestSettings(max_tokens=64, temperature=0.0, seed=None, timeout_s=10.0)
FINAL = "Her address is alice@example.com"


def chain(body: dict[str, Any]) -> Answer:
    """The model's side: look Alice up, then answer from the tool's result."""
    if assistant_turns(body) == 0:
        return Answer(tool_calls=[("get_user", {"name": "Alice"})])
    return Answer(tokens(FINAL))


def chain_reply(body: dict[str, Any]) -> Reply:
    """The same, for the generic OpenAI fake's scripts."""
    if assistant_turns(body) == 0:
        return Reply(tool_calls=[{"name": "get_user", "arguments": {"name": "Alice"}}])
    return Reply(FINAL)


# backend name, model key, the fake serving it
SERVERS: dict[str, tuple[str, str, Callable[[], FakeHttpServer]]] = {
    "llama-server": (
        "llamacpp", "m.gguf", lambda: LlamaServerFake(model="m.gguf", answers={"m.gguf": chain})
    ),
    "llama-cpp-python": ("openai", "m", lambda: LlamaCppPythonFake(alias="m", answer=chain)),
    "lmstudio": ("lmstudio", "m", lambda: LMStudioFake(models=[Model("m")], answers={"m": chain})),
    "ollama": (
        "ollama", "m:latest",
        lambda: OllamaFake(models=[OllamaModel("m:latest")], answers={"m:latest": chain}),
    ),
    "vllm": ("vllm", "m", lambda: VLLMFake(served="m", answers={"m": chain})),
    "openai": ("openai", "m", lambda: FakeOpenAI({"m": chain_reply})),
}  # fmt: skip


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_two_turn_chain_is_accepted(server: str, serve: Any) -> None:
    backend_name, model, make_fake = SERVERS[server]
    fake = serve(make_fake())
    backend = make_backend(backend_name, fake.url, timeout_s=10)
    backend.load(model, LoadSettings())
    try:
        generation = ToolingSuite().generate(TASK, model, backend.chat, SETTINGS)
    finally:
        backend.close()

    assert [e.call.name for e in generation.exchanges] == ["get_user"]
    assert generation.exchanges[0].result["email"] == "alice@example.com"
    assert generation.answer == FINAL
    second = fake.bodies("/v1/chat/completions")[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    turn, result = second[2], second[3]
    assert turn["content"] == ""  # never null
    assert turn["tool_calls"][0]["function"] == {
        "name": "get_user",
        "arguments": '{"name": "Alice"}',
    }
    assert result["tool_call_id"] == turn["tool_calls"][0]["id"]


def test_llama_cpp_python_refuses_a_null_content(serve: Any) -> None:
    """Why the chain sends "": the fake refuses null the way llama-cpp-python's server does."""
    fake = serve(LlamaCppPythonFake(alias="m"))
    backend = make_backend("openai", fake.url, timeout_s=10)
    call = {"id": "c1", "type": "function", "function": {"name": "get_user", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Who is Alice?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    with pytest.raises(BackendError, match="HTTP 422"):
        backend.chat(ChatRequest(model="m", messages=messages, max_tokens=8, temperature=0.0))
    messages[1]["content"] = ""
    assert backend.chat(ChatRequest(model="m", messages=messages, max_tokens=8, temperature=0.0))
