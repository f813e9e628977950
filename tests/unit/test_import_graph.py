"""The package's import graph has no cycle, lazy and TYPE_CHECKING imports included, and its
arrows run one way: from the plain data at the bottom, through task files, backends and the
sandbox, the suites, results, storage, reporting, to the run and the hooks at the top."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_llmbench"

# Each module's layer, by its first name under the package: a module imports only its own
# layer and the ones below it (DESIGN.md section 2). Within a layer, no cycle either.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "exchange", "outcome", "caseresult", "options", "display"),
    ("taskfiles", "backends", "sandbox"),
    ("suites",),
    ("results",),
    ("storage",),
    ("reporting",),
    ("run",),
    ("plugin", "cli", "importers"),
)


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The package's modules `name` imports, wherever the import statement is (in a function,
    under TYPE_CHECKING): `from pkg import sub` needs the submodule, and the package itself
    only for a name its __init__ defines."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    yield sub
                elif target in known:
                    yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports(name, path, known)) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(name: str) -> int:
    first = name.split(".")[1] if "." in name else "__init__"
    for number, members in enumerate(LAYERS):
        if first in members:
            return number
    raise AssertionError(f"{name} is in no layer: add its subpackage to LAYERS")


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(graph()) == []


def test_imports_run_down_the_layers_only() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_the_cycle_finder_finds_cycles() -> None:
    """The checks above can fail: a planted cycle is found, with its members."""
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(planted) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    edges = graph()
    # plugin.py imports run.bench under TYPE_CHECKING and inside pytest_configure only
    assert "pytest_llmbench.run.bench" in edges["pytest_llmbench.plugin"]
    assert "pytest_llmbench.reporting.html.page" in edges["pytest_llmbench.run.ending"]  # lazy
    assert "pytest_llmbench.reporting.html.data" in edges["pytest_llmbench.reporting.html.plots"]


def test_an_upward_import_is_named() -> None:
    assert layer_of("pytest_llmbench.run.items") > layer_of("pytest_llmbench.reporting.table")
    assert layer_of("pytest_llmbench.exchange") == 0
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("pytest_llmbench.newstage.module")
