"""`embedded`: a GGUF model on the CPU through llama-cpp-python's server, run by us.

Loading a model starts `python -m llama_cpp.server` on a free loopback port with an explicit
context and waits until it answers; unloading stops it. Chat goes through the same OpenAI client
as every other backend. Two quirks of that server shape this module: it echoes whatever model
name a request carries (and silently serves its default model for unknown names), so the
answering-model check compares against the model we started; and its streams carry no usage,
so tokens are counted by us.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

from ..exchange import BackendError, ChatRequest, Completion
from .base import LoadInfo, LoadSettings, ModelInfo
from .bundled_models import BUNDLED, resolve
from .compat_backend import CompatBackend
from .context_fit import TEMPLATE_TOKENS_PER_MESSAGE, PromptSize, prompt_text
from .rest import Rest
from .retry import RetryPolicy
from .server import Server
from .server_process import ServerProcess, free_port

LABEL = "the embedded llama.cpp server"
INSTALL_HINT = "install it: `pip install 'pytest-llmbench[embedded]'`"
STARTUP_TIMEOUT_S = 300.0
_POLL_S = 0.2


def _server_at(root: str) -> Server:
    return Server(
        label=LABEL,
        root=root,
        start_hint=f"it runs only while its model is loaded ({INSTALL_HINT})",
    )


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup pinning
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class EmbeddedBackend(CompatBackend):
    name = "embedded"
    # Room for a complete answer to any bundled task, while keeping a full bundled run on two
    # cores within minutes: small models that never stop run to this limit. Measured with 1024:
    # SmolLM2 at ~31 tok/s spent 593 s generating 18.5k tokens over the 106 bundled tasks.
    default_max_tokens = 512

    def __init__(
        self,
        *,
        timeout_s: float,
        context_length: int | None = None,
        python: str | None = None,
        threads: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            _server_at("http://127.0.0.1"),
            timeout_s=timeout_s,
            context_length=context_length,
            retry=retry,
        )
        self.base_url = "embedded"
        self.python = python or sys.executable
        # Half the CPUs, as llama.cpp advises: decoding is memory-bound, and a second thread per
        # core (or a vCPU shared with the host) makes its thread barriers stall. Measured on a
        # 2-vCPU VM: 1 thread ~44 tok/s, 2 threads 5-29 tok/s.
        self.threads = threads or max(1, _usable_cpus() // 2)
        self._process: ServerProcess | None = None
        self._key: str | None = None

    # -- listing -------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        models: list[ModelInfo] = []
        for model in BUNDLED.values():
            if not model.installed():
                continue
            models.append(
                ModelInfo(
                    key=model.key,
                    context_length=model.context_length,
                    quantization=model.quantization,
                    loaded=model.key == self._key,
                    format="gguf",
                    tool_use=False,  # the server renders the GGUF's own template, without tools
                    reasoning=False,
                )
            )
        return models

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        if self._process is not None:
            self.unload(self._key or "")
        if self.python == sys.executable and importlib.util.find_spec("llama_cpp") is None:
            raise BackendError(
                f"{LABEL} needs llama-cpp-python with its server extra: {INSTALL_HINT}"
            )
        path, default_context = resolve(key)
        context = self.settings_context(settings) or default_context
        port = free_port()
        started = time.monotonic()
        self._process = ServerProcess(self._argv(key, str(path), context, port))
        self._key = key
        self.server = _server_at(f"http://127.0.0.1:{port}")
        self.base_url = self.server.root
        self.rest = Rest(self.server, timeout_s=self.timeout_s)
        self._chat = None  # the next chat builds a client for the new port
        try:
            self._wait_until_ready(key, max(self.timeout_s, STARTUP_TIMEOUT_S))
        except BaseException:
            self.unload(key)
            raise
        self.loaded_context[key] = context
        return LoadInfo(key=key, seconds=time.monotonic() - started, context_length=context)

    def _argv(self, key: str, path: str, context: int, port: int) -> list[str]:
        threads = str(self.threads)
        return [
            self.python, "-m", "llama_cpp.server",
            "--model", path,
            # Requests name the model by its key; the server answers to that alias.
            "--model_alias", key,
            "--n_ctx", str(context),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_threads", threads,
            "--n_threads_batch", threads,
        ]  # fmt: skip

    def _wait_until_ready(self, key: str, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self._process.exit_code()
            if code is not None:
                raise BackendError(
                    f"{LABEL} for model {key!r} exited with code {code} while starting:\n"
                    f"{self._process.log_tail()}"
                )
            try:
                if self.rest.status("/v1/models", timeout_s=2.0) == 200:
                    return
            except BackendError:
                pass  # not listening yet
            time.sleep(_POLL_S)
        raise BackendError(
            f"{LABEL} for model {key!r} was not ready within {timeout_s:g}s:\n"
            f"{self._process.log_tail()}"
        )

    def parallel_slots(self, key: str) -> int:
        """llama-cpp-python's server runs one request at a time, and concurrent requests come
        back empty (finish_reason unknown, no tokens) rather than queued: one in flight."""
        return 1

    def unload(self, key: str) -> None:
        if self._chat is not None:
            self._chat.close()
            self._chat = None
        if self._process is not None:
            self._process.stop()
            self._process = None
        self.loaded_context.pop(self._key or key, None)
        self._key = None
        self.base_url = "embedded"

    def close(self) -> None:
        self.unload(self._key or "")

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> Completion:
        # The server would answer any name with its own model: compare with what we started.
        if self._process is None or self._key is None:
            raise BackendError(f"{LABEL}: model {request.model!r} is not loaded")
        if request.model != self._key:
            raise BackendError(
                f"{LABEL} runs model {self._key!r} but was asked for {request.model!r}; "
                "load that model first"
            )
        if self._process.exit_code() is not None:
            raise BackendError(
                f"{LABEL} for model {self._key!r} died (exit {self._process.exit_code()}):\n"
                f"{self._process.log_tail()}"
            )
        return super().chat(request)

    def count_prompt(self, request: ChatRequest) -> PromptSize:
        text = prompt_text(request.messages, request.tools)
        reply: Any = self.rest.post(
            "/extras/tokenize/count", {"input": text, "model": request.model}
        )
        count = reply.get("count") if isinstance(reply, dict) else None
        if not isinstance(count, int):
            raise self.server.error("/extras/tokenize/count did not answer a count")
        # The tokenizer sees the text without the chat template's role markers.
        return PromptSize(
            count + TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages), exact=False, tokenized=True
        )

    def same_model(self, requested: str, answered: str) -> bool:
        return True  # checked against the started model above; the echo proves nothing
