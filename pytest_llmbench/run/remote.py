"""xdist workers on other machines, as part of one run.

`pytest --models=a,b -d --tx ssh=gpu-box//python=/opt/venv/bin/python//chdir=project` (or
`--tx socket=HOST:PORT//chdir=...`) runs workers in a copy of the project on another machine.
For such a node (any `--tx` that is not a local popen without chdir) the controller:

- checks it before it runs anything (run/node_check.py runs there): the same plugin version,
  the same task files, the sandbox tier this run isolates model code with, and the model
  servers reachable from there. A node that fails stops the run with one line naming it;
- stops xdist from copying pytest itself into the node's directory (its deprecated rsync, on by
  default for such nodes): the node runs its own installed pytest and plugin, and nothing is
  written under its project (the controller owns the results: storage/relay.py);
- hands it the paths named on the command line relative to the project (`<rootdir>/PATH`),
  which the worker reads against its own working directory, the copy's root. xdist would
  refuse such paths outright: they are under no rsync root (pytest-xdist issue 1081).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .. import __version__
from ..options import ROOTDIR_ARG, Settings
from ..taskfiles.roots import TaskRoots, bundled_root
from . import node_check

# The node's check starts a sandbox there once (its self-test) and connects to each server.
CHECK_TIMEOUT_S = 120.0


def is_remote(spec: Any) -> bool:
    """An execnet spec whose worker runs outside this process's directory (xdist passes paths
    to it relative to rsync roots, and rsyncs to it)."""
    return not getattr(spec, "popen", False) or bool(getattr(spec, "chdir", None))


def describe(spec: Any) -> str:
    """`socket=HOST:PORT`, `ssh=HOST`, ... with its chdir: how the user named the node."""
    kind = next(
        (k for k in ("socket", "ssh", "vagrant_ssh", "popen") if getattr(spec, k, None)), ""
    )
    where = getattr(spec, kind, "") if kind != "popen" else ""
    text = f"{kind}={where}" if where and where is not True else kind
    chdir = getattr(spec, "chdir", None)
    return f"{text}//chdir={chdir}" if chdir else text


def relative_args(args: Sequence[str], invocation_dir: Path, rootdir: Path) -> list[str]:
    """The command line with each path that exists here made `<rootdir>/PATH`."""
    out = []
    for arg in args:
        path, sep, rest = arg.partition("::")
        local = invocation_dir / path
        if arg.startswith("-") or not path or not local.exists():
            out.append(arg)
            continue
        try:
            inside = local.resolve().relative_to(rootdir.resolve())
        except ValueError:
            raise pytest.UsageError(
                f"llmbench: {arg} is outside the rootdir {rootdir}; remote workers (--tx) "
                "collect paths inside the project only"
            ) from None
        out.append(f"{ROOTDIR_ARG}{inside.as_posix()}{sep}{rest}")
    return out


def task_files(roots: TaskRoots, rootdir: Path) -> dict[str, str]:
    """The run's task files as a node names them (relative to the project's root, the bundled
    ones as `bundled/...`, others by their absolute path), each with its digest here."""
    bundled = bundled_root()
    files: dict[str, str] = {}
    for root in roots.paths:
        found = [root] if root.is_file() else [*root.rglob("*.yaml"), *root.rglob("*.yml")]
        for path in sorted(p for p in found if roots.collects(p)):
            resolved = path.resolve()
            if resolved.is_relative_to(rootdir.resolve()):
                name = resolved.relative_to(rootdir.resolve()).as_posix()
            elif bundled is not None and resolved.is_relative_to(bundled.resolve()):
                name = node_check.BUNDLED + resolved.relative_to(bundled.resolve()).as_posix()
            else:
                name = str(resolved)
            files[name] = node_check.file_digest(resolved)
    return files


def needs(config: pytest.Config, settings: Settings, roots: TaskRoots) -> dict[str, Any]:
    """What a node must have for this run: its task files by digest, the sandbox it is
    asked for, the servers it must reach (run/node_check.py is sent these)."""
    from ..backends import BACKENDS, default_base_url

    urls: list[str] = []
    if settings.backend != "embedded":  # the embedded backend starts its servers on the node
        for model in settings.real_models:
            for url in settings.urls_for(model):
                url = url or (
                    default_base_url(settings.backend) if settings.backend in BACKENDS else None
                )
                if url and url not in urls:
                    urls.append(url)
    return {
        "files": task_files(roots, Path(config.rootpath)),
        "isolation": settings.isolation,
        "urls": urls,
    }


def refusal(node: str, need: dict[str, Any], facts: dict[str, Any]) -> str | None:
    """The one line that stops the run when the node cannot take part in it, else None."""
    where = f"llmbench: node {node} ({facts.get('python', '?')} in {facts.get('cwd', '?')})"
    if "error" in facts:
        return f"{where}: the check could not run there: {facts['error']}"
    if "missing" in facts:
        return f"{where} has no pytest-llmbench: pip install pytest-llmbench=={__version__} there"
    if facts.get("version") != __version__:
        return (
            f"{where} runs pytest-llmbench {facts.get('version')}, this machine "
            f"{__version__}: install the same version on both"
        )
    there = facts.get("files", {})
    differ = [name for name, digest in need["files"].items() if there.get(name) != digest]
    if differ:
        missing = there.get(differ[0]) == "missing"
        how = "is missing there" if missing else "differs there"
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        return (
            f"{where}: task file {differ[0]} {how}{more}; the node's working directory must "
            "be a copy of this project at the same version (--tx ...//chdir=PATH)"
        )
    if need.get("isolation") and facts.get("tier") != need["tier"]:
        problem = facts.get("sandbox_problem") or f"it would isolate at {facts.get('tier')!r}"
        return f"{where} cannot isolate model code as this run does ({need['tier']!r}): {problem}"
    unreachable = facts.get("unreachable") or {}
    if unreachable:
        url, why = next(iter(unreachable.items()))
        return (
            f"{where} cannot reach the model server {url} ({why}): start it there, or give "
            "a URL that node can reach with --llmbench-base-url / --llmbench-endpoint"
        )
    return None


class RemoteNodes:
    """The controller's hooks for remote nodes (registered when --tx names one)."""

    def __init__(
        self, config: pytest.Config, need: dict[str, Any], tier: Callable[[], str]
    ) -> None:
        self.config = config
        self.need = need  # remote.needs()
        self.tier = tier  # the sandbox tier this run isolates with (known at the start)
        self._invocation: Any = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Sequence[Any]) -> None:
        dsession = config.pluginmanager.getplugin("dsession")
        manager = getattr(dsession, "nodemanager", None)
        asked = list(config.getoption("rsyncdir", None) or ()) + list(config.getini("rsyncdirs"))
        if manager is not None and not asked:
            manager.roots = []  # xdist's own default: a copy of pytest itself
        params = config.invocation_params
        self._invocation = params
        args = relative_args(params.args, params.dir, Path(config.rootpath))
        config.invocation_params = dataclasses.replace(params, args=tuple(args))

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:  # the nodes are set up: the command line is this process's own again
            if self._invocation is not None:
                self.config.invocation_params = self._invocation

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        gateway = node.gateway
        if not is_remote(gateway.spec):
            return
        channel = gateway.remote_exec(node_check)
        sent = {**self.need, "files": list(self.need["files"])}  # the node's own digests back
        channel.send((sent, inspect.getsource(node_check)))
        facts = channel.receive(timeout=CHECK_TIMEOUT_S)
        channel.waitclose(timeout=CHECK_TIMEOUT_S)
        need = {**self.need, "tier": self.tier()}
        line = refusal(f"{gateway.id} {describe(gateway.spec)}", need, facts)
        if line is not None:
            pytest.exit(line, returncode=pytest.ExitCode.USAGE_ERROR)
