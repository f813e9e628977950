"""Parsed task files, cached by their content, so collecting a large suite again costs little.

Parsing and validating YAML dominates collection (a thousand tasks: most of a second on a
quiet machine, far more on a busy one). A file whose bytes, plugin version and pydantic version
are unchanged parses to the same TaskFile, so its validated form is kept as a pickle under
`.llmbench/cache/tasks/` and read back next time. Any change of content misses; errors are
never cached (the loader raises them every time, with file, line, task and field).

The cache can only ever cost a parse, never a run. Its key also holds `FORMAT` and where the
parsed-task classes live, so entries written by another layout of the package (classes moved or
renamed) miss cleanly; and an entry that cannot be read back for any reason (a moved module, a
truncated or foreign file) is a miss too, parsed again and overwritten. A failed write is
dropped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import tempfile
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pydantic

from .. import __version__
from .format import TaskFile
from .loading import load_task_file

# Raise when what is pickled changes shape in a way the class names below do not show.
FORMAT = 2


def _classes(annotation: Any, found: set[type]) -> None:
    """The pydantic models an annotation can hold (through lists, unions, Annotated), and
    theirs, recursively: every class a pickled TaskFile refers to."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                _classes(field.annotation, found)
        return
    for arg in typing.get_args(annotation):
        _classes(arg, found)


@functools.cache
def layout() -> str:
    """The cache format and where every class of a parsed task file lives."""
    found: set[type] = set()
    _classes(TaskFile, found)
    names = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found)
    return f"{FORMAT}|{','.join(names)}"


def _key(path: Path, data: bytes, builtin_tools: Collection[str] | None) -> str:
    digest = hashlib.sha256(data)
    digest.update(f"{__version__}|{pydantic.VERSION}|{layout()}|{path.resolve()}".encode())
    # A file that passed without its tool names checked must not be served to a caller who
    # checks them.
    tools = "unchecked" if builtin_tools is None else ",".join(sorted(builtin_tools))
    digest.update(f"|{tools}".encode())
    return digest.hexdigest()


def _read(entry: Path) -> TaskFile | None:
    try:
        cached = pickle.loads(entry.read_bytes())
    # Whatever another layout or a damaged file raises: ModuleNotFoundError or AttributeError
    # for a class that moved, UnpicklingError, EOFError, ValueError, TypeError for the rest.
    except Exception:
        return None
    return cached if isinstance(cached, TaskFile) else None


def _write(cache_dir: Path, entry: Path, task_file: TaskFile) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed: a reader (another xdist worker) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(task_file, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
    except Exception:  # a full disk, a path taken by a directory, a class pickle cannot find
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_cached(
    path: Path,
    cache_dir: Path | None,
    *,
    builtin_tools: Collection[str] | None = None,
    keep: bool = True,
) -> TaskFile:
    """`load_task_file(path, builtin_tools=...)`, served from `cache_dir` when the same bytes
    were parsed before; what is parsed anew is kept there when `keep`."""
    if cache_dir is None:
        return load_task_file(path, builtin_tools=builtin_tools)
    try:
        data = path.read_bytes()
    except OSError:
        return load_task_file(path, builtin_tools=builtin_tools)  # the loader words the error
    entry = cache_dir / f"{_key(path, data, builtin_tools)}.pickle"
    cached = _read(entry)
    if cached is not None:
        return cached
    task_file = load_task_file(path, builtin_tools=builtin_tools)
    if keep:
        _write(cache_dir, entry, task_file)
    return task_file
