"""Provenance: what each backend learns of the server behind a loaded model, the sampled hash of
model files, and the promise that finding out never costs a load."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from fakes.http_fake import Json, Raw
from fakes.llamacpp_server import LlamaServerFake
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel
from fakes.vllm_server import VLLMFake

from pytest_llmbench.backends import make_backend, provenance
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.provenance import (
    SAMPLE_BYTES,
    file_identity,
    provenance_of,
    sampled_sha256,
)
from pytest_llmbench.options import Settings
from pytest_llmbench.run.session import ModelManager

MIB = 1 << 20


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the sampled hash ----------------------------------------------------------------------------


def test_the_sampled_hash_reads_three_samples_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    data = bytearray(os.urandom(4 * MIB))
    path.write_bytes(data)
    identity = file_identity(path)
    assert identity is not None
    # Named for what it is: not the file's sha256, which it is not.
    assert set(identity) == {"path", "size_bytes", "sha256_sampled"}
    assert identity["size_bytes"] == 4 * MIB
    assert identity["sha256_sampled"] != hashlib.sha256(data).hexdigest()
    middle = (4 * MIB - SAMPLE_BYTES) // 2  # the middle sample: [1.5 MiB, 2.5 MiB)

    def hash_with(offset: int) -> str:
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        return sampled_sha256(path, len(changed))

    original = sampled_sha256(path, len(data))
    for inside in (0, SAMPLE_BYTES - 1, middle, middle + SAMPLE_BYTES - 1, 4 * MIB - 1):
        assert hash_with(inside) != original, inside
    # A byte between the samples is not read: the price of hashing a 20 GB file in 3 reads.
    assert hash_with(SAMPLE_BYTES + 100) == original
    # The size is part of it.
    path.write_bytes(data + b"\0")
    assert sampled_sha256(path, len(data) + 1) != original


def test_a_small_file_is_hashed_whole(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    first = sampled_sha256(path, 1004)
    path.write_bytes(b"GGUF" + bytes(500) + b"\1" + bytes(499))
    assert sampled_sha256(path, 1004) != first


def test_the_hash_is_cached_per_path_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"a" * 100)
    first = file_identity(path)
    assert first is not None
    stamp = path.stat()
    # Same size and mtime: the file is not read again (the value is the cached one).
    path.write_bytes(b"b" * 100)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert file_identity(path) == first
    # A new mtime means a new file: hashed again.
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    second = file_identity(path)
    assert second is not None and second["sha256_sampled"] != first["sha256_sampled"]


def test_what_is_not_a_readable_file_has_no_identity(tmp_path: Path) -> None:
    assert file_identity(tmp_path / "missing.gguf") is None
    assert file_identity(tmp_path) is None
    assert file_identity("bad\0path") is None


# -- llama.cpp -----------------------------------------------------------------------------------


def loaded(name: str, fake: Any, key: str) -> Any:
    backend = make_backend(name, fake.url, timeout_s=10.0)
    backend.load(key, LoadSettings())
    return backend


def test_llama_server_build_template_and_local_model_file(serve: Any, tmp_path: Path) -> None:
    gguf = tmp_path / "qwen3-4b-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(5000))
    fake = serve(
        LlamaServerFake(
            model_path=str(gguf), build_info="b6123-8f1d2c3", chat_template_tool_use="{{ tools }}"
        )
    )
    found = provenance_of(loaded("llamacpp", fake, "qwen3-4b-q4_k_m.gguf"), "qwen3-4b-q4_k_m.gguf")
    assert found == {
        "server": "llama.cpp llama-server",
        "server_version": "b6123-8f1d2c3",
        "model_file": file_identity(gguf),
        "chat_template_sha256": sha(fake.chat_template),
        "chat_template_tool_use_sha256": sha("{{ tools }}"),
    }


def test_a_model_file_not_on_this_machine_is_named_not_measured(serve: Any) -> None:
    fake = serve(LlamaServerFake())  # /props names /models/qwen3-4b-q4_k_m.gguf
    found = provenance_of(loaded("llamacpp", fake, "qwen3-4b-q4_k_m"), "qwen3-4b-q4_k_m")
    assert found["model_file"] == {"path": "/models/qwen3-4b-q4_k_m.gguf"}
    assert "chat_template_tool_use_sha256" not in found


def test_a_path_named_by_a_server_on_another_machine_is_not_ours_to_measure(
    tmp_path: Path,
) -> None:
    from pytest_llmbench.backends.server import Server

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    here = Server("llama-server", "http://localhost:8080", "")
    there = Server("llama-server", "http://10.1.2.3:8080", "")
    assert provenance.server_file(here, str(gguf)) == file_identity(gguf)
    assert provenance.server_file(there, str(gguf)) == {"path": str(gguf)}
    assert provenance.server_file(here, None) is None


def test_a_router_says_what_serves_each_model(serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a.gguf"], build_info="b7000-router"))
    backend = loaded("llamacpp", fake, "a.gguf")
    fake.requests.clear()
    found = provenance_of(backend, "a.gguf")
    assert found["server_version"] == "b7000-router"
    assert found["model_file"] == {"path": "/models/a.gguf"}  # not the router's "none"
    assert [(r.path, r.query) for r in fake.requests] == [("/props", {"model": "a.gguf"})]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        # Every field in a shape llama.cpp never sends: nothing learned, not even the kind.
        ({"build_info": 6000, "chat_template": ["x"], "model_path": {"a": 1}}, {}),
        ({"chat_template": None, "model_path": ""}, {"server_version": "b6000-abc1234"}),
    ],
)
def test_malformed_props_give_what_can_be_read_and_the_load_succeeds(
    serve: Any, extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    fake = serve(LlamaServerFake(props_extra=extra))
    backend = loaded("llamacpp", fake, "qwen3-4b-q4_k_m.gguf")  # the load reads /props too
    found = provenance_of(backend, "qwen3-4b-q4_k_m.gguf")
    if expected:
        assert found == {"server": "llama.cpp llama-server", **expected}
    else:
        assert found == {}


@pytest.mark.parametrize(
    "answer", [Raw(b"<html>not json", content_type="text/html"), Json(500, {}), Json(200, [1])]
)
def test_props_that_break_after_the_load_give_nothing(serve: Any, answer: Any) -> None:
    fake = serve(LlamaServerFake())
    backend = loaded("llamacpp", fake, "qwen3-4b-q4_k_m.gguf")
    fake.props_answer = answer
    assert provenance_of(backend, "qwen3-4b-q4_k_m.gguf") == {}


# -- the other servers ---------------------------------------------------------------------------


def test_ollama_version_digest_and_template(serve: Any) -> None:
    model = OllamaModel("qwen3:4b", digest="d" * 64, template="{{ .Prompt }}")
    fake = serve(OllamaFake(models=[model], version="0.12.6"))
    found = provenance_of(loaded("ollama", fake, "qwen3:4b"), "qwen3:4b")
    assert found == {
        "server": "Ollama",
        "server_version": "0.12.6",
        "model_digest": "d" * 64,
        "chat_template_sha256": sha("{{ .Prompt }}"),
    }


def test_an_ollama_without_a_version_endpoint_gives_the_rest(serve: Any) -> None:
    fake = serve(OllamaFake(models=[OllamaModel("qwen3:latest")], version=None))
    found = provenance_of(loaded("ollama", fake, "qwen3"), "qwen3")  # the tag :latest is implied
    assert "server_version" not in found
    assert found["model_digest"] == OllamaModel("x").digest


def test_vllm_version_and_model_source(serve: Any) -> None:
    fake = serve(VLLMFake(served="coder", root="/srv/models/Qwen2.5-Coder-7B", version="0.11.0"))
    found = provenance_of(loaded("vllm", fake, "coder"), "coder")
    assert found == {
        "server": "vLLM",
        "server_version": "0.11.0",
        "model_source": "/srv/models/Qwen2.5-Coder-7B",
    }
    older = serve(VLLMFake(version=None))
    assert provenance_of(loaded("vllm", older, "Qwen/Qwen3-4B"), "Qwen/Qwen3-4B") == {
        "server": "vLLM",
        "model_source": "Qwen/Qwen3-4B",
    }


def test_lmstudio_listing_and_load_settings(serve: Any) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a", size_bytes=2_500_000_000)]))
    backend = make_backend("lmstudio", fake.url, timeout_s=10.0)
    backend.load("org/a", LoadSettings(context_length=8192))
    found = provenance_of(backend, "org/a")
    # No server_version: LM Studio's REST API names no version of itself or its engine.
    assert found == {
        "server": "LM Studio",
        "model_listing": {
            "size_bytes": 2_500_000_000,
            "quantization": "Q4_K_M",
            "bits_per_weight": 4,
            "format": "gguf",
            "architecture": "qwen3",
            "params_string": "4B",
            "publisher": "fake",
        },
        "load_config": {"context_length": 8192, "flash_attention": True},
    }


def test_an_lmstudio_older_than_the_rest_api_gives_nothing(serve: Any) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a")], legacy=True))
    backend = make_backend("lmstudio", fake.url, timeout_s=10.0)
    backend.list_models()  # learns that the server has no /api/v1
    assert provenance_of(backend, "org/a") == {}


def test_a_plain_openai_server_says_nothing(fake_openai: Any) -> None:
    server = fake_openai({"m": lambda body: None})
    assert provenance_of(make_backend("openai", server.url, timeout_s=10.0), "m") == {}


# -- the model manager ---------------------------------------------------------------------------


def test_the_manager_keeps_each_models_provenance_after_its_load(serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a", "b"], build_info="b1"))
    manager = ModelManager(Settings(models=("a", "b"), backend="llamacpp", base_url=fake.url))
    try:
        manager.ensure_loaded("a")
        assert manager.provenance["a"]["server_version"] == "b1"
        # Handed on once per load: the first item report carries it, the others do not.
        assert manager.unreported_provenance("a") == manager.provenance["a"]
        assert manager.unreported_provenance("a") is None
        fake.build_info = "b2"
        manager.ensure_loaded("b")
        assert manager.provenance["b"]["server_version"] == "b2"
    finally:
        manager.close()


def test_a_provenance_that_raises_costs_the_load_nothing(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llmbench.backends.llamacpp import LlamaCppBackend

    def broken(self: Any, key: str) -> dict[str, Any]:
        raise RuntimeError("a bug in a backend")

    monkeypatch.setattr(LlamaCppBackend, "provenance", broken)
    fake = serve(LlamaServerFake(router_models=["a"]))
    manager = ModelManager(Settings(models=("a",), backend="llamacpp", base_url=fake.url))
    try:
        assert manager.ensure_loaded("a").key == "a"
        assert manager.provenance["a"] == {}
        assert manager.unreported_provenance("a") is None  # nothing to carry
    finally:
        manager.close()


def test_replicas_that_differ_are_each_recorded(serve: Any) -> None:
    one = serve(LlamaServerFake(router_models=["a"], build_info="b1"))
    two = serve(LlamaServerFake(router_models=["a"], build_info="b2"))
    settings = Settings(models=("a",), backend="llamacpp", endpoint=(("a", (one.url, two.url)),))
    manager = ModelManager(settings)
    try:
        manager.ensure_loaded("a")
    finally:
        manager.close()
    found = manager.provenance["a"]
    assert found["server_version"] == "b1"  # the first replica's, as reports name it
    assert [r["server_version"] for r in found["replicas"]] == ["b1", "b2"]


def test_the_server_and_its_build_in_a_few_words() -> None:
    assert provenance.describe({"server": "Ollama", "server_version": "0.12.6"}) == "Ollama 0.12.6"
    assert provenance.describe({"server": "LM Studio"}) == "LM Studio"
    assert provenance.describe({}) is None and provenance.describe(None) is None
