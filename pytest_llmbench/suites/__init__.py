"""The three suites, by name."""

from __future__ import annotations

from typing import Any

from .base import Suite


def get_suite(name: str) -> Suite[Any, Any]:
    # Imported on demand: a run that only lists models never needs the scorers.
    if name == "python":
        from .python import PythonSuite

        return PythonSuite()
    if name == "cli":
        from .cli import CliSuite

        return CliSuite()
    if name == "tooling":
        from .tooling import ToolingSuite

        return ToolingSuite()
    raise KeyError(name)
