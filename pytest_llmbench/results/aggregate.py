"""The aggregation of case results into per-model reports, and what is computed over them.

`aggregate` groups CaseResults by model and task into ModelReports; their scores with
intervals, the task-level pass@k and pass^k, the batching audit's summary and the comparison
of two models (or runs) on their shared tasks are computed here, from the results alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..caseresult import SUITES, CaseResult, GenerationStats, weighted_rate
from ..outcome import Outcome
from . import stats
from .stability import LABELS, Stability, TaskResult


@dataclass(frozen=True)
class Score:
    """Cases passed and tasks fully passed over a set of tasks, each with its 95 % interval
    (cases: cluster bootstrap over the tasks; tasks: Wilson)."""

    passed: int
    total: int
    interval: stats.Interval
    tasks_passed: int
    tasks_total: int
    tasks_interval: stats.Interval

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def tasks_rate(self) -> float:
        return self.tasks_passed / self.tasks_total if self.tasks_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "rate": round(self.rate, 4),
            "interval": self.interval.as_list(),
            "tasks_passed": self.tasks_passed,
            "tasks_total": self.tasks_total,
            "tasks_rate": round(self.tasks_rate, 4),
            "tasks_interval": self.tasks_interval.as_list(),
        }


def score(tasks: list[TaskResult]) -> Score:
    """Cases and tasks passed, counted over every sample: with repeats, passed/total is pass@1
    averaged over them. Samples of one task are clustered like its cases: a task's repeats are
    resampled together."""
    samples = [(t.repeats_passed, t.repeats) for t in tasks]
    tasks_passed = sum(p for p, _ in samples)
    tasks_total = sum(n for _, n in samples)
    repeated = any(n > 1 for _, n in samples)
    return Score(
        passed=sum(t.passed for t in tasks),
        total=sum(t.total for t in tasks),
        interval=stats.cluster_bootstrap([(t.passed, t.total) for t in tasks]),
        tasks_passed=tasks_passed,
        tasks_total=tasks_total,
        tasks_interval=(
            stats.cluster_bootstrap(samples) if repeated else stats.wilson(tasks_passed, len(tasks))
        ),
    )


def at_budget(tasks: list[TaskResult], budget: int) -> list[TaskResult]:
    """The tasks as scored at `budget` tokens (cases without budgets, errors, keep theirs)."""
    return [
        TaskResult(t.suite, t.task, [replace(c, outcome=c.outcome_at(budget)) for c in t.cases])
        for t in tasks
    ]


def pass_at_k(tasks: list[TaskResult], k: int) -> tuple[float, stats.Interval] | None:
    """pass@k over tasks (a sample passes a task when all its cases pass), by the unbiased
    estimator, with a cluster bootstrap interval; None when some task has fewer than k
    samples. Per task, pass@k is (C(n,k) - C(n-c,k)) / C(n,k): integer rows the bootstrap
    can resample."""
    return _over_tasks(
        tasks, k, stats.pass_at_k, lambda n, c: math.comb(n, k) - math.comb(n - c, k)
    )


def pass_hat_k(tasks: list[TaskResult], k: int) -> tuple[float, stats.Interval] | None:
    """pass^k over tasks (all k samples drawn pass), as `pass_at_k` gives pass@k. Per task,
    pass^k is C(c,k) / C(n,k)."""
    return _over_tasks(tasks, k, stats.pass_hat_k, lambda n, c: math.comb(c, k))


def _over_tasks(
    tasks: list[TaskResult],
    k: int,
    estimator: Callable[[int, int, int], float],
    numerator: Callable[[int, int], int],
) -> tuple[float, stats.Interval] | None:
    """The mean over tasks of a per-task estimator of (n samples, c passed, k), and its
    cluster bootstrap interval over rows (numerator(n, c), C(n, k))."""
    if not tasks or any(t.repeats < k for t in tasks):
        return None
    samples = [(t.repeats, t.repeats_passed) for t in tasks]
    rows = [(numerator(n, c), math.comb(n, k)) for n, c in samples]
    return stats.mean_estimate(estimator, samples, k), stats.cluster_bootstrap(rows)


@dataclass
class ModelReport:
    model: str
    tasks: list[TaskResult]

    def suite_counts(self, suite: str) -> tuple[int, int]:
        tasks = [t for t in self.tasks if t.suite == suite]
        return sum(t.passed for t in tasks), sum(t.total for t in tasks)

    def suites(self) -> list[str]:
        """The suites this model ran, in the usual order."""
        ran = {t.suite for t in self.tasks}
        return [s for s in SUITES if s in ran] + sorted(ran - set(SUITES))

    def score(self, suite: str | None = None) -> Score:
        """The model's score over one suite, or over everything it ran."""
        return score(self.of_suite(suite))

    def of_suite(self, suite: str | None) -> list[TaskResult]:
        return [t for t in self.tasks if suite is None or t.suite == suite]

    @property
    def tasks_passed(self) -> int:
        return sum(t.repeats_passed for t in self.tasks)

    @property
    def repeats(self) -> int:
        return max((t.repeats for t in self.tasks), default=1)

    def pass_at_k(self, k: int, suite: str | None = None) -> tuple[float, stats.Interval] | None:
        return pass_at_k(self.of_suite(suite), k)

    def pass_hat_k(self, k: int, suite: str | None = None) -> tuple[float, stats.Interval] | None:
        return pass_hat_k(self.of_suite(suite), k)

    def unstable(self) -> list[str]:
        """Cases that passed in some repeats and failed in others (`suite:task:case`)."""
        return [f"{t.suite}:{t.task}:{case}" for t in self.tasks for case in t.unstable_cases]

    def stability_counts(self) -> dict[str, int]:
        """Tasks per primary stability label, every label listed (tasks that only errored
        have no label and are not counted)."""
        counts = Counter(s.label for t in self.tasks if (s := t.stability) is not None)
        return {label: counts[label] for label in LABELS}

    def not_stable(self) -> list[tuple[TaskResult, Stability]]:
        """The tasks whose label is not a stable one, in run order."""
        return [(t, s) for t in self.tasks if (s := t.stability) is not None and not s.stable]

    @property
    def budgets(self) -> list[int]:
        """The token budgets the cases were scored at (--llmbench-budgets), smallest first."""
        return sorted({b for t in self.tasks for b in t.budgets})

    def at_budget(self, budget: int) -> ModelReport:
        return ModelReport(self.model, at_budget(self.tasks, budget))

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
    def generations(self) -> list[GenerationStats]:
        """Every answer behind the report: one per task and repeat."""
        return [g for t in self.tasks for g in t.generations]

    @property
    def seconds(self) -> float:
        return sum(g.seconds for g in self.generations)

    @property
    def completion_tokens(self) -> int:
        return sum(g.completion_tokens or 0 for g in self.generations)

    @property
    def max_tokens(self) -> int | None:
        caps = [g.max_tokens for g in self.generations if g.max_tokens is not None]
        return max(caps) if caps else None

    @property
    def load_s(self) -> float | None:
        """How long loading the model took (kept out of every other figure)."""
        return next((c.load_s for t in self.tasks for c in t.cases if c.load_s), None)

    @property
    def generated(self) -> list[GenerationStats]:
        """The generations of this run (not those the answer store supplied)."""
        return [g for g in self.generations if not g.from_store]

    @property
    def from_store(self) -> int:
        return sum(g.from_store for g in self.generations)

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
    def batched(self) -> bool:
        """Some answer behind the report was decoded beside other requests on its server, so it
        may differ from the answer the same request gets alone (stored answers count too)."""
        return any(g.batched for g in self.generations)

    def audit(self) -> Audit | None:
        """What generating the audited tasks again, alone, showed (None: none was audited)."""
        audited = [t for t in self.tasks if t.audited]
        if not audited:
            return None
        return Audit(
            tasks=len(audited),
            answers_changed=tuple(f"{t.suite}:{t.task}" for t in audited if t.audit_answer_changed),
            flipped=tuple(f"{t.suite}:{t.task}" for t in audited if t.audit_flipped),
        )

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
        timed = [g for g in self.generations if g.completion_tokens]
        seconds = sum(g.seconds for g in timed)
        if not timed or seconds <= 0:
            return None
        return sum(g.completion_tokens or 0 for g in timed) / seconds


