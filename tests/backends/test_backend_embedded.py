"""The `embedded` backend: its server process lifecycle (against a stand-in for llama-cpp-python's
server, run as a real child process) and one real run of the bundled SmolLM2."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.bundled_models import BUNDLED
from pytest_llmbench.backends.embedded import EmbeddedBackend
from pytest_llmbench.exchange import BackendError

FAKE_SERVER = Path(__file__).resolve().parent.parent / "fakes" / "llama_cpp_python_server.py"


def alive(pid: int) -> bool:
    """Running, and not a zombie (nobody may reap orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An interpreter stand-in that runs the fake server for `-m llama_cpp.server ...`."""
    shim = tmp_path / "python-shim"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    shim.chmod(0o755)
    state = tmp_path / "server-state.json"
    monkeypatch.setenv("FAKE_LLAMA_STATE", str(state))
    return str(shim), state


@pytest.fixture
def gguf(tmp_path: Path) -> str:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


def embedded(python: str, **kwargs: Any) -> EmbeddedBackend:
    return EmbeddedBackend(timeout_s=20.0, python=python, retry=FAST_RETRY, threads=2, **kwargs)


def test_load_starts_a_server_and_unload_stops_it_and_its_children(
    fake_python: tuple[str, Path], gguf: str
) -> None:
    python, state = fake_python
    backend = embedded(python)
    info = backend.load(gguf, LoadSettings(context_length=2048))
    started = json.loads(state.read_text())
    argv = started["argv"]
    assert argv[:2] == ["-m", "llama_cpp.server"]
    assert argv[argv.index("--model") + 1] == gguf
    assert argv[argv.index("--model_alias") + 1] == gguf
    assert argv[argv.index("--n_ctx") + 1] == "2048"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert backend.base_url == f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"
    assert argv[argv.index("--n_threads") + 1] == "2"
    assert info.context_length == 2048 and info.seconds >= 0.3  # it waited for readiness
    assert alive(started["pid"]) and alive(started["helper"])

    backend.unload(gguf)
    assert not alive(started["pid"])
    assert not alive(started["helper"])
    assert backend.base_url == "embedded"


def test_chat_counts_tokens_itself_when_the_stream_has_no_usage(
    fake_python: tuple[str, Path], gguf: str
) -> None:
    python, _ = fake_python
    backend = embedded(python)
    backend.load(gguf, LoadSettings())
    try:
        completion = backend.chat(ask(gguf, "one two three"))
    finally:
        backend.close()
    assert completion.content == f"hello from {gguf}"
    assert completion.usage.counted_by == "client"
    assert completion.usage.completion_tokens == 3  # "hello", " from", " <path>"
    assert completion.usage.prompt_tokens == 3 + 8  # the server's tokenizer, plus the template
    assert completion.ttft_s is not None


def test_models_are_switched_one_server_at_a_time(
    fake_python: tuple[str, Path], gguf: str, tmp_path: Path
) -> None:
    python, state = fake_python
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    backend = embedded(python)
    backend.load(gguf, LoadSettings())
    first = json.loads(state.read_text())["pid"]
    backend.unload(gguf)
    backend.load(str(other), LoadSettings())
    try:
        assert not alive(first)
        assert backend.chat(ask(str(other))).content == f"hello from {other}"
        # The server would answer any name with its own model: the backend refuses instead.
        with pytest.raises(BackendError, match=r"runs model '.*other\.gguf' but was asked for"):
            backend.chat(ask(gguf))
    finally:
        backend.close()


def test_prompt_that_does_not_fit_the_context(fake_python: tuple[str, Path], gguf: str) -> None:
    python, _ = fake_python
    backend = embedded(python)
    backend.load(gguf, LoadSettings(context_length=12))
    try:
        backend.chat(ask(gguf, "a b c"))  # 3 + 8 = 11 tokens: fits
        with pytest.raises(BackendError, match="12-token context"):
            backend.chat(ask(gguf, "a b c d"))
    finally:
        backend.close()


def test_a_server_that_dies_at_start_up_reports_its_log(
    fake_python: tuple[str, Path], gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    python, _ = fake_python
    monkeypatch.setenv("FAKE_LLAMA_MODE", "crash")
    with pytest.raises(BackendError) as caught:
        embedded(python).load(gguf, LoadSettings())
    assert "exited with code 3" in caught.value.message
    assert "failed to load model from file" in caught.value.message


def test_list_models_shows_the_installed_bundled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUNDLED, "smollm2", replace(BUNDLED["smollm2"], installed=lambda: True))
    monkeypatch.setitem(
        BUNDLED, "gemma3-270m", replace(BUNDLED["gemma3-270m"], installed=lambda: False)
    )
    models = make_backend("embedded", None, timeout_s=5).list_models()
    assert [(m.key, m.context_length, m.quantization, m.loaded) for m in models] == [
        ("smollm2", 8192, "Q4_1", False)
    ]


def test_unknown_model_keys_and_missing_files(tmp_path: Path) -> None:
    backend = make_backend("embedded", None, timeout_s=5)
    with pytest.raises(BackendError, match="no model 'llama-70b'; use one of smollm2, gemma3-270m"):
        backend.load("llama-70b", LoadSettings())
    with pytest.raises(BackendError, match="no GGUF file at"):
        backend.load(str(tmp_path / "missing.gguf"), LoadSettings())


def test_chat_before_load_is_an_error() -> None:
    with pytest.raises(BackendError, match="not loaded"):
        make_backend("embedded", None, timeout_s=5).chat(ask("smollm2"))


@pytest.mark.embedded
def test_real_smollm2_through_the_embedded_backend() -> None:
    """The product end to end without fakes: the bundled model, a real server process."""
    backend = make_backend("embedded", None, timeout_s=300)
    info = backend.load("smollm2", LoadSettings())
    pid_url = backend.base_url
    try:
        completion = backend.chat(
            ask("smollm2", "Write a Python function that adds two numbers.", max_tokens=48,
                temperature=0.0, seed=1, timeout_s=120)
        )  # fmt: skip
    finally:
        backend.unload("smollm2")
    print(
        f"\nsmollm2: load {info.seconds:.2f}s ctx={info.context_length} "
        f"prompt={completion.usage.prompt_tokens} completion={completion.usage.completion_tokens} "
        f"({completion.usage.counted_by}) ttft={completion.ttft_s:.3f}s "
        f"decode={completion.decode_tok_s:.1f} tok/s wall={completion.wall_s:.2f}s "
        f"finish={completion.finish_reason}\n{completion.content}"
    )
    assert info.context_length == 8192
    assert completion.content.strip()
    assert (
        completion.usage.completion_tokens is not None
        and 0 < completion.usage.completion_tokens <= 48
    )
    assert completion.usage.prompt_tokens is not None and completion.usage.prompt_tokens > 10
    assert completion.finish_reason in ("stop", "length")
    assert completion.decode_tok_s is not None and completion.decode_tok_s > 1
    assert pid_url.startswith("http://127.0.0.1:")
    assert backend.base_url == "embedded"
    with pytest.raises(BackendError):
        backend.chat(ask("smollm2"))  # its server is gone


def test_auto_concurrency_sends_the_embedded_server_one_request_at_a_time() -> None:
    # Its server answers concurrent requests with empty replies instead of queueing them.
    from pytest_llmbench.options import Settings
    from pytest_llmbench.session import ModelManager

    manager = ModelManager(Settings(models=("smollm2",), backend="embedded"))
    [(_, in_flight, why)] = manager.slots("smollm2")
    assert (in_flight, why) == (1, "server")
    forced = ModelManager(Settings(models=("smollm2",), backend="embedded", concurrency=3))
    assert [n for _, n, _ in forced.slots("smollm2")] == [3]
