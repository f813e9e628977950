"""Trimming a python answer to the code the task asked for, without the script around it.

Models often follow a right function with example calls, prints or self-tests; run on import,
those crash or assert wrongly and sink a right answer. Before an answer runs, the module keeps
what defines things (imports, functions, classes, assignments) and drops the statements that
only act at import: expression statements (calls, prints), asserts, loops, `with` blocks,
`del`, `raise`, and `if __name__ == "__main__":` blocks. A top-level `if` or `try` is kept
with its blocks trimmed the same way, so conditional imports and definitions survive. Calls that
configure the interpreter for the code (`sys.setrecursionlimit(...)` and a few like it) stay.
This is the practice of EvalPlus's and BigCodeBench's sanitizers, done with `ast` on the text:
nothing is executed here.

The trimmed code is the answer's own text with the dropped statements blanked out, so line
numbers in tracebacks still point into the answer; when that edit would not give exactly the
trimmed syntax tree (statements sharing a line, an emptied `elif`), the tree is unparsed instead.
Code that does not parse is returned unchanged, so the sandbox reports its SyntaxError.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .safe_ast import AST_LOCK, parse_module

__all__ = ["Sanitized", "sanitize"]

# Top-level calls that set the interpreter up for the code rather than exercise it.
_CONFIGURING_CALLS = frozenset(
    {
        "sys.setrecursionlimit",
        "setrecursionlimit",
        "sys.set_int_max_str_digits",
        "set_int_max_str_digits",
        "threading.stack_size",
        "random.seed",
        "warnings.filterwarnings",
        "warnings.simplefilter",
    }
)
_DEFINING = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Global,
    ast.Nonlocal,
    ast.Pass,
    *((ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()),  # `type X = ...` (3.12)
)
_TRY = (ast.Try, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))


@dataclass(frozen=True)
class Sanitized:
    code: str  # what runs
    removed: tuple[int, ...] = ()  # first lines of dropped statements that would have run

    @property
    def trimmed(self) -> bool:
        """Whether something that would have run on import was left out."""
        return bool(self.removed)


@dataclass(frozen=True)
class _Cut:
    node: ast.stmt
    replacement: str  # "" or "pass" (for a block left empty)


class _Trimmer:
    def __init__(self) -> None:
        self.cuts: list[_Cut] = []
        self.removed: list[int] = []

    def block(self, body: list[ast.stmt], may_empty: bool = False) -> list[ast.stmt]:
        """The statements of `body` to keep (compound ones rebuilt); cuts recorded. A block
        that must not be empty keeps a `pass` in place of its first statement."""
        kept: list[ast.stmt] = []
        first_cut = len(self.cuts)
        for stmt in body:
            if _keeps(stmt):
                kept.append(stmt)
            elif _is_main_guard(stmt):
                self.cuts.append(_Cut(stmt, ""))  # never runs as `solution`: not "trimmed"
            elif isinstance(stmt, (ast.If, *_TRY)):
                rebuilt = self.compound(stmt)
                if rebuilt is not None:
                    kept.append(rebuilt)
            else:
                self.cuts.append(_Cut(stmt, ""))
                self.removed.append(stmt.lineno)
        if body and not kept and not may_empty:
            index = next(i for i in range(first_cut, len(self.cuts)) if self.cuts[i].node in body)
            self.cuts[index] = _Cut(self.cuts[index].node, "pass")
            kept = [ast.Pass()]
        return kept

    def compound(self, stmt: ast.stmt) -> ast.stmt | None:
        """`stmt` (an if or try) with its blocks trimmed; None when nothing of it is left."""
        cuts, removed = len(self.cuts), len(self.removed)
        blocks: dict[str, list[ast.stmt]] = {}
        for name in ("body", "orelse", "finalbody"):
            original: list[ast.stmt] = getattr(stmt, name, [])
            # An if's else may go (an emptied `elif` leaves no trace in the text).
            may_empty = name == "orelse" and isinstance(stmt, ast.If)
            blocks[name] = self.block(original, may_empty) if original else []
        handlers = [
            ast.ExceptHandler(type=h.type, name=h.name, body=self.block(h.body))
            for h in getattr(stmt, "handlers", [])
        ]
        if len(self.cuts) == cuts:
            return stmt  # nothing inside needed trimming
        leftover = [s for b in (*blocks.values(), *(h.body for h in handlers)) for s in b]
        if all(isinstance(s, ast.Pass) for s in leftover):
            # Only actions inside: drop the whole statement (its test or body never runs).
            del self.cuts[cuts:]
            self.cuts.append(_Cut(stmt, ""))
            if len(self.removed) == removed:
                self.removed.append(stmt.lineno)
            return None
        if isinstance(stmt, ast.If):
            return ast.If(test=stmt.test, body=blocks["body"], orelse=blocks["orelse"])
        kind: type[ast.Try] = type(stmt)  # type: ignore[assignment]  # Try or TryStar
        return kind(
            body=blocks["body"],
            handlers=handlers,
            orelse=blocks["orelse"],
            finalbody=blocks["finalbody"],
        )


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keeps(stmt: ast.stmt) -> bool:
    if isinstance(stmt, _DEFINING):
        return True
    if isinstance(stmt, ast.Expr):
        value = stmt.value
        if isinstance(value, ast.Constant):
            return True  # docstrings, `...`: inert
        return isinstance(value, ast.Call) and _dotted(value.func) in _CONFIGURING_CALLS
    return False


def _is_main_guard(stmt: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (either way round) without an else."""
    if not isinstance(stmt, ast.If) or stmt.orelse:
        return False
    test = stmt.test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and len(test.comparators) == 1
    ):
        return False
    sides = (test.left, test.comparators[0])
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _blank(code: str, cuts: list[_Cut]) -> str:
    """The source with each cut statement's span replaced (line breaks kept)."""
    data = code.encode("utf-8")  # ast offsets count UTF-8 bytes
    starts = [0]
    for index, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(index + 1)

    def offset(line: int, col: int) -> int:
        return starts[line - 1] + col

    spans = sorted(
        (
            offset(c.node.lineno, c.node.col_offset),
            offset(c.node.end_lineno or c.node.lineno, c.node.end_col_offset or 0),
            c.replacement,
        )
        for c in cuts
    )
    out: list[bytes] = []
    position = 0
    for start, end, replacement in spans:
        out.append(data[position:start])
        out.append(replacement.encode() + b"\n" * data[start:end].count(b"\n"))
        position = end
    out.append(data[position:])
    return b"".join(out).decode("utf-8")


def sanitize(code: str) -> Sanitized:
    """`code` without the top-level statements that only act at import (see the module doc)."""
    with AST_LOCK:
        return _sanitize(code)


def _sanitize(code: str) -> Sanitized:
    try:
        tree = parse_module(code)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return Sanitized(code)
    trimmer = _Trimmer()
    body = trimmer.block(tree.body)
    if not trimmer.cuts:
        return Sanitized(code)
    trimmed = ast.Module(body=body, type_ignores=[])
    text = _blank(code, trimmer.cuts)
    try:
        same = ast.dump(parse_module(text)) == ast.dump(trimmed)
    except (SyntaxError, ValueError):
        same = False
    if not same:
        text = ast.unparse(ast.fix_missing_locations(trimmed)) + "\n"
    return Sanitized(text, tuple(sorted(trimmer.removed)))