@dataclass(frozen=True)
class Audit:
    """A batching audit of one model: its audited tasks generated again alone, and which of
    them came back with another answer, or with a verdict that flipped (`suite:task`)."""

    tasks: int
    answers_changed: tuple[str, ...]
    flipped: tuple[str, ...]

    @property
    def flip_rate(self) -> float:
        return len(self.flipped) / self.tasks if self.tasks else 0.0

    @property
    def interval(self) -> stats.Interval:
        """Wilson's interval: the audited tasks are independent trials."""
        return stats.wilson(len(self.flipped), self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "answers_changed": len(self.answers_changed),
            "verdicts_flipped": len(self.flipped),
            "flip_rate": round(self.flip_rate, 4),
            "interval": self.interval.as_list(),
            "flipped": list(self.flipped),
            "changed": list(self.answers_changed),
        }


@dataclass(frozen=True)
class Comparison:
    """Two models (or two runs) on the tasks both ran without an infrastructure error."""

    old: str
    new: str
    cases: stats.Difference  # case pass rates, paired bootstrap over the shared tasks
    tasks: stats.McNemar  # tasks fully passed, exact McNemar

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared_tasks": self.cases.tasks,
            "rate": round(self.cases.old, 4),
            "other_rate": round(self.cases.new, 4),
            "difference": round(self.cases.delta, 4),
            "interval": self.cases.interval.as_list(),
            "significant": self.cases.significant,
            "tasks_only_this": self.tasks.only_old,
            "tasks_only_other": self.tasks.only_new,
            "tasks_p_value": float(f"{self.tasks.p_value:.4g}"),
        }


def task_pairs(old: list[TaskResult], new: list[TaskResult]) -> list[tuple[TaskResult, TaskResult]]:
    """The tasks both ran, as (old, new) in the order of `old`: the same task file, suite and
    id."""
    # Records written before tasks carried their file are matched by suite and task id.
    with_file = all(t.file for t in (*old, *new))

    def key(task: TaskResult) -> tuple[str, ...]:
        return task.key if with_file else task.key[1:]

    theirs = {key(t): t for t in new}
    return [(t, theirs[key(t)]) for t in old if key(t) in theirs]


def compare(
    old: ModelReport | list[TaskResult],
    new: ModelReport | list[TaskResult],
    *,
    names: tuple[str, str] | None = None,
) -> Comparison:
    """`new` against `old` on the tasks both ran (a task with an error on either side is left
    out: it says nothing about either model)."""
    old_tasks = old.tasks if isinstance(old, ModelReport) else old
    new_tasks = new.tasks if isinstance(new, ModelReport) else new
    shared = [(a, b) for a, b in task_pairs(old_tasks, new_tasks) if not (a.errored or b.errored)]
    if names is None:
        names = (
            old.model if isinstance(old, ModelReport) else "old",
            new.model if isinstance(new, ModelReport) else "new",
        )
    return Comparison(
        old=names[0],
        new=names[1],
        cases=stats.paired_difference(
            [((a.passed, a.total), (b.passed, b.total)) for a, b in shared]
        ),
        tasks=stats.mcnemar([(a.fully_passed, b.fully_passed) for a, b in shared]),
    )


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
