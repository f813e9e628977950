"""A task's result over its cases and samples, and what it says about the task's stability.

TaskResult groups one model's cases of one task (every sample of it); `stability` labels the
task from those cases alone (flaky, budget-sensitive, batching-sensitive, stable pass or fail).
The two depend on each other (a TaskResult's `stability`, the labels' reading of a TaskResult),
so they live together, below the aggregation into per-model reports (results/aggregate.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..caseresult import CaseResult, GenerationStats


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
            # With replicas: the server that answered (every sample of a task goes to one).
            **({"replica": gen.replica} if gen.replica else {}),
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
