"""The bundled task files: they load, they are as large as issue 5 asks, they keep the seed's
cases, and the tooling references and mutants behave against the real mock tools.

(Python and cli references run in the sandbox in tests/e2e/test_bundled_tasks.py.)
"""

from __future__ import annotations

import functools
import json
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.suites.base import ToolExchange
from pytest_llmbench.suites.matching import check_case
from pytest_llmbench.suites.toolbox import FALLBACK_RESULT, TOOLBOX
from pytest_llmbench.taskfiles.format import (
    CliTask,
    PythonTask,
    TaskFile,
    ToolCallSpec,
    ToolingTask,
)
from pytest_llmbench.taskfiles.loading import load_task_file

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "tasks"
SEED_JSON = REPO.parent / "shared" / "reference" / "seed-tasks.json"
# Task files waiting for scorer support of new case kinds are kept as *.yaml.pending: they
# are not collected, but they must load and be right all the same.
PENDING = sorted(TASKS.rglob("*.yaml.pending"))
ACTIVE = sorted(TASKS.rglob("*.yaml"))


@functools.cache
def _load(path: Path) -> TaskFile:
    return load_task_file(path)


def _load_all(paths: list[Path]) -> list[TaskFile]:
    return [_load(p) for p in paths]


def _tasks(suite: str, paths: list[Path] = ACTIVE) -> list[Any]:
    return [t for f in _load_all(paths) if f.suite == suite for t in f.tasks]


@pytest.mark.parametrize("path", ACTIVE + PENDING, ids=lambda p: str(p.relative_to(TASKS)))
def test_every_task_file_loads(path: Path) -> None:
    loaded = load_task_file(path)
    assert loaded.tasks
    suite_dir = path.relative_to(TASKS).parts[0]
    assert loaded.suite == suite_dir, "a file's suite matches its directory"


def test_python_suite_size_and_tiers() -> None:
    tasks: list[PythonTask] = _tasks("python")
    cases = sum(len(t.cases) for t in tasks)
    assert len(tasks) >= 40 and cases >= 200
    tiers = Counter(t.difficulty for t in tasks)
    assert set(tiers) == {"easy", "medium", "hard"}
    assert min(tiers.values()) >= 8
    # the kinds issue 5 names
    kinds = {
        "raises": any(c.raises for t in tasks for c in t.cases),
        "float_tol": any(t.float_tol or any(c.float_tol for c in t.cases) for t in tasks),
        "stateful": any(c.setup and c.call for t in tasks for c in t.cases),
        "validate": any(c.validate_ for t in tasks for c in t.cases),
        "deadline": any(c.timeout_s for t in tasks for c in t.cases),
    }
    assert all(kinds.values()), kinds
    tags = {tag for t in tasks for tag in t.tags}
    for tag in ("strings", "parsing", "data-structures", "dynamic-programming", "graphs",
                "numeric", "generators", "errors", "unicode"):  # fmt: skip
        assert tag in tags, tag


def test_cli_and_tooling_suite_sizes() -> None:
    assert len(_tasks("cli")) >= 20
    assert len(_tasks("tooling")) >= 25


def test_task_ids_are_unique_within_a_suite() -> None:
    for suite in ("python", "cli", "tooling"):
        ids = Counter(t.id for t in _tasks(suite, ACTIVE + PENDING))
        assert [i for i, n in ids.items() if n > 1] == [], suite


def test_every_task_has_a_tier_and_a_mutant() -> None:
    for suite in ("python", "cli", "tooling"):
        for task in _tasks(suite, ACTIVE + PENDING):
            assert task.difficulty is not None, task.id
            assert task.mutants, f"{suite}:{task.id} lists no mutant"


def test_the_seed_is_kept_whole() -> None:
    seed = {t.id: t for t in _tasks("python") if "seed" in t.tags}
    assert len(seed) == 14
    assert sum(len(t.cases) for t in seed.values()) == 52
    assert len([t for t in _tasks("cli") if "seed" in t.tags]) == 3
    assert len([t for t in _tasks("tooling") if "seed" in t.tags]) == 7


@pytest.mark.skipif(
    not SEED_JSON.exists(), reason="shared/reference/seed-tasks.json not beside the repo"
)
def test_seed_python_cases_match_the_original_harness() -> None:
    facts = json.loads(SEED_JSON.read_text())
    ours = {t.entry_point: t for t in _tasks("python") if "seed" in t.tags}
    for task in facts["python_tasks"]:
        mine = ours[task["symbol"]]
        if isinstance(task["cases"], str):  # the stateful LRU script
            assert len(mine.cases) == task["n_cases"]
            continue
        assert [c.args for c in mine.cases] == [c["call"] for c in task["cases"]], task["key"]
        expected = [c.get("expect") for c in task["cases"]]
        if "validator" in task["compare"]:
            assert all(c.validate_ for c in mine.cases)
        else:
            assert [c.expect for c in mine.cases] == expected, task["key"]
    cli = {t.id: t for t in _tasks("cli") if "seed" in t.tags}
    for task in facts["cli"]["tasks"]:
        files = {
            name: "".join(f"{line}\n" for line in lines) for name, lines in task["setup"].items()
        }
        assert cli[task["key"]].files == files


