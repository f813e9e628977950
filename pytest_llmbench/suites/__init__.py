"""The three suites of task files, and the one of test functions' requests (`ask`), by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from .base import Suite

if TYPE_CHECKING:
    from .cli import CliExecution
    from .python import PythonExecution

    # What a suite's execute() returned for a task, shared by its cases (tooling runs
    # nothing: its calls ran against the mock tools during generation).
    Execution: TypeAlias = PythonExecution | CliExecution | None


def get_suite(name: str, *, sanitize: bool = True) -> Suite[Any, Any, Any]:
    """The suite called `name`; `sanitize` applies to python answers (see `suites/sanitize.py`)."""
    # Imported on demand: a run that only lists models never needs the scorers.
    if name == "python":
        from .python import PythonSuite

        return PythonSuite(sanitize=sanitize)
    if name == "cli":
        from .cli import CliSuite

        return CliSuite()
    if name == "tooling":
        from .tooling import ToolingSuite

        return ToolingSuite()
    if name == "ask":
        from .ask import AskSuite

        return AskSuite()
    raise KeyError(name)
