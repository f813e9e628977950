"""One lock for building ASTs from several threads at once.

CPython 3.11's AST constructor keeps its recursion depth in shared state, so two threads that
parse or build ASTs at the same time can fail with "SystemError: AST constructor recursion
depth mismatch". Generation threads (the calculator mock) and scoring threads (the sanitizer)
work side by side, so each holds this lock while it parses or builds a tree.
"""

from __future__ import annotations

import threading

AST_LOCK = threading.Lock()
