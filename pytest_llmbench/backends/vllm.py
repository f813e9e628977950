"""`vllm`: one model per vLLM process, named by `/v1/models` with its `max_model_len`.

There is nothing to load or unload: "loading" checks that the server serves the model. vLLM
rejects a request whose prompt plus `max_tokens` exceeds the context (HTTP 400) where other
servers just stop at the end of the context, so `max_tokens` is trimmed to the room the prompt
leaves; the prompt is counted exactly by vLLM's own `/tokenize`, chat template included.
`provenance()` gives vLLM's version (`/version`) and the model's source (`root` in `/v1/models`:
the Hugging Face id or directory it was started with, whatever `--served-model-name` says).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ..exchange import ChatRequest, ModelUnavailable
from .base import LoadInfo, LoadSettings, ModelInfo
from .compat_backend import CompatBackend
from .context_fit import PromptSize, estimate_prompt_tokens
from .provenance import TIMEOUT_S, ask, find, of_server, text
from .rest import HttpStatus

VLLM_IN_FLIGHT = 16


class VLLMBackend(CompatBackend):
    name = "vllm"
    wrong_model_hint = "vLLM serves one model per process; check `--served-model-name`"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._can_tokenize = True

    def _served(self) -> list[dict[str, Any]]:
        reply = self.rest.get("/v1/models") or {}
        return [m for m in reply.get("data") or () if isinstance(m, dict) and "id" in m]

    def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(key=str(m["id"]), context_length=m.get("max_model_len"), loaded=True)
            for m in self._served()
        ]

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        started = time.monotonic()
        served = self._served()
        entry = next((m for m in served if m["id"] == key), None)
        if entry is None:
            names = ", ".join(str(m["id"]) for m in served) or "nothing"
            raise ModelUnavailable(
                f"vLLM at {self.server.root} serves {names}, not {key!r}; "
                f"start one with `vllm serve {key}`"
            )
        context = entry.get("max_model_len")
        if isinstance(context, int):
            self.loaded_context[key] = context
        return LoadInfo(
            key=key,
            seconds=time.monotonic() - started,
            context_length=context if isinstance(context, int) else None,
        )

    def parallel_slots(self, key: str) -> int | None:
        """vLLM batches continuously and does not say how many sequences it runs at once
        (`max_num_seqs`, hundreds by default); this many keeps it busy without flooding its
        queue, so time to first token stays a measure of the model."""
        return VLLM_IN_FLIGHT

    def provenance(self, key: str) -> dict[str, Any]:
        """vLLM's version and where the served model came from (backends/provenance.py). vLLM
        serves no chat template over HTTP, so there is no template hash."""
        version = ask(lambda: self.rest.get("/version", timeout_s=TIMEOUT_S))
        models = ask(lambda: self.rest.get("/v1/models", timeout_s=TIMEOUT_S))
        entry = find(
            models.get("data") if isinstance(models, dict) else None, lambda m: m.get("id") == key
        )
        return of_server(
            "vLLM",
            {"server_version": text(version, "version"), "model_source": text(entry, "root")},
        )

    def unload(self, key: str) -> None:
        self.loaded_context.pop(key, None)

    def count_prompt(self, request: ChatRequest) -> PromptSize:
        if self._can_tokenize:
            body: dict[str, Any] = {"model": request.model, "messages": request.messages}
            if request.tools:
                body["tools"] = request.tools
            try:
                reply = self.rest.post("/tokenize", body) or {}
            except HttpStatus:
                self._can_tokenize = False
            else:
                count = reply.get("count")
                if isinstance(count, int):
                    return PromptSize(count, exact=True, tokenized=True)
        return estimate_prompt_tokens(request.messages, request.tools)

    def fit_request(self, request: ChatRequest, prompt: PromptSize, context: int) -> ChatRequest:
        room = context - prompt.tokens
        if request.max_tokens <= room:
            return request
        # The answer could never run past the context anyway; asking for more is a 400 here.
        return replace(request, max_tokens=room)
