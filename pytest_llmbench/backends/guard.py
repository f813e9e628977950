"""The promise every caller of a backend relies on: it fails only with a BackendError.

Backends parse what servers send in many places (model lists, load replies, props); a server
that answers in an unexpected shape would otherwise surface as an AttributeError or a
TypeError, a traceback in the middle of a benchmark that scores nothing. The guard turns any
such exception into a BackendError naming the server and what was being done, so the run
records an `error` for the model's tasks and goes on. It also retries a failed load once,
after a short pause: a server that is restarting, or still freeing the previous model, often
loads the next one a moment later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..exchange import BackendError, ChatRequest, Completion, ModelUnavailable
from .base import Backend, LoadInfo, LoadSettings, ModelInfo

T = TypeVar("T")

LOAD_RETRY_PAUSE_S = 2.0


class GuardedBackend:
    """Wraps a backend; attributes it does not define are the wrapped backend's."""

    def __init__(
        self,
        inner: Backend,
        *,
        load_retry_pause_s: float = LOAD_RETRY_PAUSE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.load_retry_pause_s = load_retry_pause_s
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def base_url(self) -> str:
        return self.inner.base_url  # the embedded backend's changes with each load

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except BackendError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            text = text if len(text) <= 200 else text[:197] + "..."
            where = getattr(getattr(self.inner, "server", None), "label", None) or self.name
            raise BackendError(
                f"{where} at {self.base_url}: {what} failed on an unexpected answer ({text})"
            ) from exc

    def list_models(self) -> list[ModelInfo]:
        return self._call("listing models", self.inner.list_models)

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        what = f"loading model {key!r}"
        try:
            return self._call(what, lambda: self.inner.load(key, settings))
        except ModelUnavailable:
            raise  # the server does not have it: a second try would say the same
        except BackendError:
            self._sleep(self.load_retry_pause_s)
        try:
            return self._call(what, lambda: self.inner.load(key, settings))
        except BackendError as exc:
            exc.retries += 1
            raise

    def unload(self, key: str) -> None:
        self._call(f"unloading model {key!r}", lambda: self.inner.unload(key))

    def chat(self, request: ChatRequest) -> Completion:
        return self._call(f"chat with model {request.model!r}", lambda: self.inner.chat(request))

    def close(self) -> None:
        self._call("closing", self.inner.close)
