"""What a run set out to do, so that a partial run is never read as a whole one.

Built on the process that writes the results (pytest's, or the xdist controller) from the node
ids of the selected items, and each task's declared case count. Per model it says how many
cases were selected and how many the selected tasks declare; the JSONL puts those beside how
many ran, with the `-k` / `-m` expressions, `--lf` and the paths or node ids asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest


class CaseId(NamedTuple):
    file: str  # the task file's node id, relative to the rootdir
    task: str
    case: str
    model: str


def parse_case_id(nodeid: str) -> CaseId | None:
    """The parts of a benchmark item's node id (`file::task/case[model]`), or None for any
    other node id (a parametrized Python test `file::test_x[a/b]` has no `/` before its `[`)."""
    file, sep, tail = nodeid.partition("::")
    name, bracket, param = tail.partition("[")
    if not sep or not bracket or "/" not in name or "::" in name or not param.endswith("]"):
        return None
    task, _, case = name.partition("/")
    return CaseId(file, task, case, param[:-1])


def model_of_id(nodeid: str, models: Iterable[str]) -> str | None:
    """The model of an item by its node id: a task file's case `file::task/case[model]`, or a
    test function's using the llm fixture, `file::test[...-model]` (the model is the last part
    of its parameters; the longest of `models` it ends with)."""
    case = parse_case_id(nodeid)
    if case is not None:
        return case.model or None
    _, bracket, param = nodeid.partition("[")
    if not bracket or not param.endswith("]"):
        return None
    ident = param[:-1]
    ending = [m for m in models if ident == m or ident.endswith("-" + m)]
    return max(ending, key=len) if ending else None


def declared_from_files(rootdir: Path, files: Iterable[str]) -> dict[tuple[str, str], int]:
    """(file, task) -> declared case count, read from the task files (xdist's controller
    collects nothing itself, so it reads them again)."""
    from .loading import TaskFileError, load_task_file

    declared: dict[tuple[str, str], int] = {}
    for file in sorted(set(files)):
        try:
            loaded = load_task_file(rootdir / file)
        except TaskFileError:
            continue  # reported by collection already
        for task in loaded.tasks:
            declared[(file, task.id)] = len(task.cases)
    return declared


@dataclass(frozen=True)
class Selection:
    keyword: str | None = None  # -k
    markers: str | None = None  # -m
    last_failed: bool = False  # --lf
    args: tuple[str, ...] = ()  # the files, directories and node ids named on the command line
    selected: Mapping[str, int] = field(default_factory=dict)  # model -> selected cases
    declared: Mapping[str, int] = field(default_factory=dict)  # model -> declared by its tasks
    task_declared: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        config: pytest.Config,
        nodeids: Iterable[str],
        declared_by_task: Mapping[tuple[str, str], int],
        models: Iterable[str] = (),
    ) -> Selection:
        """`nodeids`: the selected items; a test function's (with one of `models` in its id)
        is one case, declared by itself."""
        nodeids = list(nodeids)
        cases = [c for c in map(parse_case_id, nodeids) if c is not None]
        selected = Counter(c.model for c in cases)
        tasks = {(c.model, c.file, c.task) for c in cases}
        declared: Counter[str] = Counter()
        for model, file, task in tasks:
            declared[model] += declared_by_task.get((file, task), 0)
        models = tuple(models)
        for nodeid in nodeids:
            function_model = model_of_id(nodeid, models) if parse_case_id(nodeid) is None else None
            if function_model is not None:
                selected[function_model] += 1
                declared[function_model] += 1
        option = config.option
        named = config.args_source == pytest.Config.ArgsSource.ARGS
        return cls(
            keyword=getattr(option, "keyword", "") or None,
            markers=getattr(option, "markexpr", "") or None,
            last_failed=bool(getattr(option, "lf", False)),
            args=tuple(config.args) if named else (),
            selected=dict(selected),
            declared=dict(declared),
            task_declared=dict(declared_by_task),
        )

    def for_model(self, model: str, ran: int) -> dict[str, Any]:
        """The JSONL's `selection` for one model."""
        return {
            "k": self.keyword,
            "m": self.markers,
            "lf": self.last_failed,
            "args": list(self.args),
            "selected": self.selected.get(model, ran),
            "ran": ran,
        }
