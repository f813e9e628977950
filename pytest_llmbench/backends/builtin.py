"""The built-in pseudo-models: `reference` answers with each task's reference, `null` with
nothing. They need no server and are how the bundled tasks validate themselves."""

from __future__ import annotations

import time
from typing import Any

from ..exchange import PSEUDO_MODELS, ChatRequest, Completion, ToolCall
from .base import LoadInfo, LoadSettings, ModelInfo
from .timeline import cut, timeline_of


class BuiltinBackend:
    name = "builtin"
    base_url = "builtin:"

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(key, tool_use=True, loaded=True) for key in PSEUDO_MODELS]

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        return LoadInfo(key, 0.0)

    def unload(self, key: str) -> None:
        return None

    def close(self) -> None:
        return None

    def chat(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        if request.model == "null" or request.reference is None:
            return Completion(content="", model_id=request.model)
        if isinstance(request.reference, str):
            completion = Completion(content=request.reference, model_id=request.model)
        else:
            completion = self._tool_turn(request)
        whole = Completion(
            content=completion.content,
            tool_calls=completion.tool_calls,
            finish_reason=completion.finish_reason,
            model_id=request.model,
            wall_s=time.perf_counter() - started,
            timeline=timeline_of(completion.content, completion.tool_calls),
        )
        # Like a server, the pseudo-models stop at max_tokens (their tokens are words).
        return cut(whole, request.max_tokens)

    @staticmethod
    def _tool_turn(request: ChatRequest) -> Completion:
        """Replay the reference's turn for this point in the conversation, then stop."""
        import json

        turns: list[list[dict[str, Any]]] = request.reference
        turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        if turn >= len(turns) or not turns[turn]:
            return Completion(content="Done.")
        calls = tuple(
            ToolCall(f"call_{turn}_{i}", call["name"], json.dumps(call.get("arguments", {})))
            for i, call in enumerate(turns[turn])
        )
        return Completion(content="", tool_calls=calls, finish_reason="tool_calls")
