"""The generation scheduler: a loaded model's selected tasks, N requests in flight, scoring beside.

When the first item of a model sets up, the model is loaded and every selected task of that
model (in item order) becomes a job. Each replica of the model gets as many generation threads
as the in-flight plan gives it (backends/inflight.py: one per server process where answers must stay
exact); they take jobs in order from one queue, so a tooling chain's turns stay in order inside
one thread while other tasks run beside it. With several replicas, the first sample a replica
takes of a task claims the task's other samples (its repeats): they go to the same server,
whose prompt cache serves them, and the JSONL says which replica answered the task.

A finished generation is written to the answer store at once, then handed to the scoring pool
(bounded by the cores), which runs it in the sandbox while the next answers are generated.
Each item waits only for its own task's future.

With --llmbench-audit, a model whose answers were batched has some of its tasks generated
again once the batched ones are done, one request at a time: each audited task's future holds
both answers, so its cases are scored twice and say whether batching flipped them.

Pytest never sees any of this: items stay the unit it runs and reports, and the scheduler knows
nothing of pytest (collection hands it plain `Job`s). It is given what it uses, not the run's
state: the model manager (as `ModelHost`), the answer store, the sandbox (on first use: its
self-test costs, and tooling never needs it) and the settings.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from ..backends.inflight import InFlightPlan, alone_slots, answer_settings
from ..exchange import BackendError, ChatRequest, Completion
from ..options import Settings, audit_count
from ..sandbox.base import Sandbox, SandboxError
from ..storage.answers import AnswerKey, Answers
from ..suites import get_suite
from ..suites.base import Generation, RequestSettings
from .sampling import budget_runs, repeat_seed

if TYPE_CHECKING:
    from ..backends.base import Backend, LoadInfo
    from ..suites import Execution
    from ..suites.ask import Ask
    from ..taskfiles.format import Task

TaskKey = tuple[str, str]  # (model, file node id::task id)


@dataclass(frozen=True)
class Job:
    """One (model, task) to generate and run: what collection hands the scheduler."""

    key: TaskKey
    suite: str
    task: Task | Ask  # an Ask: a test function's request (suite "ask")
    repeat: int = 0


@dataclass(frozen=True)
class Prepared:
    """A task's answer and what running it produced; its cases are scored from these."""

    generation: Generation
    execution: Execution
    answer_key: str | None
    # With --llmbench-budgets: per budget, the generation cut there and its execution.
    by_budget: dict[int, tuple[Generation, Execution]] = field(default_factory=dict)
    # With --llmbench-audit, for an audited task: its answer generated again alone, and run.
    audit: Prepared | None = None


@dataclass(frozen=True)
class InfraFailure:
    """The server or the sandbox failed for this task: every case of it reports an error."""

    message: str
    retries: int = 0  # infrastructure retries spent before giving up


# What a task's future settles with (not a case's outcome: its cases are scored from it).
Settled = Prepared | InfraFailure


class ModelHost(Protocol):
    """What the scheduler asks of the model manager (session.ModelManager)."""

    def ensure_loaded(self, model: str) -> LoadInfo:
        """Load `model` (after unloading the one before); raises BackendError."""
        ...

    def plan(self, model: str) -> InFlightPlan:
        """Requests in flight on each replica of the loaded `model`."""
        ...

    def max_tokens_for(self, model: str) -> int: ...


def task_of(key: TaskKey) -> str:
    """The task a job samples: its key without the repeat."""
    return key[1].split("#repeat", 1)[0]


def scoring_workers() -> int:
    """Sandbox runs at once in this process: two per core. A sandbox run spends much of its
    time starting processes and waiting for them to be scheduled, so one per core leaves cores
    idle; sharing a core makes no answer time out, since a call's limit counts the time it
    runs, not the time it waits for a CPU. Not divided among xdist workers: models sharing a
    server run on one worker, so one busy worker next to an idle one is the common case."""
    return 2 * max(1, os.cpu_count() or 1)


class _Pool:
    """A fixed set of daemon threads running callables in submission order.

    Daemon threads, unlike concurrent.futures': an interrupted run exits at once instead of
    waiting for requests still in flight (their answers would be discarded anyway).
    """

    def __init__(self, workers: int, name: str) -> None:
        self._queue: deque[Callable[[], None]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        for index in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True).start()

    def submit(self, work: Callable[[], None]) -> None:
        with self._ready:
            if self._closed:
                # The run is ending (a generation finished after it stopped): starting a sandbox
                # run now would leave it behind when the process exits.
                return
            self._queue.append(work)
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed and not self._queue:
                    return
                work = self._queue.popleft()
            work()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._queue.clear()
            self._ready.notify_all()