# --------------------------------------------------------------------------- tooling replay


def _replay(task: ToolingTask, turns: list[list[ToolCallSpec]]) -> list[ToolExchange]:
    uses = []
    for step, turn in enumerate(turns):
        for call in turn:
            mock = TOOLBOX.get(call.name) if call.name in task.tools else None
            result = mock.run(call.arguments) if mock is not None else FALLBACK_RESULT
            uses.append(ToolExchange.of(step, call.name, dict(call.arguments), result))
    return uses


def _schema_of(task: ToolingTask) -> Any:
    def schema(name: str) -> dict[str, Any] | None:
        for tool in task.tools:
            if isinstance(tool, str) and tool == name:
                params: dict[str, Any] = TOOLBOX[tool].spec["function"]["parameters"]
                return params
            if not isinstance(tool, str) and tool.function.name == name:
                return tool.function.parameters
        return None

    return schema


TOOLING = _tasks("tooling", ACTIVE + PENDING)


@pytest.mark.parametrize("task", TOOLING, ids=lambda t: t.id)
def test_tooling_reference_satisfies_every_case(task: ToolingTask) -> None:
    uses = _replay(task, task.reference)
    errors = [
        (u.call.name, u.result) for u in uses if isinstance(u.result, dict) and "error" in u.result
    ]
    assert errors == [], "the reference's calls must not be refused by the mock tools"
    assert len(task.reference) < task.max_steps, "room for the final text answer"
    for case in task.cases:
        assert check_case(case, uses, _schema_of(task)) is None, case.id


@pytest.mark.parametrize("task", [t for t in TOOLING if t.accepted], ids=lambda t: t.id)
def test_tooling_accepted_answers_satisfy_every_case(task: ToolingTask) -> None:
    for index, answer in enumerate(task.accepted):
        uses = _replay(task, answer)
        failing = [c.id for c in task.cases if check_case(c, uses, _schema_of(task)) is not None]
        assert failing == [], f"accepted answer {index + 1} fails {failing}"


@pytest.mark.parametrize("task", TOOLING, ids=lambda t: t.id)
def test_tooling_mutants_fail_a_case(task: ToolingTask) -> None:
    for index, mutant in enumerate(task.mutants):
        uses = _replay(task, mutant)
        failing = [c.id for c in task.cases if check_case(c, uses, _schema_of(task)) is not None]
        assert failing, f"mutant {index + 1} passes every case"


def test_tooling_suite_covers_the_scenario_kinds() -> None:
    cases = [c for t in TOOLING for c in t.cases]
    assert any(c.no_call for c in cases), "irrelevance"
    assert any(c.calls and c.same_turn for c in cases), "parallel calls in one turn"
    assert any(c.strict for c in cases), "BFCL strict matching"
    assert any(not isinstance(tool, str) for t in TOOLING for tool in t.tools), "bare specs"
    chains = [t for t in TOOLING if "chain" in t.tags]
    assert len(chains) >= 6 and all(len(t.reference) >= 2 for t in chains)
    typed = json.dumps([c.model_dump(mode="json") for c in cases])
    for kind in ('"approx"', "true", '"unordered"', '"normalize"', '"optional"'):
        assert kind in typed, kind


def test_chains_need_the_earlier_result() -> None:
    """In a chain, some later call's arguments carry a value that appears in an earlier tool
    result and nowhere in the prompt: the model has to read what the tools answered."""
    for task in (t for t in TOOLING if "chain" in t.tags):
        uses = _replay(task, task.reference)
        earlier_results = ""
        found = False
        for step in range(len(task.reference)):
            now = [u for u in uses if u.step == step]
            if step:
                for use in now:
                    for value in _strings(use.arguments):
                        if value in earlier_results and value not in task.prompt:
                            found = True
            earlier_results += json.dumps([u.result for u in now])
        assert found, task.id


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] + [w for w in value.split() if len(w) > 3]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_cli_references_use_only_their_tools() -> None:
    for task in _tasks("cli"):
        assert isinstance(task, CliTask)
        lexer = shlex.shlex(task.reference, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        programs = [words[0]] + [
            words[i + 1] for i, w in enumerate(words[:-1]) if w in ("|", "&&", "||", ";")
        ]
        assert set(programs) <= set(task.tools), task.id
