"""Backends: one per kind of model server, built by name.

Importing this package is cheap; a backend's module (and the `openai` package) is imported only
when that backend is made, so `pytest --help` never pays for it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..exchange import BackendError
from .base import Backend
from .guard import GuardedBackend
from .server import Server, normalise_base_url

# name -> (module, class, what users call the server, default URL, how to start it)
_REGISTRY: dict[str, tuple[str, str, str, str | None, str]] = {
    "lmstudio": (
        "lmstudio",
        "LMStudioBackend",
        "LM Studio",
        "http://localhost:1234",
        "start LM Studio's server: `lms server start` (or the Developer tab in the app)",
    ),
    "openai": (
        "generic",
        "GenericBackend",
        "the OpenAI-compatible server",
        "http://localhost:8000",
        "start your OpenAI-compatible server, or pass its root with --llmbench-base-url",
    ),
    "ollama": (
        "ollama",
        "OllamaBackend",
        "Ollama",
        "http://localhost:11434",
        "start Ollama: `ollama serve`",
    ),
    "llamacpp": (
        "llamacpp",
        "LlamaCppBackend",
        "llama-server",
        "http://localhost:8080",
        "start llama.cpp's server: `llama-server -m MODEL.gguf -c CONTEXT` "
        "(or `llama-server --models-dir DIR` for router mode)",
    ),
    "vllm": (
        "vllm",
        "VLLMBackend",
        "vLLM",
        "http://localhost:8000",
        "start vLLM: `vllm serve MODEL`",
    ),
    "embedded": (
        "embedded",
        "EmbeddedBackend",
        "the embedded llama.cpp server",
        None,
        "build llama.cpp's server with `make llama-server` in a clone of pytest-llmbench",
    ),
}

BACKENDS: tuple[str, ...] = tuple(_REGISTRY)

# Environment variables holding an API key, for servers started with one.
_API_KEY_ENV = {"lmstudio": "LM_API_TOKEN", "openai": "OPENAI_API_KEY", "vllm": "VLLM_API_KEY"}


def default_base_url(name: str) -> str | None:
    """The URL a server listens on out of the box (None for `embedded`, which picks a port)."""
    return _entry(name)[3]


def make_backend(
    name: str, base_url: str | None, *, timeout_s: float, context_length: int | None = None
) -> Backend:
    module_name, class_name, label, default_url, start_hint = _entry(name)
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: Any = getattr(module, class_name)
    if name == "embedded":
        backend: Backend = cls(timeout_s=timeout_s, context_length=context_length)
        return GuardedBackend(backend)
    url = base_url or default_url
    assert url is not None
    server = Server(label=label, root=normalise_base_url(url), start_hint=start_hint)
    env = _API_KEY_ENV.get(name)
    api_key = os.environ.get(env) if env else None
    backend = cls(server, timeout_s=timeout_s, context_length=context_length, api_key=api_key)
    # Whatever a server answers, callers see a BackendError or a result, never a traceback.
    return GuardedBackend(backend)


def _entry(name: str) -> tuple[str, str, str, str | None, str]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None


__all__ = ["BACKENDS", "Backend", "BackendError", "default_base_url", "make_backend"]
