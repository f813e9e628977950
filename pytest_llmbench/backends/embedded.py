"""`embedded`: a GGUF model on the CPU through llama.cpp's own `llama-server`, run by us.

Loading a model starts one or more `llama-server` processes on free loopback ports and waits
until they are healthy; unloading stops them. Each is a single-model llama-server like any
other, driven by the `llamacpp` backend: exact prompt counts with the server's template and
tokenizer, server timings, slots from `/props`. They run with `--jinja` (the model's chat
template, or for SmolLM2, whose GGUF template drops tools, ours in templates/; tool calls in the
template's format come back parsed) and the same context per slot for every model.

By default there is one server per CPU, each with one slot and one thread, and a request goes
to a server that is free: every answer is decoded alone by one thread, so the same request gives
the same tokens on any machine and at any load, and the servers side by side come within a
few percent of one server batching (see `default_layout`). A run that asks for more requests
in flight than there are servers gets slots enough for them, and batched answers.

`make llama-server` (run by `make bench` and `make test`) builds the executable once per machine
and links it into the virtualenv; `LLMBENCH_LLAMA_SERVER` or a `llama-server` on PATH are used
otherwise.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exchange import BackendError, BackendUnreachable, ChatRequest, Completion
from .base import LoadInfo, LoadSettings, ModelInfo
from .bundled_models import BUNDLED, chat_template, resolve
from .llamacpp import LlamaCppBackend
from .provenance import file_identity
from .retry import RetryPolicy
from .server import Server
from .server_process import ServerProcess, free_port

LABEL = "the embedded llama.cpp server"
EXECUTABLE_ENV = "LLMBENCH_LLAMA_SERVER"
THREADS_ENV = "LLMBENCH_EMBEDDED_THREADS"
SERVERS_ENV = "LLMBENCH_EMBEDDED_SERVERS"
INSTALL_HINT = (
    "build it with `make llama-server` in a clone of pytest-llmbench, put llama.cpp's "
    f"`llama-server` on PATH, or name it in {EXECUTABLE_ENV}"
)
# llama.cpp's thread count changes the tokens it produces (measured with SmolLM2, python suite,
# each answer decoded alone without prompt-cache reuse: 1 thread against 2 gave the same answer
# on 18 of 50 tasks), so it is fixed, not taken from the machine: the same request gives the
# same answer everywhere; the answer store keys on it (`answer_settings`).
DEFAULT_THREADS = 1
_POLL_S = 0.1


def _server_at(root: str) -> Server:
    return Server(label=LABEL, root=root, start_hint="it runs only while its model is loaded")


def _count(env: str, value: int | None, default: int) -> int:
    """An explicit count, else the environment's, else the default (whole numbers from 1)."""
    if value is not None:
        return value
    text = os.environ.get(env)
    if text is None:
        return default
    try:
        wanted = int(text)
    except ValueError:
        wanted = 0
    if wanted < 1:
        raise BackendError(f"{env} must be a whole number of at least 1, not {text!r}")
    return wanted


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup pinning
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_layout(threads: int, in_flight: int | None, cpus: int) -> tuple[int, int]:
    """(servers, slots per server) for a load.

    One single-slot server per `threads` CPUs: each answer is then decoded alone, and the
    servers side by side make the most of the CPUs. Measured with SmolLM2 on 2 idle vCPUs
    (benchmarks/embedded_slots.py, 16 requests of up to 128 tokens): two single-slot
    one-thread servers decoded 97 tok/s in all, one server with 4 slots and 2 threads 103
    (batched: 3 of 16 answers the same), one single-slot server with 2 threads 75.
    When the run asks for more requests in flight than that (`--llmbench-concurrency=N`),
    the servers get slots enough for them, and answers are batched.
    """
    servers = max(1, cpus // threads)
    if in_flight is None:
        return servers, 1
    servers = min(servers, in_flight)
    return servers, math.ceil(in_flight / servers)


def find_llama_server() -> str:
    """The llama-server to run: $LLMBENCH_LLAMA_SERVER, the virtualenv's, or the one on PATH."""
    explicit = os.environ.get(EXECUTABLE_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK) or not Path(explicit).is_file():
            raise BackendError(f"{EXECUTABLE_ENV}={explicit} is not an executable file")
        return explicit
    beside = Path(sys.executable).parent / "llama-server"  # where the Makefile links it
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("llama-server")
    if found:
        return found
    raise BackendError(f"{LABEL} needs llama.cpp's `llama-server`: {INSTALL_HINT}")


@dataclass
class _Running:
    """One llama-server we started, the llamacpp backend that talks to it, and how many
    requests it holds right now."""

    process: ServerProcess
    backend: LlamaCppBackend
    busy: int = 0


class EmbeddedBackend:
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
        executable: str | None = None,
        threads: int | None = None,
        servers: int | None = None,
        slots: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.context_length = context_length
        self.executable = executable
        self.retry = retry
        self.threads = threads  # per server; None: LLMBENCH_EMBEDDED_THREADS, else 1
        self.servers = servers  # None: LLMBENCH_EMBEDDED_SERVERS, else one per `threads` CPUs
        self.slots = slots  # per server; None: 1, or what the run's requests in flight need
        self.base_url = "embedded"
        self._running: list[_Running] = []
        self._key: str | None = None
        self._lock = threading.Lock()  # guards the servers' busy counts

    # -- listing -------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                key=model.key,
                context_length=model.context_length,
                quantization=model.quantization,
                loaded=model.key == self._key,
                format="gguf",
                # Served with a template that shows the tools and whose calls llama-server parses.
                tool_use=model.chat_template is not None,
                reasoning=False,
            )
            for model in BUNDLED.values()
            if model.installed()
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    def layout(self, settings: LoadSettings) -> tuple[int, int, int]:
        """(servers, slots per server, threads per server) a load starts."""
        threads = _count(THREADS_ENV, self.threads, DEFAULT_THREADS)
        servers, slots = default_layout(threads, settings.in_flight, usable_cpus())
        told = _count(SERVERS_ENV, self.servers, servers)
        if told != servers and settings.in_flight is not None:
            slots = math.ceil(settings.in_flight / told)  # the requests spread over those
        return told, self.slots or slots, threads

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        if self._running:
            self.unload(self._key or "")
        executable = self.executable or find_llama_server()
        path, default_context = resolve(key)
        context = settings.context_length or self.context_length or default_context
        servers, slots, threads = self.layout(settings)
        started = time.monotonic()
        self._key = key
        try:
            for _ in range(servers):
                port = free_port()
                process = ServerProcess(
                    self.argv(executable, key, str(path), context, port, slots, threads)
                )
                backend = LlamaCppBackend(
                    _server_at(f"http://127.0.0.1:{port}"),
                    timeout_s=self.timeout_s,
                    context_length=context,
                    retry=self.retry,
                )
                self._running.append(_Running(process, backend))
            self.base_url = self._running[0].backend.base_url
            # The servers load side by side; each is asked for its props once it is healthy.
            with ThreadPoolExecutor(max_workers=servers) as pool:
                infos = list(pool.map(lambda running: self._ready(key, running), self._running))
        except BaseException:
            self.unload(key)
            raise
        return LoadInfo(
            key=key, seconds=time.monotonic() - started, context_length=infos[0].context_length
        )

    def argv(
        self,
        executable: str,
        key: str,
        path: str,
        context: int,
        port: int,
        slots: int = 1,
        threads: int = DEFAULT_THREADS,
    ) -> list[str]:
        template = chat_template(key)
        own_template = ["--chat-template-file", str(template)] if template else []
        # One slot decodes requests one at a time and never reuses another request's prompt
        # (exact answers turn the prompt cache off): its copy of prompts in RAM is of no use.
        no_prompt_copies = ["--cache-ram", "0"] if slots == 1 else []
        return [
            executable,
            "--model", path,
            # Requests name the model by its key; /v1/models and /props answer with it.
            "--alias", key,
            # The context is per slot: llama-server divides --ctx-size among its slots.
            "--ctx-size", str(context * slots),
            "--parallel", str(slots),
            *no_prompt_copies,
            "--jinja",
            *own_template,
            # Thinking goes to `reasoning_content`, whatever the template's default.
            "--reasoning-format", "deepseek",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--threads", str(threads),
            "--threads-batch", str(threads),
            "--no-webui",
        ]  # fmt: skip

    def _ready(self, key: str, running: _Running) -> LoadInfo:
        """Wait until the server says /health 200 (the port opens early, then answers 503
        while the model loads), then read its context and slots."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            code = running.process.exit_code()
            if code is not None:
                raise BackendError(
                    f"{LABEL} for model {key!r} exited with code {code} while starting:\n"
                    f"{running.process.log_tail()}"
                )
            try:
                if running.backend.rest.status("/health", timeout_s=2.0) == 200:
                    return running.backend.load(key, LoadSettings())
            except BackendUnreachable:
                pass  # not listening yet
            except BackendError:
                pass  # a slow answer while the model loads
            time.sleep(_POLL_S)
        raise BackendError(
            f"{LABEL} for model {key!r} was not ready within {self.timeout_s:g}s:\n"
            f"{running.process.log_tail()}"
        )

    def parallel_slots(self, key: str) -> int | None:
        """Requests the servers decode at once, in all."""
        if key != self._key or not self._running:
            return None
        told = [running.backend.parallel_slots(key) for running in self._running]
        return sum(n for n in told if n) or None

    def alone_slots(self, key: str) -> int:
        """Requests that can be in flight while each is decoded alone: one per server."""
        return len(self._running) if key == self._key and self._running else 1

    def answer_settings(self, key: str) -> dict[str, Any]:
        """What the answer store keys on besides the request: the threads per server, which
        change the tokens (see DEFAULT_THREADS)."""
        if not self._running:
            return {}
        return {"threads": int(_flag(self._running[0].process.argv, "--threads") or 0)}

    def provenance(self, key: str) -> dict[str, Any]:
        """The llamacpp backend's (what the first server's /props says), with what we started
        the servers with: the model file and the executable, measured here (a locally built
        llama-server may call itself `b0-unknown`, so the executable's identity is its build),
        and the threads, servers and slots, which decide whether answers are exact."""
        if not self._running:
            return {}
        first = self._running[0]
        found = first.backend.provenance(key)
        argv = first.process.argv
        started = {
            "server": found.get("server", "llama.cpp llama-server"),
            "executable": file_identity(argv[0]),
            "model_file": _flag_file(argv, "--model") or found.get("model_file"),
            "threads": int(_flag(argv, "--threads") or DEFAULT_THREADS),
            "servers": len(self._running),
            "slots_per_server": int(_flag(argv, "--parallel") or 1),
        }
        return {**found, **{k: v for k, v in started.items() if v is not None}}

    def memory_processes(self, key: str) -> tuple[list[int], str] | None:
        """The server processes whose resident memory is the model's (backends/memory.py)."""
        if key != self._key or not self._running:
            return None
        count = len(self._running)
        what = f"{count} llama-server process{'es' if count > 1 else ''}"
        return [running.process.pid for running in self._running], what

    def unload(self, key: str) -> None:
        for running in self._running:
            running.backend.close()
            running.process.stop()
        self._running = []
        self._key = None
        self.base_url = "embedded"

    def close(self) -> None:
        self.unload(self._key or "")

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> Completion:
        if not self._running or self._key is None:
            raise BackendError(f"{LABEL}: model {request.model!r} is not loaded")
        if request.model != self._key:
            raise BackendError(
                f"{LABEL} runs model {self._key!r} but was asked for {request.model!r}; "
                "load that model first"
            )
        running = self._take()
        try:
            code = running.process.exit_code()
            if code is not None:
                raise BackendError(
                    f"{LABEL} for model {self._key!r} died (exit {code}):\n"
                    f"{running.process.log_tail()}"
                )
            return running.backend.chat(request)
        finally:
            with self._lock:
                running.busy -= 1

    def _take(self) -> _Running:
        """The server holding the fewest requests (the first of equals): with no more in
        flight than there are servers, each request has a server to itself."""
        with self._lock:
            running = min(self._running, key=lambda r: r.busy)
            running.busy += 1
            return running


def _flag(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def _flag_file(argv: list[str], flag: str) -> dict[str, Any] | None:
    value = _flag(argv, flag)
    return file_identity(value) if value is not None else None
