"""Infrastructure faults a server can produce: each one is a BackendError naming the server,
never a traceback and never an answer the model is scored on."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fakes.chat_request import ask
from fakes.http_fake import Drop, Json, Raw, Response, Sse
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.openai_server import Reply, serving

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadInfo, LoadSettings, ModelInfo
from pytest_llmbench.backends.guard import GuardedBackend
from pytest_llmbench.backends.openai_compat import ChatClient
from pytest_llmbench.backends.retry import RetryPolicy, parse_retry_after
from pytest_llmbench.backends.server import Server
from pytest_llmbench.exchange import BackendError, ChatRequest, Completion, ModelUnavailable


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def client(url: str, slept: list[float] | None = None, **policy: Any) -> ChatClient:
    server = Server(label="the fake", root=url, start_hint="start it")
    retry = RetryPolicy(**{"max_retries": 2, "delays_s": (0.0,), **policy})
    record = slept if slept is not None else []
    return ChatClient(server, timeout_s=5, retry=retry, sleep=record.append)


# (fault, words in the error, whether it is retried like a 5xx)
FAULTS: dict[str, tuple[Response, str, bool]] = {
    "cut short, no finish_reason, no [DONE]": (
        Sse([chunk({"content": "def add"})], done=False), "ended without a finish_reason", True),
    "finish_reason error": (
        Sse([chunk({"content": "x"}), chunk({}, "error")]), "finish_reason error", True),
    "HTTP 200, JSON instead of a stream": (
        Raw(b'{"choices": []}', content_type="application/json"),
        "application/json, not an event stream", False),
    "HTTP 200, an event stream without a chunk": (Raw(b""), "carried no chunk", True),
    "invalid JSON chunk": (Raw(b"data: {not json\n\n"), "malformed (JSONDecodeError", False),
    "chunk is a list": (Raw(b"data: [1, 2]\n\n"), "a chunk is a list", False),
    "choices is a string": (Raw(b'data: {"choices": "abc"}\n\n'), "'choices' is a str", False),
    "delta is a string": (
        Raw(b'data: {"choices": [{"index": 0, "delta": "x"}]}\n\n'), "a delta is a str", False),
    "content is a number": (
        Raw(b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}\n\n'),
        "'content' is a int", False),
    "invalid UTF-8": (
        Raw(b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe"}}]}\n\n'),
        "UnicodeDecodeError", False),
    "chunk nested 5000 deep": (
        Raw(b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n\n"), "RecursionError", False),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FAULTS))
def test_stream_faults_are_errors_naming_the_server(name: str) -> None:
    fault, words, transient = FAULTS[name]
    with (
        serving({"m": lambda body: Reply(fault=fault)}) as fake,
        pytest.raises(BackendError) as caught,
    ):
        client(fake.url).complete(ask("m"))
    message = caught.value.message
    assert words in message
    assert fake.url in message and "\n" not in message
    # Faults worth another try are retried (and counted); garbage is asked for once.
    asked = len(fake.chat_requests())
    assert (asked, caught.value.retries) == ((3, 2) if transient else (1, 0))


def test_a_cut_stream_that_recovers_counts_its_retries() -> None:
    replies = [Reply(fault=Sse([chunk({"content": "x"})], done=False)), Reply("hello")]
    with serving({"m": lambda body: replies.pop(0)}) as fake:
        completion = client(fake.url).complete(ask("m"))
    assert completion.content == "hello"
    assert completion.retries == 1


def test_429_waits_for_retry_after_then_succeeds() -> None:
    replies = [
        Reply(fault=Json(429, {"error": {"message": "busy"}}, headers={"Retry-After": "7"})),
        Reply("hello"),
    ]
    slept: list[float] = []
    with serving({"m": lambda body: replies.pop(0)}) as fake:
        completion = client(fake.url, slept).complete(ask("m"))
    assert completion.content == "hello" and completion.retries == 1
    assert slept == [7.0]


def test_429_asking_for_too_long_a_pause_fails_at_once() -> None:
    busy = Json(429, {"error": {"message": "busy"}}, headers={"Retry-After": "3600"})
    slept: list[float] = []
    with serving({"m": lambda body: Reply(fault=busy)}) as fake:
        with pytest.raises(BackendError, match=r"HTTP 429.*retry after 3600s") as caught:
            client(fake.url, slept, max_wait_s=60).complete(ask("m"))
        assert len(fake.chat_requests()) == 1
    assert slept == [] and caught.value.retries == 0


def test_429_without_retry_after_uses_the_policy_and_gives_up_counted() -> None:
    busy = Json(429, {"error": {"message": "busy"}})
    slept: list[float] = []
    with (
        serving({"m": lambda body: Reply(fault=busy)}) as fake,
        pytest.raises(BackendError, match="HTTP 429") as caught,
    ):
        client(fake.url, slept, delays_s=(0.5, 2.0)).complete(ask("m"))
    assert slept == [0.5, 2.0] and caught.value.retries == 2


def test_retry_after_forms() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --------------------------------------------------------------------------- the guard


class Flaky:
    """A backend whose calls fail as scripted: an exception to raise, or None to succeed."""

    name = "flaky"
    base_url = "http://127.0.0.1:1"

    def __init__(self, *failures: BaseException | None) -> None:
        self.failures = list(failures)
        self.calls: list[str] = []

    def _next(self, call: str) -> None:
        self.calls.append(call)
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure

    def list_models(self) -> list[ModelInfo]:
        self._next("list")
        return [ModelInfo("a")]

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        self._next("load")
        return LoadInfo(key, 0.5)

    def unload(self, key: str) -> None:
        self._next("unload")

    def chat(self, request: ChatRequest) -> Completion:
        self._next("chat")
        return Completion("hi")

    def close(self) -> None:
        self._next("close")


@pytest.mark.parametrize(
    "error",
    [AttributeError("'list' object has no attribute 'get'"), TypeError("x"), KeyError("id"),
     RecursionError("maximum recursion depth exceeded"), json.JSONDecodeError("bad", "", 0)],
)  # fmt: skip
def test_the_guard_turns_any_exception_into_a_backend_error(error: Exception) -> None:
    for call in ("list_models", "unload", "chat", "close"):
        backend = GuardedBackend(Flaky(error))
        with pytest.raises(BackendError) as caught:
            if call == "chat":
                backend.chat(ask("a"))
            elif call == "unload":
                backend.unload("a")
            else:
                getattr(backend, call)()
        assert type(error).__name__ in caught.value.message
        assert "http://127.0.0.1:1" in caught.value.message


def test_the_guard_lets_keyboard_interrupt_through() -> None:
    with pytest.raises(KeyboardInterrupt):
        GuardedBackend(Flaky(KeyboardInterrupt())).chat(ask("a"))


def test_a_failed_load_is_retried_once_after_a_pause() -> None:
    slept: list[float] = []
    inner = Flaky(BackendError("HTTP 500 while loading"), None)
    info = GuardedBackend(inner, load_retry_pause_s=2.0, sleep=slept.append).load(
        "a", LoadSettings()
    )
    assert info.key == "a" and inner.calls == ["load", "load"] and slept == [2.0]


def test_a_load_that_fails_twice_is_an_error_with_its_retry_counted() -> None:
    inner = Flaky(BackendError("HTTP 500 #1"), ValueError("bad reply #2"))
    with pytest.raises(BackendError, match="bad reply #2") as caught:
        GuardedBackend(inner, sleep=lambda _: None).load("a", LoadSettings())
    assert inner.calls == ["load", "load"] and caught.value.retries == 1


def test_a_model_the_server_lacks_is_not_retried() -> None:
    inner = Flaky(ModelUnavailable("has no model 'a'"))
    with pytest.raises(ModelUnavailable):
        GuardedBackend(inner, sleep=lambda _: None).load("a", LoadSettings())
    assert inner.calls == ["load"]


@pytest.mark.parametrize("failure", [Json(500, {"error": "busy"}), Drop()])
def test_lmstudio_load_failing_once_is_retried(serve: Any, failure: Response) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a")], load_failures=[failure]))
    backend = make_backend("lmstudio", fake.url, timeout_s=5)
    backend.load_retry_pause_s = 0.0
    assert backend.load("org/a", LoadSettings()).key == "org/a"
    assert fake.paths("POST") == ["/api/v1/models/load", "/api/v1/models/load"]
    assert fake.events == ["load org/a ctx=4096"]


def test_load_is_bounded_by_the_request_timeout(serve: Any) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a")], load_delay_s=3.0))
    backend = make_backend("lmstudio", fake.url, timeout_s=0.5)
    backend.load_retry_pause_s = 0.0
    with pytest.raises(BackendError, match=r"/api/v1/models/load got no answer within 0.5s"):
        backend.load("org/a", LoadSettings())


def test_a_model_list_of_the_wrong_shape_is_an_error(serve: Any) -> None:
    from fakes.http_fake import FakeHttpServer

    fake = serve(FakeHttpServer())
    fake.route("GET", "/api/tags", lambda b, q: Json(200, ["not", "a", "mapping"]))
    fake.route("GET", "/api/ps", lambda b, q: Json(200, {"models": []}))
    with pytest.raises(BackendError, match="listing models failed on an unexpected answer"):
        make_backend("ollama", fake.url, timeout_s=5).list_models()
