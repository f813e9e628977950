"""A fake LM Studio: REST model API (/api/v1/models, load, unload) and the OpenAI chat endpoint.

Quirks it reproduces: with JIT loading, a request for a model that is not loaded is answered by
whatever model is loaded; a second load of a loaded model makes a second instance `key:2`;
`legacy=True` is a server older than 0.4 (no /api/v1, only /api/v0/models).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


@dataclass
class Model:
    key: str
    size_bytes: int = 1_000_000
    max_context_length: int = 32768
    tool_use: bool = True
    quantization: str = "Q4_K_M"
    architecture: str = "qwen3"
    params_string: str = "4B"


@dataclass
class Instance:
    id: str
    key: str
    context_length: int


@dataclass
class LMStudioFake(FakeHttpServer):
    models: list[Model] = field(default_factory=list)
    # A callable script may answer with a Response instead: a fault for that one request.
    answers: dict[str, Answer | Callable[[dict[str, Any]], Answer | Response]] = field(
        default_factory=dict
    )
    quirks: Quirks = field(default_factory=Quirks)
    legacy: bool = False
    default_context: int = 4096
    chat_failures: list[Response] = field(default_factory=list)  # served before real answers
    failing_loads: dict[str, Response] = field(default_factory=dict)  # model -> load's answer
    chunk_delay_s: float = 0.0
    load_failures: list[Response] = field(default_factory=list)  # served before real loads
    load_delay_s: float = 0.0  # a slow disk
    unload_delay_s: float = 0.0  # a server busy finishing a request
    on_unload: Callable[[], None] | None = None  # called as an unload request arrives

    def __post_init__(self) -> None:
        super().__init__()
        self.instances: list[Instance] = []
        self.route("GET", "/v1/models", self._openai_models)
        self.route("POST", "/v1/chat/completions", self._chat)
        if self.legacy:
            self.route("GET", "/api/v0/models", self._v0_models)
        else:
            self.route("GET", "/api/v1/models", self._v1_models)
            self.route("POST", "/api/v1/models/load", self._load)
            self.route("POST", "/api/v1/models/unload", self._unload)

    def lifecycle(self) -> list[str]:
        """Loads, chats and unloads in the order this server saw them, consecutive chats of
        one model merged: `["load a", "chat a", "unload a", ...]`."""
        order: list[str] = []
        for request in self.requests:
            if request.path.endswith("/load"):
                order.append(f"load {request.body['model']}")
            elif request.path.endswith("/unload"):
                order.append(f"unload {request.body['instance_id']}")
            elif request.path.endswith("/chat/completions"):
                step = f"chat {request.body['model']}"
                if order[-1:] != [step]:
                    order.append(step)
        return order

    def preload(self, key: str, context_length: int, instance_id: str | None = None) -> None:
        """A model the user loaded before the run."""
        self.instances.append(Instance(instance_id or key, key, context_length))

    def _v1_models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        listed = []
        for m in self.models:
            listed.append(
                {
                    "type": "llm",
                    "publisher": "fake",
                    "key": m.key,
                    "display_name": m.key,
                    "architecture": m.architecture,
                    "quantization": {"name": m.quantization, "bits_per_weight": 4},
                    "size_bytes": m.size_bytes,
                    "params_string": m.params_string,
                    "loaded_instances": [
                        {
                            "id": i.id,
                            "config": {"context_length": i.context_length, "flash_attention": True},
                        }
                        for i in self.instances
                        if i.key == m.key
                    ],
                    "max_context_length": m.max_context_length,
                    "format": "gguf",
                    "capabilities": {"vision": False, "trained_for_tool_use": m.tool_use},
                }
            )
        listed.append({"type": "embedding", "key": "nomic-embed", "loaded_instances": []})
        return Json(200, {"models": listed})

    def _v0_models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        loaded = {i.key for i in self.instances}
        data = [
            {
                "id": m.key,
                "type": "llm",
                "quantization": m.quantization,
                "state": "loaded" if m.key in loaded else "not-loaded",
                "max_context_length": m.max_context_length,
                "compatibility_type": "gguf",
                "capabilities": ["tool_use"] if m.tool_use else [],
            }
            for m in self.models
        ]
        return Json(200, {"object": "list", "data": data})

    def _openai_models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        return Json(200, {"object": "list", "data": [{"id": m.key} for m in self.models]})

    def _load(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        if self.load_failures:
            return self.load_failures.pop(0)
        time.sleep(self.load_delay_s)
        key = body.get("model")
        if key not in {m.key for m in self.models}:
            return Json(404, {"error": f"model {key} not found"})
        if key in self.failing_loads:
            return self.failing_loads[key]
        same = [i for i in self.instances if i.key == key]
        instance_id = key if not same else f"{key}:{len(same) + 1}"
        context = body.get("context_length") or self.default_context
        self.instances.append(Instance(instance_id, key, context))
        self.event(f"load {key} ctx={context}")
        reply: dict[str, Any] = {
            "type": "llm",
            "instance_id": instance_id,
            "load_time_seconds": 1.25,
            "status": "loaded",
        }
        if body.get("echo_load_config"):
            reply["load_config"] = {"context_length": context}
        return Json(200, reply)

    def _unload(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        if self.on_unload is not None:
            self.on_unload()
        time.sleep(self.unload_delay_s)
        instance_id = body.get("instance_id")
        for instance in self.instances:
            if instance.id == instance_id:
                self.instances.remove(instance)
                self.event(f"unload {instance_id}")
                return Json(200, {"instance_id": instance_id})
        return Json(404, {"error": f"no instance {instance_id}"})

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        if self.chat_failures:
            return self.chat_failures.pop(0)
        problem = message_problem(body.get("messages"))
        if problem:
            return Json(400, {"error": problem})
        requested = str(body.get("model"))
        answered = requested
        if not any(i.key == requested for i in self.instances):
            if self.instances:
                answered = self.instances[0].id  # JIT: whatever is loaded answers
            else:
                self.instances.append(Instance(requested, requested, self.default_context))
                self.event(f"jit-load {requested}")
        self.event(f"chat {requested}")
        script = self.answers.get(answered) or self.answers.get(requested) or Answer(["ok"])
        answer = script(body) if callable(script) else script
        if not isinstance(answer, Answer):
            return answer
        if answered != requested:
            answer = Answer(
                answer.content, answer.reasoning, answer.tool_calls, answer.finish_reason, answered
            )
        return Sse(list(chunks(body, answer, self.quirks)), delay_s=self.chunk_delay_s)
