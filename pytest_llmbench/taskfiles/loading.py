"""Loading a task file into the task format's models (taskfiles/format.py), with errors that name
file, line, task and field. The YAML itself is read, bounded, by taskfiles/bounded_yaml.py."""

from __future__ import annotations

import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .bounded_yaml import YamlProblem, compose_yaml, read_yaml
from .format import TASK_CLASS, LoadContext, TaskFile
from .matchers import MatcherError, nearest_name


class TaskFileError(Exception):
    """A task file that cannot be used; the message names file, line, task and field."""

    def __init__(
        self, path: Path, line: int | None, task: str | None, field: str | None, message: str
    ) -> None:
        where = f"{path}:{line}" if line else str(path)
        parts = [where]
        if task:
            parts.append(f"task {task!r}")
        if field:
            parts.append(f"field {field!r}")
        super().__init__(f"{': '.join(parts)}: {message}")
        self.path, self.line, self.task, self.field = path, line, task, field


def _node_at(node: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """The deepest YAML node along a pydantic error location (best effort)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                break
            node = node.value[key]
        else:
            continue  # pydantic union branch names and the like
    return node


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through lists, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _models_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[type[BaseModel]]:
    """The models that may hold the last element of a pydantic error location."""
    current = [model]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = [m.model_fields[f] for m in current for f, i in m.model_fields.items()
                  if part in (f, i.alias)]  # fmt: skip
        if fields:
            current = [m for field in fields for m in _models_in(field.annotation)] or current
    return current


def _inside_matchers(error: Any) -> tuple[str | int, ...]:
    """Where below a case's `args` a malformed matcher is (pydantic's location ends there)."""
    cause = (error.get("ctx") or {}).get("error")
    return cause.location if isinstance(cause, MatcherError) else ()


def _explain(model: type[BaseModel], error: Any) -> str:
    """pydantic's message, worded for a task author: unknown keys name the nearest valid one."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden" and loc:
        key = str(loc[-1])
        names = set().union(*(_field_names(m) for m in _models_at(model, loc)))
        return f"unknown key{nearest_name(key, names)}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _task_id(data: Any, index: int) -> str | None:
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if isinstance(tasks, list) and index < len(tasks) and isinstance(tasks[index], dict):
        value = tasks[index].get("id")
        return str(value) if value is not None else f"#{index + 1}"
    return None


class _Lazy:
    def __init__(self, make: Callable[[], yaml.Node]) -> None:
        self._make = make
        self._value: yaml.Node | None = None

    def get(self) -> yaml.Node:
        if self._value is None:
            self._value = self._make()
        return self._value


def _task_at_line(root: yaml.Node | None, line: int | None) -> str | None:
    """The id of the task whose YAML spans `line`, for errors found before validation."""
    tasks = _node_at(root, ("tasks",)) if root is not None and line is not None else None
    if not isinstance(tasks, yaml.SequenceNode) or line is None:
        return None
    for index, task in enumerate(tasks.value):
        if task.start_mark.line + 1 <= line <= task.end_mark.line + 1:
            node = _node_at(task, ("id",))
            if isinstance(node, yaml.ScalarNode) and node is not task:
                return str(node.value)
            return f"#{index + 1}"
    return None


TOP_LEVEL_KEYS = ("suite", "tasks")


def load_task_file(path: Path, *, builtin_tools: Collection[str] | None = None) -> TaskFile:
    """Read and validate one task file; raise TaskFileError pointing at the first problem.

    `builtin_tools`: the names a tooling task may list without a spec (the tooling suite's
    toolbox, which its caller knows and the format does not); None leaves them unchecked.

    Reading is bounded (bounded_yaml.Budget): size, nesting and alias expansion are checked before
    any data is built, so a hostile file costs milliseconds, not memory."""
    try:
        data = read_yaml(path)
    except YamlProblem as exc:
        owner = exc.task or _task_at_line(exc.root, exc.line)
        raise TaskFileError(path, exc.line, owner, exc.key, exc.message) from None
    # The node graph is dropped once the data is built (it costs more memory than the data);
    # an error composes it again to find its line, which the budget has made cheap.
    root = _Lazy(lambda: compose_yaml(path))
    if not isinstance(data, dict):
        raise TaskFileError(path, 1, None, None, "expected a mapping with 'suite' and 'tasks'")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            line = _node_at(root.get(), (key,)).start_mark.line + 1
            raise TaskFileError(
                path, line, None, str(key), f"unknown key{nearest_name(str(key), TOP_LEVEL_KEYS)}"
            )
    suite = data.get("suite")
    if suite not in TASK_CLASS:
        line = _node_at(root.get(), ("suite",)).start_mark.line + 1
        raise TaskFileError(
            path, line, None, "suite", f"must be one of python, cli, tooling (got {suite!r})"
        )
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        line = _node_at(root.get(), ("tasks",)).start_mark.line + 1
        raise TaskFileError(path, line, None, "tasks", "must be a non-empty list of tasks")
    task_class = TASK_CLASS[suite]
    context = LoadContext(None if builtin_tools is None else frozenset(builtin_tools))
    parsed: list[Any] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(tasks):
        try:
            task = task_class.model_validate(raw, context=context)
        except ValidationError as exc:
            errors = exc.errors()
            # An unknown key usually explains the rest (a misspelt required field is missing).
            error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = (*error["loc"], *_inside_matchers(error))
            node = _node_at(root.get(), ("tasks", index, *where))
            field = ".".join(str(p) for p in where) or None
            raise TaskFileError(
                path,
                node.start_mark.line + 1,
                _task_id(data, index),
                field,
                _explain(task_class, error),
            ) from None
        if task.id in seen:
            node = _node_at(root.get(), ("tasks", index, "id"))
            raise TaskFileError(
                path, node.start_mark.line + 1, task.id, "id", "duplicate task id in this file"
            )
        seen[task.id] = index
        case_ids = [c.id for c in task.cases]  # type: ignore[attr-defined]
        dupes = sorted({c for c in case_ids if case_ids.count(c) > 1})
        if dupes:
            node = _node_at(root.get(), ("tasks", index, "cases"))
            raise TaskFileError(
                path, node.start_mark.line + 1, task.id, "cases", f"duplicate case id {dupes[0]!r}"
            )
        parsed.append(task)
    return TaskFile(suite=suite, tasks=parsed, path=path)
