"""Collection: a task file becomes one CaseItem per (model, task, case)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import TerminalRepr

from ..backends.memory import MemoryFigure
from ..caseresult import (
    MEMORY_PROPERTY,
    PROPERTY,
    PROVENANCE_PROPERTY,
    CaseResult,
    GenerationStats,
    case_result_text,
    read_case_result,
)
from ..display import printable
from ..outcome import Outcome
from ..storage.record_writer import record_case
from ..suites import get_suite
from ..suites.base import Generation, Verdict, same_answer
from ..suites.toolbox import TOOLBOX
from ..taskfiles.cache import load_cached
from ..taskfiles.format import Case, Task
from ..taskfiles.loading import TaskFileError
from .functions import declared_jobs, function_model, model_properties
from .scheduler import InfraFailure, Job, Prepared
from .session import STATE, RunState

if TYPE_CHECKING:
    from ..suites.controls import Control


@functools.cache
def _mark(name: str) -> pytest.MarkDecorator:
    # Built once per name: looking a marker up by name costs more than making the item.
    return getattr(pytest.mark, name)  # type: ignore[no-any-return]


class CaseFailed(Exception):
    """The model's answer did not pass this case (outcome other than passed/error)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"{verdict.outcome}: {verdict.detail}")
        self.verdict = verdict


def case_item_name(task: str, case: str, model: str) -> str:
    """`task/case[model]`: no `::` (pytest would read it as a deeper node and not find the
    item from its own FAILED line), and the model as the parameter, as pytest users expect:
    `file::task/case` selects the case for every model."""
    return f"{task}/{case}[{model}]"


def control_item_name(task: str, control: str) -> str:
    """`task/control:reference`: a control has no model, so no brackets."""
    return f"{task}/control:{control}"


class TaskFileCollector(pytest.File):
    """A YAML task file: yields, per model, one item per task case (and controls on request)."""

    def collect(self) -> Iterator[pytest.Item]:
        state = self.config.stash[STATE]
        try:
            cache = state.settings.rootdir / ".llmbench" / "cache" / "tasks"
            task_file = load_cached(
                self.path,
                None if state.settings.cache == "off" else cache,
                builtin_tools=TOOLBOX.keys(),
                # An xdist worker writes nothing under its project (it may be another
                # machine's copy); it still reads what a run without -n parsed.
                keep=state.outbox is None,
            )
        except TaskFileError as exc:
            raise self.CollectError(str(exc)) from None
        if state.settings.validate:
            yield from self._controls(task_file.suite, task_file.tasks)
        for model in state.settings.models:
            for task in task_file.tasks:
                for case in task.cases:
                    name = case_item_name(task.id, case.id, model)
                    # An explicit nodeid keeps --lf working for names with brackets (pytest 9.2).
                    item = CaseItem.from_parent(
                        self,
                        name=name,
                        nodeid=f"{self.nodeid}::{name}",
                        suite=task_file.suite,
                        task=task,
                        case=case,
                        model=model,
                    )
                    yield item

    def _controls(self, suite: str, tasks: Sequence[Task]) -> Iterator[pytest.Item]:
        from ..suites.controls import controls_for

        for task in tasks:
            for control in controls_for(task):
                name = control_item_name(task.id, control.name)
                yield ControlItem.from_parent(
                    self, name=name, nodeid=f"{self.nodeid}::{name}", suite=suite, control=control
                )


class ControlFailed(Exception):
    """A task failed one of its controls: the task, not a model, is wrong."""


class ControlItem(pytest.Item):
    """Runs one control of a task (--llmbench-validate): reference, null, or a wrong answer."""

    def __init__(self, *, suite: str, control: Control, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.control = control
        self.extra_keyword_matches.update({suite, control.task.id, "control"})
        self.add_marker(suite)

    def runtest(self) -> None:
        from ..suites.controls import run_control

        state = self.config.stash[STATE]
        uses_sandbox = get_suite(self.suite).uses_sandbox
        reason, _ = run_control(self.suite, self.control, state.sandbox if uses_sandbox else None)
        if reason is not None:
            raise ControlFailed(reason)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ControlFailed):
            task, control = self.control.task.id, self.control.name
            return f"task {task} fails its {control} control: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.suite} control: {self.name}"


