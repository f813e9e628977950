"""Test functions that use the `llm` fixture: one case per (test function, model).

- Collection: the fixture is parametrized with the run's models (session scope, so pytest
  groups each model's items, sets the fixture up once per model and tears it down before the
  next); the model is the last part of the item's id, as in a task file's `task/case[model]`.
- Running: the test function runs once per repeat (seeds derived as for a task), each run's
  requests kept by the client; an assertion is `failed`, a server or sandbox fault inside the
  test is `error`, a failure with a reply cut at max_tokens is `truncated`.
- Results: each (test function, model) is a CaseResult in a suite named after the test's module
  (`test_sql.py` is suite `sql`) or its `llmbench_suite` marker, carried on the item's report and
  recorded with its prompts and answers like any case. Its task is the test with its parameters
  (`test_select[users]`), its one case `call`: each parametrization asks its own prompts.
- Declared prompts (`@pytest.mark.llmbench_prompts(...)`) are generated ahead with the model's
  task files, at the server's concurrency; the test's `ask` of one waits for its answer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from ..caseresult import (
    PROPERTY,
    CaseResult,
    GenerationStats,
    case_result_text,
    memory_property,
    provenance_property,
)
from ..exchange import PSEUDO_MODELS, BackendError
from ..outcome import Outcome
from ..suites.ask import Ask, prompt_messages
from ..suites.base import Generation, generation_of, stats_of
from .client import ModelClient, ask_job

if TYPE_CHECKING:
    from ..storage.record_writer import RunRecord
    from .scheduler import Job, Prepared
    from .session import ModelManager

FIXTURE = "llm"
PROMPTS_MARKER = "llmbench_prompts"
SUITE_MARKER = "llmbench_suite"
PSEUDO_SKIP = "llmbench: the {model} pseudo-model answers task files only, not test functions"
BUDGETS_LINE = (
    "llmbench: --llmbench-budgets scores task files only; test functions ran at the largest "
    "budget (max_tokens {cap})"
)


def item_model(item: pytest.Item) -> str | None:
    """The model an item runs for: a task file's case, or a test function using the fixture."""
    model = getattr(item, "model", None)
    if isinstance(model, str):
        return model
    return function_model(item)


def function_model(item: pytest.Item) -> str | None:
    """The model of a test function that uses the plugin's fixture (None for anything else)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or FIXTURE not in getattr(item, "fixturenames", ()):
        return None
    model = callspec.params.get(FIXTURE)
    return model if isinstance(model, str) else None


def parametrize(metafunc: pytest.Metafunc, models: tuple[str, ...]) -> None:
    """One instance of the fixture per model, in --models order; the pseudo-models, which
    answer task files only, skip with their reason."""
    if FIXTURE not in metafunc.fixturenames or not models or not _ours(metafunc):
        return
    params = [
        pytest.param(m, marks=pytest.mark.skip(reason=PSEUDO_SKIP.format(model=m)))
        if m in PSEUDO_MODELS
        else m
        for m in models
    ]
    metafunc.parametrize(FIXTURE, params, indirect=True, scope="session", ids=list(models))


def _ours(metafunc: pytest.Metafunc) -> bool:
    """Whether `llm` resolves to this plugin's fixture: a project's own fixture of the name
    wins, and is not multiplied by the models. (pytest has no public way to ask which
    definition a name resolves to: the last of its definitions is the one in force.)"""
    definitions = getattr(metafunc, "_arg2fixturedefs", {}).get(FIXTURE, ())
    if not definitions:
        return True
    function = getattr(definitions[-1], "func", None)
    return getattr(function, "__module__", None) == "pytest_llmbench.plugin"


def suite_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker(SUITE_MARKER)
    if marker is not None and marker.args:
        return str(marker.args[0])
    stem = item.path.stem
    return stem.removeprefix("test_").removesuffix("_test") or stem


def task_of(item: pytest.Item, model: str) -> str:
    """The test as a task: its function's name (with its class), and its parameters but the
    model. Each parametrization is a task of its own: it asks its own prompts, so unlike a
    task file's cases it does not share its answers with the others."""
    name = getattr(item, "originalname", item.name)
    cls = getattr(item, "cls", None)
    task = f"{cls.__name__}.{name}" if cls is not None else name
    callspec = getattr(item, "callspec", None)
    ident = callspec.id if callspec is not None else ""
    params = "" if ident == model else ident.removesuffix("-" + model)
    return f"{task}[{params}]" if params else task


# A test function's one case: its assertions.
CASE = "call"


def declared_asks(item: pytest.Item) -> list[Ask]:
    """The requests a test declared with `llmbench_prompts`, in order."""
    asks: list[Ask] = []
    for marker in item.iter_markers(PROMPTS_MARKER):
        prompts = [str(p) for p in marker.args]
        param = marker.kwargs.get("param")
        callspec = getattr(item, "callspec", None)
        if param is not None and callspec is not None and param in callspec.params:
            prompts.append(str(callspec.params[param]))
        system = marker.kwargs.get("system")
        max_tokens = marker.kwargs.get("max_tokens")
        asks += [Ask.of(prompt_messages(p, system), None, max_tokens) for p in prompts]
    return asks


def declared_jobs(item: pytest.Item, model: str, repeats: int) -> list[Job]:
    return [ask_job(model, ask, r) for r in range(repeats) for ask in declared_asks(item)]


@dataclass(frozen=True)
class Sample:
    """One run of a test function: its outcome and the answers it got."""

    repeat: int
    outcome: Outcome
    detail: str
    asked: tuple[tuple[Ask, Prepared], ...]  # its requests and their answers, in order


