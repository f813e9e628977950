"""Per-case results and their aggregation into per-task and per-model reports.

CaseResult travels on each item's report as a JSON user property, so that the controller can
aggregate results produced on xdist workers exactly as it does its own.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["passed", "failed", "truncated", "no_answer", "timeout", "error"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "truncated", "no_answer", "timeout", "error")
SUITES = ("python", "cli", "tooling")
PROPERTY = "llmbench"  # the user_properties key that carries a CaseResult


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
    trimmed: bool = False  # the answer ran without some top-level statements (sanitize.py)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CaseResult:
        data: dict[str, Any] = json.loads(text)
        data["generation"] = GenerationStats(**data.get("generation", {}))
        return cls(**data)


@dataclass
class TaskResult:
    suite: str
    task: str
    cases: list[CaseResult]

    @property
    def passed(self) -> int:
        return sum(c.outcome == "passed" for c in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(Counter(c.outcome for c in self.cases))

    @property
    def generation(self) -> GenerationStats:
        return self.cases[0].generation

    def to_dict(self) -> dict[str, Any]:
        gen = self.generation
        return {
            "suite": self.suite,
            "task": self.task,
            "passed": self.passed,
            "total": self.total,
            "outcomes": self.outcomes,
            "seconds": round(gen.seconds, 3),
            "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens,
            "reasoning_tokens": gen.reasoning_tokens,
            "tokens_counted_by": gen.tokens_counted_by,
            "ttft_s": gen.ttft_s,
            "decode_tok_s": round(gen.decode_tok_s, 2) if gen.decode_tok_s else None,
            "decode_timed_by": gen.decode_timed_by,
            "prompt_tok_s": round(gen.prompt_tok_s, 2) if gen.prompt_tok_s else None,
            **({"calls_left_as_text": gen.calls_left_as_text} if gen.calls_left_as_text else {}),
            "retries": gen.retries,
            "answer_key": self.cases[0].answer_key,
            "from_store": gen.from_store,
            "cases": [
                {
                    "id": c.case,
                    "outcome": c.outcome,
                    **({"detail": c.detail} if c.detail else {}),
                    **({"trimmed": True} if c.trimmed else {}),
                }
                for c in self.cases
            ],
        }


@dataclass
class ModelReport:
    model: str
    tasks: list[TaskResult]

    def suite_counts(self, suite: str) -> tuple[int, int]:
        tasks = [t for t in self.tasks if t.suite == suite]
        return sum(t.passed for t in tasks), sum(t.total for t in tasks)

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tasks)

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tasks)

    def count(self, outcome: Outcome) -> int:
        return sum(t.outcomes.get(outcome, 0) for t in self.tasks)

    @property
    def trimmed(self) -> int:
        """Cases whose answer ran without some of its top-level statements."""
        return sum(c.trimmed for t in self.tasks for c in t.cases)

    @property
    def seconds(self) -> float:
        return sum(t.generation.seconds for t in self.tasks)

    @property
    def completion_tokens(self) -> int:
        return sum(t.generation.completion_tokens or 0 for t in self.tasks)

    @property
    def max_tokens(self) -> int | None:
        caps = [t.generation.max_tokens for t in self.tasks if t.generation.max_tokens is not None]
        return max(caps) if caps else None

    @property
    def generated(self) -> list[GenerationStats]:
        """The generations of this run (not those the answer store supplied)."""
        return [t.generation for t in self.tasks if not t.generation.from_store]

    @property
    def from_store(self) -> int:
        return sum(t.generation.from_store for t in self.tasks)

    @property
    def wall_seconds(self) -> float | None:
        """The generation phase's wall-clock: first request sent to last answer received.
        Under concurrency it is what the user waited, not the sum of request times."""
        spans = [(g.started_at, g.finished_at) for g in self.generated]
        starts = [a for a, b in spans if a is not None and b is not None]
        ends = [b for a, b in spans if a is not None and b is not None]
        return max(ends) - min(starts) if starts else None

    @property
    def throughput(self) -> float | None:
        """Completion tokens per second of generation-phase wall-clock, all requests together."""
        wall = self.wall_seconds
        tokens = sum(g.completion_tokens or 0 for g in self.generated)
        return tokens / wall if wall and tokens else None

    @property
    def concurrency(self) -> tuple[int | None, str]:
        for g in self.generated:
            if g.concurrency is not None:
                return g.concurrency, g.concurrency_source
        return None, ""

    @property
    def calls_left_as_text(self) -> int:
        return sum(t.generation.calls_left_as_text for t in self.tasks)

    @property
    def decode_tok_s(self) -> float | None:
        """Decoding speed over this run's answers: their tokens over their decode time."""
        return weighted_rate([(g.completion_tokens, g.decode_tok_s) for g in self.generated])

    @property
    def prompt_tok_s(self) -> float | None:
        """Prompt processing speed over this run's answers, where the server timed it."""
        return weighted_rate([(g.prompt_tokens, g.prompt_tok_s) for g in self.generated])

    @property
    def decode_timed_by(self) -> str:
        """Who timed the decode rate: "server", "stream", "server+stream" (mixed) or "none"."""
        parts = {p for g in self.generated for p in g.decode_timed_by.split("+")}
        return "+".join(sorted(parts - {"none"})) or "none"

    @property
    def tokens_per_second(self) -> float | None:
        timed = [t.generation for t in self.tasks if t.generation.completion_tokens]
        seconds = sum(g.seconds for g in timed)
        if not timed or seconds <= 0:
            return None
        return sum(g.completion_tokens or 0 for g in timed) / seconds


def weighted_rate(pairs: list[tuple[int | None, float | None]]) -> float | None:
    """Tokens per second over several timed stretches, each (tokens, its rate): all their
    tokens over all their time, so long stretches weigh as much as they took."""
    timed = [(tokens, rate) for tokens, rate in pairs if tokens and rate]
    seconds = sum(tokens / rate for tokens, rate in timed)
    return sum(tokens for tokens, _ in timed) / seconds if seconds > 0 else None


def aggregate(results: list[CaseResult], model_order: tuple[str, ...]) -> list[ModelReport]:
    """Group case results by model then task, in the run's model order and task order."""
    by_model: dict[str, dict[tuple[str, str, str], list[CaseResult]]] = {}
    for result in results:
        key = (result.file, result.suite, result.task)
        by_model.setdefault(result.model, {}).setdefault(key, []).append(result)
    order = [m for m in model_order if m in by_model] + sorted(
        m for m in by_model if m not in model_order
    )
    return [
        ModelReport(
            model,
            [TaskResult(suite, task, cases) for (_, suite, task), cases in by_model[model].items()],
        )
        for model in order
    ]
