"""How many requests a model's servers get at once, and whether that keeps its answers exact.

llama.cpp (and so LM Studio, Ollama and the embedded backend) and vLLM decode the requests they
hold at once in one batch, and batched kernels do not give the same tokens as a request decoded
alone: measured with SmolLM2 on llama-server, two runs at 4 in flight gave the same answer on
17 of 50 python tasks, two runs at 1 in flight on 50 of 50 (llama.cpp issue 7052). So when the
sampling is deterministic (temperature 0, or a seed), `--llmbench-concurrency=auto` sends one
request at a time to each server process, unless the server says it is batch-invariant or the
user asks for speed (`server` or a number); where a backend runs several single-slot servers
(the embedded one), one request per server keeps every answer exact and the run fast.

The plan is made once per model, after it loads (a server says how many it decodes at once
only then), and travels with every answer: `GenerationStats.batched` says whether the answer
was decoded beside others, and the answer store keeps the two kinds apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..options import DEFAULT_CONCURRENCY, DEFAULT_SEED, DEFAULT_TEMPERATURE, Settings
from .base import Backend

REPRODUCIBLE = "reproducible"  # the source of a count chosen so that answers stay exact


@dataclass(frozen=True)
class InFlightPlan:
    """Per replica of a model: the backend and the requests to keep in flight on it."""

    replicas: tuple[tuple[Backend, int], ...]
    why: str  # "reproducible", "option", "endpoint", "server", "default", "built-in: ..."
    # Some server holds more requests at once than it decodes alone: answers may depend on
    # what else was in flight.
    batched: bool

    @property
    def total(self) -> int:
        return sum(n for _, n in self.replicas)


def parallel_slots(backend: Backend, model: str) -> int | None:
    """How many requests the server decodes at once, when it says (optional in the protocol:
    llama-server's slots, LM Studio's parallel predictions, the embedded servers)."""
    asked = getattr(backend, "parallel_slots", None)
    told = asked(model) if callable(asked) else None
    return told if isinstance(told, int) and told > 0 else None


def alone_slots(backend: Backend, model: str) -> int:
    """How many requests can be in flight while each is still decoded alone: one per server
    process (the embedded backend runs several single-slot servers), else one."""
    asked = getattr(backend, "alone_slots", None)
    told = asked(model) if callable(asked) else None
    return told if isinstance(told, int) and told > 0 else 1


def answer_settings(backend: Backend, model: str) -> dict[str, Any]:
    """Settings of the server that change the tokens it produces (the embedded backend's
    threads), for the answer store's key; optional in the protocol, {} for other servers."""
    asked = getattr(backend, "answer_settings", None)
    told = asked(model) if callable(asked) else None
    return dict(told) if isinstance(told, dict) else {}


def deterministic_sampling(settings: Settings) -> bool:
    """Whether the same request draws the same tokens: greedy, or sampled with a fixed seed."""
    return settings.temperature == 0 or settings.seed is not None


def plan(
    settings: Settings, model: str, backends: Sequence[Backend], *, builtin: bool
) -> InFlightPlan:
    """The requests in flight on each replica of `model`, and why. `backends` are in the
    order of `settings.urls_for(model)`, as the run makes them: a backend's own URL is
    normalised, so the position, not the URL, pairs it with its `URL*N`."""
    if builtin:
        return InFlightPlan(tuple((b, 1) for b in backends), "built-in: answers at once", False)
    option = settings.concurrency
    exact_wanted = deterministic_sampling(settings) and not settings.batch_invariant
    # A URL*N is the user's word on that one server: it beats the option and the server.
    given = dict(enumerate(settings.in_flight_for(model)))
    replicas: list[tuple[Backend, int]] = []
    reasons: set[str] = set()
    batched = False
    for index, backend in enumerate(backends):
        alone = alone_slots(backend, model)
        endpoint = given.get(index)
        if endpoint is not None:
            count, why = endpoint, "endpoint"
        elif isinstance(option, int):
            count, why = option, "option"
        elif option == "auto" and exact_wanted:
            count, why = alone, REPRODUCIBLE
        else:
            told = parallel_slots(backend, model)
            count, why = (told, "server") if told else (DEFAULT_CONCURRENCY, "default")
        replicas.append((backend, count))
        reasons.add(why)
        # More in flight than a server decodes at once only queue there: still one by one.
        decoded_at_once = min(count, parallel_slots(backend, model) or count)
        batched = batched or (decoded_at_once > alone and not settings.batch_invariant)
    return InFlightPlan(tuple(replicas), ", ".join(sorted(reasons)), batched)


def answers_note(
    settings: Mapping[str, Any], in_flight: int | None, why: str, batched: bool
) -> tuple[bool, str]:
    """Whether a model's answers can be had again exactly, and one sentence that says so and
    why, for the footer and the JSONL. `settings` is the run's as the JSONL records them
    (temperature, seed, batch_invariant)."""
    temperature = settings.get("temperature", DEFAULT_TEMPERATURE)
    seed = settings.get("seed", DEFAULT_SEED)
    if why.startswith("built-in"):
        return True, "built-in: the same answer every time"
    if temperature != 0 and seed is None:
        return False, (
            f"answers vary from run to run: temperature {temperature:g} without a seed "
            "(--llmbench-seed=N draws the same tokens again)"
        )
    sampling = f"temperature {temperature:g}" + (f", seed {seed}" if temperature != 0 else "")
    if batched:
        return False, (
            f"NOT reproducible: answers share the server's batches ({in_flight} in flight), "
            "and batched decoding changes tokens; --llmbench-concurrency=auto decodes each "
            "alone, --llmbench-audit=N counts the verdicts batching flips"
        )
    if settings.get("batch_invariant") and (in_flight or 1) > 1:
        return True, f"reproducible at {sampling}: the servers are batch-invariant (as told)"
    speed = (
        "; --llmbench-concurrency=server for speed, answers then depend on batching"
        if why == REPRODUCIBLE
        else ""
    )
    return True, f"reproducible at {sampling}: each answer decoded alone{speed}"
