"""Per-run state hung on `config.stash`: the model manager, the generation memo, the results.

One RunState exists per process (controller and each xdist worker); only the controller's
`results` and `provenance` are filled, from the item reports, so aggregation is the same with or
without xdist.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ..backends.base import Backend, LoadInfo, LoadSettings
from ..backends.builtin import BuiltinBackend
from ..backends.inflight import InFlightPlan, plan
from ..backends.memory import NOT_KNOWN, MemoryFigure, MemorySampler
from ..caseresult import CaseResult
from ..exchange import PSEUDO_MODELS, BackendError, BackendUnreachable, ChatRequest, Completion
from ..options import DEFAULT_MAX_TOKENS, Settings

if TYPE_CHECKING:
    from ..results.gate import GateVerdict
    from ..results.history import Run
    from ..sandbox.base import Sandbox
    from ..storage.answers import Answers, AnswerStore
    from ..storage.relay import Outbox
    from .scheduler import Job, Scheduler


class ModelManager:
    """Keeps at most one model loaded (on each of its replicas), routes requests to its
    backends, and records what answered each model it loaded (its provenance)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self.loaded: str | None = None
        self.loads: dict[str, LoadInfo] = {}
        self.failed: dict[str, BackendError] = {}  # model -> why its load failed
        self.unreachable: dict[str, BackendUnreachable] = {}  # backend url -> error
        self.events: list[tuple[str, str]] = []  # ("load" | "unload", model), for the record
        # What answered each model loaded in this process (backends/provenance.py), and the
        # models whose provenance an item report of this process has carried since.
        self.provenance: dict[str, dict[str, Any]] = {}
        self._reported: set[str] = set()
        # What each loaded model takes in memory (backends/memory.py): sampled while it is
        # loaded where its server runs here, else as its server reports it.
        self.memory: dict[str, MemoryFigure] = {}
        self._samplers: dict[str, MemorySampler] = {}
        self._memory_told: dict[str, MemoryFigure] = {}

    def url_for(self, model: str) -> str | None:
        """The first server of a model (the one reports name)."""
        return self.settings.urls_for(model)[0]

    def backends_for(self, model: str) -> list[Backend]:
        """One backend per replica of `model`, in the order its URLs were given."""
        if model in PSEUDO_MODELS:
            return [self._backend("builtin:", BuiltinBackend)]
        return [
            self._backend(f"{self.settings.backend}@{url}", lambda url=url: self._make(url))  # type: ignore[misc]
            for url in self.settings.urls_for(model)
        ]

    def backend_for(self, model: str) -> Backend:
        return self.backends_for(model)[0]

    def _backend(self, key: str, make: Callable[[], Backend]) -> Backend:
        if key not in self._backends:
            self._backends[key] = make()
        return self._backends[key]

    def _make(self, url: str | None) -> Backend:
        from ..backends import make_backend

        return make_backend(
            self.settings.backend,
            url,
            timeout_s=self.settings.timeout,
            context_length=self.settings.context_length,
        )

    def ensure_loaded(self, model: str) -> LoadInfo:
        """Load `model` on every replica (after unloading the model before it)."""
        if model in self.failed:
            raise self.failed[model]
        if self.loaded == model:
            return self.loads[model]
        if self.loaded is not None:
            self.unload(self.loaded)
        infos: list[LoadInfo] = []
        try:
            for backend in self.backends_for(model):
                # One unreachable server fails its other models at once, with the same message.
                if backend.base_url in self.unreachable:
                    raise self.unreachable[backend.base_url]
                try:
                    infos.append(backend.load(model, self._load_settings()))
                except BackendUnreachable as exc:
                    self.unreachable[backend.base_url] = exc
                    raise
        except BackendError as exc:
            self.failed[model] = exc
            for backend in self.backends_for(model)[: len(infos)]:
                with contextlib.suppress(BackendError):
                    backend.unload(model)
            raise
        self.events.append(("load", model))
        self.loaded = model
        # Replicas load side by side in practice; the slowest one is the wait.
        self.loads[model] = max(infos, key=lambda info: info.seconds)
        self.provenance[model] = self._provenance(model)
        self._reported.discard(model)
        self._watch_memory(model)
        return self.loads[model]

    def _watch_memory(self, model: str) -> None:
        if model in PSEUDO_MODELS:
            return
        backend = self.backend_for(model)
        processes = getattr(backend, "memory_processes", None)
        found = processes(model) if processes is not None else None
        if found is not None:
            pids, what = found
            self._samplers[model] = MemorySampler(lambda: pids, what).start()
            return
        reported = getattr(backend, "reported_memory", None)
        self.memory[model] = reported(model) if reported is not None else NOT_KNOWN

    def memory_of(self, model: str) -> MemoryFigure:
        """The model's memory so far (the whole load's once it is unloaded)."""
        sampler = self._samplers.get(model)
        return sampler.reading() if sampler is not None else self.memory.get(model, NOT_KNOWN)

    def untold_memory(self, model: str) -> MemoryFigure | None:
        """The model's memory figure when it changed since this process last told it (it
        travels to the controller on the item reports), else None."""
        if model not in self.memory and model not in self._samplers:
            return None  # never loaded here
        figure = self.memory_of(model)
        if self._memory_told.get(model) == figure:
            return None
        self._memory_told[model] = figure
        return figure

    def _provenance(self, model: str) -> dict[str, Any]:
        """The first replica's provenance; with replicas that differ, each one's under
        `replicas` too (answers from different builds are mixed in the model's results)."""
        from ..backends.provenance import provenance_of

        found = [provenance_of(backend, model) for backend in self.backends_for(model)]
        if any(other != found[0] for other in found[1:]):
            return {**found[0], "replicas": found}
        return found[0]

    def unreported_provenance(self, model: str) -> dict[str, Any] | None:
        """The model's provenance the first time it is asked after each load, else None: it
        travels to the controller on one item report per model and process."""
        if model in self._reported or not self.provenance.get(model):
            return None
        self._reported.add(model)
        return self.provenance[model]

    def _load_settings(self) -> LoadSettings:
        option = self.settings.concurrency
        # A backend that starts its own servers (embedded) sizes them for what the user asked.
        return LoadSettings(
            self.settings.context_length, in_flight=option if isinstance(option, int) else None
        )

    def unload(self, model: str) -> None:
        if self.loaded != model:
            return
        self.loaded = None
        self.events.append(("unload", model))
        sampler = self._samplers.pop(model, None)
        if sampler is not None:  # before the servers stop: the last sample is of the model
            self.memory[model] = sampler.stop()
        for backend in self.backends_for(model):
            # A model that cannot be unloaded must not fail the next model's run.
            with contextlib.suppress(BackendError):
                backend.unload(model)

    def chat(self, request: ChatRequest) -> Completion:
        return self.backend_for(request.model).chat(request)

    def plan(self, model: str) -> InFlightPlan:
        """Requests in flight on each replica of a loaded model, and whether they batch."""
        return plan(self.settings, model, self.backends_for(model), builtin=model in PSEUDO_MODELS)

    def max_tokens_for(self, model: str) -> int:
        if self.settings.max_tokens is not None:
            return self.settings.max_tokens
        backend = self.backend_for(model)
        return int(getattr(backend, "default_max_tokens", None) or DEFAULT_MAX_TOKENS)

    def close(self) -> None:
        if self.loaded is not None:
            self.unload(self.loaded)
        for backend in self._backends.values():
            with contextlib.suppress(BackendError):
                backend.close()


