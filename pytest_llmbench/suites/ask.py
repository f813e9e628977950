"""One request a test function makes through the `llm` fixture, as the scheduler's work.

A test function's prompt is not a task file's task, but it is generated the same way: the
scheduler asks for it (ahead of time when the test declared it, else when the test asks), the
answer store keys it on what the model is shown, and the run record keeps the reply. Scoring is
the test function's own assertions (run/functions.py), so this suite scores nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..exchange import ChatRequest
from ..sandbox.base import Sandbox
from .base import Chat, Generation, RequestSettings, Verdict, generation_of, stats_of


@dataclass(frozen=True)
class Ask:
    """What one `ask`/`chat` call shows the model. Messages and tools are JSON text so that
    the value is hashable and cannot change after it is keyed."""

    messages_json: str
    tools_json: str | None = None
    max_tokens: int | None = None  # None: the run's max_tokens

    @classmethod
    def of(
        cls,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
    ) -> Ask:
        dumps = json.dumps
        return cls(dumps(messages), dumps(tools) if tools else None, max_tokens)

    @property
    def messages(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = json.loads(self.messages_json)
        return value

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return json.loads(self.tools_json) if self.tools_json is not None else None


def prompt_messages(prompt: str, system: str | None) -> list[dict[str, Any]]:
    """`ask`'s messages: the system prompt when one is given, then the prompt."""
    head = [{"role": "system", "content": system}] if system is not None else []
    return [*head, {"role": "user", "content": prompt}]


class AskSuite:
    name = "ask"
    uses_sandbox = False

    def shown(self, task: Ask) -> dict[str, Any]:
        shown: dict[str, Any] = {"messages": task.messages}
        if task.tools is not None:
            shown["tools"] = task.tools
        if task.max_tokens is not None:
            shown["max_tokens"] = task.max_tokens  # keyed: the run's own is keyed apart
        return shown

    def generate(self, task: Ask, model: str, chat: Chat, settings: RequestSettings) -> Generation:
        max_tokens = task.max_tokens or settings.max_tokens
        request = ChatRequest(
            model=model,
            messages=task.messages,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            seed=settings.seed,
            tools=task.tools,
            timeout_s=settings.timeout_s,
        )
        completion = chat(request)
        return generation_of((completion,), stats_of((completion,), max_tokens))

    def reply_for(self, answer: Any) -> Any:
        return answer

    def execute(self, task: Ask, generation: Generation, sandbox: Sandbox | None) -> None:
        return None

    def score(self, task: Ask, case: Any, generation: Generation, execution: None) -> Verdict:
        raise NotImplementedError("a test function scores its own answers")

    def within_budget(self, task: Ask, generation: Generation, budget: int) -> Generation:
        return generation
