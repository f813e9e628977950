"""What every suite provides: build the request, produce one generation, score one case.

A suite is data plus a scorer. Generation talks to a model through a `chat` callable and knows
nothing of pytest; scoring works on plain data in the parent process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..backends.timeline import cut
from ..caseresult import GenerationStats, weighted_rate
from ..exchange import ChatRequest, Completion, ToolCall
from ..outcome import Outcome
from ..sandbox.base import Sandbox
from .answer import split_reasoning

Chat = Callable[[ChatRequest], Completion]
TaskT = TypeVar("TaskT", contravariant=True)
CaseT = TypeVar("CaseT", contravariant=True)
# What a suite runs once per task and its cases share (PythonExecution, CliExecution, None).
ExecT = TypeVar("ExecT")


@dataclass(frozen=True)
class RequestSettings:
    """The sampling knobs every request of a run carries."""

    max_tokens: int
    temperature: float
    seed: int | None
    timeout_s: float


@dataclass(frozen=True)
class ToolExchange:
    """One tool call the model made and what the mock tool answered."""

    step: int
    call: ToolCall
    arguments: dict[str, Any] | None  # None: malformed JSON
    result: Any

    @classmethod
    def of(
        cls, step: int, name: str, arguments: dict[str, Any] | None, result: Any = None
    ) -> ToolExchange:
        """An exchange from plain parts (replays of references, importers' self-checks)."""
        import json

        raw = json.dumps(arguments) if arguments is not None else "{"
        return cls(step, ToolCall(f"call_{step}_{name}", name, raw), arguments, result)


@dataclass(frozen=True)
class Generation:
    completions: tuple[Completion, ...]
    answer: str  # final content with thinking removed
    reasoning: str
    truncated: bool  # the last request stopped at max_tokens
    exchanges: tuple[ToolExchange, ...] = ()
    stats: GenerationStats = field(default_factory=GenerationStats)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    detail: str = ""
    trimmed: bool = False  # the answer ran without some of its top-level statements


class Suite(Protocol, Generic[TaskT, CaseT, ExecT]):
    name: str
    uses_sandbox: bool

    def shown(self, task: TaskT) -> dict[str, Any]:
        """Everything the model is shown for `task` (messages, tool specs, the chain's length):
        with the sampling settings, all that shapes its answer. The answer store keys on it."""
        ...

    def generate(
        self, task: TaskT, model: str, chat: Chat, settings: RequestSettings
    ) -> Generation:
        """Ask the model for its answer to `task` (one request, or a tool loop)."""
        ...

    def reply_for(self, answer: Any) -> Any:
        """What a pseudo-model replies to give `answer` (a task's reference, or a control's)."""
        ...

    def execute(self, task: TaskT, generation: Generation, sandbox: Sandbox | None) -> ExecT:
        """Run what the model produced once per task; the result is shared by the cases."""
        ...

    def score(self, task: TaskT, case: CaseT, generation: Generation, execution: ExecT) -> Verdict:
        """The verdict for one case, computed in the parent on plain data."""
        ...

    def within_budget(self, task: TaskT, generation: Generation, budget: int) -> Generation:
        """The generation a run capped at `budget` tokens per request would have produced,
        from this one's token timelines; `generation` itself when nothing had to be cut."""
        ...


def prompt_messages(system: str, prompt: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


def single_answer(
    model: str,
    messages: list[dict[str, Any]],
    reference: str,
    chat: Chat,
    settings: RequestSettings,
) -> Generation:
    """One request, one answer: the python and cli suites."""
    request = ChatRequest(
        model=model,
        messages=messages,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        timeout_s=settings.timeout_s,
        reference=reference,
    )
    completion = chat(request)
    return generation_of((completion,), stats_of((completion,), settings.max_tokens))


def generation_of(
    completions: tuple[Completion, ...],
    stats: GenerationStats,
    exchanges: tuple[ToolExchange, ...] = (),
) -> Generation:
    """A generation from its requests' completions: the last one's answer, everyone's
    thinking, truncated when any request stopped at max_tokens."""
    answer, inline = split_reasoning(completions[-1].content)
    reasoning = "\n".join(c.reasoning for c in completions if c.reasoning)
    return Generation(
        completions=completions,
        answer=answer,
        reasoning="\n".join(r for r in (reasoning, inline) if r),
        truncated=any(c.finish_reason == "length" for c in completions),
        exchanges=exchanges,
        stats=stats,
    )


def single_within_budget(generation: Generation, budget: int) -> Generation:
    """`within_budget` for one-request suites. The stats stay those of the real generation:
    a cut answer is scored, never timed."""
    (completion,) = generation.completions
    cut_short = cut(completion, budget)
    if cut_short is completion:
        return generation
    return generation_of((cut_short,), generation.stats)


def stats_of(completions: tuple[Completion, ...], max_tokens: int) -> GenerationStats:
    def total(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    counted = {c.usage.counted_by for c in completions} - {"none"}
    timed = {c.decode_timed_by for c in completions} - {"none"}
    return GenerationStats(
        seconds=sum(c.wall_s for c in completions),
        prompt_tokens=total([c.usage.prompt_tokens for c in completions]),
        completion_tokens=total([c.usage.completion_tokens for c in completions]),
        reasoning_tokens=total([c.usage.reasoning_tokens for c in completions]),
        tokens_counted_by="+".join(sorted(counted)) or "none",
        ttft_s=completions[0].ttft_s if completions else None,
        requests=len(completions),
        retries=sum(c.retries for c in completions),
        max_tokens=max_tokens,
        decode_tok_s=weighted_rate(
            [(c.usage.completion_tokens, c.decode_tok_s) for c in completions]
        ),
        decode_timed_by="+".join(sorted(timed)) or "none",
        prompt_tok_s=weighted_rate([(c.usage.prompt_tokens, c.prompt_tok_s) for c in completions]),
    )


def same_answer(first: Generation, second: Generation) -> bool:
    """Whether two generations said the same: every request's text, thinking and tool calls
    (timings and token counts aside)."""

    def said(generation: Generation) -> list[tuple[str, str, list[tuple[str, str]]]]:
        return [
            (c.content, c.reasoning, [(t.name, t.arguments) for t in c.tool_calls])
            for c in generation.completions
        ]

    return said(first) == said(second)


def missing_answer(generation: Generation, what: str) -> Verdict:
    """The verdict when there is nothing to run: cut off (truncated) or never given."""
    if generation.truncated:
        return Verdict("truncated", f"the answer hit max_tokens before {what} was complete")
    return Verdict("no_answer", f"the answer contains no {what}")
