"""Remote xdist nodes on this machine: execnet's own socket server, started in a directory.

`pytest --tx socket=HOST:PORT//chdir=DIR` runs a worker inside such a server, as it would on
another machine; the server is a process of the test's own, stopped by its id.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import execnet.script.socketserver

SCRIPT = execnet.script.socketserver.__file__


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SocketNode:
    """A socket server in `directory`; `tx` is the --tx that runs a worker in it."""

    def __init__(self, directory: Path, *, other_plugin: Path | None = None) -> None:
        """`other_plugin`: a directory put first on the node's Python path (a package
        pytest_llmbench there stands for another version installed on that machine)."""
        self.directory = directory
        self.port = free_port()
        command = [sys.executable, SCRIPT, f"127.0.0.1:{self.port}"]
        # No bytecode: the node's directory must stay as the test made it.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTEST_XDIST_WORKER", None)
        if other_plugin is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(other_plugin),
                                                              env.get("PYTHONPATH")]))  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_listening()

    @property
    def tx(self) -> str:
        return f"--tx=socket=127.0.0.1:{self.port}//chdir={self.directory}"

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the socket server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return  # (the server takes this probe as a connection and drops it)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"no socket server on port {self.port} after 20 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def snapshot(directory: Path) -> dict[str, tuple[int, float]]:
    """Every file under `directory` with its size and modification time."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime)
        for path in sorted(directory.rglob("*"))
    }
