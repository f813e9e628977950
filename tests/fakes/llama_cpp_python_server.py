"""A fake of llama-cpp-python's server (`python -m llama_cpp.server`), driven through `openai`.

Quirks it reproduces: any model name is answered (echoed back) by the one model it serves;
streams carry no usage even when asked; `/extras/tokenize/count` counts tokens (here: words); an
assistant message with `content: null` is refused with HTTP 422 (its request schema declares
the field `NotRequired[str]`), which breaks tool chains that send one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks, tokens
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


@dataclass
class LlamaCppPythonFake(FakeHttpServer):
    alias: str = "model.gguf"
    answer: Callable[[dict[str, Any]], Answer] = field(
        default=lambda body: Answer(tokens("hello from llama-cpp-python"))
    )

    def __post_init__(self) -> None:
        super().__init__()
        self.route(
            "GET",
            "/v1/models",
            lambda b, q: Json(200, {"data": [{"id": self.alias, "object": "model"}]}),
        )
        self.route("POST", "/extras/tokenize/count", self._count)
        self.route("POST", "/v1/chat/completions", self._chat)

    def _count(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        return Json(200, {"count": len(str(body.get("input", "")).split())})

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        problem = message_problem(body.get("messages"), null_content=False)
        if problem:
            return Json(422, {"detail": [{"type": "string_type", "msg": problem}]})
        self.event(f"chat {body.get('model')}")
        return Sse(list(chunks(body, self.answer(body), Quirks(usage=False))))
