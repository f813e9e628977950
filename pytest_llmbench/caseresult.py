"""The per-case result: what one case of one task scored for one model, as it travels.

CaseResult travels on each item's report as a JSON user property (PROPERTY), so that the
controller can aggregate results produced on xdist workers exactly as it does its own; the
suites, the scheduler and the items produce it, and the run record keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .outcome import Outcome

SUITES = ("python", "cli", "tooling")
PROPERTY = "llmbench"  # the user_properties key that carries a CaseResult
# The user_properties key that carries, once per model and process, what answered the model.
PROVENANCE_PROPERTY = "llmbench_provenance"
# The user_properties key that carries a model's memory figure whenever it changed.
MEMORY_PROPERTY = "llmbench_memory"


@dataclass(frozen=True)
class GenerationStats:
    """What producing one (model, task) answer cost; shared by all of that task's cases."""

    seconds: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    tokens_counted_by: str = "none"
    ttft_s: float | None = None
    requests: int = 0
    retries: int = 0
    max_tokens: int | None = None  # the generation cap in force for this request
    decode_tok_s: float | None = None  # decoding speed, without prompt processing
    # When the generation ran (epoch seconds): a model's generation phase is the span from
    # its first start to its last finish, whatever the concurrency.
    started_at: float | None = None
    finished_at: float | None = None
    concurrency: int | None = None  # requests in flight for this model
    concurrency_source: str = ""  # why that many: "option", "server: ...", "default"
    from_store: bool = False  # the answer came from the answer store, not the server
    decode_timed_by: str = "none"  # "server", "stream", both joined by "+", or "none"
    prompt_tok_s: float | None = None  # prompt processing speed, as the server timed it
    # Model turns whose text held a tool call the server did not turn into one (tooling only).
    calls_left_as_text: int = 0
    # Whether other requests could be decoding on the same server process at the same time
    # (several in flight on a server that batches them): such an answer may depend on what
    # else was in flight. None where nothing was asked of a server (pseudo-models).
    batched: bool | None = None
    # With several replicas of the model (--llmbench-endpoint): the server that answered.
    replica: str | None = None


@dataclass(frozen=True)
class CaseResult:
    model: str
    suite: str
    task: str
    case: str
    outcome: Outcome
    detail: str = ""
    file: str = ""
    generation: GenerationStats = field(default_factory=GenerationStats)
    load_s: float | None = None
    answer_key: str | None = None  # the answer store's key of the generation behind the case
    trimmed: bool = False  # the answer ran without some top-level statements (suites/sanitize.py)
    repeat: int = 0  # which sample of the task (--llmbench-repeat)
    # With --llmbench-budgets: (max_tokens, outcome) per budget, the largest being `outcome`.
    budgets: tuple[tuple[int, Outcome], ...] = ()
    # With --llmbench-audit, for an audited task: the case's outcome when the task's answer was
    # generated again alone (one request in flight on its server), and whether that answer was
    # the same as the batched one (text and tool calls). None when the task was not audited.
    audit_outcome: Outcome | None = None
    audit_same_answer: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (what `dataclasses.asdict` gives, without its recursive deep
        copy: every field is immutable and one level deep but `generation`, and this runs for
        every case)."""
        data = dict(self.__dict__)
        data["generation"] = dict(self.generation.__dict__)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def outcome_at(self, budget: int) -> Outcome:
        """The outcome at `budget` tokens (a case without budgets, an error, keeps its own)."""
        return dict(self.budgets).get(budget, self.outcome)

    @classmethod
    def from_json(cls, text: str) -> CaseResult:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """The CaseResult of `to_dict()` (or of `to_json()` parsed), as the run record keeps it."""
        fields = {
            **data,
            "generation": GenerationStats(**data.get("generation", {})),
            "budgets": tuple((int(b), o) for b, o in data.get("budgets", ())),
        }
        return cls(**fields)


# The CaseResults of the latest reports, by their JSON text: the result collector and the
# progress display both read every report, and without xdist the report carries the very text
# this process wrote. A CaseResult is frozen, so sharing it is safe.
_RECENT: dict[str, CaseResult] = {}
_RECENT_KEPT = 64


def _remember(text: str, result: CaseResult) -> None:
    _RECENT[text] = result
    if len(_RECENT) > _RECENT_KEPT:
        del _RECENT[next(iter(_RECENT))]  # the oldest


def case_result_text(result: CaseResult) -> str:
    """`result.to_json()`, for an item's report; reading it back in this process is free."""
    text = result.to_json()
    _remember(text, result)
    return text


def read_case_result(text: str) -> CaseResult:
    """A report's CaseResult, parsed at most once."""
    result = _RECENT.get(text)
    if result is None:
        result = CaseResult.from_json(text)
        _remember(text, result)
    return result


def provenance_property(model: str, provenance: dict[str, Any]) -> tuple[str, str]:
    """The user property that carries what answered `model` to the controller."""
    payload = {"model": model, "provenance": provenance}
    return PROVENANCE_PROPERTY, json.dumps(payload, default=str)


def memory_property(model: str, figure: dict[str, Any]) -> tuple[str, str]:
    """The user property that carries a model's memory figure (backends/memory.py)."""
    return MEMORY_PROPERTY, json.dumps({"model": model, "memory": figure})


def weighted_rate(pairs: list[tuple[int | None, float | None]]) -> float | None:
    """Tokens per second over several timed stretches, each (tokens, its rate): all their
    tokens over all their time, so long stretches weigh as much as they took."""
    timed = [(tokens, rate) for tokens, rate in pairs if tokens and rate]
    seconds = sum(tokens / rate for tokens, rate in timed)
    return sum(tokens for tokens, _ in timed) / seconds if seconds > 0 else None