def call_repeats(item: pytest.Function, client: ModelClient, repeats: int) -> list[Sample]:
    """Run the test function once per repeat; raise the first failure once all have run."""
    function = item.obj
    names = inspect.signature(function).parameters
    arguments = {name: item.funcargs[name] for name in names if name in item.funcargs}
    samples: list[Sample] = []
    first: BaseException | None = None
    for repeat in range(repeats):
        client.repeat, client.asked = repeat, []
        try:
            function(**arguments)
        except Exception as exc:
            first = first or exc
            outcome = classify(exc, client.asked)
            samples.append(Sample(repeat, outcome, describe(exc), tuple(client.asked)))
        else:
            samples.append(Sample(repeat, "passed", "", tuple(client.asked)))
    item.stash[SAMPLES] = samples
    if first is not None:
        if repeats > 1 and hasattr(first, "add_note"):  # Python 3.11+
            passed = sum(s.outcome == "passed" for s in samples)
            first.add_note(f"llmbench: passed {passed} of {repeats} repeats")
        raise first
    return samples


SAMPLES = pytest.StashKey[list[Sample]]()


def classify(exc: BaseException, asked: list[tuple[Ask, Prepared]]) -> Outcome:
    if isinstance(exc, BackendError):
        return "error"  # the server (or the sandbox) failed, not the model
    if any(prepared.generation.truncated for _, prepared in asked):
        return "truncated"
    return "failed"


def describe(exc: BaseException) -> str:
    if isinstance(exc, BackendError):
        return exc.message
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return detail if len(detail) <= 300 else detail[:297] + "..."


def case_results(
    item: pytest.Item, model: str, samples: list[Sample], load_s: float | None
) -> list[CaseResult]:
    """One CaseResult per repeat of the test function."""
    suite, task, case = suite_of(item), task_of(item, model), CASE
    file = item.nodeid.split("::")[0]
    results = []
    for sample in samples:
        generation = combined(sample)
        keys = [prepared.answer_key for _, prepared in sample.asked]
        results.append(
            CaseResult(
                model=model,
                suite=suite,
                task=task,
                case=case,
                outcome=sample.outcome,
                detail=sample.detail,
                file=file,
                generation=generation.stats if generation is not None else GenerationStats(),
                load_s=load_s,
                # The record points at the store for a test's one answer; it copies several.
                answer_key=keys[0] if len(keys) == 1 else None,
                repeat=sample.repeat,
            )
        )
    return results


def combined(sample: Sample) -> Generation | None:
    """A test's answers as one generation: every request, in order (the transcript's turns)."""
    if not sample.asked:
        return None
    gens = [prepared.generation for _, prepared in sample.asked]
    completions = tuple(c for g in gens for c in g.completions)
    stats = stats_of(completions, max(g.stats.max_tokens or 0 for g in gens))
    starts = [g.stats.started_at for g in gens if g.stats.started_at is not None]
    ends = [g.stats.finished_at for g in gens if g.stats.finished_at is not None]
    stats = replace(
        stats,
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if ends else None,
        concurrency=gens[0].stats.concurrency,
        concurrency_source=gens[0].stats.concurrency_source,
        from_store=all(g.stats.from_store for g in gens),
        batched=gens[0].stats.batched,
    )
    return generation_of(completions, stats)


def transcript_inputs(item: pytest.Item, suite: str, task: str, sample: Sample) -> dict[str, Any]:
    """What the record shows as the test's inputs: its prompts (each request's last user
    message) and the first system prompt."""
    prompts, systems = [], []
    for ask, _ in sample.asked:
        messages = ask.messages
        prompts += [m for m in messages if m.get("role") == "user"][-1:]
        systems += [m for m in messages if m.get("role") == "system"][:1]
    return {
        "id": task,
        "suite": suite,
        "tags": [],
        "test": item.nodeid,
        "system": str(systems[0].get("content", "")) if systems else "",
        "prompt": "\n\n---\n\n".join(str(m.get("content", "")) for m in prompts),
    }


def model_properties(manager: ModelManager, model: str) -> list[tuple[str, str]]:
    """What a case's report carries of its model besides the case: what answered it (once
    per load) and its memory (whenever it changed)."""
    properties = []
    provenance = manager.unreported_provenance(model)
    if provenance is not None:
        properties.append(provenance_property(model, provenance))
    memory = manager.untold_memory(model)
    if memory is not None:
        properties.append(memory_property(model, memory.to_dict()))
    return properties


def report_case(
    item: pytest.Item,
    model: str,
    report: pytest.TestReport,
    manager: ModelManager,
    record: RunRecord | None,
) -> None:
    """Put a test function's case results on its report (the controller's results and
    display read them there, also from xdist workers), and write its case to the record."""
    samples = item.stash.get(SAMPLES, None)
    if samples is None:  # it failed before it ran: its fixture, its model's load
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        samples = [Sample(0, "error", message.removeprefix("Failed: "), ())]
    load = manager.loads.get(model)
    results = case_results(item, model, samples, load.seconds if load else None)
    texts = [case_result_text(result) for result in results]
    report.user_properties += [(PROPERTY, text) for text in texts]
    failing = next((s for s in samples if s.outcome != "passed"), None)
    report.user_properties.append(("llmbench_outcome", failing.outcome if failing else "passed"))
    if failing is not None and failing.outcome == "error" and report.when == "call":
        # The server's fault, not the test's: its one line, as a task file's error shows.
        report.longrepr = f"error: {failing.detail}"
    report.user_properties += model_properties(manager, model)
    if record is not None:
        first = samples[0]
        inputs = transcript_inputs(item, results[0].suite, results[0].task, first)
        record.function_case(results[0], inputs, combined(first), texts[0])
