"""The generic `openai` backend, and the factory, against the shared fake OpenAI-style server."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.chat_request import ask
from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Sse
from fakes.openai_server import Reply, serving

from pytest_llmbench.backends import BACKENDS, default_base_url, make_backend
from pytest_llmbench.backends.base import Backend, LoadSettings
from pytest_llmbench.backends.server import normalise_base_url
from pytest_llmbench.exchange import BackendError, BackendUnreachable


def scripts(**replies: Reply) -> dict[str, Any]:
    return {model: (lambda body, reply=reply: reply) for model, reply in replies.items()}


def test_lists_served_models_and_chats() -> None:
    with serving(scripts(alpha=Reply("hello"), beta=Reply("bye"))) as fake:
        backend = make_backend("openai", fake.url + "/v1", timeout_s=5)
        assert isinstance(backend, Backend)
        assert [m.key for m in backend.list_models()] == ["alpha", "beta"]
        info = backend.load("alpha", LoadSettings(context_length=4096))
        completion = backend.chat(ask("alpha"))
        backend.unload("alpha")
    assert info.key == "alpha"
    assert completion.content == "hello"
    assert completion.usage.counted_by == "server"
    # load and unload ask nothing of the server but the model list
    assert fake.paths() == [
        "/v1/models",
        "/v1/models",
        "/v1/chat/completions",
    ]


def test_load_of_a_model_the_server_does_not_serve_fails_early() -> None:
    with serving(scripts(alpha=Reply("hello"))) as fake:
        backend = make_backend("openai", fake.url, timeout_s=5)
        with pytest.raises(BackendError, match="does not serve model 'gamma'; it serves: alpha"):
            backend.load("gamma", LoadSettings())


def test_answer_from_another_model_is_an_error() -> None:
    with serving(scripts(alpha=Reply("hi", model="something-else"))) as fake:
        backend = make_backend("openai", fake.url, timeout_s=5)
        with pytest.raises(
            BackendError, match="asked for model 'alpha' but 'something-else' answered"
        ):
            backend.chat(ask("alpha"))


def test_unreachable_message(closed_url: str) -> None:
    backend = make_backend("openai", closed_url, timeout_s=2)
    with pytest.raises(BackendUnreachable) as caught:
        backend.load("alpha", LoadSettings())
    assert closed_url in caught.value.message
    assert "--llmbench-base-url" in caught.value.message


@pytest.mark.parametrize(
    ("given", "root"),
    [("http://localhost:1234", "http://localhost:1234"),
     ("http://localhost:1234/", "http://localhost:1234"),
     ("http://localhost:1234/v1", "http://localhost:1234"),
     ("http://localhost:1234/v1/", "http://localhost:1234"),
     ("localhost:11434", "http://localhost:11434"),
     ("https://box.lan/llm/v1", "https://box.lan/llm")],
)  # fmt: skip
def test_base_urls_are_normalised(given: str, root: str) -> None:
    assert normalise_base_url(given) == root


def test_unknown_backend_lists_the_valid_names() -> None:
    with pytest.raises(BackendError) as caught:
        make_backend("koboldcpp", None, timeout_s=1)
    for name in ("lmstudio", "openai", "ollama", "llamacpp", "vllm", "embedded"):
        assert name in caught.value.message


def test_names_and_default_urls() -> None:
    assert BACKENDS == ("lmstudio", "openai", "ollama", "llamacpp", "vllm", "embedded")
    assert default_base_url("lmstudio") == "http://localhost:1234"
    assert default_base_url("ollama") == "http://localhost:11434"
    assert default_base_url("llamacpp") == "http://localhost:8080"
    assert default_base_url("vllm") == "http://localhost:8000"
    assert default_base_url("embedded") is None
    with pytest.raises(BackendError):
        default_base_url("nope")


def test_making_a_backend_does_not_touch_the_network(closed_url: str) -> None:
    for name in BACKENDS:
        backend = make_backend(name, closed_url, timeout_s=1)
        assert backend.name == name
        backend.close()


def test_a_server_without_a_model_list_is_not_refused(serve: Any) -> None:
    fake = serve(FakeHttpServer())
    fake.route(
        "POST", "/v1/chat/completions", lambda b, q: Sse(list(chunks(b, Answer(["yo"]), Quirks())))
    )
    backend = make_backend("openai", fake.url, timeout_s=5)
    backend.load("anything", LoadSettings())
    assert backend.chat(ask("anything")).content == "yo"
