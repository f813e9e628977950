"""A fake Ollama: native /api (version, tags, ps, show, chat-as-load/unload) and the /v1 chat
layer. `version=None` is a server without /api/version (404).

Quirks it reproduces: /v1 streams reasoning as `delta.reasoning` and tool calls whole; a /v1
request without temperature runs at 1.0; `v1_reload_context` makes a /v1 request reload the model
with that context (what Ollama does when the layer's defaults differ from the loaded runner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


@dataclass
class OllamaModel:
    name: str
    size: int = 2_000_000_000
    trained_context: int = 40960
    capabilities: tuple[str, ...] = ("completion", "tools")
    quantization: str = "Q4_K_M"
    digest: str = "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a"
    template: str = "{{ .System }}{{ range .Messages }}{{ .Content }}{{ end }}"


@dataclass
class OllamaFake(FakeHttpServer):
    models: list[OllamaModel] = field(default_factory=list)
    # per model: what it writes, or a function of the request body (one answer per turn)
    answers: dict[str, Answer | Callable[[dict[str, Any]], Answer]] = field(default_factory=dict)
    default_context: int = 4096
    v1_reload_context: int | None = None
    report_ps_context: bool = True  # older Ollama has no context_length in /api/ps
    version: str | None = "0.12.3"

    def __post_init__(self) -> None:
        super().__init__()
        self.running: dict[str, int] = {}  # name -> context
        self.temperatures: list[float] = []
        if self.version is not None:
            version = {"version": self.version}
            self.route("GET", "/api/version", lambda body, query: Json(200, version))
        self.route("GET", "/api/tags", self._tags)
        self.route("GET", "/api/ps", self._ps)
        self.route("POST", "/api/show", self._show)
        self.route("POST", "/api/chat", self._native_chat)
        self.route("POST", "/v1/chat/completions", self._v1_chat)

    def _model(self, name: str) -> OllamaModel | None:
        full = name if ":" in name else name + ":latest"
        return next((m for m in self.models if m.name == full), None)

    def _tags(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        listed = [
            {
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": m.digest,
                "details": {"format": "gguf", "quantization_level": m.quantization},
            }
            for m in self.models
        ]
        return Json(200, {"models": listed})

    def _ps(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        running = []
        for name, context in self.running.items():
            model = self._model(name)
            size = model.size if model is not None else 1
            # What the loaded model takes in memory (Ollama: weights, KV cache and graph).
            entry: dict[str, Any] = {"name": name, "model": name, "size": size, "size_vram": 1}
            if self.report_ps_context:
                entry["context_length"] = context
            running.append(entry)
        return Json(200, {"models": running})

    def _show(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        model = self._model(str(body.get("model")))
        if model is None:
            return Json(404, {"error": f"model '{body.get('model')}' not found"})
        return Json(
            200,
            {
                "capabilities": list(model.capabilities),
                "template": model.template,
                "model_info": {
                    "general.architecture": "qwen3",
                    "qwen3.context_length": model.trained_context,
                },
            },
        )

    def _native_chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        model = self._model(str(body.get("model")))
        if model is None:
            return Json(
                404, {"error": f"model '{body.get('model')}' not found, try pulling it first"}
            )
        if body.get("messages"):
            return Json(400, {"error": "the fake only loads and unloads through /api/chat"})
        if body.get("keep_alive") == 0:
            self.running.pop(model.name, None)
            self.event(f"unload {model.name}")
            return Json(200, {"model": model.name, "done": True, "done_reason": "unload"})
        context = (body.get("options") or {}).get("num_ctx") or self.default_context
        self.running[model.name] = context
        self.event(f"load {model.name} ctx={context} keep_alive={body.get('keep_alive')}")
        return Json(
            200,
            {
                "model": model.name,
                "done": True,
                "done_reason": "load",
                "load_duration": 2_500_000_000,
            },
        )

    def _v1_chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        requested = str(body.get("model"))
        model = self._model(requested)
        if model is None:
            return Json(404, {"error": {"message": f"model '{requested}' not found"}})
        problem = message_problem(body.get("messages"))
        if problem:
            return Json(400, {"error": {"message": problem, "type": "invalid_request_error"}})
        self.temperatures.append(body.get("temperature", 1.0))
        if self.v1_reload_context is not None:
            self.running[model.name] = self.v1_reload_context
        elif model.name not in self.running:
            self.running[model.name] = self.default_context
        self.event(f"chat {requested}")
        script = self.answers.get(requested, Answer(["ok"]))
        answer = script(body) if callable(script) else script
        # Ollama's /v1 answers with the name as it was asked for.
        return Sse(list(chunks(body, answer, Quirks(reasoning="reasoning", tool_args_split=False))))
