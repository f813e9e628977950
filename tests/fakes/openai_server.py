"""A loopback OpenAI-style server with scripted answers, for testing the plugin end to end.

Each model has a script: a function from the request body to a `Reply`. The server speaks
`GET /v1/models` and `POST /v1/chat/completions`, streamed (SSE, with usage when asked) or not,
and records every request so tests can assert what the plugin sent and in which order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    content: str = ""
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "arguments": dict}
    finish_reason: str | None = None  # default: "tool_calls" if calls else "stop"
    completion_tokens: int | None = None
    status: int = 200  # non-200: an HTTP error with this status
    model: str | None = None  # the model the server claims answered (default: the one asked)


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


class FakeOpenAI:
    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [body for _, path, body in self.requests if path.endswith("/chat/completions")]

    def _record(self, method: str, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((method, path, body))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake._record("GET", self.path, {})
                if self.path.rstrip("/") == "/v1/models":
                    models = [
                        {"id": m, "object": "model", "owned_by": "fake"} for m in fake.scripts
                    ]
                    self._json(200, {"object": "list", "data": models})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake._record("POST", self.path, body)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                script = fake.scripts.get(body.get("model", ""))
                if script is None:
                    self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
                    return
                reply = script(body)
                if reply.status != 200:
                    self._json(reply.status, {"error": {"message": "scripted failure"}})
                    return
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, completion(body, reply))

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in stream_chunks(body, reply):
                    data = f"data: {json.dumps(chunk)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                done = b"data: [DONE]\n\n"
                self.wfile.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
                self.wfile.flush()

        return Handler


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_tokens = reply.completion_tokens
    if completion_tokens is None:
        completion_tokens = max(1, len(reply.content.split())) + len(reply.tool_calls) * 10
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
        }
        for i, c in enumerate(reply.tool_calls)
    ]


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    if reply.tool_calls:
        message["tool_calls"] = _calls(reply)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": _usage(body, reply),
    }


def stream_chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or body.get("model"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    if reply.reasoning_content:
        for piece in _pieces(reply.reasoning_content):
            yield chunk({"reasoning_content": piece})
    for piece in _pieces(reply.content):
        yield chunk({"content": piece})
    for index, call in enumerate(_calls(reply)):
        yield chunk({"tool_calls": [{"index": index, **call}]})
    yield chunk({}, _finish(reply))
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(body, reply)}


def _pieces(text: str, size: int = 16) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


@contextmanager
def serving(scripts: dict[str, Script]) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(scripts).start()
    try:
        yield server
    finally:
        server.stop()
