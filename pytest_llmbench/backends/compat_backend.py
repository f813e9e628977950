"""What every OpenAI-compatible backend shares: chat, with the context-fit and answering-model
checks.

Subclasses say how to list, load and unload on their server, how to count a prompt (a tokenizer
endpoint, or the character estimate) and which model names mean the same model.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from ..exchange import BackendError, ChatRequest, Completion
from .base import LoadInfo, LoadSettings, ModelInfo
from .context_fit import PromptSize, check_prompt_fits, estimate_prompt_tokens
from .openai_compat import ChatClient
from .rest import Rest
from .retry import RetryPolicy
from .server import Server


class CompatBackend:
    name = "openai"
    # Said after "the server answered with another model" to tell the user what usually causes it.
    wrong_model_hint = "check that the server serves the model you named"
    # Fields that make the server compute an `exact` request from scratch, where it takes any.
    exact_body: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self,
        server: Server,
        *,
        timeout_s: float,
        context_length: int | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.server = server
        self.base_url = server.root
        self.timeout_s = timeout_s
        self.context_length = context_length
        self.api_key = api_key
        self.retry = retry
        self.rest = Rest(server, timeout_s=timeout_s, api_key=api_key)
        self._chat: ChatClient | None = None
        self._chat_lock = threading.Lock()  # generation threads share one client
        # Context length of each loaded model, as the server reported it (or as we asked for).
        self.loaded_context: dict[str, int] = {}

    # -- what subclasses provide ---------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        raise NotImplementedError

    def unload(self, key: str) -> None:
        raise NotImplementedError

    def count_prompt(self, request: ChatRequest) -> PromptSize:
        return estimate_prompt_tokens(request.messages, request.tools)

    def same_model(self, requested: str, answered: str) -> bool:
        return _plain_name(requested) == _plain_name(answered)

    # -- shared behaviour ----------------------------------------------------------------------

    @property
    def chat_client(self) -> ChatClient:
        with self._chat_lock:
            if self._chat is None:
                self._chat = ChatClient(
                    self.server,
                    timeout_s=self.timeout_s,
                    api_key=self.api_key,
                    retry=self.retry,
                )
            return self._chat

    def fit_request(self, request: ChatRequest, prompt: PromptSize, context: int) -> ChatRequest:
        """Adjust a request that fits the context before it is sent (default: unchanged)."""
        return request

    def chat(self, request: ChatRequest) -> Completion:
        context = self.loaded_context.get(request.model)
        prompt: PromptSize | None = None
        if context:
            prompt = self.count_prompt(request)
            check_prompt_fits(request.model, prompt, context)
            request = self.fit_request(request, prompt, context)
        completion = self.chat_client.complete(
            request, dict(self.exact_body) if request.exact else None
        )
        answered = completion.model_id
        if answered and not self.same_model(request.model, answered):
            raise BackendError(
                f"{self.server.label} at {self.server.root} was asked for model "
                f"{request.model!r} but {answered!r} answered; {self.wrong_model_hint}"
            )
        if completion.usage.prompt_tokens is None and prompt is not None and prompt.tokenized:
            # The server streamed no usage, but its tokenizer counted the prompt for us.
            completion = replace(
                completion, usage=replace(completion.usage, prompt_tokens=prompt.tokens)
            )
        return completion

    def settings_context(self, settings: LoadSettings) -> int | None:
        """The context to load with: the benchmark's request, else the backend's configured one."""
        return settings.context_length or self.context_length

    def close(self) -> None:
        if self._chat is not None:
            self._chat.close()
            self._chat = None


def _plain_name(name: str) -> str:
    """Names that servers rewrite harmlessly: case, a directory, a `.gguf` suffix."""
    base = (
        name.strip().replace("\\", "/").rsplit("/", 1)[-1]
        if name.endswith(".gguf")
        else name.strip()
    )
    return re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE).lower()
