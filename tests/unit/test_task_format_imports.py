"""The task format sits below the suites: nothing it imports, however lazily, reaches them.

The imports are read from the source (ast), at every depth: top level, inside functions,
under `if TYPE_CHECKING:`, and `importlib.import_module("...")` with a constant name; and
followed through every module of the package they reach (with the packages that hold them)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import pytest_llmbench

PACKAGE = "pytest_llmbench"
ROOT = Path(pytest_llmbench.__file__).resolve().parent
# What a task file is: its YAML, its models and loader, the matcher grammar, the parsed cache.
FORMAT_MODULES = (
    "pytest_llmbench.taskfiles.format",
    "pytest_llmbench.taskfiles.loading",
    "pytest_llmbench.taskfiles.bounded_yaml",
    "pytest_llmbench.taskfiles.matchers",
    "pytest_llmbench.taskfiles.cache",
)
FORBIDDEN = "pytest_llmbench.suites"


def module_file(name: str) -> Path | None:
    """The source of a module of the package, or None (a name imported from a module)."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    parts = name.split(".")[1:]
    for candidate in (
        ROOT.joinpath(*parts, "__init__.py"),
        ROOT.joinpath(*parts[:-1], f"{parts[-1]}.py") if parts else None,
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module name `source` imports, wherever the import statement is."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            # `from . import x` may import the submodule x
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def reached(start: str) -> dict[str, list[str]]:
    """The modules of the package that importing `start` can reach, each with its chain."""
    chains: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop()
        path = module_file(current)
        if path is None:
            continue
        found = imported_names(path.read_text(), current, is_package=path.name == "__init__.py")
        for name in sorted(found):
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                if prefix not in chains and module_file(prefix) is not None:
                    chains[prefix] = [*chains[current], prefix]
                    queue.append(prefix)
    return chains


def test_the_walker_sees_lazy_and_type_checking_imports() -> None:
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from ..suites.base import Verdict
        def later():
            from ..suites import matching
            import importlib
            importlib.import_module("pytest_llmbench.suites.tooling")
        from . import bounded_yaml
        """
    )
    names = imported_names(source, "pytest_llmbench.taskfiles.format")
    assert {
        "pytest_llmbench.suites.base",
        "pytest_llmbench.suites.matching",
        "pytest_llmbench.suites.tooling",
        "pytest_llmbench.taskfiles.bounded_yaml",
    } <= names
    assert imported_names(
        "from ..taskfiles.matchers import x", "pytest_llmbench.suites.matching"
    ) >= {"pytest_llmbench.taskfiles.matchers"}


@pytest.mark.parametrize("module", FORMAT_MODULES)
def test_the_task_format_does_not_import_the_suites(module: str) -> None:
    assert module_file(module) is not None, f"{module} is not where the test looks"
    chains = reached(module)
    into_suites = {
        name: " -> ".join(chain)
        for name, chain in chains.items()
        if name == FORBIDDEN or name.startswith(f"{FORBIDDEN}.")
    }
    assert into_suites == {}


def test_the_walk_follows_the_format_through_its_own_modules() -> None:
    chains = reached("pytest_llmbench.taskfiles.cache")
    assert {
        "pytest_llmbench.taskfiles.loading",
        "pytest_llmbench.taskfiles.format",
        "pytest_llmbench.taskfiles.matchers",
        "pytest_llmbench.taskfiles.bounded_yaml",
    } <= set(chains)
    # and it does reach the suites from a module that uses them
    assert "pytest_llmbench.suites.matching" in reached("pytest_llmbench.suites.tooling")
