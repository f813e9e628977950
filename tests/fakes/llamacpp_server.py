"""A fake llama.cpp `llama-server`, single-model or router mode.

Quirks it reproduces: `/health` answers 503 while the model loads; `/props` carries the slot
context (`default_generation_settings.n_ctx`) or, for a router, `role: router`; every streamed
answer ends with a `timings` block; reasoning comes as `reasoning_content`; `/apply-template`
and `/tokenize` count prompts (here: one token per word of the rendered prompt); `/props` reports
the slots (`total_slots`, from `--parallel`) and what answers: `build_info`, `model_path`,
`chat_template` and, when set, `chat_template_tool_use`;
messages are judged by llama.cpp's rules (an assistant turn may carry `content: null` beside
its tool calls). `props_extra` overrides /props fields (malformed ones, say); `props_answer`
replaces the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


@dataclass
class LlamaServerFake(FakeHttpServer):
    model: str = "qwen3-4b-q4_k_m.gguf"  # single mode: the served model's id
    router_models: list[str] = field(default_factory=list)  # non-empty: router mode
    n_ctx: int = 4096
    loading_polls: int = 0  # /health answers 503 this many times first
    # per model: what it writes, or a function of the request body (one answer per turn)
    answers: dict[str, Answer | Callable[[dict[str, Any]], Answer]] = field(default_factory=dict)
    has_template_endpoint: bool = True
    total_slots: int = 1
    alias: str | None = None  # `--alias`: the name /v1/models and /props give the served model
    port: int = 0  # 0: any free loopback port
    # Router: GET /models still says "loaded" this many times after an unload (its process
    # takes a moment to exit).
    unload_polls: int = 0
    build_info: str = "b6000-abc1234"  # what llama.cpp's llama_build_info() gives
    chat_template: str = "{% for m in messages %}<|{{ m.role }}|> {{ m.content }}{% endfor %}"
    chat_template_tool_use: str | None = None
    model_path: str | None = None  # None: /models/<model>, a path nobody has
    props_extra: dict[str, Any] = field(default_factory=dict)
    props_answer: Response | None = None

    def __post_init__(self) -> None:
        super().__init__(port=self.port)
        self.router_status = {name: "unloaded" for name in self.router_models}
        self.exiting_polls = 0
        self.route("GET", "/health", self._health)
        self.route("GET", "/props", self._props)
        self.route("GET", "/v1/models", self._v1_models)
        self.route("POST", "/v1/chat/completions", self._chat)
        self.route("POST", "/tokenize", self._tokenize)
        if self.has_template_endpoint:
            self.route("POST", "/apply-template", self._apply_template)
        if self.router_models:
            self.route("GET", "/models", self._models)
            self.route("POST", "/models/load", self._load)
            self.route("POST", "/models/unload", self._unload)

    def _health(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        if self.loading_polls > 0:
            self.loading_polls -= 1
            return Json(503, {"error": {"code": 503, "message": "Loading model"}})
        return Json(200, {"status": "ok"})

    def _props(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        if self.props_answer is not None:
            return self.props_answer
        if self.router_models and "model" not in query:
            router = {"role": "router", "model_path": "none", "build_info": self.build_info}
            return Json(200, router)
        return Json(
            200,
            {
                "default_generation_settings": {"n_ctx": self.n_ctx},
                "total_slots": self.total_slots,
                "model_path": self.model_path or f"/models/{query.get('model', self.model)}",
                **({"model_alias": self.alias} if self.alias else {}),
                "chat_template": self.chat_template,
                **(
                    {"chat_template_tool_use": self.chat_template_tool_use}
                    if self.chat_template_tool_use
                    else {}
                ),
                "build_info": self.build_info,
                **self.props_extra,
            },
        )

    def _v1_models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        names = self.router_models or [self.alias or self.model]
        return Json(
            200,
            {
                "data": [
                    {"id": n, "meta": {"n_ctx_train": 40960, "size": 2_400_000_000}} for n in names
                ]
            },
        )

    def _models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        for name, status in self.router_status.items():
            if status == "exiting":
                self.router_status[name] = "unloaded" if self.exiting_polls <= 0 else status
        self.exiting_polls -= 1
        shown = {n: "loaded" if s == "exiting" else s for n, s in self.router_status.items()}
        data = [
            {
                "id": name,
                "status": {"value": status, "args": ["llama-server", "-c", str(self.n_ctx)]},
            }
            for name, status in shown.items()
        ]
        return Json(200, {"data": data})

    def _load(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        name = str(body.get("model"))
        if name not in self.router_status:
            return Json(404, {"error": {"message": f"model {name} not found"}})
        self.router_status[name] = "loaded"
        self.event(f"load {name}")
        return Json(200, {"success": True})

    def _unload(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        name = str(body.get("model"))
        self.router_status[name] = "exiting" if self.unload_polls else "unloaded"
        self.exiting_polls = self.unload_polls
        self.event(f"unload {name}")
        return Json(200, {"success": True})

    def _apply_template(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        rendered = "".join(
            f"<|{m['role']}|> {m.get('content') or ''} " for m in body.get("messages", [])
        )
        return Json(200, {"prompt": rendered + "<|assistant|>"})

    def _tokenize(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        return Json(200, {"tokens": list(range(len(str(body.get("content", "")).split())))})

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        requested = str(body.get("model"))
        if self.router_models and self.router_status.get(requested) != "loaded":
            return Json(400, {"error": {"message": f"model {requested} is not loaded"}})
        problem = message_problem(body.get("messages"))
        if problem:
            return Json(500, {"error": {"code": 500, "message": problem, "type": "server_error"}})
        self.event(f"chat {requested}")
        script = self.answers.get(requested, Answer(["ok"]))
        answer = script(body) if callable(script) else script
        n = len(answer.content) + len(answer.reasoning)
        timings = {
            "prompt_n": 12,
            "prompt_per_second": 250.0,
            "predicted_n": n,
            "predicted_per_second": 42.0,
        }
        return Sse(list(chunks(body, answer, Quirks(extra={"timings": timings}))))
