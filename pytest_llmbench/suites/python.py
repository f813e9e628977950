"""The python suite: the model writes a function or class; hidden cases run it in the sandbox."""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass, replace
from typing import Any

from ..sandbox.base import PyCall, PyOutcome, Sandbox
from ..taskfiles.format import PythonCase, PythonTask
from .answer import PYTHON_LANGS, CodeBlock, first_block
from .base import (
    Chat,
    Generation,
    RequestSettings,
    Verdict,
    missing_answer,
    prompt_messages,
    single_answer,
    single_within_budget,
)
from .sanitize import sanitize as sanitize_code

SYSTEM = (
    "You are a careful Python programmer. Answer with a single ```python fenced code block "
    "that defines exactly what is asked for, with any imports it needs, and no prose outside "
    "the block. Do not read input or print; the code will be imported and called."
)


@dataclass(frozen=True)
class PythonExecution:
    verdict: Verdict | None  # set when nothing could run (no code, cut off)
    outcomes: dict[str, PyOutcome]
    trimmed: bool = False  # top-level statements of the answer were left out before it ran


def values_equal(expected: Any, actual: Any, float_tol: float | None) -> bool:
    """Exact type and value; with `float_tol`, floats (and ints standing for floats) compare
    within that absolute-or-relative tolerance."""
    if float_tol is not None and isinstance(expected, float) and type(actual) in (int, float):
        if math.isnan(expected):
            return isinstance(actual, float) and math.isnan(actual)
        return math.isclose(expected, float(actual), rel_tol=float_tol, abs_tol=float_tol)
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(
            values_equal(e, a, float_tol) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            values_equal(expected[k], actual[k], float_tol) for k in expected
        )
    return bool(expected == actual)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PythonSuite:
    """`sanitize`: run the definitions the answer gives, without its top-level calls, asserts,
    prints and main block (see `suites/sanitize.py`); off, the answer runs as the script it is."""

    name = "python"
    uses_sandbox = True

    def __init__(self, sanitize: bool = True) -> None:
        self.sanitize = sanitize

    def shown(self, task: PythonTask) -> dict[str, Any]:
        return {"messages": prompt_messages(task.system or SYSTEM, task.prompt)}

    def generate(
        self, task: PythonTask, model: str, chat: Chat, settings: RequestSettings
    ) -> Generation:
        messages = self.shown(task)["messages"]
        return single_answer(model, messages, self.reply_for(task.reference), chat, settings)

    def within_budget(self, task: PythonTask, generation: Generation, budget: int) -> Generation:
        return single_within_budget(generation, budget)

    @staticmethod
    def reply_for(answer: str) -> str:
        """What a pseudo-model says to give `answer` (the reference, or a control's)."""
        return f"```python\n{answer.rstrip()}\n```"

    def extract(self, generation: Generation) -> CodeBlock | None:
        return first_block(generation.answer, PYTHON_LANGS)

    def execute(
        self, task: PythonTask, generation: Generation, sandbox: Sandbox | None
    ) -> PythonExecution:
        block = self.extract(generation)
        if block is None or not block.code.strip() or (generation.truncated and not block.closed):
            return PythonExecution(missing_answer(generation, "a python code block"), {})
        calls = [
            PyCall(
                args=tuple(case.args),
                kwargs=dict(case.kwargs),
                setup=case.setup,
                call=case.call,
                timeout_s=case.timeout_s or task.timeout_s,
            )
            for case in task.cases
        ]
        assert sandbox is not None, "the python suite runs code in the sandbox"
        code, trimmed = block.code, False
        if self.sanitize:
            sanitized = sanitize_code(block.code)
            code, trimmed = sanitized.code, sanitized.trimmed
        outcomes = sandbox.run_python(code, task.entry_point, calls)
        by_case = {c.id: o for c, o in zip(task.cases, outcomes, strict=True)}
        return PythonExecution(None, by_case, trimmed)

    def score(
        self,
        task: PythonTask,
        case: PythonCase,
        generation: Generation,
        execution: PythonExecution,
    ) -> Verdict:
        verdict = self._verdict(task, case, execution)
        return replace(verdict, trimmed=True) if execution.trimmed else verdict

    def _verdict(self, task: PythonTask, case: PythonCase, execution: PythonExecution) -> Verdict:
        if execution.verdict is not None:
            return execution.verdict
        out = execution.outcomes[case.id]
        if out.status == "timeout":
            return Verdict("timeout", f"ran past its {case.timeout_s or task.timeout_s:g}s limit")
        if out.status == "raised":
            if case.raises is not None and out.exception == case.raises:
                return Verdict("passed")
            return Verdict("failed", f"raised {out.exception}: {out.detail}".strip())
        if out.status != "ok":
            return Verdict("failed", f"{out.status.replace('_', ' ')}: {out.detail}".strip())
        if case.raises is not None:
            return Verdict("failed", f"expected {case.raises}, returned {_short(out.value)}")
        if case.validate_ is not None:
            return self._validate(case, out.value)
        tol = case.float_tol if case.float_tol is not None else task.float_tol
        if values_equal(case.expect, out.value, tol):
            return Verdict("passed")
        return Verdict("failed", f"expected {_short(case.expect)}, got {_short(out.value)}")

    @staticmethod
    def _validate(case: PythonCase, result: Any) -> Verdict:
        # The validator is the task author's code and runs in the parent over plain values
        # that came back from the sandbox; the model's code never sees it.
        # One namespace as globals, so comprehensions in the expression see the names too.
        scope = {
            "__builtins__": _VALIDATOR_BUILTINS,
            "args": list(case.args),
            "kwargs": dict(case.kwargs),
            "result": result,
        }
        try:
            ok = eval(case.validate_ or "False", scope)
        except Exception as exc:
            return Verdict("failed", f"validator rejected {_short(result)}: {type(exc).__name__}")
        if ok is True:
            return Verdict("passed")
        return Verdict("failed", f"validator rejected {_short(result)}")


_VALIDATOR_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "isinstance", "len",
        "list", "max", "min", "range", "round", "set", "sorted", "str", "sum", "tuple", "type",
        "zip", "frozenset",
    )
}  # fmt: skip
