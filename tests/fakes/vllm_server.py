"""A fake vLLM server: one served model with its `max_model_len` and `root`, `/tokenize`,
`/version` (absent when `version=None`), and chat.

Quirks it reproduces: a request whose prompt plus `max_tokens` exceeds `max_model_len` is a 400
(vLLM refuses it instead of stopping at the context's end); reasoning (with a reasoning parser)
arrives as `reasoning_content`; prompts are counted here as one token per word plus 4 per message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


def prompt_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages", [])
    return sum(len(str(m.get("content") or "").split()) + 4 for m in messages)


@dataclass
class VLLMFake(FakeHttpServer):
    served: str = "Qwen/Qwen3-4B"
    max_model_len: int = 32768
    # per model: what it writes, or a function of the request body (one answer per turn)
    answers: dict[str, Answer | Callable[[dict[str, Any]], Answer]] = field(default_factory=dict)
    version: str | None = "0.11.0"
    root: str | None = None  # where the weights came from; None: the served name

    def __post_init__(self) -> None:
        super().__init__()
        self.route("GET", "/v1/models", self._models)
        if self.version is not None:
            self.route("GET", "/version", lambda body, query: Json(200, {"version": self.version}))
        self.route("POST", "/tokenize", self._tokenize)
        self.route("POST", "/v1/chat/completions", self._chat)

    def _models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        entry = {
            "id": self.served,
            "object": "model",
            "owned_by": "vllm",
            "root": self.root or self.served,
            "max_model_len": self.max_model_len,
        }
        return Json(200, {"object": "list", "data": [entry]})

    def _tokenize(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        count = prompt_tokens(body)
        return Json(
            200, {"count": count, "max_model_len": self.max_model_len, "tokens": list(range(count))}
        )

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        requested = body.get("model")
        if requested != self.served:
            return Json(404, {"error": {"message": f"The model `{requested}` does not exist."}})
        problem = message_problem(body.get("messages"))
        if problem:
            return Json(400, {"error": {"message": problem, "type": "BadRequestError"}})
        wanted = prompt_tokens(body) + int(body.get("max_tokens") or 0)
        if wanted > self.max_model_len:
            message = (
                f"This model's maximum context length is {self.max_model_len} tokens. "
                f"However, you requested {wanted} tokens."
            )
            return Json(400, {"error": {"message": message}})
        self.event(f"chat {requested} max_tokens={body.get('max_tokens')}")
        script = self.answers.get(str(requested), Answer(["ok"]))
        answer = script(body) if callable(script) else script
        return Sse(list(chunks(body, answer, Quirks(reasoning_tokens_in_usage=True))))
