"""Where a run's task files come from, decided once per run and said in the header.

- Paths named on the command line: those files, and the task files in those directories.
- Otherwise the project's task roots: the ini option `llmbench_tasks` (every entry must exist),
  or `tasks/` in the rootdir when the option is not set.
- Otherwise the tasks that ship inside the package (read through importlib.resources, so every
  kind of install finds them, `pip install --user` included).

Nothing is mixed: a project's own roots never get the bundled tasks added, and the header names
the roots in use, so neither substitution is silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..options import SHORT_NAMES_TAKEN

INI = "llmbench_tasks"
# Bundled task files have the same node ids on every install: their path inside a clone, where
# they live in the top-level tasks/ (the package's tasks/ is a link to it, so wheels carry them).
BUNDLED_PREFIX = "tasks"
# Where they lived before: node ids and results recorded then name them so.
FORMER_PREFIX = "pytest_llmbench/tasks"
DEFAULT_ROOT = "tasks"
# A YAML file in a directory named on the command line is a task file when it says so at its
# top level; other YAML (CI configs, docs) next to it is left alone.
_TASK_FILE_KEYS = re.compile(r"^(suite|tasks)\s*:", re.MULTILINE)
NO_MODELS_HINT = (
    "llmbench: task files were named but no models, so no benchmark items were collected. Name "
    "models with {flag}=KEY[,KEY] (or LLMBENCH_MODELS); list installed ones with "
    "`pytest --llmbench-list`; `{flag}=reference,null` checks the tasks without a server."
)


def bundled_root() -> Path | None:
    """The task files shipped as package data, or None if they cannot be read as files."""
    from importlib.resources import files

    root = files("pytest_llmbench") / "tasks"
    # A package on disk gives a Path; a zipped install would need extracting, which a
    # pytest collector cannot use.
    return root if isinstance(root, Path) and root.is_dir() else None


def current_name(name: str) -> str:
    """A bundled task file's node-id path as it is now, for one recorded before the files moved
    to the top-level tasks/ (`pytest_llmbench/tasks/python/seed.yaml` is `tasks/python/...`);
    any other name as it is."""
    if name == FORMER_PREFIX or name.startswith(FORMER_PREFIX + "/"):
        return BUNDLED_PREFIX + name[len(FORMER_PREFIX) :]
    return name


def carry_last_failed(config: pytest.Config) -> None:
    """`--lf` after the bundled tasks moved: the failed node ids pytest's cache recorded with
    the former path are renamed to the current one, in the cache and in the last-failed plugin
    that already read it (pytest reads the cache when it configures, before we can)."""
    cache = getattr(config, "cache", None)
    if cache is None:  # -p no:cacheprovider
        return
    failed = cache.get("cache/lastfailed", {})
    if not isinstance(failed, dict):
        return
    renamed = {_current_nodeid(nodeid): value for nodeid, value in failed.items()}
    if renamed == failed:
        return
    cache.set("cache/lastfailed", renamed)
    plugin = config.pluginmanager.get_plugin("lfplugin")
    held = getattr(plugin, "lastfailed", None)  # pytest's LFPlugin keeps what it read
    if isinstance(held, dict) and held:
        # Its keys are node-id objects on pytest 9.2 (strings before): renamed as what they are.
        kind = type(next(iter(held)))
        make = getattr(kind, "parse", kind)
        old = dict(held)
        held.clear()
        held.update({make(_current_nodeid(str(key))): value for key, value in old.items()})


def _current_nodeid(nodeid: str) -> str:
    path, sep, rest = nodeid.partition("::")
    return f"{current_name(path)}{sep}{rest}"


def bundled_nodeid(path: Path, rootdir: Path) -> str | None:
    """The node id of a bundled task file outside the rootdir (an installed plugin), as in a
    clone: `tasks/python/seed.yaml`. None for every other file (pytest's own node id is right
    for them)."""
    bundled = bundled_root()
    resolved = path.resolve()
    if bundled is None or resolved.is_relative_to(rootdir.resolve()):
        return None
    try:
        relative = resolved.relative_to(bundled.resolve())
    except ValueError:
        return None
    return f"{BUNDLED_PREFIX}/{relative.as_posix()}"


def locate_bundled_args(args: list[str], invocation_dir: Path) -> list[str]:
    """Command-line paths copied from a bundled task's node id (also one recorded before the
    move, `pytest_llmbench/tasks/...`) point at the task file: in the top-level tasks/ of a
    clone, else in the installed package (so `pytest 'ID'` re-runs it anywhere)."""
    bundled = bundled_root()
    located = []
    for arg in args:
        path, sep, rest = arg.partition("::")
        current = current_name(path)
        inside = current == BUNDLED_PREFIX or current.startswith(BUNDLED_PREFIX + "/")
        if inside and current != path and (invocation_dir / current).exists():
            arg = f"{current}{sep}{rest}"  # a clone: the id as it is now
        elif inside and bundled is not None and not (invocation_dir / path).exists():
            target = bundled / current[len(BUNDLED_PREFIX) :].lstrip("/")
            if target.exists():
                arg = f"{target}{sep}{rest}"
        located.append(arg)
    return located


@dataclass(frozen=True)
class TaskRoots:
    paths: tuple[Path, ...]  # resolved
    origin: str  # "command line", "ini", "project" or "bundled"

    def contains(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved == root or resolved.is_relative_to(root) for root in self.paths)

    def collects(self, path: Path) -> bool:
        """Whether a YAML file found during collection is a task file of this run."""
        resolved = path.resolve()
        if resolved in self.paths or (self.origin != "command line" and self.contains(path)):
            return True
        return self.contains(path) and _looks_like_task_file(path)

    def describe(self, rootdir: Path) -> str:
        shown = ", ".join(_show(path, rootdir) for path in self.paths) or "none"
        why = {
            "command line": "named on the command line",
            "ini": f"ini option {INI}",
            "project": "the project's task root",
            "bundled": f"bundled with the plugin: this project has no {DEFAULT_ROOT}/ and sets "
            f"no {INI}",
        }[self.origin]
        return f"llmbench: tasks from {shown} ({why})"


def _show(path: Path, rootdir: Path) -> str:
    suffix = "/" if path.is_dir() else ""
    try:
        relative = path.relative_to(rootdir.resolve())
    except ValueError:
        return f"{path}{suffix}"
    return "./" if str(relative) == "." else f"{relative}{suffix}"


def _looks_like_task_file(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return True  # let the loader report why it cannot be read
    return bool(_TASK_FILE_KEYS.search(head))


def resolve_roots(config: pytest.Config) -> TaskRoots:
    """The run's task roots (see the module doc); a configured root that does not exist is a
    usage error, not a reason to run something else."""
    rootdir = Path(config.rootpath)
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        named = [Path(config.invocation_params.dir, arg.split("::")[0]) for arg in config.args]
        return TaskRoots(tuple(path.resolve() for path in named), "command line")
    configured = [str(entry) for entry in config.getini(INI) or ()]
    if configured:
        paths = [rootdir / entry for entry in configured]
        pairs = zip(configured, paths, strict=True)
        missing = [entry for entry, path in pairs if not path.exists()]
        if missing:
            raise pytest.UsageError(
                f"{INI} names {', '.join(missing)}, which does not exist in {rootdir}"
            )
        return TaskRoots(tuple(path.resolve() for path in paths), "ini")
    project = rootdir / DEFAULT_ROOT
    if project.is_dir():
        return TaskRoots((project.resolve(),), "project")
    bundled = bundled_root()
    return TaskRoots((bundled.resolve(),) if bundled else (), "bundled")


def no_models_hint(config: pytest.Config) -> str | None:
    """What to do about a run that collected nothing because it named task files (or a
    directory of them) but no models; None when the command line named none."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return None
    roots = resolve_roots(config)
    for root in roots.paths:
        candidates = [root] if root.is_file() else [*root.rglob("*.yaml"), *root.rglob("*.yml")]
        if any(roots.collects(path) for path in candidates if path.suffix in (".yaml", ".yml")):
            taken = "--models" in config.stash.get(SHORT_NAMES_TAKEN, ())
            return NO_MODELS_HINT.format(flag="--llmbench-models" if taken else "--models")
    return None
