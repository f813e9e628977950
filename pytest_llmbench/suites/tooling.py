"""The tooling suite: the model gets tool specs and a goal; the calls it makes are checked.

Generation is a multi-turn loop against mock tools, up to the task's `max_steps` requests:
each call is answered by its mock, the results go back to the model, and the loop ends when
the model replies without calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from ..backends.timeline import cut
from ..exchange import ChatRequest, Completion, ToolCall
from ..sandbox.base import Sandbox
from ..taskfiles.format import OpenAIToolSpec, ToolCallSpec, ToolingCase, ToolingTask
from .base import (
    Chat,
    Generation,
    RequestSettings,
    ToolExchange,
    Verdict,
    generation_of,
    missing_answer,
    prompt_messages,
    stats_of,
)
from .matching import check_case
from .toolbox import FALLBACK_RESULT, TOOLBOX

SYSTEM = (
    "You can call the provided tools. Use them to do what the user asks, with concrete "
    "arguments; when a later step needs an earlier tool's result, call the tools in turn. "
    "When the task is done, answer briefly in text."
)


def tool_dicts(task: ToolingTask) -> list[dict[str, Any]]:
    """The OpenAI `tools` list for a task: toolbox names resolved, bare specs as given."""
    out: list[dict[str, Any]] = []
    for tool in task.tools:
        if isinstance(tool, str):
            out.append(TOOLBOX[tool].spec)
        else:
            out.append(tool.model_dump(mode="json", exclude_none=True))
    return out


def _schema(task: ToolingTask, name: str) -> dict[str, Any] | None:
    for tool in task.tools:
        if isinstance(tool, str) and tool == name and tool in TOOLBOX:
            params: dict[str, Any] = TOOLBOX[tool].spec["function"].get("parameters", {})
            return params
        if isinstance(tool, OpenAIToolSpec) and tool.function.name == name:
            return tool.function.parameters
    return None


def run_tool(task: ToolingTask, call: ToolCall) -> tuple[dict[str, Any] | None, Any]:
    """The parsed arguments and the mock's answer to one call (errors are answers too)."""
    arguments = call.parsed_arguments()
    if call.name not in task.tool_names:
        return arguments, {"error": f"unknown tool {call.name!r}"}
    if arguments is None:
        return None, {"error": "arguments are not a valid JSON object"}
    # A mock answers only for a tool the task named from the toolbox; a bare spec that happens
    # to share a toolbox name (imported suites) gets the fixed result like any other.
    if call.name in (t for t in task.tools if isinstance(t, str)):
        return arguments, TOOLBOX[call.name].run(arguments)
    return arguments, FALLBACK_RESULT


_CALL_MARKERS = re.compile(r"<\|?tool_call\|?>|\[TOOL_CALLS\]|<function[=>]", re.IGNORECASE)


def call_left_as_text(answer: str, tool_names: list[str]) -> str | None:
    """The start of a tool call written into the text instead of made, or None.

    Recognised: the call markers chat templates use (`<tool_call>`, `[TOOL_CALLS]`,
    `<function=...>`) and JSON naming one of the task's tools (`{"name": "get_weather", ...`).
    """
    marker = _CALL_MARKERS.search(answer)
    if marker is not None:
        return answer[marker.start() : marker.start() + 120]
    for name in tool_names:
        found = re.search(rf'"(?:name|function)"\s*:\s*"{re.escape(name)}"', answer)
        if found is not None:
            start = answer.rfind("{", 0, found.start())
            return answer[max(start, 0) : max(start, 0) + 120]
    return None


def made_calls(completion: Completion) -> tuple[ToolCall, ...]:
    """The calls a turn made. A turn that max_tokens cut short made only the calls it
    finished (their arguments are a whole JSON object); the one it was writing is not made,
    and the chain ends with that turn: the model never got to finish it."""
    if completion.finish_reason != "length":
        return completion.tool_calls
    return tuple(c for c in completion.tool_calls if c.parsed_arguments() is not None)


def _assistant_message(completion: Completion) -> dict[str, Any]:
    # Never `content: null`: llama-cpp-python's server refuses it (HTTP 422); an empty string is
    # what every server (llama-server, LM Studio, Ollama, vLLM, OpenAI) takes.
    return {
        "role": "assistant",
        "content": completion.content or "",
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ],
    }