class CaseItem(pytest.Item):
    def __init__(self, *, suite: str, task: Task, case: Case, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.task = task
        self.case = case
        self.model = model
        self.generation: Generation | None = None
        self.prepared: Prepared | None = None
        self.prepared_all: list[Prepared] = []  # one per repeat
        for keyword in (suite, model, task.id, case.id, *task.tags):
            self.extra_keyword_matches.add(keyword)
        self.add_marker(_mark("llmbench"))
        self.add_marker(_mark(suite))
        if task.difficulty:
            self.add_marker(_mark(task.difficulty))

    @property
    def task_key(self) -> tuple[str, str]:
        parent = self.parent.nodeid if self.parent else ""
        return (self.model, f"{parent}::{self.task.id}")

    @property
    def state(self) -> RunState:
        return self.config.stash[STATE]

    def _result(
        self,
        outcome: Outcome,
        detail: str = "",
        prepared: Prepared | None = None,
        repeat: int = 0,
        budgets: tuple[tuple[int, Outcome], ...] = (),
        *,
        retries: int = 0,
        trimmed: bool = False,
    ) -> CaseResult:
        generation = prepared.generation if prepared is not None else None
        stats = generation.stats if generation is not None else GenerationStats(retries=retries)
        load = self.state.manager.loads.get(self.model)
        return CaseResult(
            model=self.model,
            suite=self.suite,
            task=self.task.id,
            case=self.case.id,
            outcome=outcome,
            detail=detail,
            file=self.parent.nodeid if self.parent else "",
            generation=stats,
            load_s=load.seconds if load is not None else None,
            answer_key=prepared.answer_key if prepared is not None else None,
            trimmed=trimmed,
            repeat=repeat,
            budgets=budgets,
        )

    def _record(self, results: list[CaseResult], outcome: Outcome) -> None:
        """Put the case's results (one per repeat) on the item's report; `outcome` is the
        item's own."""
        self.user_properties[:] = [p for p in self.user_properties if p[0] != PROPERTY]
        texts = [case_result_text(result) for result in results]
        self.user_properties += [(PROPERTY, text) for text in texts]
        self.user_properties.append(("llmbench_outcome", outcome))
        stats = results[0].generation
        if stats.completion_tokens is not None:
            self.user_properties.append(("llmbench_completion_tokens", stats.completion_tokens))
        self.user_properties.append(("llmbench_seconds", round(stats.seconds, 3)))
        self.user_properties += model_properties(self.state.manager, self.model)
        # The run record keeps the first sample of each case (the JSONL has every repeat).
        first = self.prepared_all[0] if self.prepared_all else None
        record_case(self, results[0], first.execution if first is not None else None, texts[0])

    @property
    def repeats(self) -> int:
        return self.state.settings.repeat

    def repeat_key(self, repeat: int) -> tuple[str, str]:
        """The scheduler's key of one sample of this item's task."""
        model, task = self.task_key
        return (model, task) if repeat == 0 else (model, f"{task}#repeat{repeat}")

    def setup(self) -> None:
        """Wait for this task's answer(s) and their run in the sandbox (the scheduler produces
        them, several at a time, the first time any item of the model asks).

        Everything here is infrastructure: a failure is a pytest error with outcome `error`,
        never a verdict on the model. Scoring waits for the call phase.
        """
        scheduler = self.state.scheduler
        outcomes = [
            scheduler.result(self.model, self.repeat_key(r), self._model_jobs)
            for r in range(self.repeats)
        ]
        failure = next((o for o in outcomes if isinstance(o, InfraFailure)), None)
        if failure is not None:
            errors = [
                self._result(
                    "error",
                    failure.message,
                    o if isinstance(o, Prepared) else None,
                    r,
                    retries=failure.retries,
                )
                for r, o in enumerate(outcomes)
            ]
            self._record(errors, "error")
            # pytrace=False: the error shows as its one-line message, not a traceback.
            pytest.fail(f"error: {failure.message}", pytrace=False)
        self.prepared_all = [o for o in outcomes if isinstance(o, Prepared)]
        self.prepared = self.prepared_all[0]
        self.generation = self.prepared.generation

    def start_generating(self) -> None:
        """Start this item's model now (before its first setup), so that generation overlaps
        whatever else happens first."""
        self.state.acquire(self.model, self._model_jobs())

    def _model_jobs(self) -> list[Job]:
        return model_jobs(self.session.items, self.model, self.repeats)

    def runtest(self) -> None:
        """Score every repeat (and, with budgets, every budget of it). The item passes when
        the case passed in every repeat, at the largest budget."""
        suite = get_suite(self.suite)
        results: list[CaseResult] = []
        failing: list[tuple[Verdict, Prepared, int]] = []
        for r, prepared in enumerate(self.prepared_all):
            verdict = suite.score(self.task, self.case, prepared.generation, prepared.execution)
            budgets = tuple(
                (budget, suite.score(self.task, self.case, generation, execution).outcome)
                for budget, (generation, execution) in sorted(prepared.by_budget.items())
            )
            result = self._result(
                verdict.outcome, verdict.detail, prepared, r, budgets, trimmed=verdict.trimmed
            )
            if prepared.audit is not None:
                alone = prepared.audit
                result = replace(
                    result,
                    audit_outcome=suite.score(
                        self.task, self.case, alone.generation, alone.execution
                    ).outcome,
                    audit_same_answer=same_answer(prepared.generation, alone.generation),
                )
            results.append(result)
            if verdict.outcome != "passed":
                failing.append((verdict, prepared, r))
        if not failing:
            self._record(results, "passed")
            return
        verdict, prepared, r = failing[0]
        if len(results) > 1:
            passed = len(results) - len(failing)
            verdict = replace(
                verdict,
                detail=f"passed {passed} of {len(results)} repeats; repeat {r}: {verdict.detail}",
            )
        self.generation = prepared.generation  # the answer the failure report shows
        self._record(results, verdict.outcome)
        raise CaseFailed(verdict)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CaseFailed):
            return self._explain(excinfo.value.verdict)
        return super().repr_failure(excinfo, style=style)

    def _explain(self, verdict: Verdict) -> str:
        lines = [f"{verdict.outcome}: {verdict.detail}".rstrip(": ")]
        if verdict.trimmed:
            lines.append("(the answer ran without its top-level calls, asserts and prints)")
        answer = self.generation.answer if self.generation else ""
        if answer:
            shown = answer if len(answer) <= 1500 else answer[:1500] + "\n[... cut]"
            lines += ["", f"answer of {self.model}:", shown]
        # Model text reaches the terminal here: no escape sequence of its own may act there.
        return printable("\n".join(lines))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.suite}: {self.name}"


