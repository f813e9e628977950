"""Reading a task file's YAML within a budget of bytes, nesting and nodes.

A task file is input the benchmark did not write (downloaded suites, a colleague's tasks), so
reading it must end quickly with a clear error whatever it holds. In YAML's node graph an
alias is one shared node: a "billion laughs" file is small there, and explodes only when the
data is walked (validated, serialised, sent to the sandbox). So the graph is measured while it
is composed, from libyaml's events: its depth, and its size with every alias counted as its
full expansion. The first node past the budget stops the reading, before the graph, or the
memory it takes (about 400 bytes a node), grows any further. Construction then runs on a graph
known to be small, and refuses duplicate keys, which YAML loaders resolve to the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

try:  # libyaml's parser when PyYAML was built with it (many times faster), else PyYAML's own
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - every PyYAML wheel for Linux ships libyaml

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Budget:
    # Several times any imported suite; the bundled files are under 25 kB each.
    max_bytes: int = 4 * 1024 * 1024
    # YAML collections inside each other: a task sits at depth 3, a matcher's literal at 8 or
    # so; nothing real comes near, and every walk over the data stays clear of recursion limits.
    max_depth: int = 64
    # Nodes after alias expansion; the composed graph's memory and the time to build it are
    # bounded by this too (PyYAML builds nodes at roughly 100,000 a second on one core). The
    # bundled files run 20 to 45 bytes a node: a 4 MB task file would have about 150,000.
    max_nodes: int = 500_000


class YamlProblem(Exception):
    """A file that cannot be read as task YAML; `line` is 1-based, where the problem starts."""

    def __init__(self, line: int | None, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.key = key  # the mapping key at fault, for duplicate keys
        self.root: yaml.Node | None = None  # the composed file, when it got that far
        self.task: str | None = None  # the task being read when composing stopped


def read_yaml(path: Path, budget: Budget | None = None) -> Any:
    """The file's data; raise YamlProblem, with its line, for anything unfit."""
    return _load(path, budget or Budget(), construct=True)


def compose_yaml(path: Path, budget: Budget | None = None) -> yaml.Node:
    """The file's node graph, to find the line of a problem in the data (raises YamlProblem)."""
    node: yaml.Node = _load(path, budget or Budget(), construct=False)
    return node


def _load(path: Path, budget: Budget, *, construct: bool) -> Any:
    text = _decode(_read_bounded(path, budget.max_bytes))
    loader = _TaskLoader(text, budget)
    try:
        try:
            root = loader.get_single_node()  # the budget is kept while composing
        except yaml.MarkedYAMLError as exc:
            raise _syntax_problem(exc) from None
        except YamlProblem as exc:
            exc.task = loader.current_task()
            raise
        except yaml.YAMLError as exc:
            raise YamlProblem(None, f"invalid YAML: {exc}") from None
        if root is None:
            return None
        try:
            return loader.construct_document(root) if construct else root
        except yaml.MarkedYAMLError as exc:  # an unknown tag, say
            problem = _syntax_problem(exc)
            problem.root = root
            raise problem from None
        except YamlProblem as exc:
            exc.root = root
            raise
    finally:
        loader.dispose()


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise YamlProblem(None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise YamlProblem(
            None,
            f"the file is larger than {limit // (1024 * 1024)} MB, the most a task file may be",
        )
    return raw


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - start + 1
        byte = raw[exc.start]
        raise YamlProblem(
            line, f"not UTF-8 text: byte 0x{byte:02x} at column {column} cannot be decoded"
        ) from None


def _syntax_problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    """Name the line where the faulty construct starts (an unclosed bracket's line), and the
    line where the parser noticed, when that is elsewhere (often the end of the file)."""
    context, problem = exc.context_mark, exc.problem_mark
    start = context or problem
    line = start.line + 1 if start is not None else None
    words = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
    if problem is not None and context is not None and problem.line != context.line:
        words += f" (noticed at line {problem.line + 1})"
    return YamlProblem(line, f"invalid YAML: {words or exc}")


class _TaskLoader(Composer, _Parser, SafeConstructor, Resolver):
    """libyaml's parser for the events; PyYAML's composer over them, keeping the budget as it
    goes (so an oversized graph is refused before it exists); the safe constructor, refusing
    duplicate keys."""

    def __init__(self, stream: str, budget: Budget) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.budget = budget
        self._expanded = 0  # nodes composed so far, aliases counted as their expansion
        self._depth = 0
        self._sizes: dict[str, int] = {}  # anchor -> expanded size of its node
        self._open: set[str] = set()  # anchors of collections being composed
        self._path: list[tuple[yaml.Node | None, Any]] = []  # (parent, index) down to here
        self._plain_tags: dict[str, str] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> Any:
        event: Any = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise YamlProblem(line, "an alias refers to a node that contains it")
            self._grow(self._sizes.get(str(event.anchor), 1), line)
            return super().compose_node(parent, index)
        if self._depth >= self.budget.max_depth:
            raise YamlProblem(line, f"nested more than {self.budget.max_depth} levels deep")
        anchor = event.anchor
        collection = isinstance(event, (SequenceStartEvent, MappingStartEvent))
        if anchor is not None and collection:
            self._open.add(anchor)
        before = self._expanded
        self._path.append((parent, index))
        self._grow(1, line)
        self._depth += 1
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._path.pop()
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = self._expanded - before
        return node

    def current_task(self) -> str | None:
        """The id (or `#n`) of the task under `tasks:` that composing stopped in, if any."""
        if len(self._path) < 4:
            return None
        (_, key), (_, index), (task, _) = self._path[1], self._path[2], self._path[3]
        if not (isinstance(key, yaml.ScalarNode) and key.value == "tasks"):
            return None
        if not isinstance(index, int) or not isinstance(task, yaml.MappingNode):
            return None
        for field, value in task.value:
            if field.value == "id" and isinstance(value, yaml.ScalarNode):
                return str(value.value)
        return f"#{index + 1}"

    def _grow(self, nodes: int, line: int) -> None:
        self._expanded += nodes
        if self._expanded > self.budget.max_nodes:
            raise YamlProblem(
                line,
                f"the file expands here to more than {self.budget.max_nodes:,} YAML nodes "
                "with its aliases (an anchor bomb?)",
            )

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        # Each plain scalar's tag is found by matching regular expressions; files repeat their
        # values (numbers, booleans, ids) so much that remembering the answers pays.
        resolve: Any = super().resolve
        if kind is yaml.ScalarNode and implicit and implicit[0] and isinstance(value, str):
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = self._plain_tags[value] = resolve(kind, value, implicit)
            return tag
        return resolve(kind, value, implicit)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # merge keys override on purpose; complex keys are rare enough
            key = self.construct_object(key_node)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: PyYAML will refuse it itself
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise YamlProblem(
                    line, f"duplicate key {key!r} (first at line {first})", key=str(key)
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)
