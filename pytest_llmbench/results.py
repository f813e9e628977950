"""Per-case results and their aggregation into per-task and per-model reports.

CaseResult travels on each item's report as a JSON user property, so that the controller can
aggregate results produced on xdist workers exactly as it does its own. What the results say
about a task's stability (its label: `stability`) and the task-level pass@k and pass^k are
computed here too, from the results alone.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from . import stats
from .outcome import Outcome

SUITES = ("python", "cli", "tooling")
PROPERTY = "llmbench"  # the user_properties key that carries a CaseResult
# The user_properties key that carries, once per model and process, what answered the model.
PROVENANCE_PROPERTY = "llmbench_provenance"


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
    def file(self) -> str:
        return self.cases[0].file if self.cases else ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the task across models and runs."""
        return (self.file, self.suite, self.task)

    @property
    def fully_passed(self) -> bool:
        """Every case passed (in every repeat): how HumanEval-style pass@1 counts a problem."""
        return bool(self.cases) and self.passed == self.total

    @property
    def by_repeat(self) -> dict[int, list[CaseResult]]:
        """The cases of each sample of the task (one sample without --llmbench-repeat)."""
        out: dict[int, list[CaseResult]] = {}
        for case in self.cases:
            out.setdefault(case.repeat, []).append(case)
        return dict(sorted(out.items()))

    @property
    def repeats(self) -> int:
        return len(self.by_repeat)

    @property
    def repeats_passed(self) -> int:
        """The samples whose every case passed."""
        return sum(all(c.outcome == "passed" for c in cases) for cases in self.by_repeat.values())

    @property
    def errored(self) -> bool:
        """Infrastructure failed on some case: the task says nothing sure about the model."""
        return any(c.outcome == "error" for c in self.cases)

    @property
    def unstable_cases(self) -> list[str]:
        """The ids of the cases that passed in some sample and not in another (an `error`
        says nothing about the model, so it is neither)."""
        seen: dict[str, set[str]] = {}
        for c in self.cases:
            seen.setdefault(c.case, set()).add(c.outcome)
        return [case for case, got in seen.items() if "passed" in got and got - {"passed", "error"}]

    @property
    def budgets(self) -> list[int]:
        """The token budgets its cases were scored at (--llmbench-budgets), smallest first."""
        return sorted({b for c in self.cases for b, _ in c.budgets})

    @property
    def stability(self) -> Stability | None:
        return stability(self)

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(Counter(c.outcome for c in self.cases))

    @property
    def audited(self) -> bool:
        """Its answer was also generated alone by --llmbench-audit (errors on either side
        leave a case out: they say nothing about batching)."""
        return any(_audit_pair(c) is not None for c in self.cases)

    @property
    def audit_flipped(self) -> bool:
        """Audited, and some case passed in one of the two answers and not in the other."""
        return any(pair is not None and pair[0] != pair[1] for pair in map(_audit_pair, self.cases))

    @property
    def audit_answer_changed(self) -> bool:
        """Audited, and the answer generated alone differed from the batched one."""
        return any(c.audit_same_answer is False for c in self.cases if _audit_pair(c) is not None)

    @property
    def generation(self) -> GenerationStats:
        return self.cases[0].generation

    @property
    def generations(self) -> list[GenerationStats]:
        """One per sample: what producing each answer cost."""
        return [cases[0].generation for cases in self.by_repeat.values()]

    def to_dict(self) -> dict[str, Any]:
        gen = self.generation
        gens = self.generations
        repeated = self.repeats > 1  # once, not per case: it groups every case

        def total(values: list[int | None]) -> int | None:
            known = [v for v in values if v is not None]
            return sum(known) if known else None

        record: dict[str, Any] = {
            "suite": self.suite,
            "task": self.task,
            "file": self.file,
            "passed": self.passed,
            "total": self.total,
            "outcomes": self.outcomes,
            # With repeats: time and tokens summed over them; the rest is the first one's.
            "seconds": round(sum(g.seconds for g in gens), 3),
            "prompt_tokens": total([g.prompt_tokens for g in gens]),
            "completion_tokens": total([g.completion_tokens for g in gens]),
            "reasoning_tokens": total([g.reasoning_tokens for g in gens]),
            "tokens_counted_by": gen.tokens_counted_by,
            "ttft_s": gen.ttft_s,
            "decode_tok_s": round(gen.decode_tok_s, 2) if gen.decode_tok_s else None,
            "decode_timed_by": gen.decode_timed_by,
            "prompt_tok_s": round(gen.prompt_tok_s, 2) if gen.prompt_tok_s else None,
            **({"calls_left_as_text": gen.calls_left_as_text} if gen.calls_left_as_text else {}),
            "retries": sum(g.retries for g in gens),
            "answer_key": self.cases[0].answer_key,
            "from_store": all(g.from_store for g in gens),
            "stability": found.to_dict() if (found := self.stability) else None,
            "cases": [
                {
                    "id": c.case,
                    "outcome": c.outcome,
                    **({"detail": c.detail} if c.detail else {}),
                    **({"trimmed": True} if c.trimmed else {}),
                    **({"repeat": c.repeat} if repeated else {}),
                    **({"budgets": {str(b): o for b, o in c.budgets}} if c.budgets else {}),
                    **(
                        {"audit": c.audit_outcome, "audit_same_answer": c.audit_same_answer}
                        if c.audit_outcome is not None
                        else {}
                    ),
                }
                for c in self.cases
            ],
        }
        if repeated:
            record["repeats"] = [
                {
                    "repeat": r,
                    "passed": sum(c.outcome == "passed" for c in cases),
                    "total": len(cases),
                    "seconds": round(cases[0].generation.seconds, 3),
                    "completion_tokens": cases[0].generation.completion_tokens,
                    "answer_key": cases[0].answer_key,
                }
                for r, cases in self.by_repeat.items()
            ]
        return record


