"""`openai`: any OpenAI-compatible server. It lists `/v1/models`; loading is the server's job."""

from __future__ import annotations

import time

from ..exchange import ModelUnavailable
from .base import LoadInfo, LoadSettings, ModelInfo
from .compat_backend import CompatBackend
from .rest import HttpStatus


class GenericBackend(CompatBackend):
    name = "openai"

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(key=key) for key in self.served_models()]

    def served_models(self) -> list[str]:
        payload = self.rest.get("/v1/models")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise self.server.error("/v1/models did not answer an OpenAI model list")
        return [str(entry["id"]) for entry in data if isinstance(entry, dict) and "id" in entry]

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        # Nothing to load, but asking the server now turns "not running" into one clear error
        # before the first item instead of one per item.
        started = time.monotonic()
        try:
            served = self.served_models()
        except HttpStatus as exc:
            if exc.status != 404:
                raise
            served = []  # a server without a model list: nothing to check against
        if served and not any(self.same_model(key, name) for name in served):
            raise ModelUnavailable(
                f"{self.server.label} at {self.server.root} does not serve model {key!r}; "
                f"it serves: {', '.join(served)}"
            )
        return LoadInfo(key=key, seconds=time.monotonic() - started)

    def unload(self, key: str) -> None:
        return None
