"""`embedded`: a GGUF model on the CPU through llama.cpp's own `llama-server`, run by us.

Loading a model starts `llama-server` on a free loopback port and waits until it is healthy;
unloading stops it. In between it is a single-model llama-server like any other, so everything
else is the `llamacpp` backend's: exact prompt counts with the server's template and tokenizer,
server timings, slots from `/props`. The server runs with `--jinja` (the model's chat template,
or for SmolLM2, whose GGUF template drops tools, ours in templates/; tool calls in the
template's format come back parsed), `--parallel N` slots with continuous batching, and the
same context per slot for every model.

`make llama-server` (run by `make bench` and `make test`) builds the executable once per machine
and links it into the virtualenv; `LLMBENCH_LLAMA_SERVER` or a `llama-server` on PATH are used
otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..exchange import BackendError, BackendUnreachable, ChatRequest, Completion
from .base import LoadInfo, LoadSettings, ModelInfo
from .bundled_models import BUNDLED, chat_template, resolve
from .llamacpp import LlamaCppBackend
from .provenance import file_identity
from .rest import Rest
from .retry import RetryPolicy
from .server import Server
from .server_process import ServerProcess, free_port

LABEL = "the embedded llama.cpp server"
EXECUTABLE_ENV = "LLMBENCH_LLAMA_SERVER"
THREADS_ENV = "LLMBENCH_EMBEDDED_THREADS"
INSTALL_HINT = (
    "build it with `make llama-server` in a clone of pytest-llmbench, put llama.cpp's "
    f"`llama-server` on PATH, or name it in {EXECUTABLE_ENV}"
)
# Requests decoded at once, as llama-server itself picks with `--parallel -1`. Measured with
# SmolLM2-135M on 2 loaded vCPUs (benchmarks/embedded_slots.py, 8 requests of 64 tokens, one
# thread): 1 slot 6.9-8.9 tok/s in all, 2 slots 7.7, 4 slots 9.7; each request decodes slower
# the more share a batch (10.6, 6.2, 4.5 tok/s), but a run with that many in flight ends sooner.
DEFAULT_SLOTS = 4
_POLL_S = 0.1


def _server_at(root: str) -> Server:
    return Server(label=LABEL, root=root, start_hint="it runs only while its model is loaded")


def default_threads(cpus: int, idle: float, override: str | None) -> int:
    """llama.cpp's threads: LLMBENCH_EMBEDDED_THREADS if set, else the usable CPUs that are
    idle right now (at least 1).

    A decoding thread that loses its CPU to other work stalls every other thread at the next
    barrier, so a busy machine decodes faster with fewer threads. Measured with SmolLM2 on 2
    vCPUs, 4 slots (benchmarks/embedded_slots.py): on an idle machine 1 thread gave 51 tok/s in
    all and 2 threads 86; on one other jobs kept busy, 1 thread about 44 and 2 threads 5 to 29.
    """
    if override is not None:
        try:
            wanted = int(override)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise BackendError(f"{THREADS_ENV} must be a whole number of threads, not {override!r}")
        return wanted
    return max(1, min(cpus, int(idle + 0.25)))


def idle_cpus(sample_s: float = 0.3) -> float:
    """How many CPUs sat idle over a short sample (Linux /proc/stat); elsewhere, the CPUs the
    last minute's load average leaves free."""
    try:
        first = _cpu_times()
        time.sleep(sample_s)
        second = _cpu_times()
    except (OSError, ValueError, IndexError):
        return max(0.0, usable_cpus() - os.getloadavg()[0])
    busy, idle = (b - a for a, b in zip(first, second, strict=True))
    total = busy + idle
    return (os.cpu_count() or 1) * idle / total if total > 0 else 0.0


