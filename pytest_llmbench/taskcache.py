"""Parsed task files, cached by their content, so collecting a large suite again costs little.

Parsing and validating YAML dominates collection (a thousand tasks: most of a second on a
quiet machine, far more on a busy one). A file whose bytes, plugin version and pydantic version
are unchanged parses to the same TaskFile, so its validated form is kept as a pickle under
`.llmbench/cache/tasks/` and read back next time. Any change of content misses; errors are
never cached (the loader raises them every time, with file, line, task and field).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Collection
from pathlib import Path

import pydantic

from . import __version__
from .spec import TaskFile, load_task_file


def _key(path: Path, data: bytes, builtin_tools: Collection[str] | None) -> str:
    digest = hashlib.sha256(data)
    digest.update(f"{__version__}|{pydantic.VERSION}|{path.resolve()}".encode())
    # A file that passed without its tool names checked must not be served to a caller who
    # checks them.
    tools = "unchecked" if builtin_tools is None else ",".join(sorted(builtin_tools))
    digest.update(f"|{tools}".encode())
    return digest.hexdigest()


def load_cached(
    path: Path, cache_dir: Path | None, *, builtin_tools: Collection[str] | None = None
) -> TaskFile:
    """`load_task_file(path, builtin_tools=...)`, served from `cache_dir` when the same bytes
    were parsed before."""
    if cache_dir is None:
        return load_task_file(path, builtin_tools=builtin_tools)
    try:
        data = path.read_bytes()
    except OSError:
        return load_task_file(path, builtin_tools=builtin_tools)  # the loader words the error
    entry = cache_dir / f"{_key(path, data, builtin_tools)}.pickle"
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, AttributeError):
        cached = pickle.loads(entry.read_bytes())
        if isinstance(cached, TaskFile):
            return cached
    task_file = load_task_file(path, builtin_tools=builtin_tools)
    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed: a reader (another xdist worker) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(task_file, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
    return task_file
