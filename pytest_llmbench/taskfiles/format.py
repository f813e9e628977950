"""The YAML task format: the pydantic models of a task file, its tasks and their cases, per
suite (taskfiles/loading.py loads a file into them, with errors that name file, line, task,
field)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .matchers import check_matchers

Suite = Literal["python", "cli", "tooling"]
Difficulty = Literal["easy", "medium", "hard"]

DEFAULT_TIMEOUT_S = 10.0
# The original harness's allowlist: read and format tools, no network, no deletion.
DEFAULT_CLI_TOOLS: tuple[str, ...] = (
    "echo", "printf", "cat", "ls", "wc", "sort", "head", "tail", "grep", "cut",
    "awk", "tr", "sed", "uniq", "mkdir", "touch", "python3",
)  # fmt: skip

_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
# A case's time limit: positive and finite (NaN, inf and 0 would stall or fail every model,
# `reference` included), and at most an hour (the sandbox turns it into a CPU limit).
MAX_TIMEOUT_S = 3600.0
Seconds = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)]
Tolerance = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskBase(_Model):
    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    prompt: str
    tags: tuple[str, ...] = ()
    difficulty: Difficulty | None = None
    system: str | None = None  # overrides the suite's system prompt


# --------------------------------------------------------------------------- python


class PythonCase(_Model):
    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    setup: str | None = None
    call: str | None = None
    expect: Any = None
    validate_: str | None = Field(default=None, alias="validate")
    raises: str | None = None
    float_tol: Tolerance | None = None
    timeout_s: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_check(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [k for k in ("expect", "validate", "raises") if k in data]
            if len(given) != 1:
                raise ValueError(
                    "a python case needs exactly one of 'expect', 'validate', 'raises'"
                    + (f" (got {', '.join(given)})" if given else "")
                )
        return data

    @field_validator("validate_", "setup", "call")
    @classmethod
    def _compiles(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            mode = "exec" if info.field_name == "setup" else "eval"
            try:
                compile(value, f"<{info.field_name}>", mode)
            except SyntaxError as exc:
                raise ValueError(f"not valid Python: {exc.msg}") from None
        return value

    @property
    def has_expect(self) -> bool:
        return "expect" in self.model_fields_set


class PythonTask(TaskBase):
    entry_point: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    reference: str
    cases: Annotated[list[PythonCase], Field(min_length=1)]
    float_tol: Tolerance | None = None
    timeout_s: Seconds = DEFAULT_TIMEOUT_S
    mutants: list[str] = Field(default_factory=list)  # wrong answers: each fails some case
    accepted: list[str] = Field(default_factory=list)  # other right answers: pass every case


# --------------------------------------------------------------------------- cli


class FileCheck(_Model):
    name: str
    content: str


class CliCase(_Model):
    """One effect of the command. Exactly one kind: `stdout` (exact but for the final newline),
    `stdout_lines`, `stdout_words`, `file` (name + content), `exit_code`, or
    `matches_reference: true` (stdout and the work dir's files equal those the task's reference
    command leaves when run on the same files in a twin sandbox)."""

    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    stdout: str | None = None
    stdout_lines: list[str] | None = None
    stdout_words: list[str] | None = None
    file: FileCheck | None = None
    exit_code: int | None = None
    matches_reference: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_check(self) -> CliCase:
        kinds = ("stdout", "stdout_lines", "stdout_words", "file", "exit_code", "matches_reference")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a cli case checks exactly one of {', '.join(kinds)} "
                f"(got {', '.join(given) or 'none'})"
            )
        return self


class CliTask(TaskBase):
    reference: str  # the reference command
    files: dict[str, str] = Field(default_factory=dict)
    tools: tuple[str, ...] = DEFAULT_CLI_TOOLS
    timeout_s: Seconds = DEFAULT_TIMEOUT_S
    cases: Annotated[list[CliCase], Field(min_length=1)]
    mutants: list[str] = Field(default_factory=list)
    accepted: list[str] = Field(default_factory=list)

    @field_validator("files")
    @classmethod
    def _relative_names(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or ".." in parts:
                raise ValueError(f"file name {name!r} must be a relative path inside the work dir")
        return files


# --------------------------------------------------------------------------- tooling
# A case's `args` map argument names to matchers, plain data in the grammar of matchers.py; a
# malformed one is refused here, at its line (see loading.py).


def _checked_matchers(args: dict[str, Any]) -> dict[str, Any]:
    check_matchers(args)
    return args


ArgMatchers = Annotated[dict[str, Any], AfterValidator(_checked_matchers)]


class ToolCallSpec(_Model):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class FunctionSpec(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class OpenAIToolSpec(_Model):
    type: Literal["function"] = "function"
    function: FunctionSpec


class ExpectedCall(_Model):
    """One call of a `calls` case: a tool name and argument matchers."""

    name: str
    args: ArgMatchers = Field(default_factory=dict)


class ToolingCase(_Model):
    """One expectation over all the calls the model made. Exactly one kind:

    - `called: NAME` (+ `args`): some call to NAME satisfies every matcher;
    - `not_called: NAME`: no call to NAME;
    - `calls: [{name, args}, ...]`: distinct calls satisfy each listed expectation (matched by
      best assignment); `same_turn`: all of them within one assistant turn; `only`: no other
      call in that scope (the turn, or the whole exchange);
    - `no_call: true`: the model made no tool call at all and answered in text.

    `strict` (with called/calls): the call must also be valid for the tool's schema and carry
    no argument without a matcher (the BFCL checker's rule).
    """

    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    called: str | None = None
    args: ArgMatchers = Field(default_factory=dict)
    not_called: str | None = None
    calls: Annotated[list[ExpectedCall], Field(min_length=1)] | None = None
    no_call: bool = False
    strict: bool = False
    same_turn: bool = False
    only: bool = False

    @model_validator(mode="after")
    def _one_check(self) -> ToolingCase:
        given = [
            k
            for k, v in (
                ("called", self.called),
                ("not_called", self.not_called),
                ("calls", self.calls),
                ("no_call", self.no_call or None),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a tooling case needs exactly one of 'called', 'not_called', 'calls', "
                f"'no_call: true' (got {', '.join(given) or 'none'})"
            )
        if self.called is None and self.args:
            raise ValueError("'args' only applies to 'called'")
        if self.strict and self.called is None and self.calls is None:
            raise ValueError("'strict' only applies to 'called' and 'calls'")
        if (self.same_turn or self.only) and self.calls is None:
            raise ValueError("'same_turn' and 'only' only apply to 'calls'")
        return self

    @property
    def tool_names(self) -> list[str]:
        """The tool names this case refers to."""
        names = [n for n in (self.called, self.not_called) if n is not None]
        return names + [c.name for c in self.calls or ()]


@dataclass(frozen=True)
class LoadContext:
    """What validation needs from outside the format (pydantic's validation context)."""

    builtin_tools: frozenset[str] | None  # None: names of built-in tools are not checked


class ToolingTask(TaskBase):
    tools: Annotated[list[str | OpenAIToolSpec], Field(min_length=1)]
    max_steps: Annotated[int, Field(ge=1, le=20)] = 4
    reference: list[list[ToolCallSpec]]  # [] for tasks whose right answer is no call at all
    cases: Annotated[list[ToolingCase], Field(min_length=1)]
    mutants: list[list[list[ToolCallSpec]]] = Field(default_factory=list)
    accepted: list[list[list[ToolCallSpec]]] = Field(default_factory=list)

    @property
    def tool_names(self) -> list[str]:
        return [t if isinstance(t, str) else t.function.name for t in self.tools]

    @field_validator("tools")
    @classmethod
    def _builtin_tools(
        cls, tools: list[str | OpenAIToolSpec], info: ValidationInfo
    ) -> list[str | OpenAIToolSpec]:
        # Which names are built-in is the tooling suite's knowledge, passed in by the loader's
        # caller (taskload.load_task_file's `builtin_tools`): the format does not import the suites.
        context = info.context
        if isinstance(context, LoadContext) and context.builtin_tools is not None:
            known = context.builtin_tools
            for tool in tools:
                if isinstance(tool, str) and tool not in known:
                    raise ValueError(
                        f"unknown toolbox tool {tool!r} (built-in: {', '.join(sorted(known))})"
                    )
        return tools

    @model_validator(mode="after")
    def _known_tools(self) -> ToolingTask:
        names = self.tool_names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool {dupes[0]!r} is listed twice")
        for case in self.cases:
            for name in case.tool_names:
                if name not in names:
                    raise ValueError(f"case {case.id!r} names tool {name!r}, which is not offered")
        answers = [("the reference", self.reference)] + [
            (f"accepted answer {i}", a) for i, a in enumerate(self.accepted, start=1)
        ]
        for label, turns in answers:
            for call in (c for turn in turns for c in turn):
                if call.name not in names:
                    raise ValueError(f"{label} calls {call.name!r}, which is not offered")
        return self


Task = PythonTask | CliTask | ToolingTask
Case = PythonCase | CliCase | ToolingCase
TASK_CLASS: dict[str, type[TaskBase]] = {
    "python": PythonTask,
    "cli": CliTask,
    "tooling": ToolingTask,
}


class TaskFile(_Model):
    suite: Suite
    tasks: list[PythonTask] | list[CliTask] | list[ToolingTask]
    path: Path | None = None