def _cpu_times() -> tuple[int, int]:
    """(busy, idle) jiffies of all CPUs together, from /proc/stat's first line."""
    with open("/proc/stat", encoding="ascii") as stat:
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        fields = [int(v) for v in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, idle


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup pinning
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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


class EmbeddedBackend(LlamaCppBackend):
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
        slots: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            _server_at("http://127.0.0.1"),
            timeout_s=timeout_s,
            context_length=context_length,
            retry=retry,
        )
        self.base_url = "embedded"
        self.executable = executable
        self.threads = threads  # None: chosen when a model loads, from how idle the CPUs are
        self.slots = slots or DEFAULT_SLOTS
        self._process: ServerProcess | None = None
        self._key: str | None = None

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

    def load(self, key: str, settings: LoadSettings) -> LoadInfo:
        if self._process is not None:
            self.unload(self._key or "")
        executable = self.executable or find_llama_server()
        path, default_context = resolve(key)
        context = self.settings_context(settings) or default_context
        port = free_port()
        started = time.monotonic()
        self._process = ServerProcess(self.argv(executable, key, str(path), context, port))
        self._key = key
        self._point_at(f"http://127.0.0.1:{port}")
        try:
            self._wait_until_ready(key, self.timeout_s)
            info = super().load(key, settings)
        except BaseException:
            self.unload(key)
            raise
        return LoadInfo(
            key=key, seconds=time.monotonic() - started, context_length=info.context_length
        )

    def argv(self, executable: str, key: str, path: str, context: int, port: int) -> list[str]:
        threads = str(
            self.threads or default_threads(usable_cpus(), idle_cpus(), os.environ.get(THREADS_ENV))
        )
        template = chat_template(key)
        own_template = ["--chat-template-file", str(template)] if template else []
        return [
            executable,
            "--model", path,
            # Requests name the model by its key; /v1/models and /props answer with it.
            "--alias", key,
            # The context is per slot: llama-server divides --ctx-size among its slots.
            "--ctx-size", str(context * self.slots),
            "--parallel", str(self.slots),
            "--jinja",
            *own_template,
            # Thinking goes to `reasoning_content`, whatever the template's default.
            "--reasoning-format", "deepseek",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--threads", threads,
            "--threads-batch", threads,
            "--no-webui",
        ]  # fmt: skip

    def _point_at(self, root: str) -> None:
        self.server = _server_at(root)
        self.base_url = root
        self.rest = Rest(self.server, timeout_s=self.timeout_s)
        self._chat = None  # the next chat builds a client for the new port
        self._router = False
        self._can_template = True

    def _wait_until_ready(self, key: str, timeout_s: float) -> None:
        """Until /health says 200: the port opens early, then answers 503 while loading."""
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
                if self.rest.status("/health", timeout_s=2.0) == 200:
                    return
            except BackendUnreachable:
                pass  # not listening yet
            except BackendError:
                pass  # a slow answer while the model loads
            time.sleep(_POLL_S)
        raise BackendError(
            f"{LABEL} for model {key!r} was not ready within {timeout_s:g}s:\n"
            f"{self._process.log_tail()}"
        )

    def provenance(self, key: str) -> dict[str, Any]:
        """The llamacpp backend's (what the server's /props says), with what we started it
        with: the model file and the executable, measured here (a locally built llama-server
        may call itself `b0-unknown`, so the executable's identity is its build), and its
        threads, which change the tokens it produces."""
        found = super().provenance(key)
        if self._process is None:
            return found
        argv = self._process.argv
        started = {
            "server": found.get("server", "llama.cpp llama-server"),
            "executable": file_identity(argv[0]),
            "model_file": _flag_file(argv, "--model") or found.get("model_file"),
            "threads": int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None,
        }
        return {**found, **{k: v for k, v in started.items() if v is not None}}

    def unload(self, key: str) -> None:
        if self._chat is not None:
            self._chat.close()
            self._chat = None
        if self._process is not None:
            self._process.stop()
            self._process = None
        for name in {self._key or key, key}:
            self.loaded_context.pop(name, None)
            self._served_as.pop(name, None)
            self._slots.pop(name, None)
        self._key = None
        self.base_url = "embedded"

    def close(self) -> None:
        self.unload(self._key or "")

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> Completion:
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


def _flag_file(argv: list[str], flag: str) -> dict[str, Any] | None:
    return file_identity(argv[argv.index(flag) + 1]) if flag in argv else None