@dataclass
class _Halves:
    """An audited task's two answers as they arrive: its future settles once both are in."""

    batched: Settled | None = None
    alone: Prepared | None = None
    alone_done: bool = False


def audited_jobs(jobs: Sequence[Job], spec: str) -> list[Job]:
    """The jobs an audit generates again: a spread of the tasks, chosen by a hash of their
    names (not their order), so that the same selection always audits the same tasks; first
    samples only, in item order."""
    # Test functions' requests are not audited: their verdicts are the tests' own.
    first = [job for job in jobs if job.repeat == 0 and job.suite != "ask"]
    count = audit_count(spec, len(first))
    ranked = sorted(first, key=lambda job: hashlib.sha256(job.key[1].encode()).hexdigest())
    chosen = {job.key for job in ranked[:count]}
    return [job for job in first if job.key in chosen]


class Scheduler:
    def __init__(
        self,
        models: ModelHost,
        store: Answers,
        sandbox: Callable[[], Sandbox],
        settings: Settings,
    ) -> None:
        self.models = models
        self.store = store
        self.sandbox = sandbox  # created on first use
        self.settings = settings
        self._futures: dict[TaskKey, Future[Settled]] = {}
        self._pending: dict[str, deque[Job]] = {}  # model -> jobs not yet taken
        # model -> per replica, the jobs it has claimed: with several replicas, the first
        # sample a replica takes of a task claims the task's other samples, so that its
        # repeats (and their prompt, which the server caches) stay on one server.
        self._claimed: dict[str, list[deque[Job]]] = {}
        # Models whose run is over: no new request may reach their server, or a server with
        # just-in-time loading (LM Studio) would load the model again after its unload.
        self._stopped: set[str] = set()
        self._lock = threading.Lock()
        self._scoring: _Pool | None = None
        self.concurrency: dict[str, tuple[int, str]] = {}  # model -> (in flight, why)
        self.plans: dict[str, InFlightPlan] = {}
        # Audits: per model the jobs to generate again alone, the generation threads still
        # running (the last one to finish starts the audit), and each audited task's answers.
        self._audits: dict[str, list[Job]] = {}
        self._running: dict[str, int] = {}
        self._halves: dict[TaskKey, _Halves] = {}

    def result(self, model: str, key: TaskKey, jobs: Callable[[], Sequence[Job]]) -> Settled:
        """The prepared answer of one task, starting the model's jobs on first use."""
        if key not in self._futures:
            self.start(model, jobs())
        return self._futures[key].result()

    def answer(self, model: str, job: Job) -> Settled:
        """A job asked for while its model's items run (a test function's request). A job
        declared ahead has its future already; another goes to the front of the model's queue
        while its generation threads run, so that no more requests are in flight than the plan
        allows, and is generated on this thread once they are done."""
        with self._lock:
            future = self._futures.get(job.key)
            queued = future is not None
            if future is None and model not in self._stopped and self._running.get(model, 0):
                future = self._futures[job.key] = Future()
                self._pending[model].appendleft(job)
                queued = True
        if queued:
            assert future is not None
            return future.result()
        plan = self.plans.get(model)
        if plan is None or model in self._stopped:
            return InfraFailure(f"{model!r} is not loaded: it was asked outside its tests")
        outcome = self._generation(model, job, plan.replicas[0][0], plan.batched)
        if isinstance(outcome, InfraFailure):
            return outcome
        return self._execute(job, *outcome, with_budgets=False)

    def start(self, model: str, jobs: Sequence[Job]) -> None:
        """Load `model` and start generating its jobs (in order), unless already started."""
        if any(job.key in self._futures for job in jobs):
            return
        if not jobs and model in self.plans and model not in self._stopped:
            return  # nothing declared ahead, and the model is already being served
        for job in jobs:
            self._futures.setdefault(job.key, Future())
        self._stopped.discard(model)
        try:
            self.models.ensure_loaded(model)
        except BackendError as exc:
            for job in jobs:
                self._settle(job.key, InfraFailure(exc.message, exc.retries))
            return
        if self._scoring is None:
            self._scoring = _Pool(scoring_workers(), "llmbench-score")
        for suite in {job.suite for job in jobs}:
            # Imported here, before the threads: modules first imported by several threads at
            # once can be seen half-initialised (their imports are circular).
            get_suite(suite)
        queue: deque[Job] = deque(job for job in jobs if not self._futures[job.key].done())
        self._pending[model] = queue
        plan = self.plans[model] = self.models.plan(model)
        self.concurrency[model] = (plan.total, plan.why)
        spec = self.settings.audit
        audit = audited_jobs(list(queue), spec) if spec and plan.batched else []
        self._audits[model] = audit
        for job in audit:
            self._halves[job.key] = _Halves()
        # Never more threads than jobs: a -k run of three tasks needs three.
        budget = len(queue)
        threads = [
            (replica, backend, index)
            for replica, (backend, in_flight) in enumerate(plan.replicas)
            for index in range(min(in_flight, budget))
        ]
        self._running[model] = len(threads)
        claimed: list[deque[Job]] = [deque() for _ in plan.replicas]
        self._claimed[model] = claimed
        if not threads:
            self._audit(model)
        for replica, backend, index in threads:
            threading.Thread(
                target=self._generate_from,
                args=(model, queue, claimed, backend, plan.batched, replica),
                name=f"llmbench-gen-{replica}-{index}",
                daemon=True,
            ).start()

    def _generate_from(
        self,
        model: str,
        queue: deque[Job],
        claimed: list[deque[Job]],
        backend: Backend,
        batched: bool,
        replica: int,
    ) -> None:
        # The queues are this start's: `finish` empties them, and a later start of the same
        # model makes new ones, which this thread never sees.
        while True:
            with self._lock:
                job = self._next_job(queue, claimed, replica)
                if job is None:
                    self._running[model] -= 1
                    last = self._running[model] == 0
                    break
            self._prepare(model, job, backend, batched)
        if last:
            # Every batched answer is in: the server now has nothing else in flight.
            self._audit(model)

    def _prepare(
        self, model: str, job: Job, backend: Backend, batched: bool, *, audit: bool = False
    ) -> None:
        """Generate one job's answer (an audited task's second one with `audit`) and hand it
        to the scoring pool."""
        try:
            outcome = self._generation(model, job, backend, batched, audit=audit)
        except Exception as exc:  # the store, a bug: fail the task, never strand its items
            outcome = InfraFailure(f"internal error: {type(exc).__name__}: {exc}")
        if isinstance(outcome, InfraFailure):
            if audit:
                self._join(job.key, alone_done=True)  # no second answer: not audited after all
            elif job.key in self._halves:
                self._join(job.key, batched=outcome)
            else:
                self._settle(job.key, outcome)
            return
        assert self._scoring is not None
        run = self._run_alone if audit else self._run
        self._scoring.submit(functools.partial(run, job, *outcome))

    @staticmethod
    def _next_job(queue: deque[Job], claimed: list[deque[Job]], replica: int) -> Job | None:
        """The next job for a thread of `replica` (under the lock): one it claimed, else the
        next in the queue, claiming the other samples of its task when there are replicas."""
        if claimed[replica]:
            return claimed[replica].popleft()
        if not queue:
            return None
        job = queue.popleft()
        if len(claimed) > 1:
            task = task_of(job.key)
            same = [other for other in queue if task_of(other.key) == task]
            for other in same:
                queue.remove(other)
            claimed[replica].extend(same)
        return job

    def _audit(self, model: str) -> None:
        """Generate the audited tasks again on the first replica, with no more in flight
        than it decodes alone (one, or one per server of the embedded backend)."""
        jobs = deque(self._audits.pop(model, []))
        if not jobs:
            return
        backend = self.plans[model].replicas[0][0]

        def audit_from() -> None:
            while True:
                with self._lock:
                    if not jobs:
                        return
                    job = jobs.popleft()
                if model in self._stopped:
                    self._join(job.key, alone_done=True)
                    continue
                self._prepare(model, job, backend, batched=False, audit=True)

        extra = min(alone_slots(backend, model), len(jobs)) - 1
        for index in range(extra):
            threading.Thread(target=audit_from, name=f"llmbench-audit-{index}", daemon=True).start()
        audit_from()  # in the thread that finished the batched answers

    def request_settings(self, model: str, repeat: int = 0) -> RequestSettings:
        """What every request for `model` is sent with; repeat r's seed derives from the
        run's."""
        return RequestSettings(
            max_tokens=self.models.max_tokens_for(model),
            temperature=self.settings.temperature,
            seed=repeat_seed(self.settings.seed, repeat),
            timeout_s=self.settings.timeout,
        )

    def _generation(
        self, model: str, job: Job, backend: Backend, batched: bool, *, audit: bool = False
    ) -> tuple[Generation, str | None] | InfraFailure:
        suite = get_suite(job.suite)
        settings = self.request_settings(model, job.repeat)
        concurrency, why = (1, "audit") if audit else self.concurrency.get(model, (1, ""))
        key = None
        if self.settings.cache != "off" and backend.name != "builtin":
            key = AnswerKey(
                backend=self.settings.backend,
                model=model,
                shown=suite.shown(job.task),
                max_tokens=settings.max_tokens,
                temperature=settings.temperature,
                seed=settings.seed,
                repeat=job.repeat,
                batched=batched,
                server=answer_settings(backend, model),
            )
            stored = self.store.get(key)
            if stored is not None:
                return replace(stored, stats=replace(stored.stats, from_store=True)), key.digest

        def chat(request: ChatRequest) -> Completion:
            if model in self._stopped:  # also between the turns of a tool chain
                raise BackendError(f"the run stopped before {model!r} was asked")
            # Decoded alone, the answer can be had again exactly if the server computes it
            # from scratch; batched, it cannot anyway, and the server's caches save time.
            return backend.chat(replace(request, exact=not batched))

        started = time.time()
        try:
            generation = suite.generate(job.task, model, chat, settings)
        except BackendError as exc:
            return InfraFailure(exc.message, exc.retries)
        except Exception as exc:  # a bug must fail its task, not leave its items waiting
            return InfraFailure(f"internal error: {type(exc).__name__}: {exc}")
        plan = self.plans.get(model)
        stats = replace(
            generation.stats,
            started_at=started,
            finished_at=time.time(),
            concurrency=concurrency,
            concurrency_source=why,
            batched=batched,
            replica=backend.base_url if plan is not None and len(plan.replicas) > 1 else None,
        )
        generation = replace(generation, stats=stats)
        if key is not None:
            self.store.put(key, generation)
        return generation, key.digest if key is not None else None

    def _run(self, job: Job, generation: Generation, answer_key: str | None) -> None:
        prepared = self._execute(job, generation, answer_key, with_budgets=True)
        if job.key in self._halves:
            self._join(job.key, batched=prepared)
        else:
            self._settle(job.key, prepared)

    def _run_alone(self, job: Job, generation: Generation, answer_key: str | None) -> None:
        """An audited task's second answer: run it (at the largest budget only) and join it
        to the first."""
        prepared = self._execute(job, generation, answer_key, with_budgets=False)
        self._join(
            job.key, alone=prepared if isinstance(prepared, Prepared) else None, alone_done=True
        )

    def _execute(
        self, job: Job, generation: Generation, answer_key: str | None, *, with_budgets: bool
    ) -> Settled:
        suite = get_suite(job.suite, sanitize=self.settings.sanitize)
        try:
            # Only suites that run model output need the sandbox (and its self-test).
            sandbox = self.sandbox() if suite.uses_sandbox else None
            execution = suite.execute(job.task, generation, sandbox)
            budgets = self.settings.budgets if with_budgets else ()
            by_budget = (
                budget_runs(suite, job.task, generation, execution, budgets, sandbox)
                if budgets
                else {}
            )
        except (SandboxError, LookupError) as exc:
            # The sandbox could not run the answer (or a task's tool is missing): nothing was
            # learned about the model.
            return InfraFailure(f"sandbox: {exc}")
        except Exception as exc:  # a bug must fail its task, not hang the run
            return InfraFailure(f"internal error: {type(exc).__name__}: {exc}")
        return Prepared(generation, execution, answer_key, by_budget)

    def _join(
        self,
        key: TaskKey,
        *,
        batched: Settled | None = None,
        alone: Prepared | None = None,
        alone_done: bool = False,
    ) -> None:
        """Record one of an audited task's answers; settle its future once both are in."""
        with self._lock:
            halves = self._halves.get(key)
            if halves is None:
                return
            if batched is not None:
                halves.batched = batched
            if alone_done:
                halves.alone, halves.alone_done = alone, True
            if halves.batched is None or not halves.alone_done:
                return
            del self._halves[key]
        first = halves.batched
        if isinstance(first, Prepared) and halves.alone is not None:
            first = replace(first, audit=halves.alone)
        self._settle(key, first)

    def _settle(self, key: TaskKey, outcome: Settled) -> None:
        future = self._futures.get(key)
        if future is not None and not future.done():
            future.set_result(outcome)

    def finish(self, model: str) -> None:
        """The model's items are done (or the run stops): drop what it has not started and
        forget its answers."""
        with self._lock:
            self._stopped.add(model)
            queue = self._pending.pop(model, None)
            if queue is not None:
                queue.clear()
            for claimed in self._claimed.pop(model, []):
                claimed.clear()
        for key in [k for k in self._futures if k[0] == model]:
            del self._futures[key]
        for key in [k for k in self._halves if k[0] == model]:
            del self._halves[key]

    def close(self) -> None:
        for model in list(self._pending):
            self.finish(model)
        if self._scoring is not None:
            self._scoring.close()
