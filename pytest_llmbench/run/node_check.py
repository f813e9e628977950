"""What a remote xdist node has, told to the controller before the node runs anything.

The controller sends this module's source to the node through execnet (the gateway xdist opened
for the worker, before xdist starts the worker there), with what the run needs; the node
answers with its facts and run/remote.py compares them. The facts are gathered by a Python of
their own on the node, in the node's working directory: the worker xdist starts next in the
gateway's process must be the first there to import the plugin (pytest rewrites its asserts),
and the check must run even where the plugin is missing or another version, so this module
imports nothing but the standard library at the top.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 5.0
FACTS_TIMEOUT_S = 100.0  # the sandbox's self-test, and a connection to each server
BUNDLED = "bundled/"  # a task file named so is inside the installed plugin


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def reachable(url: str) -> str | None:
    """None when a TCP connection to the URL's server opens from here, else why not."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def node_facts(need: dict[str, Any]) -> dict[str, Any]:
    """The plugin's version, the digests of the run's task files (by path relative to the
    project's root, which is this working directory; `bundled/...` inside the installed
    plugin), the sandbox tier, and the servers that do not answer from here."""
    facts: dict[str, Any] = {"python": sys.executable, "cwd": str(Path.cwd())}
    try:
        import pytest_llmbench
    except ImportError as exc:
        facts["missing"] = str(exc)
        return facts
    facts["version"] = pytest_llmbench.__version__
    bundled = Path(pytest_llmbench.__file__).parent / "tasks"
    files: dict[str, str] = {}
    for name in need.get("files", ()):
        path = bundled / name[len(BUNDLED) :] if name.startswith(BUNDLED) else Path(name)
        files[name] = file_digest(path)
    facts["files"] = files
    isolation = need.get("isolation")
    if isolation:
        try:
            from pytest_llmbench.sandbox import SandboxUnavailable, get_sandbox

            sandbox = get_sandbox(isolation)
            facts["tier"] = sandbox.tier
            sandbox.close()
        except SandboxUnavailable as exc:
            facts["tier"] = None
            facts["sandbox_problem"] = str(exc)
    facts["unreachable"] = {
        url: why for url in need.get("urls", ()) if (why := reachable(url)) is not None
    }
    return facts


def gathered(need: dict[str, Any], source: str) -> dict[str, Any]:
    """`node_facts(need)` from a Python of its own (this module's `source` run as a script)."""
    here = {"python": sys.executable, "cwd": os.getcwd()}
    try:
        done = subprocess.run(
            [sys.executable, "-c", source], input=json.dumps(need), capture_output=True,
            text=True, timeout=FACTS_TIMEOUT_S,
        )  # fmt: skip
        facts: dict[str, Any] = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        lines = (getattr(exc, "stderr", None) or str(exc) or type(exc).__name__).splitlines()
        return {**here, "error": lines[-1] if lines else type(exc).__name__}
    return facts


if __name__ == "__main__":  # on the node, in the Python `gathered` starts
    json.dump(node_facts(json.load(sys.stdin)), sys.stdout)
elif __name__ == "__channelexec__":  # on the node, in the gateway's process
    channel = globals()["channel"]  # execnet's
    channel.send(gathered(*channel.receive()))
