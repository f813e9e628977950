"""The backend protocol and what a backend reports about models.

A backend talks to one kind of model server. It knows nothing about tasks or scoring: it lists,
loads and unloads models and turns a ChatRequest into a Completion (see `exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..exchange import ChatRequest, Completion


@dataclass(frozen=True)
class ModelInfo:
    key: str
    size_bytes: int | None = None
    context_length: int | None = None
    tool_use: bool | None = None
    reasoning: bool | None = None
    quantization: str | None = None
    loaded: bool = False
    format: str | None = None


@dataclass(frozen=True)
class LoadInfo:
    key: str
    seconds: float
    context_length: int | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class LoadSettings:
    """What the benchmark asks of a load; backends use what they can."""

    context_length: int | None = None
    # Requests the run will keep in flight, when the user set a number: a backend that starts
    # its own servers gives them that many slots in all (others leave it to their server).
    in_flight: int | None = None


@runtime_checkable
class Backend(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    def list_models(self) -> list[ModelInfo]: ...

    def load(self, key: str, settings: LoadSettings) -> LoadInfo: ...

    def unload(self, key: str) -> None: ...

    def chat(self, request: ChatRequest) -> Completion: ...

    def close(self) -> None: ...
