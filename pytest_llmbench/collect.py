"""Collection: a task file becomes one CaseItem per (model, task, case)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr

from .display import printable
from .record import record_case
from .results import PROPERTY, CaseResult, GenerationStats, Outcome
from .scheduler import InfraFailure, Job, Prepared
from .session import STATE, RunState
from .spec import Task, TaskFileError
from .suites import get_suite
from .suites.base import Generation, Verdict
from .taskcache import load_cached


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
            task_file = load_cached(self.path, None if state.settings.cache == "off" else cache)
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

    def _controls(self, suite: str, tasks: list[Any]) -> Iterator[pytest.Item]:
        from .validate import controls_for

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

    def __init__(self, *, suite: str, control: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.control = control
        self.extra_keyword_matches.update({suite, control.task.id, "control"})
        self.add_marker(suite)

    def runtest(self) -> None:
        from .validate import run_control

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
    def __init__(self, *, suite: str, task: Task, case: Any, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.task = task
        self.case = case
        self.model = model
        self.generation: Generation | None = None
        self.prepared: Prepared | None = None
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

    def _record(
        self, outcome: Outcome, detail: str = "", retries: int = 0, trimmed: bool = False
    ) -> None:
        generation = self.generation
        stats = generation.stats if generation is not None else GenerationStats(retries=retries)
        load = self.state.manager.loads.get(self.model)
        result = CaseResult(
            model=self.model,
            suite=self.suite,
            task=self.task.id,
            case=self.case.id,
            outcome=outcome,
            detail=detail,
            file=self.parent.nodeid if self.parent else "",
            generation=stats,
            load_s=load.seconds if load is not None else None,
            answer_key=self.prepared.answer_key if self.prepared is not None else None,
            trimmed=trimmed,
        )
        self.user_properties[:] = [p for p in self.user_properties if p[0] != PROPERTY]
        self.user_properties.append((PROPERTY, result.to_json()))
        self.user_properties.append(("llmbench_outcome", outcome))
        if stats.completion_tokens is not None:
            self.user_properties.append(("llmbench_completion_tokens", stats.completion_tokens))
        self.user_properties.append(("llmbench_seconds", round(stats.seconds, 3)))
        record_case(self, result, self.prepared.execution if self.prepared is not None else None)

    def setup(self) -> None:
        """Wait for this task's answer and its run in the sandbox (the scheduler produces them,
        several at a time, the first time any item of the model asks).

        Everything here is infrastructure: a failure is a pytest error with outcome `error`,
        never a verdict on the model. Scoring waits for the call phase.
        """
        outcome = self.state.scheduler.result(self.model, self.task_key, self._model_jobs)
        if isinstance(outcome, InfraFailure):
            self._record("error", outcome.message, retries=outcome.retries)
            # pytrace=False: the error shows as its one-line message, not a traceback.
            pytest.fail(f"error: {outcome.message}", pytrace=False)
        self.prepared = outcome
        self.generation = outcome.generation

    def start_generating(self) -> None:
        """Start this item's model now (before its first setup), so that generation overlaps
        whatever else happens first."""
        self.state.scheduler.start(self.model, self._model_jobs())

    def _model_jobs(self) -> list[Job]:
        """The selected tasks of this item's model, in item order (honours -k, -m, --lf, ids)."""
        jobs: dict[tuple[str, str], Job] = {}
        for item in self.session.items:
            if isinstance(item, CaseItem) and item.model == self.model:
                jobs.setdefault(item.task_key, Job(item.task_key, item.suite, item.task))
        return list(jobs.values())

    def runtest(self) -> None:
        assert self.prepared is not None
        suite = get_suite(self.suite)
        prepared = self.prepared
        verdict = suite.score(self.task, self.case, prepared.generation, prepared.execution)
        self._record(verdict.outcome, verdict.detail, trimmed=verdict.trimmed)
        if verdict.outcome != "passed":
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


def case_result_of(report: pytest.TestReport) -> CaseResult | None:
    for key, value in report.user_properties:
        if key == PROPERTY:
            return CaseResult.from_json(str(value))
    return None
