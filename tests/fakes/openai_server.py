"""A loopback OpenAI-style server with scripted answers, for testing the plugin end to end.

Each model has a script: a function from the request body to a `Reply`. The server speaks
`GET /v1/models` and `POST /v1/chat/completions`, streamed (in the shapes `chat_stream` makes)
or not, and records every request so tests can assert what the plugin sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fakes.chat_stream import Answer, Quirks, chunks, token_count, tokens
from fakes.http_fake import FakeHttpServer, Json, Response, Sse
from fakes.messages import message_problem


@dataclass(frozen=True)
class Reply:
    content: str = ""
    reasoning_content: str | None = None
    # {"name", "arguments"}: arguments as a dict, or a str sent as it is (hostile JSON)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None  # default: "tool_calls" if calls else "stop"
    status: int = 200  # non-200: an HTTP error with this status
    model: str | None = None  # the model the server claims answered (default: the one asked)
    # Sent instead of the answer: a fault no well-behaved server produces (a bad stream, 429).
    fault: Response | None = None

    def answer(self) -> Answer:
        return Answer(
            content=tokens(self.content) if self.content else [],
            reasoning=tokens(self.reasoning_content) if self.reasoning_content else [],
            tool_calls=[(c["name"], c.get("arguments", {})) for c in self.tool_calls],
            finish_reason=self.finish_reason,
            model=self.model,
        )


Script = Callable[[dict[str, Any]], Reply]


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def assistant_turns(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def by_prompt(answers: dict[str, Reply | list[Reply]], default: Reply | None = None) -> Script:
    """Reply by the first key found in the user's prompt; a list gives one reply per turn."""

    def script(body: dict[str, Any]) -> Reply:
        text = last_user_text(body)
        for needle, reply in answers.items():
            if needle in text:
                if isinstance(reply, list):
                    turn = assistant_turns(body)
                    return reply[turn] if turn < len(reply) else Reply("done")
                return reply
        return default or Reply("I don't know.")

    return script


def _arguments(value: dict[str, Any] | str) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """The non-streamed form of a reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": _arguments(c.get("arguments", {}))},
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    prompt = _prompt_tokens(body)
    used = token_count(reply.answer(), Quirks())
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason
                or ("tool_calls" if reply.tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": used,
            "total_tokens": prompt + used,
        },
    }


class FakeOpenAI(FakeHttpServer):
    def __init__(self, scripts: dict[str, Script]) -> None:
        super().__init__()
        self.scripts = scripts
        self.route("GET", "/v1/models", self._models)
        self.route("POST", "/v1/chat/completions", self._chat)

    def chat_requests(self) -> list[dict[str, Any]]:
        return self.bodies("/v1/chat/completions")

    def _models(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        models = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.scripts]
        return Json(200, {"object": "list", "data": models})

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        script = self.scripts.get(str(body.get("model")))
        if script is None:
            return Json(404, {"error": {"message": f"model {body.get('model')} not found"}})
        problem = message_problem(body.get("messages"))
        if problem:
            return Json(400, {"error": {"message": problem, "type": "invalid_request_error"}})
        reply = script(body)
        if reply.fault is not None:
            return reply.fault
        if reply.status != 200:
            return Json(reply.status, {"error": {"message": "scripted failure"}})
        if not body.get("stream"):
            return Json(200, completion(body, reply))
        quirks = Quirks(prompt_tokens=_prompt_tokens(body))
        return Sse(list(chunks(body, reply.answer(), quirks)))


@contextmanager
def serving(scripts: dict[str, Script]) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(scripts).start()
    try:
        yield server
    finally:
        server.stop()
