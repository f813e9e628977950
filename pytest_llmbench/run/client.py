"""What the `llm` fixture yields: a client of one loaded model, for test functions.

`ask` and `chat` go where a task file's requests go: the scheduler (a declared prompt's answer
was generated ahead, at the server's concurrency), the answer store (a rerun of an unchanged test
asks the model nothing), the backend with its retries and its served-model check. Each request
of the running test is kept for its case (run/functions.py turns them into the case's result and
transcript). A server fault raises `BackendError`, which the run reports as an error, never as
the model's failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exchange import BackendError, ToolCall
from ..sandbox.base import PyCall, SandboxError
from ..suites.answer import PYTHON_LANGS, code_blocks, first_block
from ..suites.ask import Ask, prompt_messages
from ..suites.base import Generation, RequestSettings
from .scheduler import InfraFailure, Job, Prepared, Scheduler

if TYPE_CHECKING:
    from ..sandbox.base import Sandbox


class ModelCodeFailed(AssertionError):
    """Code the model wrote raised, ran too long or crashed in the sandbox: the model's
    failure (an AssertionError, so the test fails as on any assert)."""


@dataclass(frozen=True)
class Answer:
    """One reply of the model: its text with any thinking removed, the thinking, its tool
    calls, whether max_tokens cut it, and what it cost."""

    text: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    truncated: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    ttft_s: float | None
    decode_tok_s: float | None
    from_store: bool  # the answer store had it: the model was not asked this time
    generation: Generation = field(repr=False)

    @classmethod
    def of(cls, generation: Generation) -> Answer:
        stats = generation.stats
        calls = tuple(call for c in generation.completions for call in c.tool_calls)
        return cls(
            text=generation.answer,
            reasoning=generation.reasoning,
            tool_calls=calls,
            truncated=generation.truncated,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            seconds=stats.seconds,
            ttft_s=stats.ttft_s,
            decode_tok_s=stats.decode_tok_s,
            from_store=stats.from_store,
            generation=generation,
        )

    def code(self, *languages: str) -> str | None:
        """The first fenced block in one of `languages` (default: python), else the first
        unlabelled one; None when there is none."""
        block = first_block(self.text, tuple(languages) or PYTHON_LANGS)
        return block.code if block is not None else None

    def json(self) -> Any:
        """The answer parsed as JSON: the first ```json block if there is one, else the whole
        text. Raises ValueError (the test fails) when it is not JSON."""
        blocks = [b for b in code_blocks(self.text) if b.language == "json"]
        return json.loads(blocks[0].code if blocks else self.text)

    def calls(self) -> list[tuple[str, dict[str, Any] | None]]:
        """Each tool call as (name, arguments parsed; None where the JSON is malformed)."""
        return [(call.name, call.parsed_arguments()) for call in self.tool_calls]


class ModelClient:
    """The `llm` fixture's value for one model of `--models`.

    `model` is its key, `settings` the sampling settings every request carries (max_tokens,
    temperature, seed, timeout). `ask(prompt)` sends one user message (after `system` when
    given); `chat(messages)` sends a conversation as the OpenAI API takes it. Both accept
    `tools` (OpenAI tool specs) and `max_tokens`, and return an `Answer`. `run_python` runs code
    (the model's) in the run's sandbox and returns what a call to it returned.
    """

    def __init__(
        self,
        model: str,
        scheduler: Scheduler,
        sandbox: Callable[[], Sandbox],
    ) -> None:
        self.model = model
        self._scheduler = scheduler
        self._sandbox = sandbox
        self.repeat = 0  # which sample of the running test (--llmbench-repeat)
        # The running sample's requests and their answers, in order.
        self.asked: list[tuple[Ask, Prepared]] = []

    @property
    def settings(self) -> RequestSettings:
        return self._scheduler.request_settings(self.model, self.repeat)

    def ask(
        self,
        prompt: str,
        *,
        system: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
    ) -> Answer:
        """Ask the model `prompt` (one user message, after `system` when given)."""
        return self._answer(Ask.of(prompt_messages(prompt, system), tools, max_tokens))

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
    ) -> Answer:
        """Send a conversation (OpenAI chat messages) and return the model's next reply."""
        return self._answer(Ask.of(messages, tools, max_tokens))

    def _answer(self, ask: Ask) -> Answer:
        job = ask_job(self.model, ask, self.repeat)
        settled = self._scheduler.answer(self.model, job)
        if isinstance(settled, InfraFailure):
            error = BackendError(settled.message)
            error.retries = settled.retries
            raise error
        self.asked.append((ask, settled))
        return Answer.of(settled.generation)

    def run_python(
        self, code: str, entry_point: str, *args: Any, timeout_s: float = 10.0, **kwargs: Any
    ) -> Any:
        """Run `code` in the sandbox and return `entry_point(*args, **kwargs)`'s value (plain
        data: numbers, strings, lists, dicts). Raises ModelCodeFailed when the code fails to
        load, raises, crashes or runs past `timeout_s`."""
        try:
            (outcome,) = self._sandbox().run_python(
                code, entry_point, [PyCall(args=args, kwargs=kwargs, timeout_s=timeout_s)]
            )
        except SandboxError as exc:
            raise BackendError(f"sandbox: {exc}") from None
        if outcome.status == "ok":
            return outcome.value
        what = outcome.status.replace("_", " ")
        if outcome.status == "raised":
            what = f"raised {outcome.exception}"
        detail = outcome.detail if len(outcome.detail) <= 2000 else outcome.detail[:2000] + " [cut]"
        raise ModelCodeFailed(f"{entry_point}: {what}: {detail}".rstrip(": "))


def ask_job(model: str, ask: Ask, repeat: int) -> Job:
    """The scheduler's job for one request; its key names what was asked, so a declared
    prompt and the test's own `ask` of it meet on one future."""
    digest = hashlib.sha256(f"{ask.messages_json}|{ask.tools_json}|{ask.max_tokens}".encode())
    key = f"ask:{digest.hexdigest()[:20]}" + (f"#repeat{repeat}" if repeat else "")
    return Job((model, key), "ask", ask, repeat=repeat)
