"""Which host files a sandbox needs to see, and how to show exactly those.

The full tier starts from an empty root and bind-mounts, read-only, only what the command
needs: the named tools, /bin/sh, the python interpreter and its standard library, and the
shared libraries all of those load. Symlink chains (`/usr/bin/awk -> /etc/alternatives/awk ->
/usr/bin/mawk`, `/lib64 -> usr/lib64`) are recreated as symlinks so paths resolve as on the host.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Tools are looked up here and not on the harness's PATH, which may hold shims under /root
# (pyenv) that the sandbox user cannot run.
SYSTEM_PATH = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")
PYTHON = "/usr/bin/python3"
SHELL = "/bin/sh"

_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


class ToolNotFound(LookupError):
    pass


def resolve_tool(name: str) -> str:
    """The host path of a tool named in a task (a bare command name)."""
    if not name or "/" in name or name in (".", ".."):
        raise ToolNotFound(f"tool names are bare command names: {name!r}")
    for directory in SYSTEM_PATH:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ToolNotFound(f"tool {name!r} is not installed in {':'.join(SYSTEM_PATH)}")


def _interpreter(path: str) -> str | None:
    """The `#!` interpreter of a script, None for anything else."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return os.fsdecode(words[0]) if words else None


def _is_elf(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


@functools.lru_cache(maxsize=64)
def _libraries(binaries: tuple[str, ...]) -> tuple[str, ...]:
    """The shared libraries (transitively, as the loader resolves them) of some ELF files.
    ldd on a system binary only runs the dynamic loader in list mode; one call serves all."""
    listing = subprocess.run(
        ["ldd", *binaries], capture_output=True, text=True, check=False, env={"LC_ALL": "C"}
    ).stdout
    return tuple(dict.fromkeys(match.group(1) for match in _LDD_PATH.finditer(listing)))


def closure(paths: Iterable[str]) -> list[str]:
    """`paths` plus everything they need to run, transitively, in a stable order."""
    seen: dict[str, None] = {}
    pending = list(paths)
    while pending:
        fresh = [path for path in dict.fromkeys(pending) if path not in seen]
        seen.update(dict.fromkeys(fresh))
        binaries: list[str] = []
        pending = []
        for path in fresh:
            if not os.path.isfile(path):
                continue
            real = os.path.realpath(path)
            interpreter = _interpreter(real)
            if interpreter is not None:
                pending.append(interpreter)
            elif _is_elf(real):
                binaries.append(real)
        if binaries:
            pending.extend(_libraries(tuple(sorted(binaries))))
    return list(seen)


@functools.lru_cache(maxsize=1)
def python_stdlib() -> str:
    """The standard library directory of /usr/bin/python3 (e.g. /usr/lib/python3.11)."""
    version = os.path.basename(os.path.realpath(PYTHON))  # python3.11
    return os.path.join("/usr/lib", version)


@dataclass
class BindPlan:
    """bwrap operations that reproduce a set of host paths read-only, deduplicated."""

    ops: list[str] = field(default_factory=list)
    _done: set[str] = field(default_factory=set)
    _dirs: list[str] = field(default_factory=list)

    def _covered(self, path: str) -> bool:
        return any(path.startswith(directory) for directory in self._dirs)

    def _symlink(self, target: str, where: str) -> None:
        if where not in self._done and not self._covered(where):
            self._done.add(where)
            self.ops += ["--symlink", target, where]

    def add(self, path: str) -> None:
        """Show host `path` at the same place; symlinks on the way become symlinks."""
        for _ in range(40):  # the kernel's own symlink-following limit
            parent, name = os.path.split(os.path.normpath(path))
            parent = self._add_parent(parent)
            here = os.path.join(parent, name)
            if os.path.islink(here):
                target = os.readlink(here)
                self._symlink(target, here)
                path = os.path.join(parent, target)
                continue
            if here not in self._done and not self._covered(here):
                self._done.add(here)
                self.ops += ["--ro-bind", here, here]
                if os.path.isdir(here):
                    self._dirs.append(here + "/")
            return
        raise OSError(f"too many symlinks resolving {path}")

    def _add_parent(self, directory: str) -> str:
        """Recreate symlinked ancestors (/lib -> usr/lib) and return the resolved directory."""
        resolved = "/"
        for part in directory.strip("/").split("/"):
            if not part:
                continue
            candidate = os.path.join(resolved, part)
            if os.path.islink(candidate):
                self._symlink(os.readlink(candidate), candidate)
                candidate = os.path.realpath(candidate)
            resolved = candidate
        return resolved

    def add_tool_link(self, tool_dir: str, name: str, host_path: str) -> None:
        self._symlink(host_path, os.path.join(tool_dir, name))


@functools.lru_cache(maxsize=1)
def python_paths() -> tuple[str, ...]:
    """The interpreter, its stdlib, and the whole multiarch library directory: the C extension
    modules need libz, libffi, libssl, ... and running ldd on each of them costs a second."""
    interpreter = closure([PYTHON])
    libc = next(path for path in interpreter if os.path.basename(path).startswith("libc.so"))
    library_dir = os.path.dirname(os.path.realpath(libc))
    return (library_dir, python_stdlib(), *interpreter)


def shell_paths(tools: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Host paths to show for a shell run, and tool name -> host path."""
    resolved = {name: resolve_tool(name) for name in dict.fromkeys(tools)}
    roots = [SHELL, *resolved.values()]
    paths = closure(roots)
    if any(os.path.basename(os.path.realpath(p)).startswith("python3") for p in roots):
        paths = [*python_paths(), *paths]
    return paths, resolved
