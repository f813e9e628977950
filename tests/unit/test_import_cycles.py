"""The package's modules import one way: no module of the run reaches itself through its
imports, counting lazy imports (inside functions) and TYPE_CHECKING imports as imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_llmbench"


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, anywhere in its body."""
    paths = {_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
                # `from . import x` imports the module x when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                           for a in node.names]  # fmt: skip
            else:
                continue
            graph[name] |= {target for target in targets if target in paths} - {name}
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A chain of imports from `start` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for target in sorted(graph[module]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    assert (
        "pytest_llmbench.run.scheduler" in graph["pytest_llmbench.run.session"]
    )  # lazy, and typing
    assert "pytest_llmbench.run.session" in graph["pytest_llmbench.run.items"]
    assert "pytest_llmbench.run.bench" in graph["pytest_llmbench.plugin"]  # lazy
    assert "pytest_llmbench.reporting.html.page" in graph["pytest_llmbench.run.ending"]  # lazy


def test_no_module_is_in_an_import_cycle() -> None:
    graph = import_graph()
    cycles = {
        module: cycle for module in graph if (cycle := cycle_through(graph, module)) is not None
    }
    assert cycles == {}
