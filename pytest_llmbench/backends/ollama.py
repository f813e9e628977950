"""`ollama`: Ollama's native API for the model lifecycle, its `/v1` layer for chat.

A model is loaded by an empty `/api/chat` with `keep_alive: -1` and the context as
`options.num_ctx`, and unloaded by one with `keep_alive: 0`. The `/v1` layer cannot set the
context and truncates an overflowing prompt silently, so after each answer the context Ollama
really runs the model with (`/api/ps`) is checked against the prompt that was sent.
`provenance()` gives Ollama's version (`/api/version`), the model's digest (`/api/tags`) and
the hash of its chat template (`/api/show`).
"""

from __future__ import annotations

import time
from typing import Any

from ..exchange import ChatRequest, Completion
from .base import LoadInfo, LoadSettings, ModelInfo
from .compat_backend import CompatBackend
from .context_fit import check_prompt_fits
from .memory import MemoryFigure, reported
from .provenance import TIMEOUT_S, ask, find, of_server, text, text_sha256
from .rest import HttpStatus


class OllamaBackend(CompatBackend):
    name = "ollama"
    wrong_model_hint = "check the model's name and tag (`ollama list`)"

    def list_models(self) -> list[ModelInfo]:
        tags = self.rest.get("/api/tags") or {}
        running = self._running()
        models = []
        for entry in tags.get("models") or ():
            name = str(entry.get("name") or entry.get("model"))
            details = entry.get("details") or {}
            show = self._show(name)
            capabilities = show.get("capabilities")
            models.append(
                ModelInfo(
                    key=name,
                    size_bytes=entry.get("size"),
                    context_length=_trained_context(show.get("model_info") or {}),
                    tool_use=("tools" in capabilities) if isinstance(capabilities, list) else None,
                    reasoning=(
                        ("thinking" in capabilities) if isinstance(capabilities, list) else None
                    ),
                    quantization=details.get("quantization_level"),
                    loaded=name in running,
                    format=details.get("format"),
                )
            )
        return models

    def _show(self, name: str) -> dict[str, Any]:
        try:
            reply = self.rest.post("/api/show", {"model": name})
        except HttpStatus:
            return {}  # listing must not fail because one model's details cannot be read
        return reply if isinstance(reply, dict) else {}

    def _running(self) -> dict[str, dict[str, Any]]:
        reply = self.rest.get("/api/ps") or {}
        return {str(m.get("name") or m.get("model")): m for m in reply.get("models") or ()}

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        context = self.settings_context(settings)
        body: dict[str, Any] = {"model": key, "messages": [], "keep_alive": -1, "stream": False}
        if context:
            body["options"] = {"num_ctx": context}
        started = time.monotonic()
        try:
            reply = self.rest.post("/api/chat", body, timeout_s=self.timeout_s)
        except HttpStatus as exc:
            if exc.status == 404:
                raise self.server.missing(
                    f"could not load model {key!r}: {exc.message}; pull it first: "
                    f"`ollama pull {key}`"
                ) from exc
            raise self.server.error(f"could not load model {key!r}: {exc.message}") from exc
        seconds = time.monotonic() - started
        reported = reply.get("load_duration") if isinstance(reply, dict) else None
        loaded_context = self._context_of(key) or context
        if loaded_context:
            self.loaded_context[key] = loaded_context
        return LoadInfo(
            key=key,
            # Ollama reports durations in nanoseconds.
            seconds=reported / 1e9 if isinstance(reported, int) and reported > 0 else seconds,
            context_length=loaded_context,
        )

    def reported_memory(self, key: str) -> MemoryFigure:
        """What `/api/ps` says the loaded model takes (`size`: its memory, VRAM included)."""
        running = ask(lambda: self._running())
        entry = next((m for name, m in (running or {}).items() if self.same_model(key, name)), None)
        return reported(entry.get("size") if entry else None, "Ollama /api/ps size")

    def provenance(self, key: str) -> dict[str, Any]:
        """Ollama's version, the model's digest and its template's hash (backends/provenance.py)."""
        version = ask(lambda: self.rest.get("/api/version", timeout_s=TIMEOUT_S))
        tags = ask(lambda: self.rest.get("/api/tags", timeout_s=TIMEOUT_S))
        entry = find(
            tags.get("models") if isinstance(tags, dict) else None,
            lambda m: self.same_model(key, str(m.get("name") or m.get("model"))),
        )
        show = ask(lambda: self.rest.post("/api/show", {"model": key}, timeout_s=TIMEOUT_S))
        return of_server(
            "Ollama",
            {
                "server_version": text(version, "version"),
                "model_digest": text(entry, "digest"),
                "chat_template_sha256": text_sha256(
                    show.get("template") if isinstance(show, dict) else None
                ),
            },
        )

    def unload(self, key: str) -> None:
        self.loaded_context.pop(key, None)
        self.rest.post(
            "/api/chat", {"model": key, "messages": [], "keep_alive": 0, "stream": False}
        )

    def chat(self, request: ChatRequest) -> Completion:
        completion = super().chat(request)
        actual = self._context_of(request.model)
        if actual and actual != self.loaded_context.get(request.model):
            # Ollama reloaded the model with another context (its /v1 layer sends none):
            # the prompt just sent may have been cut without a word.
            self.loaded_context[request.model] = actual
            check_prompt_fits(request.model, self.count_prompt(request), actual)
        return completion

    def _context_of(self, key: str) -> int | None:
        for name, entry in self._running().items():
            if self.same_model(key, name) and isinstance(entry.get("context_length"), int):
                return int(entry["context_length"])
        return None

    def same_model(self, requested: str, answered: str) -> bool:
        return _with_tag(requested) == _with_tag(answered)


def _with_tag(name: str) -> str:
    """`qwen3` and `qwen3:latest` are the same model."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _trained_context(model_info: dict[str, Any]) -> int | None:
    for key, value in model_info.items():
        if key.endswith(".context_length") and isinstance(value, int):
            return value
    return None
