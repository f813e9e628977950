"""Adversarial corpus for the shell runner: model commands that attack the harness.

Every test also checks that no process of the sandbox is left. Dangerous commands are prefixed
with GUARD, which checks from inside (with shell builtins only) that the command runs as a
non-root uid under process and memory limits, in its own PID namespace (full tier) or as an
exclusive sandbox uid (reduced tier), and exits with REFUSED otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.sandbox.base import ShellResult
from pytest_llmbench.sandbox.identity import UID_BASE
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

TOOLS = [
    "cat", "ls", "rm", "ln", "mkdir", "mkfifo", "sleep", "head", "yes", "kill", "setsid", "python3",
]  # fmt: skip


def guard(tier: str) -> str:
    namespace = (
        '[ "$$" = 1 ] || refuse "no PID namespace of its own"'
        if tier == "full"
        else f'[ "$uid" -ge {UID_BASE} ] || refuse "uid $uid is not a sandbox uid"'
    )
    return f"""
refuse() {{ echo "REFUSED: $1"; exit 99; }}
uid=; while read -r key real rest; do [ "$key" = Uid: ] && uid=$real; done < /proc/self/status
[ -n "$uid" ] && [ "$uid" != 0 ] || refuse "runs as root"
[ "$(ulimit -p)" != unlimited ] && [ "$(ulimit -p)" -le 64 ] || refuse "no process limit"
[ "$(ulimit -v)" != unlimited ] || refuse "no memory limit"
{namespace}
"""


def run(
    sandbox: IsolatedSandbox,
    command: str,
    *,
    timeout_s: float = 5.0,
    guarded: bool = False,
    files: dict[str, str] | None = None,
) -> ShellResult:
    script = (guard(sandbox.tier) if guarded else "") + command
    result = sandbox.run_shell(script, files or {}, TOOLS, timeout_s)
    assert "REFUSED" not in result.stdout, result.stdout
    return result


@pytest.fixture(autouse=True)
def no_leftovers(uid_tracker: Any) -> Iterator[None]:
    yield
    assert uid_tracker.leftovers() == {}


def test_infinite_loop_times_out(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "while :; do :; done", timeout_s=0.5)
    assert result.timed_out and result.exit_code is None


def test_sleep_times_out(sandbox: IsolatedSandbox) -> None:
    assert run(sandbox, "sleep 60", timeout_s=0.5).timed_out


def test_ignoring_signals_does_not_help(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "trap '' TERM INT HUP QUIT; sleep 60 & wait; wait", timeout_s=0.5)
    assert result.timed_out


def test_fork_bomb_is_contained(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "bomb() { bomb | bomb & }; bomb; wait", timeout_s=2, guarded=True)
    # However it ends (process limit, deadline, or the main shell exiting, which takes the
    # whole sandbox with it), it ends on time and leaves nothing behind (see no_leftovers).
    assert result.seconds < 10
    assert subprocess.run(["true"], check=False).returncode == 0


def test_memory_bomb_is_contained(sandbox: IsolatedSandbox) -> None:
    command = "python3 -c 'x = bytearray(4 << 30)' && echo ALLOCATED"
    result = run(sandbox, command, guarded=True)
    assert "ALLOCATED" not in result.stdout
    assert "MemoryError" in result.stderr


def test_stdout_flood_is_cut(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "yes", timeout_s=20)
    assert result.output_truncated
    assert result.exit_code is None
    assert len(result.stdout) <= 256 * 1024
    assert result.seconds < 15  # ended by the flood cap, not the deadline


def test_huge_file_is_capped(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "head -c 200000000 /dev/zero > big; echo $?")
    assert result.stdout.strip() != "0"
    entry = result.files["big"]
    assert entry.kind == "file" and entry.content is not None
    assert len(entry.content) <= 256 * 1024


def test_inode_flood_hits_the_work_dir_cap(sandbox: IsolatedSandbox) -> None:
    # `true`, not `:`: a failed redirection on a special builtin would end the shell.
    result = run(sandbox, 'i=0; while true > "f$i"; do i=$((i+1)); done 2>/dev/null; echo $i')
    assert not result.timed_out
    assert int(result.stdout.strip()) < 2048
    assert len(result.files) <= 2048


def test_writing_outside_the_work_dir_fails(sandbox: IsolatedSandbox) -> None:
    name = f"llmbench-escape-{uuid.uuid4().hex}"
    system = ["", "/usr", "/usr/bin", "/etc", "/root", "/var", os.getcwd()]
    shared = ["/tmp", "/var/tmp", "/dev/shm"]
    targets = [f"{directory}/{name}" for directory in system + shared]
    command = f'for p in {" ".join(targets)}; do echo x 2>/dev/null > "$p" && echo "WROTE $p"; done'
    try:
        result = run(sandbox, command)
    finally:
        for path in targets:
            if os.path.lexists(path):
                os.unlink(path)
    written = {line.split(" ", 1)[1] for line in result.stdout.splitlines()}
    if sandbox.tier == "full":
        assert written == set()
    else:
        # Without a mount namespace the world-writable dirs stay writable (documented).
        assert written <= {f"{directory}/{name}" for directory in shared}


def test_deleting_system_files_fails(sandbox: IsolatedSandbox) -> None:
    victim_dir = tempfile.mkdtemp(prefix="llmbench-victim-")
    os.chmod(victim_dir, 0o755)
    victim = Path(victim_dir, "precious.txt")
    victim.write_text("keep me")
    command = f"rm -rf {victim} {victim_dir} /usr/bin/python3 /etc/hostname /usr/bin /etc 2>&1"
    try:
        run(sandbox, command, guarded=True)
        assert victim.read_text() == "keep me"
        assert os.path.exists("/usr/bin/python3") and os.path.exists("/etc/hostname")
    finally:
        shutil.rmtree(victim_dir)


def test_home_directories_are_unreadable(sandbox: IsolatedSandbox) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"
    root_file = Path(f"/root/.llmbench-test-{uuid.uuid4().hex}")
    root_file.write_text(secret)
    os.chmod(root_file, 0o600)
    try:
        read = run(sandbox, f"cat {root_file} /root/.bashrc")
        listed = run(sandbox, "ls -a /root /home")
    finally:
        root_file.unlink()
    assert secret not in read.stdout + read.stderr
    assert root_file.name not in listed.stdout + listed.stderr


def test_api_keys_in_the_harness_environment_do_not_reach_the_command(
    sandbox: IsolatedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    result = run(sandbox, "set; cat /proc/*/environ /proc/*/cmdline 2>/dev/null; echo $PPID")
    assert secret not in result.stdout


def test_network_is_unreachable(full_sandbox: IsolatedSandbox) -> None:
    """Full tier only: the reduced tier has no network namespace (it is reported as weaker)."""
    command = (
        "python3 -c 'import socket\n"
        'for a in [("1.1.1.1", 53), ("127.0.0.1", 22)]:\n'
        "    try:\n"
        '        socket.create_connection(a, timeout=1); print("REACHED", a)\n'
        "    except OSError as e: print(e)'"
    )
    result = run(full_sandbox, command)
    assert "REACHED" not in result.stdout
    assert result.exit_code == 0, result.stderr


def test_kill_everything_reaches_only_the_sandbox(sandbox: IsolatedSandbox) -> None:
    harness = os.getpid()
    result = run(sandbox, "kill -9 -1; kill -9 $PPID; echo survived", guarded=True)
    assert os.getpid() == harness
    assert "survived" in result.stdout
    assert subprocess.run(["true"], check=False).returncode == 0


def test_daemons_do_not_outlive_the_command(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "setsid sleep 100 & (trap '' HUP; sleep 100 &) ; echo started")
    assert result.stdout == "started\n"
    assert result.seconds < 4


def test_symlinks_and_fifos_in_results_are_not_followed(sandbox: IsolatedSandbox) -> None:
    command = (
        "ln -s /etc/passwd passwd; ln -s /root/.bashrc bashrc; ln -s . loop; ln -s / rootfs; "
        "mkfifo fifo; ln /etc/passwd hard 2>/dev/null; mkdir d; ln -s ../fifo d/f; echo done"
    )
    result = run(sandbox, command)
    assert result.stdout == "done\n"
    for name in ("passwd", "bashrc", "loop", "rootfs", "d/f"):
        assert result.files[name].kind == "symlink" and result.files[name].content is None
    assert result.files["fifo"].kind == "fifo"
    assert "hard" not in result.files or b"root:" not in (result.files["hard"].content or b"")
    assert not any(name.startswith(("loop/", "rootfs/")) for name in result.files)


def test_deep_recursion_ends(sandbox: IsolatedSandbox) -> None:
    result = run(sandbox, "f() { f; }; f", timeout_s=10)
    assert result.exit_code != 0


def test_a_sandbox_after_an_attack_works_normally(sandbox: IsolatedSandbox) -> None:
    run(sandbox, "bomb() { bomb | bomb & }; bomb", timeout_s=1, guarded=True)
    result = run(sandbox, "cat in.txt", files={"in.txt": "fine"})
    assert (result.stdout, result.exit_code) == ("fine", 0)


def test_the_guard_refuses_where_isolation_is_missing() -> None:
    result = make_sandbox("none").run_shell(guard("full") + "echo ATTACKED", {}, [], 10)
    assert "REFUSED" in result.stdout and "ATTACKED" not in result.stdout
