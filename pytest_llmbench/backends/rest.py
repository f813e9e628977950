"""JSON requests to a server's management endpoints (list, load, unload, health, props).

Chat goes through the `openai` client; everything else a server offers is plain JSON over HTTP.
The standard library is enough for that, and keeps us off whichever HTTP library the installed
`openai` release happens to ship with. Every failure becomes a BackendError naming the server.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from typing import Any

from ..display import printable
from ..exchange import BackendError
from .server import Server


class HttpStatus(BackendError):
    """The server answered with an error status; callers branch on 404 to detect older APIs."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Rest:
    def __init__(self, server: Server, *, timeout_s: float, api_key: str | None = None) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def get(self, path: str, *, timeout_s: float | None = None) -> Any:
        return self._send("GET", path, None, timeout_s)[1]

    def post(self, path: str, body: dict[str, Any], *, timeout_s: float | None = None) -> Any:
        return self._send("POST", path, body, timeout_s)[1]

    def status(self, path: str, *, timeout_s: float | None = None) -> int:
        """The HTTP status of a GET, for health probes where 503 is an answer, not an error."""
        try:
            return self._send("GET", path, None, timeout_s)[0]
        except HttpStatus as exc:
            return exc.status

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, timeout_s: float | None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.server.root + path, data=data, headers=headers, method=method
        )
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                text = exc.read().decode(errors="replace")
            except (OSError, http.client.HTTPException):
                text = ""  # the error body itself was cut short
            raise HttpStatus(
                f"{self.server.label} at {self.server.root}: {method} {path} answered "
                f"HTTP {exc.code}: {excerpt(text)}",
                exc.code,
                text,
            ) from exc
        except TimeoutError as exc:
            raise self.server.error(f"{method} {path} got no answer within {timeout:g}s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise self.server.error(
                    f"{method} {path} got no answer within {timeout:g}s"
                ) from exc
            raise self.server.unreachable(_reason(exc.reason)) from exc
        except (ConnectionError, OSError) as exc:
            # A server that dies mid-answer resets the connection after it was accepted.
            raise self.server.unreachable(_reason(exc)) from exc
        except http.client.HTTPException as exc:
            # A malformed status line or headers, or a body cut short (IncompleteRead).
            raise self.server.error(
                f"{method} {path} answered malformed HTTP ({type(exc).__name__})"
            ) from exc
        if not raw.strip():
            return status, None
        try:
            return status, json.loads(raw)
        except (ValueError, RecursionError) as exc:  # invalid JSON or UTF-8, absurd nesting
            raise self.server.error(
                f"{method} {path} did not answer JSON: {excerpt(raw.decode(errors='replace'))}"
            ) from exc


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason) or type(reason).__name__


def excerpt(text: str, limit: int = 300) -> str:
    """A server's words, one line, short, and harmless to print."""
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."
