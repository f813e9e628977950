"""Controls that prove a task is right before any model is blamed for failing it.

Every task is run with known answers through the same generation, sandbox and scorer a model
goes through: its reference and its other `accepted` answers must pass every case (a case
stricter than the prompt shows here), the empty answer must fail every case, and each wrong
answer (the task's own `mutants`, plus simple ones made here) must fail at least one (a case
looser than the prompt shows there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ..backends.builtin import BuiltinBackend
from ..exchange import ChatRequest, Completion
from ..sandbox.base import Sandbox
from ..taskfiles.format import PythonTask, Task, ToolCallSpec, ToolingTask
from . import get_suite
from .base import RequestSettings, Verdict

Expectation = Literal["all_pass", "all_fail", "some_fail"]
_SETTINGS = RequestSettings(max_tokens=1024, temperature=0.0, seed=None, timeout_s=60.0)


@dataclass(frozen=True)
class Control:
    name: str
    task: Task
    answer: Any  # what the control replies: the reference, a mutant; None for the empty answer
    expect: Expectation


def _python_mutants(task: PythonTask) -> list[tuple[str, str]]:
    name = task.entry_point
    return [
        ("returns-none", f"def {name}(*args, **kwargs):\n    return None\n"),
        (
            "returns-first-arg",
            f"def {name}(*args, **kwargs):\n    return args[0] if args else None\n",
        ),
    ]


def _required(task: ToolingTask, tool: str) -> list[str]:
    from .tooling import tool_dicts

    for spec in tool_dicts(task):
        function = spec.get("function", {})
        if function.get("name") == tool:
            return list(function.get("parameters", {}).get("required", []))
    return []


def _tooling_mutants(task: ToolingTask) -> list[tuple[str, list[list[ToolCallSpec]]]]:
    turns = task.reference
    calls = [(t, i, call) for t, turn in enumerate(turns) for i, call in enumerate(turn)]
    if not calls:
        return []
    mutants: list[tuple[str, list[list[ToolCallSpec]]]] = []
    t, i, last = calls[-1]
    required = [a for a in _required(task, last.name) if a in last.arguments]
    if required:
        dropped = {k: v for k, v in last.arguments.items() if k != required[0]}
        mutants.append(
            (
                f"drops-{required[0]}",
                _swap(turns, t, i, last.model_copy(update={"arguments": dropped})),
            )
        )
    others = [n for n in task.tool_names if n != last.name]
    wrong = others[0] if others else f"not_{last.name}"
    mutants.append((f"calls-{wrong}", _swap(turns, t, i, last.model_copy(update={"name": wrong}))))
    return mutants


def _swap(
    turns: list[list[ToolCallSpec]], t: int, i: int, call: ToolCallSpec
) -> list[list[ToolCallSpec]]:
    return [
        [call if (a, b) == (t, i) else c for b, c in enumerate(turn)]
        for a, turn in enumerate(turns)
    ]


def controls_for(task: Task) -> list[Control]:
    controls = [Control("reference", task, task.reference, "all_pass")]
    accepted: list[Any] = list(task.accepted)
    controls += [
        Control(f"accepted-{i}", task, answer, "all_pass")
        for i, answer in enumerate(accepted, start=1)
    ]
    controls.append(Control("null", task, None, "all_fail"))
    made: list[tuple[str, Any]] = []
    if isinstance(task, PythonTask):
        made = list(_python_mutants(task))
    elif isinstance(task, ToolingTask):
        made = list(_tooling_mutants(task))
    listed: list[Any] = list(task.mutants)
    named = [(f"mutant-{i}", m) for i, m in enumerate(listed, start=1)] + made
    controls += [Control(name, task, answer, "some_fail") for name, answer in named]
    return controls


def run_control(
    suite_name: str, control: Control, sandbox: Sandbox | None
) -> tuple[str | None, dict[str, Verdict]]:
    """Run one control; returns (why it failed its expectation or None, verdict per case)."""
    suite = get_suite(suite_name)
    backend = BuiltinBackend()
    # The task stays as written (cli's matches_reference still compares with the real
    # reference); only what the pseudo-model replies changes.
    reply = None if control.answer is None else suite.reply_for(control.answer)
    model = "null" if control.answer is None else "reference"

    def chat(request: ChatRequest) -> Completion:
        return backend.chat(replace(request, model=model, reference=reply))

    generation = suite.generate(control.task, model, chat, _SETTINGS)
    execution = suite.execute(control.task, generation, sandbox if suite.uses_sandbox else None)
    cases: list[Any] = list(control.task.cases)
    verdicts = {case.id: suite.score(control.task, case, generation, execution) for case in cases}
    passed = [cid for cid, v in verdicts.items() if v.outcome == "passed"]
    if control.expect == "all_pass" and len(passed) != len(verdicts):
        bad = [
            f"{c} ({v.outcome}: {v.detail})" for c, v in verdicts.items() if v.outcome != "passed"
        ]
        who = "the reference answer" if control.name == "reference" else f"the {control.name}"
        return f"{who} fails {', '.join(bad)}", verdicts
    if control.expect == "all_fail" and passed:
        return f"the empty answer passes {', '.join(passed)}", verdicts
    if control.expect == "some_fail" and len(passed) == len(verdicts):
        why = f"the wrong answer {control.name} passes every case: the cases cannot tell it apart"
        return why, verdicts
    return None, verdicts