@dataclass
class RunState:
    settings: Settings
    manager: ModelManager
    results: list[CaseResult] = field(default_factory=list)
    # Controller: what answered each model (backends/provenance.py), from the item reports.
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Controller: what each model takes in memory (backends/memory.py), from the item reports.
    memory: dict[str, MemoryFigure] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    baseline: Run | None = None  # read at start, before this run appends to the JSONL
    gate: GateVerdict | None = None  # when a gate option is set
    # The run's last item is done: a model released now stays loaded until the results are
    # written (run/ending.py unloads it).
    last_item_done: bool = False
    # An xdist worker's: what it sends the controller instead of writing the database, and
    # the controller's stored answers, by key (storage/relay.py).
    outbox: Outbox | None = None
    relayed_answers: dict[str, str] = field(default_factory=dict)
    _sandbox: Sandbox | None = None
    _store: AnswerStore | None = None
    _scheduler: Scheduler | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> AnswerStore:
        with self._lock:
            if self._store is None:
                from ..storage.answers import AnswerStore

                self._store = AnswerStore(self.settings.store_path, self.settings.cache)  # type: ignore[arg-type]
            return self._store

    @property
    def answers(self) -> Answers:
        """Where generations are looked up and kept: the project's store, or on an xdist
        worker the controller's answers and the outbox."""
        if self.outbox is None:
            return self.store
        from ..storage.relay import RelayedAnswers

        return RelayedAnswers(self.relayed_answers, self.settings.cache, self.outbox)

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            from .scheduler import Scheduler

            # The sandbox on first use: only answers that run start one (and its self-test).
            self._scheduler = Scheduler(
                self.manager, self.answers, lambda: self.sandbox, self.settings
            )
        return self._scheduler

    @property
    def isolation_tier(self) -> str:
        return self._sandbox.tier if self._sandbox is not None else "unused"

    @property
    def sandbox(self) -> Sandbox:
        with self._lock:  # scoring threads ask for it too
            if self._sandbox is None:
                from ..sandbox import get_sandbox

                self._sandbox = get_sandbox(self.settings.isolation)  # type: ignore[arg-type]
            return self._sandbox

    def acquire(self, model: str, jobs: Sequence[Job]) -> None:
        """Load `model` (unloading the one before) and start generating `jobs`, the work its
        items declared; a failed load is in `manager.failed`. Task file items (through the
        scheduler) and the llm fixture both come here."""
        self.scheduler.start(model, jobs)

    def release(self, model: str) -> None:
        """`model`'s items are done: no new request reaches its server, and it is unloaded
        (unless the run's last item is done: then after the results are written). Releasing
        a model twice, or one that is not loaded, does nothing more."""
        if self._scheduler is not None:
            self._scheduler.finish(model)
        if not self.last_item_done:
            self.manager.unload(model)

    def close_scheduler(self) -> None:
        """Nothing more will be asked of the scheduler: drop the work it has not started."""
        if self._scheduler is not None:
            self._scheduler.close()

    def close_sandbox(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox.close()


STATE = pytest.StashKey[RunState]()
