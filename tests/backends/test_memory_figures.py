"""A model's memory: measured from the processes that serve it, or as each server reports it
(backends/memory.py), and how the model manager keeps it per load."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.llamacpp_server import LlamaServerFake
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadInfo, LoadSettings, ModelInfo
from pytest_llmbench.backends.memory import NOT_KNOWN, MemorySampler, reported, resident
from pytest_llmbench.exchange import ChatRequest, Completion
from pytest_llmbench.options import Settings
from pytest_llmbench.run.session import ModelManager

MIB = 1 << 20
# Touches 64 MiB (every page, so it is resident), says so, then waits to be stopped.
HOLDER = "b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ready', flush=True)\nimport time; time.sleep(60)"  # noqa: E501


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_the_sampler_measures_resident_memory_of_the_processes(
    holder: subprocess.Popen[str],
) -> None:
    sampler = MemorySampler(lambda: [holder.pid], "a test process", interval_s=0.05).start()
    time.sleep(0.3)
    figure = sampler.stop()
    assert figure.measured and figure.samples >= 3
    assert figure.peak_bytes is not None and figure.steady_bytes is not None
    assert figure.peak_bytes >= 64 * MIB and figure.steady_bytes >= 64 * MIB
    assert figure.peak_bytes >= figure.steady_bytes
    assert figure.source == "measured: resident memory of a test process (/proc, every 0.05 s)"
    now, peak = resident([holder.pid])
    assert now >= 64 * MIB and peak >= now


def test_a_process_that_is_gone_gives_no_samples() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert resident([proc.pid]) == (0, 0)
    assert MemorySampler(lambda: [proc.pid], "gone").start().stop() == NOT_KNOWN


def test_reported_figures_keep_their_source() -> None:
    figure = reported(2_400_000_000, "llama-server model metadata size")
    assert (figure.peak_bytes, figure.measured) == (2_400_000_000, False)
    assert figure.source == "reported: llama-server model metadata size"
    for nothing in (None, 0, -5, True, "big"):
        assert reported(nothing, "x") == NOT_KNOWN


def test_each_server_reports_what_it_knows(serve: Any) -> None:
    lmstudio = serve(LMStudioFake(models=[Model("qwen/qwen3-4b", size_bytes=2_500_000_000)]))
    figure = make_backend("lmstudio", lmstudio.url, timeout_s=5).reported_memory("qwen/qwen3-4b")
    assert (figure.peak_bytes, figure.source) == (
        2_500_000_000, "reported: LM Studio model listing size_bytes",
    )  # fmt: skip
    ollama = serve(OllamaFake(models=[OllamaModel("qwen3:4b", size=3_100_000_000)]))
    backend = make_backend("ollama", ollama.url, timeout_s=5)
    backend.load("qwen3:4b", LoadSettings())
    figure = backend.reported_memory("qwen3:4b")
    assert (figure.peak_bytes, figure.source) == (3_100_000_000, "reported: Ollama /api/ps size")
    assert backend.reported_memory("gemma3:1b") == NOT_KNOWN  # not loaded: /api/ps says nothing
    llama = serve(LlamaServerFake())
    figure = make_backend("llamacpp", llama.url, timeout_s=5).reported_memory(llama.model)
    assert (figure.peak_bytes, figure.source) == (
        2_400_000_000, "reported: llama-server model metadata size",
    )  # fmt: skip
    # An OpenAI-compatible server says nothing of memory: no figure, and reports say "n/a".
    assert not hasattr(make_backend("openai", llama.url, timeout_s=5), "reported_memory")


class ProcessBackend:
    """A backend whose model is `pid`'s process, as the embedded backend's are its servers."""

    name = "embedded"
    base_url = "embedded"

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("m")]

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        return LoadInfo(key, 0.1)

    def unload(self, key: str) -> None:
        return None

    def chat(self, request: ChatRequest) -> Completion:
        return Completion("ok")

    def memory_processes(self, key: str) -> tuple[list[int], str]:
        return [self.pid], "1 test process"


def test_the_manager_samples_while_a_model_is_loaded_and_keeps_the_figure(
    holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = ModelManager(Settings(models=("m",)))
    monkeypatch.setattr(manager, "backends_for", lambda model: [ProcessBackend(holder.pid)])
    manager.ensure_loaded("m")
    during = manager.memory_of("m")
    assert during.measured and (during.peak_bytes or 0) >= 64 * MIB
    assert manager.untold_memory("m") == during  # told once ...
    assert manager.untold_memory("m") is None  # ... and again only when it changes
    manager.unload("m")
    after = manager.memory_of("m")
    assert after.measured and after.samples >= during.samples
    assert manager.memory_of("other") == NOT_KNOWN
