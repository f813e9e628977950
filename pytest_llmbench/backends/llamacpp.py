"""`llamacpp`: llama.cpp's `llama-server`, one model per process or many in router mode.

A single-model server is "loaded" once it is healthy (`/health` answers 503 while it loads) and
serves the model asked for; a router (`/props` says `role: router`) loads and unloads models on
request (`/models/load`, `/models/unload`). The loaded context comes from `/props`; prompts are
counted exactly with the server's own template and tokenizer (`/apply-template`, `/tokenize`);
every answer carries the server's `timings`. `/props` also says how many requests the server
decodes at once (`total_slots`, from `--parallel`): `parallel_slots()` hands that on, and what
answers (`build_info`, `model_path`, `chat_template`): `provenance()` hands that on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from itertools import pairwise
from typing import Any, ClassVar
from urllib.parse import quote

from ..exchange import ChatRequest, ModelUnavailable
from .base import LoadInfo, LoadSettings, ModelInfo
from .compat_backend import CompatBackend
from .context_fit import PromptSize, estimate_prompt_tokens
from .memory import MemoryFigure, reported
from .provenance import TIMEOUT_S, ask, of_server, server_file, text, text_sha256
from .rest import HttpStatus

# Router statuses of a model whose server process is up ("sleeping": idle, woken by a request).
_LOADED = ("loaded", "sleeping")
_POLL_S = 0.25


class LlamaCppBackend(CompatBackend):
    name = "llamacpp"
    wrong_model_hint = (
        "llama-server answered with another model; check -m / --alias or the router's models"
    )
    # The prompt cache reuses the longest prefix a slot computed for an earlier request, and
    # a prefix computed in another batch gives other logits (llama-server's README says so of
    # `cache_prompt`). Measured with SmolLM2 on one single-slot server, the python suite sent
    # in two orders: 17 of 50 answers the same with the cache (32 with --cache-ram 0), 50 of
    # 50 without.
    exact_body: ClassVar[Mapping[str, Any]] = {"cache_prompt": False}

    def __init__(self, *args: Any, poll_s: float = _POLL_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_s = poll_s
        self._router: bool | None = None
        # Names the server uses for each model we loaded (alias, file name), for the answer check.
        self._served_as: dict[str, set[str]] = {}
        # Slots (requests decoded at once) of each loaded model, from /props `total_slots`.
        self._slots: dict[str, int] = {}
        self._can_template = True

    # -- what kind of server -------------------------------------------------------------------

    def is_router(self) -> bool:
        if self._router is None:
            self._wait_healthy(self.timeout_s)
            props = self.rest.get("/props") or {}
            self._router = props.get("role") == "router"
        return self._router

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.rest.status("/health")
            if status == 200:
                return
            if status != 503 or time.monotonic() > deadline:
                raise self.server.error(
                    f"/health answered HTTP {status} (still loading after {timeout_s:g}s?)"
                )
            time.sleep(self.poll_s)

    # -- listing -------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        if self.is_router():
            reply = self.rest.get("/models") or {}
            return [_router_model(m) for m in reply.get("data") or () if isinstance(m, dict)]
        props = self.rest.get("/props") or {}
        reply = self.rest.get("/v1/models") or {}
        models = []
        for entry in reply.get("data") or ():
            meta = entry.get("meta") or {}
            models.append(
                ModelInfo(
                    key=str(entry["id"]),
                    size_bytes=meta.get("size"),
                    context_length=_n_ctx(props) or meta.get("n_ctx_train"),
                    loaded=True,
                    format="gguf",
                )
            )
        return models

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        started = time.monotonic()
        self._wait_healthy(self.timeout_s)
        if self.is_router():
            self._router_load(key)
            props = self.rest.get(f"/props?model={quote(key)}") or {}
        else:
            props = self.rest.get("/props") or {}
            self._check_single_model(key, props)
        context = _n_ctx(props)
        if context:
            self.loaded_context[key] = context
        slots = props.get("total_slots")
        if isinstance(slots, int) and slots > 0:
            self._slots[key] = slots
        return LoadInfo(key=key, seconds=time.monotonic() - started, context_length=context)

    def _router_load(self, key: str) -> None:
        status = self._router_status(key)
        if status is None:
            raise self.server.missing(f"has no model {key!r} (GET /models lists the ones it has)")
        if status not in _LOADED:
            try:
                self.rest.post("/models/load", {"model": key}, timeout_s=self.timeout_s)
            except HttpStatus as exc:
                raise self.server.error(f"could not load model {key!r}: {exc.message}") from exc
        deadline = time.monotonic() + self.timeout_s
        while (status := self._router_status(key)) not in _LOADED:
            # "unloaded" can show for a moment before the router starts loading.
            if status not in ("loading", "unloaded", "downloading", "downloaded"):
                raise self.server.error(f"model {key!r} did not load (status {status})")
            if time.monotonic() > deadline:
                raise self.server.error(f"model {key!r} was still {status} after the timeout")
            time.sleep(self.poll_s)
        self._served_as[key] = {key}

    def _router_status(self, key: str) -> str | None:
        reply = self.rest.get("/models") or {}
        for entry in reply.get("data") or ():
            if isinstance(entry, dict) and entry.get("id") == key:
                status = entry.get("status")
                value = status.get("value") if isinstance(status, dict) else status
                return str(value) if value is not None else "loaded"
        return None

    def _check_single_model(self, key: str, props: dict[str, Any]) -> None:
        reply = self.rest.get("/v1/models") or {}
        names = {str(e["id"]) for e in reply.get("data") or () if isinstance(e, dict) and "id" in e}
        for field in ("model_alias", "model_path"):
            if isinstance(props.get(field), str):
                names.add(props[field])
        if not any(super(LlamaCppBackend, self).same_model(key, name) for name in names):
            served = ", ".join(sorted(names)) or "an unnamed model"
            raise ModelUnavailable(
                f"llama-server at {self.server.root} serves {served}, not {key!r}: "
                "start it with that model (`-m`, `--alias`) or in router mode"
            )
        self._served_as[key] = names

    def parallel_slots(self, key: str) -> int | None:
        """How many requests for loaded model `key` the server decodes at once (its slots, from
        `/props` at load), or None when it did not say. More in flight than this just queue."""
        return self._slots.get(key)

    def reported_memory(self, key: str) -> MemoryFigure:
        """The model's size in llama-server's model metadata (`/v1/models` meta `size`: its
        weights; the KV cache comes on top)."""
        models = ask(lambda: self.list_models())
        entry = next((m for m in models or () if self.same_model(key, m.key)), None)
        return reported(entry.size_bytes if entry else None, "llama-server model metadata size")

    def provenance(self, key: str) -> dict[str, Any]:
        """What `/props` says of the server behind loaded model `key`: its build (`build_info`,
        also each answer's `system_fingerprint`), the model file (measured when the server runs
        here) and the chat templates it applies (see backends/provenance.py)."""
        path = f"/props?model={quote(key)}" if self._router else "/props"
        props = ask(lambda: self.rest.get(path, timeout_s=TIMEOUT_S))
        if not isinstance(props, dict):
            return {}
        return of_server(
            "llama.cpp llama-server",
            {
                "server_version": text(props, "build_info"),
                "model_file": ask(lambda: server_file(self.server, props.get("model_path"))),
                "chat_template_sha256": text_sha256(props.get("chat_template")),
                # Present with --jinja when the model ships a second template for tool use.
                "chat_template_tool_use_sha256": text_sha256(props.get("chat_template_tool_use")),
            },
        )

    def unload(self, key: str) -> None:
        self.loaded_context.pop(key, None)
        self._served_as.pop(key, None)
        self._slots.pop(key, None)
        if self._router:
            self.rest.post("/models/unload", {"model": key})
            # The router reports the model loaded until its server process has exited: wait,
            # so that the next model does not load beside it.
            deadline = time.monotonic() + self.timeout_s
            while (status := self._router_status(key)) in _LOADED:
                if time.monotonic() > deadline:
                    raise self.server.error(f"model {key!r} was still {status} after unloading")
                time.sleep(self.poll_s)

    # -- chat ----------------------------------------------------------------------------------

    def same_model(self, requested: str, answered: str) -> bool:
        names = self._served_as.get(requested, set())
        return super().same_model(requested, answered) or any(
            super(LlamaCppBackend, self).same_model(answered, name) for name in names
        )

    def count_prompt(self, request: ChatRequest) -> PromptSize:
        if not self._can_template:
            return estimate_prompt_tokens(request.messages, request.tools)
        body: dict[str, Any] = {"messages": request.messages, "model": request.model}
        if request.tools:
            body["tools"] = request.tools
        try:
            prompt = (self.rest.post("/apply-template", body) or {}).get("prompt")
            tokens = (
                self.rest.post(
                    "/tokenize", {"content": prompt, "add_special": True, "model": request.model}
                )
                or {}
            ).get("tokens")
        except HttpStatus:
            self._can_template = False  # an older server: estimate from now on
            return estimate_prompt_tokens(request.messages, request.tools)
        if not isinstance(prompt, str) or not isinstance(tokens, list):
            raise self.server.error("/apply-template or /tokenize answered in an unknown shape")
        return PromptSize(len(tokens), exact=True, tokenized=True)


def _n_ctx(props: dict[str, Any]) -> int | None:
    settings = props.get("default_generation_settings") or {}
    for value in (settings.get("n_ctx"), props.get("n_ctx")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _router_model(entry: dict[str, Any]) -> ModelInfo:
    status = entry.get("status")
    value = status.get("value") if isinstance(status, dict) else status
    args = status.get("args") if isinstance(status, dict) else None
    context = None
    if isinstance(args, list):
        for flag, arg in pairwise(args):
            if flag in ("-c", "--ctx-size") and str(arg).isdigit():
                context = int(arg)
    return ModelInfo(
        key=str(entry.get("id")), context_length=context, loaded=value == "loaded", format="gguf"
    )
