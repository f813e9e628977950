"""Unit tests: task files load, and bad ones name file, line, task and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmbench.taskfiles.format import DEFAULT_CLI_TOOLS, CliTask, PythonTask, ToolingTask
from pytest_llmbench.taskfiles.loading import TaskFileError, load_task_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    return path


GOOD = """\
suite: python
tasks:
  - id: two_sum
    prompt: Write two_sum.
    entry_point: two_sum
    difficulty: easy
    tags: [arrays]
    reference: |
      def two_sum(nums, target): ...
    timeout_s: 3
    cases:
      - id: basic
        args: [[2, 7, 11, 15], 9]
        validate: sorted(result) == [0, 1]
      - id: kw
        args: [[3, 3]]
        kwargs: {target: 6}
        expect: [0, 1]
        timeout_s: 1
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    loaded = load_task_file(write(tmp_path, GOOD))
    assert loaded.suite == "python"
    (task,) = loaded.tasks
    assert isinstance(task, PythonTask)
    assert task.timeout_s == 3 and task.cases[1].timeout_s == 1
    assert task.cases[0].validate_ == "sorted(result) == [0, 1]"
    assert task.cases[1].kwargs == {"target": 6}


@pytest.mark.parametrize(
    ("text", "line", "task", "field", "words"),
    [
        ("suite: ruby\ntasks: []\n", 1, None, "suite", "python, cli, tooling"),
        ("suite: python\n", 1, None, "tasks", "non-empty"),
        # the line where the unclosed bracket opens, not the end of the file
        ("suite: python\ntasks:\n  - id: a\n    prompt: [unclosed\n", 4, None, None,
         "invalid YAML"),
        (GOOD.replace("entry_point: two_sum", "entry_point: 2sum"), 5, "two_sum",
         "entry_point", "pattern"),
        (GOOD.replace("timeout_s: 1", "timeout_s: soon"), 19, "two_sum",
         "cases.1.timeout_s", "number"),
        (GOOD.replace("        validate: sorted(result) == [0, 1]\n", ""), 12, "two_sum",
         "cases.0", "exactly one"),
        (GOOD.replace("validate: sorted(result) == [0, 1]", "validate: 'sorted(result'"), 14,
         "two_sum", "cases.0.validate", "not valid Python"),
        (GOOD.replace("id: kw", "id: basic"), 12, "two_sum", "cases", "duplicate case id"),
        (GOOD.replace("    tags: [arrays]\n", "    tags: [arrays]\n    colour: red\n"), 8,
         "two_sum", "colour", "unknown key"),
    ],
)  # fmt: skip
def test_errors_name_file_line_task_field(
    tmp_path: Path, text: str, line: int, task: str | None, field: str | None, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TaskFileError) as info:
        load_task_file(path)
    error = info.value
    message = str(error)
    assert message.startswith(f"{path}:{line}"), message
    assert error.task == task and error.field == field, message
    assert words in message


def test_cli_tasks_default_to_the_seed_tools(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "suite: cli\ntasks:\n  - id: c\n    prompt: p\n    reference: wc -l < a\n"
        "    files: {a: 'x'}\n    cases: [{id: one, stdout_words: ['1']}]\n",
    )
    (task,) = load_task_file(path).tasks
    assert isinstance(task, CliTask) and task.tools == DEFAULT_CLI_TOOLS


def test_cli_files_must_stay_in_the_work_dir(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "suite: cli\ntasks:\n  - id: c\n    prompt: p\n    reference: ls\n"
        "    files: {'../a': 'x'}\n    cases: [{id: one, exit_code: 0}]\n",
    )
    with pytest.raises(TaskFileError, match="relative path"):
        load_task_file(path)


def test_tooling_tasks_take_toolbox_names_and_bare_specs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "suite: tooling\ntasks:\n  - id: t\n    prompt: p\n"
        "    tools:\n      - get_weather\n      - type: function\n        function:\n"
        "          name: lookup\n          parameters: {type: object, properties: {}}\n"
        "    reference: [[{name: lookup, arguments: {}}]]\n"
        "    cases: [{id: c, called: lookup}, {id: n, not_called: get_weather}]\n",
    )
    (task,) = load_task_file(path).tasks
    assert isinstance(task, ToolingTask) and task.tool_names == ["get_weather", "lookup"]


UNKNOWN_TOOL = (
    "suite: tooling\ntasks:\n  - id: t\n    prompt: p\n"
    "    tools: [get_weather, teleport]\n"
    "    reference: [[{name: teleport, arguments: {}}]]\n"
    "    cases: [{id: c, called: teleport}]\n"
)


def test_builtin_tool_names_are_checked_against_the_names_the_caller_gives(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, UNKNOWN_TOOL)
    with pytest.raises(TaskFileError) as info:
        load_task_file(path, builtin_tools=["get_weather", "get_time"])
    error = info.value
    assert (error.line, error.task, error.field) == (5, "t", "tools")
    assert "unknown toolbox tool 'teleport' (built-in: get_time, get_weather)" in str(error)
    # The format itself does not know the toolbox: without the names, they are not checked.
    (task,) = load_task_file(path).tasks
    assert isinstance(task, ToolingTask) and task.tool_names == ["get_weather", "teleport"]


def test_bundled_task_ids_are_unique_within_each_suite() -> None:
    # Results, the oracle banner and JSONL name tasks as suite:task, so ids must not repeat.
    seen: dict[tuple[str, str], Path] = {}
    root = Path(__file__).resolve().parents[2] / "tasks"
    for path in sorted(root.rglob("*.yaml")):
        loaded = load_task_file(path)
        for task in loaded.tasks:
            key = (loaded.suite, task.id)
            assert key not in seen, f"{task.id} is in both {seen.get(key)} and {path}"
            seen[key] = path
    assert len(seen) >= 100
