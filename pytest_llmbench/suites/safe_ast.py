"""Building ASTs from several threads at once.

CPython 3.11 (before 3.11.8) keeps the AST constructor's recursion depth in shared state, so two
threads that parse or build ASTs at the same time can fail with "SystemError: AST constructor
recursion depth mismatch". Generation threads (the calculator mock) and scoring threads (the
sanitizer) work side by side, so each holds this lock while it parses or builds a tree; pytest's
main thread (formatting a traceback) and the interpreter's own traceback carets parse outside
it, so a parse that still meets the error is tried again: parsing is pure, a retry is safe.
"""

from __future__ import annotations

import ast
import threading

AST_LOCK = threading.RLock()
_MISMATCH = "AST constructor recursion depth mismatch"
_ATTEMPTS = 5


def parse_module(source: str) -> ast.Module:
    tree = _parse(source, "exec")
    assert isinstance(tree, ast.Module)
    return tree


def parse_expression(source: str) -> ast.Expression:
    tree = _parse(source, "eval")
    assert isinstance(tree, ast.Expression)
    return tree


def _parse(source: str, mode: str) -> ast.AST:
    for attempt in range(_ATTEMPTS):
        with AST_LOCK:
            try:
                return ast.parse(source, mode=mode)
            except SystemError as exc:
                if _MISMATCH not in str(exc) or attempt == _ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")