def _audit_pair(case: CaseResult) -> tuple[bool, bool] | None:
    """(passed batched, passed alone) of an audited case, None if not audited or errored."""
    if case.audit_outcome is None or "error" in (case.outcome, case.audit_outcome):
        return None
    return case.outcome == "passed", case.audit_outcome == "passed"


Label = Literal["batching-sensitive", "flaky", "budget-sensitive", "stable pass", "stable fail"]
# In order of precedence: a task's primary label is the first of these it earns.
LABELS: tuple[Label, ...] = (
    "batching-sensitive", "flaky", "budget-sensitive", "stable pass", "stable fail"
)  # fmt: skip
STABLE: tuple[Label, ...] = ("stable pass", "stable fail")


@dataclass(frozen=True)
class Stability:
    """How stable a (model, task) result is, on the evidence its run gathered.

    `labels` holds every label the task earned, in the order of LABELS; `label` is the first.
    `samples` and `samples_passed` are the task's samples and those whose every case passed
    (an errored case keeps its sample from passing, as in the tasks column). `from_budget` is
    set for a budget-sensitive task some sample of which passes at the largest budget.
    """

    labels: tuple[Label, ...]
    samples: int
    samples_passed: int
    from_budget: int | None = None
    audited: bool = False

    @property
    def label(self) -> Label:
        return self.labels[0]

    @property
    def stable(self) -> bool:
        return self.label in STABLE

    def describe(self, label: Label) -> str:
        """One label with what it carries: `flaky (2 of 5)`, `budget-sensitive (from 1024)`."""
        if label == "flaky":
            return f"flaky ({self.samples_passed} of {self.samples})"
        if label == "budget-sensitive":
            where = (
                f"from {self.from_budget}"
                if self.from_budget is not None
                else "only at smaller budgets"
            )
            return f"budget-sensitive ({where})"
        if label in STABLE:
            return f"{label} ({self.samples} sample{'s' if self.samples != 1 else ''})"
        return label

    def text(self) -> str:
        return ", ".join(map(self.describe, self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "labels": list(self.labels),
            "samples": self.samples,
            "samples_passed": self.samples_passed,
            "from_budget": self.from_budget,
            "audited": self.audited,
            "batching_flipped": "batching-sensitive" in self.labels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stability:
        labels = tuple(cast(Label, x) for x in data["labels"] if x in LABELS)
        if not labels:
            raise ValueError(f"no stability label in {data!r}")
        return cls(
            labels,
            int(data["samples"]),
            int(data["samples_passed"]),
            int(data["from_budget"]) if data.get("from_budget") is not None else None,
            bool(data.get("audited")),
        )


def stability(task: TaskResult) -> Stability | None:
    """The task's stability labels, from its cases alone (None when every case errored: the
    run learned nothing about it). A case's `error` says nothing about the model and is left
    out everywhere. A sample *passes at budget B* when every case of it that did not error
    passed at B (the largest budget: the case's outcome).

    - batching-sensitive: the task was audited (--llmbench-audit) and some case's verdict
      differs between the batched answer and the one generated alone;
    - flaky: some case passed in one sample and not in another (at the largest budget);
    - budget-sensitive: with 2+ budgets, some sample that passes at the largest budget fails
      at a smaller one (or, when no sample passes at the largest, some passes at a smaller
      one); `from_budget` is the smallest budget from which every sample that passes at the
      largest passes at that budget and at every larger one;
    - stable pass / stable fail: none of the above, and every sample passes at the largest
      budget (so at every budget), or not.

    "Stable" means only that this run's evidence showed no instability: one sample at one
    budget, unaudited, shows none, which is why the label carries the number of samples.
    """
    samples = [
        cases for cases in task.by_repeat.values() if any(c.outcome != "error" for c in cases)
    ]
    if not samples:
        return None
    labels: list[Label] = []
    if task.audit_flipped:
        labels.append("batching-sensitive")
    if task.unstable_cases:
        labels.append("flaky")
    budgets = task.budgets
    # Per sample, its verdict at each budget, smallest first (without budgets, its outcome's:
    # a case's outcome is its outcome at the largest budget).
    points: list[int | None] = [*budgets] or [None]
    verdicts = [[_sample_passes(cases, b) for b in points] for cases in samples]
    passing = [v for v in verdicts if v[-1]]
    from_budget = None
    if len(budgets) > 1 and any(len(set(v)) > 1 for v in passing or verdicts):
        labels.append("budget-sensitive")
        if passing:
            # The budget after the last one at which a sample that passes at the largest failed.
            first = max((i + 1 for v in passing for i, ok in enumerate(v) if not ok), default=0)
            from_budget = budgets[first]
    if not labels:
        labels.append("stable pass" if len(passing) == len(verdicts) else "stable fail")
    return Stability(
        tuple(labels), task.repeats, task.repeats_passed, from_budget, audited=task.audited
    )


def _sample_passes(cases: list[CaseResult], budget: int | None) -> bool:
    """Every case of a sample that did not error passed at `budget` (None: its outcome)."""
    outcomes = [c.outcome if budget is None else c.outcome_at(budget) for c in cases]
    return all(o == "passed" for o in outcomes if o != "error")


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


def weighted_rate(pairs: list[tuple[int | None, float | None]]) -> float | None:
    """Tokens per second over several timed stretches, each (tokens, its rate): all their
    tokens over all their time, so long stretches weigh as much as they took."""
    timed = [(tokens, rate) for tokens, rate in pairs if tokens and rate]
    seconds = sum(tokens / rate for tokens, rate in timed)
    return sum(tokens for tokens, _ in timed) / seconds if seconds > 0 else None


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
