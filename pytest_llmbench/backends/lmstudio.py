"""`lmstudio`: LM Studio's REST model API (>= 0.4), with `lms` for older servers.

Models are loaded explicitly, with the requested context, before any request: with JIT loading
on, parallel requests to an unloaded model each load their own instance, and LM Studio may answer
with whatever model happens to be loaded. Only instances this backend loaded are unloaded.
`provenance()` gives what the model list says of the model and of the loaded instance.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..exchange import BackendError
from .base import LoadInfo, LoadSettings, ModelInfo
from .compat_backend import CompatBackend
from .lms_cli import LmsCli, find_lms
from .memory import MemoryFigure, reported
from .provenance import TIMEOUT_S, ask, find, of_server
from .rest import HttpStatus


class LMStudioBackend(CompatBackend):
    name = "lmstudio"
    wrong_model_hint = (
        "LM Studio's JIT loading answers with whatever model is loaded; load the model first "
        "(the benchmark does) and check that no other tool swaps it"
    )

    def __init__(self, *args: Any, lms: LmsCli | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lms = lms
        # Instances we loaded, per model key; None while we have not loaded that key.
        self._instances: dict[str, str] = {}
        self._legacy: bool | None = None  # True once the server showed it has no /api/v1

    # -- listing -------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        models = self._probe_v1()
        if models is not None:
            return [_from_v1(m) for m in models if m.get("type", "llm") == "llm"]
        try:
            payload = self.rest.get("/api/v0/models")
            return [_from_v0(m) for m in payload.get("data", []) if m.get("type") in ("llm", "vlm")]
        except HttpStatus as exc:
            if exc.status != 404:
                raise
        return [_from_lms(m) for m in self._cli().list_json() if m.get("type", "llm") == "llm"]

    def _v1_models(self) -> list[dict[str, Any]]:
        payload = self.rest.get("/api/v1/models")
        models = payload.get("models") if isinstance(payload, dict) else None
        if not isinstance(models, list):
            raise self.server.error("/api/v1/models did not answer a model list")
        return [m for m in models if isinstance(m, dict)]

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        context = self.settings_context(settings)
        models = None if self._legacy else self._probe_v1()
        if models is None:
            return self._load_with_lms(key, context)
        model = next((m for m in models if m.get("key") == key), None)
        if model is None:
            raise self.server.missing(
                f"has no model {key!r}; `lms ls` or --llmbench-list shows the installed ones"
            )
        for instance in model.get("loaded_instances") or ():
            if context is None or _context_of(instance) == context:
                # Already loaded as we want it: use it, and leave it loaded afterwards.
                return LoadInfo(
                    key=key,
                    seconds=0.0,
                    context_length=self._remember(key, instance),
                    instance_id=str(instance.get("id")),
                )
            # Loaded with another context: a second instance would make "key" ambiguous.
            self.rest.post("/api/v1/models/unload", {"instance_id": instance.get("id")})
        body: dict[str, Any] = {"model": key, "echo_load_config": True}
        if context:
            body["context_length"] = context
        started = time.monotonic()
        try:
            reply = self.rest.post("/api/v1/models/load", body, timeout_s=self.timeout_s)
        except HttpStatus as exc:
            raise self.server.error(f"could not load model {key!r}: {exc.message}") from exc
        seconds = time.monotonic() - started
        reply = reply if isinstance(reply, dict) else {}
        instance_id = str(reply.get("instance_id") or reply.get("model_instance_id") or key)
        self._instances[key] = instance_id
        loaded_context = _context_of(reply) or self._instance_context(key, instance_id) or context
        if loaded_context:
            self.loaded_context[key] = loaded_context
        server_seconds = reply.get("load_time_seconds")
        return LoadInfo(
            key=key,
            seconds=float(server_seconds) if isinstance(server_seconds, (int, float)) else seconds,
            context_length=loaded_context,
            instance_id=instance_id,
        )

    def _probe_v1(self) -> list[dict[str, Any]] | None:
        """The REST model list, or None (and remember it) when the server predates it."""
        try:
            models = self._v1_models()
        except HttpStatus as exc:
            if exc.status != 404:
                raise
            self._legacy = True
            return None
        self._legacy = False
        return models

    def _remember(self, key: str, instance: dict[str, Any]) -> int | None:
        context = _context_of(instance)
        if context:
            self.loaded_context[key] = context
        return context

    def _instance_context(self, key: str, instance: str) -> int | None:
        for model in self._v1_models():
            if model.get("key") != key:
                continue
            for loaded in model.get("loaded_instances") or ():
                if loaded.get("id") == instance:
                    return _context_of(loaded)
        return None

    def reported_memory(self, key: str) -> MemoryFigure:
        """The model's size in LM Studio's listing (`size_bytes`: its weights on disk; the
        loaded model takes at least that)."""
        models = ask(lambda: self.list_models())
        entry = next((m for m in models or () if m.key == key), None)
        return reported(entry.size_bytes if entry else None, "LM Studio model listing size_bytes")

    def provenance(self, key: str) -> dict[str, Any]:
        """What `/api/v1/models` says of model `key` (size, quantization, format, architecture;
        no path) and of the instance we loaded (its load settings: context, flash attention,
        KV cache placement). LM Studio's REST API names no version of itself or of its engine:
        only the deprecated /api/v0 completions carry a `runtime` block (engine name and
        version), and learning it would cost a generation. So no `server_version`; older
        servers (no /api/v1, driven through `lms`) give nothing."""
        if self._legacy:
            return {}
        payload = ask(lambda: self.rest.get("/api/v1/models", timeout_s=TIMEOUT_S))
        model = find(
            payload.get("models") if isinstance(payload, dict) else None,
            lambda m: m.get("key") == key,
        )
        if model is None:
            return {}
        quantization = model.get("quantization")
        quantization = quantization if isinstance(quantization, dict) else {}
        listing = {
            "size_bytes": model.get("size_bytes"),
            "quantization": quantization.get("name"),
            "bits_per_weight": quantization.get("bits_per_weight"),
            "format": model.get("format"),
            "architecture": model.get("architecture"),
            "params_string": model.get("params_string"),
            "publisher": model.get("publisher"),
        }
        listing = {k: v for k, v in listing.items() if isinstance(v, (str, int, float))}
        loaded = model.get("loaded_instances")
        ours = self._instances.get(key)  # None: the user's instance, which we did not load
        if ours is None and isinstance(loaded, list) and len(loaded) == 1:
            instance = find(loaded, lambda i: True)
        else:
            instance = find(loaded, lambda i: i.get("id") == ours)
        config = instance.get("config") if instance is not None else None
        return of_server(
            "LM Studio",
            {
                "model_listing": listing or None,
                "load_config": dict(config) if isinstance(config, dict) and config else None,
            },
        )

    def unload(self, key: str) -> None:
        instance = self._instances.pop(key, None)
        self.loaded_context.pop(key, None)
        if instance is None:
            return
        if self._legacy:
            self._cli().unload(instance)
            return
        self.rest.post("/api/v1/models/unload", {"instance_id": instance})

    def _load_with_lms(self, key: str, context: int | None) -> LoadInfo:
        seconds = self._cli().load(key, context, self.timeout_s)
        self._instances[key] = key
        if context:
            self.loaded_context[key] = context
        return LoadInfo(key=key, seconds=seconds, context_length=context, instance_id=key)

    def _cli(self) -> LmsCli:
        if self._lms is None:
            executable = find_lms()
            if executable is None or not self.server.local:
                raise BackendError(
                    f"LM Studio at {self.server.root} has no REST model API (/api/v1/models): "
                    "update LM Studio to 0.4 or newer"
                    + ("" if executable else ", or put its `lms` command on PATH")
                )
            self._lms = LmsCli(executable, timeout_s=self.timeout_s)
        return self._lms

    # -- chat ----------------------------------------------------------------------------------

    def same_model(self, requested: str, answered: str) -> bool:
        # A second instance of a model is named "key:2"; it is still the model we asked for.
        return super().same_model(requested, re.sub(r":\d+$", "", answered))


def _context_of(record: dict[str, Any]) -> int | None:
    for holder in (record.get("load_config"), record.get("config"), record):
        if isinstance(holder, dict) and isinstance(holder.get("context_length"), int):
            return int(holder["context_length"])
    return None


def _from_v1(model: dict[str, Any]) -> ModelInfo:
    capabilities = model.get("capabilities") or {}
    quantization = model.get("quantization") or {}
    return ModelInfo(
        key=str(model["key"]),
        size_bytes=model.get("size_bytes"),
        context_length=model.get("max_context_length"),
        tool_use=capabilities.get("trained_for_tool_use"),
        reasoning=capabilities.get("reasoning") if "reasoning" in capabilities else None,
        quantization=quantization.get("name") if isinstance(quantization, dict) else None,
        loaded=bool(model.get("loaded_instances")),
        format=model.get("format"),
    )


def _from_v0(model: dict[str, Any]) -> ModelInfo:
    capabilities = model.get("capabilities")
    return ModelInfo(
        key=str(model["id"]),
        context_length=model.get("max_context_length"),
        tool_use=("tool_use" in capabilities) if isinstance(capabilities, list) else None,
        quantization=model.get("quantization"),
        loaded=model.get("state") == "loaded",
        format=model.get("compatibility_type"),
    )


def _from_lms(model: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        key=str(model.get("modelKey") or model.get("path")),
        size_bytes=model.get("sizeBytes"),
        context_length=model.get("maxContextLength"),
        tool_use=model.get("trainedForToolUse"),
        format=model.get("format"),
    )
