"""Per-run state hung on `config.stash`: the model manager, the generation memo, the results.

One RunState exists per process (controller and each xdist worker); only the controller's
`results` list is filled, from the item reports, so aggregation is the same with or without
xdist.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from .backends.base import Backend, LoadInfo, LoadSettings
from .backends.builtin import PSEUDO_MODELS, BuiltinBackend
from .exchange import BackendError, BackendUnreachable, ChatRequest, Completion
from .options import DEFAULT_MAX_TOKENS, Settings
from .results import CaseResult

if TYPE_CHECKING:
    from .sandbox.base import Sandbox
    from .suites.base import RequestSettings


class ModelManager:
    """Keeps at most one model loaded and routes each model's requests to its backend."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self.loaded: str | None = None
        self.loads: dict[str, LoadInfo] = {}
        self.failed: dict[str, BackendError] = {}  # model -> why its load failed
        self.unreachable: dict[str, BackendUnreachable] = {}  # backend url -> error
        self.events: list[tuple[str, str]] = []  # ("load" | "unload", model), for the record

    def url_for(self, model: str) -> str | None:
        return self.settings.endpoints.get(model, self.settings.base_url)

    def backend_for(self, model: str) -> Backend:
        if model in PSEUDO_MODELS:
            key = "builtin:"
        else:
            key = f"{self.settings.backend}@{self.url_for(model)}"
        if key not in self._backends:
            if model in PSEUDO_MODELS:
                self._backends[key] = BuiltinBackend()
            else:
                from .backends import make_backend

                self._backends[key] = make_backend(
                    self.settings.backend,
                    self.url_for(model),
                    timeout_s=self.settings.timeout,
                    context_length=self.settings.context_length,
                )
        return self._backends[key]

    def ensure_loaded(self, model: str) -> LoadInfo:
        if model in self.failed:
            raise self.failed[model]
        if self.loaded == model:
            return self.loads[model]
        if self.loaded is not None:
            self.unload(self.loaded)
        try:
            backend = self.backend_for(model)
            # One unreachable server fails its other models at once, with the same message.
            if backend.base_url in self.unreachable:
                raise self.unreachable[backend.base_url]
            try:
                info = backend.load(model, LoadSettings(self.settings.context_length))
            except BackendUnreachable as exc:
                self.unreachable[backend.base_url] = exc
                raise
        except BackendError as exc:
            self.failed[model] = exc
            raise
        self.events.append(("load", model))
        self.loaded = model
        self.loads[model] = info
        return info

    def unload(self, model: str) -> None:
        if self.loaded != model:
            return
        self.loaded = None
        self.events.append(("unload", model))
        # A model that cannot be unloaded must not fail the next model's run.
        with contextlib.suppress(BackendError):
            self.backend_for(model).unload(model)

    def chat(self, request: ChatRequest) -> Completion:
        return self.backend_for(request.model).chat(request)

    def max_tokens_for(self, model: str) -> int:
        if self.settings.max_tokens is not None:
            return self.settings.max_tokens
        backend = self.backend_for(model)
        return int(getattr(backend, "default_max_tokens", None) or DEFAULT_MAX_TOKENS)

    def close(self) -> None:
        if self.loaded is not None:
            self.unload(self.loaded)
        for backend in self._backends.values():
            with contextlib.suppress(BackendError):
                backend.close()


@dataclass
class RunState:
    settings: Settings
    manager: ModelManager
    generations: dict[tuple[str, str], Any] = field(default_factory=dict)  # Generation | failure
    executions: dict[tuple[str, str], Any] = field(default_factory=dict)
    results: list[CaseResult] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _sandbox: Sandbox | None = None

    @property
    def isolation_tier(self) -> str:
        return self._sandbox.tier if self._sandbox is not None else "unused"

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            from .sandbox import get_sandbox

            self._sandbox = get_sandbox(self.settings.isolation)  # type: ignore[arg-type]
        return self._sandbox

    def request_settings(self, model: str) -> RequestSettings:
        from .suites.base import RequestSettings

        return RequestSettings(
            max_tokens=self.manager.max_tokens_for(model),
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            timeout_s=self.settings.timeout,
        )

    def forget(self, model: str) -> None:
        """Drop a finished model's memo entries; its answers are no longer needed."""
        for memo in (self.generations, self.executions):
            for key in [k for k in memo if k[0] == model]:
                del memo[key]


STATE = pytest.StashKey[RunState]()
