"""The `lmstudio` backend against a fake LM Studio: list, lifecycle, checks, metrics, failures."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask
from fakes.chat_stream import Answer, Quirks, tokens
from fakes.http_fake import Drop, Json
from fakes.lmstudio_server import LMStudioFake, Model

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.lms_cli import LmsCli
from pytest_llmbench.backends.lmstudio import LMStudioBackend
from pytest_llmbench.backends.server import Server
from pytest_llmbench.exchange import BackendError, BackendUnreachable

MODELS = [Model("qwen/qwen3-4b", size_bytes=2_500_000_000, max_context_length=40960),
          Model("google/gemma-3-4b", tool_use=False, quantization="Q8_0")]  # fmt: skip


def backend_for(fake: LMStudioFake, **kwargs: Any) -> LMStudioBackend:
    server = Server("LM Studio", fake.url, "start LM Studio's server: `lms server start`")
    return LMStudioBackend(server, timeout_s=10.0, retry=FAST_RETRY, **kwargs)


def test_list_models_reports_what_the_server_says(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    fake.preload("google/gemma-3-4b", 4096)
    models = {m.key: m for m in make_backend("lmstudio", fake.url, timeout_s=5).list_models()}
    assert set(models) == {"qwen/qwen3-4b", "google/gemma-3-4b"}  # the embedding model is not
    qwen, gemma = models["qwen/qwen3-4b"], models["google/gemma-3-4b"]
    assert (qwen.size_bytes, qwen.context_length, qwen.tool_use) == (2_500_000_000, 40960, True)
    assert (qwen.quantization, qwen.format, qwen.loaded) == ("Q4_K_M", "gguf", False)
    assert (gemma.tool_use, gemma.quantization, gemma.loaded) == (False, "Q8_0", True)


def test_lifecycle_loads_each_model_with_its_context_before_its_requests(serve: Any) -> None:
    answers = {"qwen/qwen3-4b": Answer(tokens("from qwen")), "google/gemma-3-4b": Answer(["gemma"])}
    fake = serve(LMStudioFake(models=MODELS, answers=answers))
    backend = make_backend("lmstudio", fake.url + "/v1/", timeout_s=5, context_length=8192)

    info = backend.load("qwen/qwen3-4b", LoadSettings())
    first = backend.chat(ask("qwen/qwen3-4b"))
    backend.chat(ask("qwen/qwen3-4b"))
    backend.unload("qwen/qwen3-4b")
    backend.load("google/gemma-3-4b", LoadSettings(context_length=16384))
    second = backend.chat(ask("google/gemma-3-4b"))
    backend.unload("google/gemma-3-4b")

    assert fake.events == [
        "load qwen/qwen3-4b ctx=8192", "chat qwen/qwen3-4b", "chat qwen/qwen3-4b",
        "unload qwen/qwen3-4b",
        "load google/gemma-3-4b ctx=16384", "chat google/gemma-3-4b", "unload google/gemma-3-4b",
    ]  # fmt: skip
    assert (info.seconds, info.context_length, info.instance_id) == (1.25, 8192, "qwen/qwen3-4b")
    assert (first.content, second.content) == ("from qwen", "gemma")
    assert fake.instances == []


def test_a_model_already_loaded_as_asked_is_reused_and_left_loaded(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    fake.preload("qwen/qwen3-4b", 8192)
    backend = backend_for(fake, context_length=8192)
    info = backend.load("qwen/qwen3-4b", LoadSettings())
    backend.chat(ask("qwen/qwen3-4b"))
    backend.unload("qwen/qwen3-4b")
    assert info.seconds == 0.0
    assert fake.events == ["chat qwen/qwen3-4b"]
    assert [i.id for i in fake.instances] == ["qwen/qwen3-4b"]


def test_a_model_loaded_with_another_context_is_reloaded_not_duplicated(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    fake.preload("qwen/qwen3-4b", 2048)
    backend = backend_for(fake, context_length=8192)
    info = backend.load("qwen/qwen3-4b", LoadSettings())
    assert fake.events == ["unload qwen/qwen3-4b", "load qwen/qwen3-4b ctx=8192"]
    assert info.instance_id == "qwen/qwen3-4b"  # not "qwen/qwen3-4b:2"


def test_jit_answer_from_another_model_is_an_error_naming_both(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    fake.preload("google/gemma-3-4b", 4096)
    backend = backend_for(fake)
    with pytest.raises(BackendError) as caught:
        backend.chat(ask("qwen/qwen3-4b"))
    assert "'qwen/qwen3-4b'" in caught.value.message
    assert "'google/gemma-3-4b' answered" in caught.value.message


def test_a_second_instance_name_still_counts_as_the_model(serve: Any) -> None:
    fake = serve(
        LMStudioFake(
            models=MODELS, answers={"qwen/qwen3-4b": Answer(["hi"], model="qwen/qwen3-4b:2")}
        )
    )
    backend = backend_for(fake)
    backend.load("qwen/qwen3-4b", LoadSettings())
    assert backend.chat(ask("qwen/qwen3-4b")).content == "hi"


def test_prompt_larger_than_the_loaded_context_is_refused_before_sending(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    backend = backend_for(fake)
    backend.load("qwen/qwen3-4b", LoadSettings(context_length=100))
    backend.chat(ask("qwen/qwen3-4b", "short"))  # fits
    with pytest.raises(BackendError) as caught:
        backend.chat(ask("qwen/qwen3-4b", "x" * 400))
    assert "100-token context" in caught.value.message
    assert fake.events.count("chat qwen/qwen3-4b") == 1


def test_answer_may_run_past_the_context_when_the_prompt_fits(serve: Any) -> None:
    # Only the prompt must fit: max_tokens beyond the context is the model's truncation to own.
    fake = serve(LMStudioFake(models=MODELS))
    backend = backend_for(fake)
    backend.load("qwen/qwen3-4b", LoadSettings(context_length=100))
    assert backend.chat(ask("qwen/qwen3-4b", "short", max_tokens=5000)).content == "ok"


def test_metrics_are_recorded(serve: Any) -> None:
    answer = Answer(tokens("one two three four five"), reasoning=["hmm", " ok"])
    fake = serve(LMStudioFake(models=MODELS, answers={"qwen/qwen3-4b": answer},
                              quirks=Quirks(reasoning="reasoning", prompt_tokens=31),
                              chunk_delay_s=0.02))  # fmt: skip
    backend = backend_for(fake)
    backend.load("qwen/qwen3-4b", LoadSettings())
    completion = backend.chat(ask("qwen/qwen3-4b"))
    assert completion.content == "one two three four five"
    assert completion.reasoning == "hmm ok"
    assert completion.usage.prompt_tokens == 31
    assert completion.usage.completion_tokens == 7
    assert completion.usage.reasoning_tokens == 2
    assert completion.usage.counted_by == "server"
    assert completion.ttft_s is not None and completion.ttft_s >= 0.02
    assert completion.decode_tok_s is not None and 5 < completion.decode_tok_s < 60
    assert completion.wall_s >= completion.ttft_s
    assert completion.model_id == "qwen/qwen3-4b"
    assert completion.retries == 0


def test_request_carries_temperature_usage_option_seed_and_tools(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    backend = backend_for(fake)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    backend.chat(ask("qwen/qwen3-4b", temperature=0.0, seed=7, tools=tools, max_tokens=99))
    body = fake.bodies("/v1/chat/completions")[0]
    assert body["temperature"] == 0.0
    assert body["seed"] == 7
    assert body["tools"] == tools
    assert body["max_tokens"] == 99
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "tool_choice" not in body


def test_server_errors_are_retried_and_counted(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS, chat_failures=[Json(503, {"error": "busy"}), Drop()]))
    completion = backend_for(fake).chat(ask("qwen/qwen3-4b"))
    assert completion.content == "ok"
    assert completion.retries == 2


def test_retries_are_bounded(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS, chat_failures=[Json(500, {"error": "boom"})] * 5))
    with pytest.raises(BackendError) as caught:
        backend_for(fake).chat(ask("qwen/qwen3-4b"))
    assert "HTTP 500" in caught.value.message
    assert len(fake.bodies("/v1/chat/completions")) == 3


def test_client_errors_are_not_retried(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS, chat_failures=[Json(400, {"error": "bad request"})]))
    with pytest.raises(BackendError, match="HTTP 400"):
        backend_for(fake).chat(ask("qwen/qwen3-4b"))
    assert len(fake.bodies("/v1/chat/completions")) == 1


def test_a_stream_cut_mid_answer_is_retried(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS, answers={"qwen/qwen3-4b": Answer(tokens("a b c d"))}))
    original = fake._chat
    calls = {"n": 0}

    def cut_once(body: dict[str, Any], query: dict[str, str]) -> Any:
        calls["n"] += 1
        response = original(body, query)
        return type(response)(response.chunks, drop_after=2) if calls["n"] == 1 else response

    fake.route("POST", "/v1/chat/completions", cut_once)
    completion = backend_for(fake).chat(ask("qwen/qwen3-4b"))
    assert completion.content == "a b c d"
    assert completion.retries == 1


def test_a_slow_answer_is_an_error_and_not_retried(serve: Any) -> None:
    answers = {"qwen/qwen3-4b": Answer(tokens("a b c d e f"))}
    fake = serve(LMStudioFake(models=MODELS, answers=answers, chunk_delay_s=0.1))
    with pytest.raises(BackendError, match=r"no complete answer within 0\.3s"):
        backend_for(fake).chat(ask("qwen/qwen3-4b", timeout_s=0.3))
    assert len(fake.bodies("/v1/chat/completions")) == 1


def test_unreachable_server_names_the_url_and_how_to_start_it(closed_url: str) -> None:
    backend = make_backend("lmstudio", closed_url, timeout_s=2)
    with pytest.raises(BackendUnreachable) as caught:
        backend.list_models()
    assert closed_url in caught.value.message
    assert "lms server start" in caught.value.message
    with pytest.raises(BackendUnreachable) as caught:
        backend.load("qwen/qwen3-4b", LoadSettings())
    assert closed_url in caught.value.message


def test_unreachable_on_chat_after_bounded_retries(closed_url: str) -> None:
    server = Server("LM Studio", closed_url, "start LM Studio's server: `lms server start`")
    backend = LMStudioBackend(server, timeout_s=2.0, retry=FAST_RETRY)
    with pytest.raises(BackendUnreachable) as caught:
        backend.chat(ask("qwen/qwen3-4b"))
    assert closed_url in caught.value.message and "lms server start" in caught.value.message


def test_loading_an_unknown_model_says_so(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS))
    with pytest.raises(BackendError, match="has no model 'nope/missing'"):
        backend_for(fake).load("nope/missing", LoadSettings())


# -- servers older than 0.4: /api/v0 listing and the `lms` command ------------------------------

FAKE_LMS = """\
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["ls", "--json"]:
    print(json.dumps([{{"type": "llm", "modelKey": "old/model", "sizeBytes": 5,
                        "maxContextLength": 2048, "trainedForToolUse": False}}]))