class ToolingSuite:
    name = "tooling"
    uses_sandbox = False

    def shown(self, task: ToolingTask) -> dict[str, Any]:
        # The chain's length is shown too: a longer chain can end in another answer.
        return {
            "messages": prompt_messages(task.system or SYSTEM, task.prompt),
            "tools": tool_dicts(task),
            "max_steps": task.max_steps,
        }

    def generate(
        self, task: ToolingTask, model: str, chat: Chat, settings: RequestSettings
    ) -> Generation:
        shown = self.shown(task)
        tools: list[dict[str, Any]] = shown["tools"]
        messages: list[dict[str, Any]] = list(shown["messages"])
        completions: list[Completion] = []
        exchanges: list[ToolExchange] = []
        for step in range(task.max_steps):
            completion = chat(
                ChatRequest(
                    model=model,
                    messages=list(messages),
                    max_tokens=settings.max_tokens,
                    temperature=settings.temperature,
                    seed=settings.seed,
                    tools=tools,
                    timeout_s=settings.timeout_s,
                    reference=self.reply_for(task.reference),
                )
            )
            completions.append(completion)
            made = [
                ToolExchange(step, call, *run_tool(task, call)) for call in made_calls(completion)
            ]
            exchanges.extend(made)
            if not made or completion.finish_reason == "length":
                break  # the model answered without calls, or max_tokens cut its turn short
            messages.append(_assistant_message(completion))
            messages.extend(
                {"role": "tool", "tool_call_id": e.call.id, "content": json.dumps(e.result)}
                for e in made
            )
        # Turns where a call stayed text: the server did not parse the model's call format.
        as_text = sum(
            1
            for c in completions
            if not c.tool_calls and call_left_as_text(c.content, task.tool_names) is not None
        )
        stats = replace(
            stats_of(tuple(completions), settings.max_tokens), calls_left_as_text=as_text
        )
        return generation_of(tuple(completions), stats, tuple(exchanges))

    def within_budget(self, task: ToolingTask, generation: Generation, budget: int) -> Generation:
        """The chain as it would have gone with `budget` tokens per request: the same turns
        while they fit (same answers, so the same next prompt), then the first turn the budget
        cuts, with only the calls it finished; the chain ends there, as it does live."""
        completions: list[Completion] = []
        exchanges: list[ToolExchange] = []
        for step, completion in enumerate(generation.completions):
            cut_short = cut(completion, budget)
            completions.append(cut_short)
            if cut_short is completion:
                exchanges.extend(e for e in generation.exchanges if e.step == step)
                continue
            exchanges.extend(
                ToolExchange(step, call, *run_tool(task, call)) for call in made_calls(cut_short)
            )
            return generation_of(tuple(completions), generation.stats, tuple(exchanges))
        return generation

    @staticmethod
    def reply_for(answer: list[list[ToolCallSpec]]) -> list[list[dict[str, Any]]]:
        """The turns of calls a pseudo-model replays to give `answer`."""
        return [[call.model_dump(mode="json") for call in turn] for turn in answer]

    def execute(self, task: ToolingTask, generation: Generation, sandbox: Sandbox | None) -> None:
        return None  # the calls already ran against the mocks during generation

    def score(
        self, task: ToolingTask, case: ToolingCase, generation: Generation, execution: None
    ) -> Verdict:
        if not generation.exchanges:
            if generation.truncated:
                return missing_answer(generation, "a tool call")
            as_text = call_left_as_text(generation.answer, task.tool_names)
            if as_text is not None:
                # The model meant to call, but the call never became one: recorded as such,
                # because the usual cause is the server's chat template, not the model.
                return Verdict("failed", f"a tool call left as text in the answer: {as_text}")
            # Irrelevance: the right answer is no call, but an answer all the same.
            if case.no_call and generation.answer.strip():
                return Verdict("passed")
            return Verdict(
                "no_answer",
                "the model made no tool call and gave no answer"
                if not generation.answer.strip()
                else "the model made no tool call",
            )
        why = check_case(case, generation.exchanges, lambda name: _schema(task, name))
        return Verdict("passed") if why is None else Verdict("failed", why)
