"""A small loopback HTTP server for faking model servers' APIs in tests.

Subclasses register routes (method, path) -> handler(body, query) returning a `Json`, an `Sse`
stream or a `Drop` (connection closed without an answer). Every request is recorded, and
`events` is a lifecycle log the fakes append to ("load a", "chat a", "unload a") so tests can
assert the order in which the backend drove the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Json:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sse:
    chunks: Iterable[dict[str, Any]]
    delay_s: float = 0.0  # between chunks, so that time to first token and tok/s are measurable
    drop_after: int | None = None  # close the connection after this many chunks
    done: bool = True  # end with `data: [DONE]` (a server cut short sends no such line)


@dataclass(frozen=True)
class Raw:
    """Any bytes with any status and content type: bodies no well-behaved server sends."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering (a crashed or restarting server)."""


Response = Json | Sse | Raw | Drop
Handler = Callable[[dict[str, Any], dict[str, str]], Response]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any]
    query: dict[str, str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, cut streams) are part of what the tests exercise.
        return None


class FakeHttpServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self.events: list[str] = []
        self.lock = threading.Lock()
        self._server = _QuietServer((host, port), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def event(self, text: str) -> None:
        with self.lock:
            self.events.append(text)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == path]

    def start(self: _S) -> _S:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (for fakes that run as their own process)."""
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _dispatch(self, method: str, raw_path: str, body: dict[str, Any]) -> Response:
        parts = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(Request(method, parts.path, body, query))
        handler = self.routes.get((method, parts.path))
        if handler is None:
            return Json(404, {"error": f"Unexpected endpoint or method. ({method} {parts.path})"})
        return handler(body, query)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._answer(fake._dispatch("GET", self.path, {}))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                self._answer(fake._dispatch("POST", self.path, json.loads(raw or b"{}")))

            def _answer(self, response: Response) -> None:
                if isinstance(response, Drop):
                    self.close_connection = True
                    return
                if isinstance(response, (Json, Raw)):
                    if isinstance(response, Json):
                        data, kind = json.dumps(response.body).encode(), "application/json"
                        headers = response.headers
                    else:
                        data, kind, headers = response.body, response.content_type, {}
                    self.send_response(response.status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for sent, chunk in enumerate(response.chunks):
                    if response.drop_after is not None and sent >= response.drop_after:
                        # Cut the stream mid-answer: no terminating chunk, connection closed.
                        self.close_connection = True
                        self.wfile.flush()
                        return
                    if response.delay_s:
                        time.sleep(response.delay_s)
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                if response.done:
                    self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


_S = TypeVar("_S", bound=FakeHttpServer)


@contextmanager
def running(server: _S) -> Iterator[_S]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
