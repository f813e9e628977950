"""The one chat client: streamed OpenAI-style chat completions through the `openai` package.

The client's own retries are off and its timeout explicit, so that timings are honest and every
infrastructure retry is ours to bound and count. A model's answer is never retried, however wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..display import printable
from ..exchange import BackendError, ChatRequest, Completion
from .retry import RetryPolicy, Transient, parse_retry_after, run_with_retries
from .server import Server
from .stream import StreamAccumulator

if TYPE_CHECKING:
    import openai

# Module prefixes of the HTTP stacks the openai package has shipped with; older releases let
# their transport errors escape a stream's iterator unwrapped.
_TRANSPORT_MODULES = ("httpx", "httpcore", "httpx2", "h11", "anyio")


class ChatClient:
    def __init__(
        self,
        server: Server,
        *,
        timeout_s: float,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            import openai  # heavy: imported only once a backend actually chats
        except ImportError as exc:
            raise BackendError(
                "talking to model servers needs the `openai` package: `pip install openai`"
            ) from exc

        self.server = server
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._openai = openai
        self._client: openai.OpenAI = openai.OpenAI(
            base_url=server.openai_url,
            # Local servers ignore the key, but the client refuses to start without one.
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=0,
        )

    def complete(
        self, request: ChatRequest, extra_body: dict[str, Any] | None = None
    ) -> Completion:
        """The server's answer to `request`; `extra_body` adds fields of the server's own."""
        body = {**self._body(request), **(extra_body or {})}
        return run_with_retries(
            lambda retries: self._attempt(request, body, retries), self.retry, self._sleep
        )

    def close(self) -> None:
        self._client.close()

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            # Always sent: Ollama's /v1 layer forces 1.0 when it is missing.
            "temperature": request.temperature,
            "stream": True,
            # Servers that cannot count ignore it; the others give their counts in a last chunk.
            "stream_options": {"include_usage": True},
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.tools:
            body["tools"] = request.tools
        return body

    def _attempt(self, request: ChatRequest, body: dict[str, Any], retries: int) -> Completion:
        timeout = request.timeout_s or self.timeout_s
        accumulator = StreamAccumulator(started_at=self._clock())
        errors = self._openai
        asked = f"chat with model {request.model!r}"
        try:
            # The raw chunks (cast_to=object), not the client's models: a chunk of the wrong
            # shape must be seen as such, not half-built into a model with warnings.
            stream: Any = self._client.post(
                "/chat/completions",
                cast_to=object,
                body=body,
                options={"timeout": timeout},
                stream=True,
                stream_cls=errors.Stream[object],
            )
            try:
                kind = str(stream.response.headers.get("content-type") or "")
                if not kind.lower().startswith("text/event-stream"):
                    raise self.server.error(
                        f"{asked} answered HTTP {stream.response.status_code} with "
                        f"{kind or 'no content type'}, not an event stream"
                    )
                for chunk in stream:
                    now = self._clock()
                    accumulator.feed(chunk, now)
                    if now - accumulator.started_at > timeout:
                        raise self._too_slow(request, timeout)
            finally:
                stream.close()
        except BackendError:
            raise
        except errors.APITimeoutError as exc:
            raise self._too_slow(request, timeout) from exc
        except errors.APIConnectionError as exc:
            raise Transient(self._connection_lost(accumulator, exc)) from exc
        except errors.APIStatusError as exc:
            status = exc.status_code
            error = self.server.error(f"{asked} answered HTTP {status}: {_message(exc)}")
            if status == 429:
                wait = parse_retry_after(exc.response.headers.get("retry-after"))
                raise Transient(error, wait_s=wait) from exc
            if status >= 500:
                raise Transient(error) from exc
            raise error from exc
        except errors.APIError as exc:
            # An error event inside the stream: the server gave up on this request.
            raise self.server.error(f"{asked} failed: {_message(exc)}") from exc
        except (ValueError, RecursionError) as exc:
            # Invalid JSON or UTF-8 in a chunk, or a chunk of the wrong shape: the server's
            # fault, and asking again would most likely give the same bytes.
            raise self.server.error(
                f"{asked}: the answer stream was malformed ({_describe(exc)})"
            ) from exc
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES:
                raise Transient(self._connection_lost(accumulator, exc)) from exc
            raise self.server.error(
                f"{asked}: reading the answer failed ({_describe(exc)})"
            ) from exc
        return self._finish(request, accumulator, retries)

    def _finish(
        self, request: ChatRequest, accumulator: StreamAccumulator, retries: int
    ) -> Completion:
        """The Completion of a stream that ended cleanly, unless it ended incomplete.

        A stream with no chunk, or without a finish_reason, was cut short somewhere between
        the model and us; one ending in finish_reason `error` was given up by the server.
        Neither says anything about the model, and both are worth another try."""
        asked = f"chat with model {request.model!r}"
        if accumulator.chunks == 0:
            raise Transient(self.server.error(f"{asked}: the answer stream carried no chunk"))
        if accumulator.finish_raw is None:
            raise Transient(
                self.server.error(f"{asked}: the answer stream ended without a finish_reason")
            )
        completion = accumulator.finish(self._clock(), retries=retries)
        if completion.finish_reason == "error":
            raise Transient(
                self.server.error(f"{asked}: the server ended the answer with finish_reason error")
            )
        return completion

    def _too_slow(self, request: ChatRequest, timeout: float) -> BackendError:
        return self.server.error(
            f"model {request.model!r} gave no complete answer within {timeout:g}s"
        )

    def _connection_lost(self, accumulator: StreamAccumulator, exc: Exception) -> BackendError:
        if accumulator.first_token_at is None and accumulator.model_id is None:
            return self.server.unreachable(_message(exc))
        return self.server.error(f"connection dropped mid-answer ({_message(exc)})")


def _describe(exc: BaseException, limit: int = 200) -> str:
    text = printable(" ".join(f"{type(exc).__name__}: {exc}".split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(exc: Exception) -> str:
    cause = exc.__cause__
    text = str(exc)
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return printable(" ".join(text.split())) or type(exc).__name__
