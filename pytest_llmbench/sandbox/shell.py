"""Running a model-written shell command in a fresh work dir, harness side."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import hostfs
from .base import SandboxError, ShellResult
from .identity import claim_uid
from .launch import Job, Launcher
from .limits import SHELL_LIMITS, Limits
from .pump import CappedBuffer, Watcher
from .snapshot import snapshot
from .workdir import work_dir

OUTPUT_KEEP = 256 * 1024
OUTPUT_FLOOD = 64 << 20


@dataclass(frozen=True)
class ShellRunner:
    launcher: Launcher
    limits: Limits = SHELL_LIMITS

    def run(
        self,
        command: str,
        files: Mapping[str, str],
        tools: Sequence[str],
        timeout_s: float,
    ) -> ShellResult:
        host_paths, resolved = hostfs.shell_paths(tools)
        limits = self.limits.with_cpu_for(timeout_s)
        with claim_uid() as uid, work_dir(limits, uid, files) as workdir:
            job = Job(
                argv=(hostfs.SHELL, "-c", command),
                workdir=workdir,
                limits=limits,
                host_paths=host_paths,
                tools=resolved,
            )
            started = time.monotonic()
            running = self.launcher.start(job, uid)
            stdout = CappedBuffer(OUTPUT_KEEP, OUTPUT_FLOOD)
            stderr = CappedBuffer(OUTPUT_KEEP, OUTPUT_FLOOD)
            watcher = Watcher(running.pid, [running.stdout, running.stderr])
            timed_out = False
            flooded: str | None = None

            def take(chunks: list[tuple[int, bytes]]) -> None:
                for fd, data in chunks:
                    (stdout if fd == running.stdout else stderr).feed(data)

            try:
                deadline = started + timeout_s
                while not watcher.exited:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        timed_out = True
                        break
                    take(watcher.poll(remaining))
                    if stdout.flooded or stderr.flooded:
                        flooded = "stdout" if stdout.flooded else "stderr"
                        break
            finally:
                running.kill()  # returns once no process of the sandbox is left
                take(watcher.drain())
                watcher.close()
                exit_code = running.wait()
                command_ran = running.ran()
                running.close()
            seconds = time.monotonic() - started
            if not (timed_out or flooded or command_ran):
                raise SandboxError(f"the shell sandbox did not start: {stderr.text()[-2000:]}")
            # Inspected only now: nothing in the sandbox can change the work dir any more.
            files_after = snapshot(workdir)
        return ShellResult(
            stdout=stdout.text(),
            stderr=stderr.text(),
            exit_code=None if timed_out or flooded else exit_code,
            timed_out=timed_out,
            files=files_after,
            seconds=seconds,
            output_truncated=stdout.truncated or stderr.truncated,
            flooded=flooded,
            flood_limit=OUTPUT_FLOOD,
        )
