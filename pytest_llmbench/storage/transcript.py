"""A case's transcript as plain JSON-ready data: what was asked, answered, run, and judged.

The run record (storage/record_writer.py) stores what these functions return; the HTML report reads
it back. Nothing here talks to a server or a database: it only reads the task, the case, the
generation and the execution that collection already holds.

Outputs of model-written code (stdout, stderr, files, return values shown as text) are capped
at OUTPUT_CAP characters each, and say when they were cut. The model's answer and reasoning
are kept whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..sandbox.base import FileEntry, PyOutcome, ShellResult
from ..suites.base import Generation
from ..suites.cli import CliExecution
from ..suites.python import PythonExecution, PythonSuite
from ..taskfiles.format import Case, CliCase, CliTask, PythonTask, Task, ToolingTask

if TYPE_CHECKING:
    from ..suites import Execution

OUTPUT_CAP = 65_536  # characters kept of each stdout, stderr, file or shown value


def capped(text: str, cap: int = OUTPUT_CAP) -> dict[str, Any]:
    """`text` cut at `cap` characters, saying whether it was cut and how long it was."""
    if len(text) <= cap:
        return {"text": text, "cut": False}
    return {"text": text[:cap], "cut": True, "length": len(text)}


def plain(value: Any) -> Any:
    """`value` as JSON would hold it; anything JSON cannot hold becomes its repr."""
    return json.loads(json.dumps(value, default=repr))


def task_inputs(suite: str, task: Task) -> dict[str, Any]:
    """What the model was given for `task`: the messages' text, files, tools, and the task's
    reference answer (the expectation matches_reference cases and tool chains compare to)."""
    system, user, tools = _messages(suite, task)
    inputs: dict[str, Any] = {
        "id": task.id,
        "suite": suite,
        "difficulty": task.difficulty,
        "tags": list(task.tags),
        "system": system,
        "prompt": user,
    }
    if isinstance(task, PythonTask):
        inputs |= {"entry_point": task.entry_point, "timeout_s": task.timeout_s}
        inputs["reference"] = task.reference
    elif isinstance(task, CliTask):
        inputs |= {"files": dict(task.files), "tools": list(task.tools)}
        inputs |= {"timeout_s": task.timeout_s, "reference": task.reference}
    elif isinstance(task, ToolingTask):
        inputs |= {"tools": tools, "max_steps": task.max_steps}
        inputs["reference"] = [[c.model_dump(mode="json") for c in turn] for turn in task.reference]
    data: dict[str, Any] = plain(inputs)
    return data


def _messages(suite: str, task: Task) -> tuple[str, str, list[dict[str, Any]] | None]:
    """The system prompt, the user prompt and the tools exactly as the suite shows them."""
    from ..suites import get_suite

    shown = get_suite(suite).shown(task)
    by_role = {m["role"]: str(m.get("content") or "") for m in shown.get("messages", [])}
    return by_role.get("system", ""), by_role.get("user", ""), shown.get("tools")


def case_inputs(case: Case) -> dict[str, Any]:
    """The case as the task file gives it: call arguments and the expectation."""
    data: dict[str, Any] = plain(case.model_dump(mode="json", by_alias=True, exclude_unset=True))
    return data


def generation_data(generation: Generation) -> dict[str, Any]:
    """Every request's reply, turn by turn, with the tool calls and the mock tools' answers."""
    data: dict[str, Any] = plain(
        {
            "answer": generation.answer,
            "reasoning": generation.reasoning,
            "truncated": generation.truncated,
            "turns": [
                {
                    "content": c.content,
                    "reasoning": c.reasoning,
                    "tool_calls": [
                        {"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls
                    ],
                    "finish_reason": c.finish_reason,
                    "usage": asdict(c.usage),
                    "wall_s": c.wall_s,
                    "ttft_s": c.ttft_s,
                    "decode_tok_s": c.decode_tok_s,
                    "model_id": c.model_id,
                    "retries": c.retries,
                    "server_stats": c.server_stats,
                }
                for c in generation.completions
            ],
            "exchanges": [
                {
                    "step": e.step,
                    "id": e.call.id,
                    "name": e.call.name,
                    "arguments": e.call.arguments,
                    "parsed": e.arguments,
                    "result": e.result,
                }
                for e in generation.exchanges
            ],
            "stats": asdict(generation.stats),
        }
    )
    return data


def execution_data(execution: Execution, generation: Generation | None) -> dict[str, Any]:
    """What ran for the task, once for all its cases: the code or the command and its output.

    Tooling tasks ran nothing beyond the mock tools, whose answers are in the generation.
    """
    if execution is None:
        return {}
    data: dict[str, Any] = {"cap": OUTPUT_CAP}
    verdict = execution.verdict
    if verdict is not None:
        data["not_run"] = {"outcome": verdict.outcome, "detail": verdict.detail}
    if isinstance(execution, PythonExecution) and generation is not None and verdict is None:
        block = PythonSuite().extract(generation)
        data["code"] = block.code if block is not None else ""
    if isinstance(execution, CliExecution):
        data["command"] = execution.command
        if execution.result is not None:
            data["run"] = shell_data(execution.result)
        if execution.reference is not None:
            data["reference_run"] = shell_data(execution.reference)
    return data


def shell_data(run: ShellResult) -> dict[str, Any]:
    return {
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "seconds": run.seconds,
        "stdout": capped(run.stdout),
        "stderr": capped(run.stderr),
        "output_cut_by_sandbox": run.output_truncated,
        "files": {name: file_data(entry) for name, entry in sorted(run.files.items())},
    }


def file_data(entry: FileEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": entry.kind}
    if entry.content is not None:
        data["size"] = len(entry.content)
        data["content"] = capped(entry.content.decode("utf-8", errors="replace"))
        data["cut_by_sandbox"] = entry.truncated
    return data


def case_got(suite: str, case: Case, execution: Execution, generation: Generation | None) -> Any:
    """What this case observed, beside its expectation (None: the task-level record says it)."""
    if isinstance(execution, PythonExecution):
        out = execution.outcomes.get(case.id)
        return python_outcome(out) if out is not None else None
    if isinstance(execution, CliExecution) and isinstance(case, CliCase):
        run = execution.result
        if run is None:
            return None
        if case.file is not None:
            entry = run.files.get(case.file.name)
            return {"file": case.file.name, **(file_data(entry) if entry else {"kind": "missing"})}
        if case.exit_code is not None:
            return {"exit_code": run.exit_code}
        return {"stdout": capped(run.stdout), "exit_code": run.exit_code}
    if suite == "tooling" and generation is not None:
        return {
            "calls": [
                {"step": e.step, "name": e.call.name, "arguments": plain(e.arguments)}
                for e in generation.exchanges
            ]
        }
    return None


def python_outcome(out: PyOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {"status": out.status, "seconds": out.seconds}
    if out.status == "ok":
        data["value"] = capped(repr(out.value))
    if out.exception:
        data["exception"] = out.exception
    if out.detail:
        data["detail"] = capped(out.detail)
    return data