def model_jobs(items: Sequence[pytest.Item], model: str, repeats: int) -> list[Job]:
    """What a model's selected items declare, in item order (honours -k, -m, --lf, ids): each
    task of its task files, and each prompt its test functions declared, as many times as
    there are repeats."""
    jobs: dict[tuple[str, str], Job] = {}
    for item in items:
        if isinstance(item, CaseItem) and item.model == model:
            for r in range(repeats):
                key = item.repeat_key(r)
                jobs.setdefault(key, Job(key, item.suite, item.task, repeat=r))
        elif function_model(item) == model:
            for job in declared_jobs(item, model, repeats):
                jobs.setdefault(job.key, job)
    return list(jobs.values())


def needs_sandbox(items: Iterable[pytest.Item]) -> bool:
    """Whether any of these items runs what it scores in the sandbox: its suite says so
    (`Suite.uses_sandbox`)."""
    suites = {item.suite for item in items if isinstance(item, (CaseItem, ControlItem))}
    return any(get_suite(suite).uses_sandbox for suite in suites)


def case_result_of(report: pytest.TestReport) -> CaseResult | None:
    results = case_results_of(report)
    return results[0] if results else None


def case_results_of(report: pytest.TestReport) -> list[CaseResult]:
    """The item's case results: one per repeat."""
    properties = report.user_properties
    return [read_case_result(str(value)) for key, value in properties if key == PROPERTY]


def reported_memory(report: pytest.TestReport) -> tuple[str, MemoryFigure] | None:
    """(model, its memory figure) when the report carries one (see model_properties)."""
    for key, value in report.user_properties:
        if key == MEMORY_PROPERTY:
            payload = json.loads(str(value))
            return str(payload["model"]), MemoryFigure.from_dict(payload["memory"])
    return None


def reported_provenance(report: pytest.TestReport) -> tuple[str, dict[str, Any]] | None:
    """(model, what answered it) when the report carries it (see CaseItem._record)."""
    for key, value in report.user_properties:
        if key == PROVENANCE_PROPERTY:
            payload = json.loads(str(value))
            return str(payload["model"]), dict(payload["provenance"])
    return None
