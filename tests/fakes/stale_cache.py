"""Parsed-task cache entries that another layout of the package, or a damaged disk, leaves
behind: what `pytest_llmbench.taskfiles.cache` must read as a miss."""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Callable


def pickled_from(module: str, name: str) -> bytes:
    """A pickle of an instance of class `name` in `module`, as a layout where it lived there
    wrote it; the module (or the name in it) is gone again when this returns."""
    cls = type(name, (), {"__module__": module})
    created = module not in sys.modules
    holder = sys.modules.setdefault(module, types.ModuleType(module))
    had = hasattr(holder, name)
    old = getattr(holder, name, None)
    setattr(holder, name, cls)
    try:
        return pickle.dumps(cls())
    finally:
        if created:
            del sys.modules[module]
        elif had:
            setattr(holder, name, old)
        else:
            delattr(holder, name)


# Every kind of entry that cannot be read back as a TaskFile: its bytes, made on demand.
STALE: dict[str, Callable[[], bytes]] = {
    # the class's module moved away (ModuleNotFoundError)
    "moved module": lambda: pickled_from("pytest_llmbench.old_layout", "TaskFile"),
    # the class moved out of a module that is still there (AttributeError)
    "moved class": lambda: pickled_from("pytest_llmbench.taskfiles.format", "OldTaskFile"),
    "garbage": lambda: b"garbage",
    "empty": lambda: b"",
    # a pickle whose objects cannot be rebuilt (ValueError)
    "foreign": lambda: b"cbuiltins\nint\n(S'x'\ntR.",
    # an old format: reads back, but as something else
    "old format": lambda: pickle.dumps({"suite": "python", "tasks": []}),
}