"""


@pytest.fixture
def fake_lms(tmp_path: Path) -> tuple[LmsCli, Path]:
    log = tmp_path / "lms.log"
    script = tmp_path / "lms"
    script.write_text(f"#!{sys.executable}\n" + FAKE_LMS.format(log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return LmsCli(str(script), timeout_s=10.0), log


def test_legacy_server_lists_from_api_v0(serve: Any) -> None:
    fake = serve(LMStudioFake(models=MODELS, legacy=True))
    fake.preload("qwen/qwen3-4b", 4096)
    models = {m.key: m for m in backend_for(fake).list_models()}
    assert models["qwen/qwen3-4b"].loaded and not models["google/gemma-3-4b"].loaded
    assert models["google/gemma-3-4b"].tool_use is False


def test_legacy_server_loads_and_unloads_with_lms(
    serve: Any, fake_lms: tuple[LmsCli, Path]
) -> None:
    lms, log = fake_lms
    fake = serve(LMStudioFake(models=MODELS, legacy=True))
    backend = backend_for(fake, lms=lms)
    info = backend.load("qwen/qwen3-4b", LoadSettings(context_length=4096))
    backend.unload("qwen/qwen3-4b")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        [
            "load",
            "qwen/qwen3-4b",
            "-y",
            "--identifier",
            "qwen/qwen3-4b",
            "--context-length",
            "4096",
        ],
        ["unload", "qwen/qwen3-4b"],
    ]
    assert info.context_length == 4096 and info.seconds >= 0


def test_lms_listing_when_no_rest_listing_exists(serve: Any, fake_lms: tuple[LmsCli, Path]) -> None:
    lms, _ = fake_lms
    fake = serve(LMStudioFake(models=MODELS, legacy=True))
    del fake.routes[("GET", "/api/v0/models")]
    models = backend_for(fake, lms=lms).list_models()
    assert [(m.key, m.context_length, m.tool_use) for m in models] == [("old/model", 2048, False)]
