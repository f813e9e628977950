"""Adversarial corpus for the python runner: model code that attacks the harness.

Each attack sits between two honest calls (`add(1, 1)`, `add(2, 2)`): the attack must fail or
time out, the honest calls around it must still be right, and no process of the sandbox may be
left. Attacks that would hurt the machine if isolation were missing first check, from inside,
that they are contained (non-root, limited, own PID namespace or exclusive uid) and return
"REFUSED: ..." otherwise, which fails the test instead of the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.sandbox.base import PyCall, PyOutcome
from pytest_llmbench.sandbox.identity import POOL_SIZE, UID_BASE
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

GUARD = textwrap.dedent(
    """
    import os, resource

    def refuse_unless_contained(tier, uid_low, uid_high):
        problems = []
        if os.getuid() == 0 or os.geteuid() == 0:
            problems.append("runs as root")
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        if nproc == resource.RLIM_INFINITY or nproc > 64:
            problems.append("no process limit (%s)" % nproc)
        memory = resource.getrlimit(resource.RLIMIT_AS)[1]
        if memory == resource.RLIM_INFINITY or memory > 2 ** 31:
            problems.append("no memory limit (%s)" % memory)
        if tier == "full":
            # PID 1 is the session; the call's parent is the task's fork-server, its child.
            visible = [name for name in os.listdir("/proc") if name.isdigit()]
            with open("/proc/%d/stat" % os.getppid()) as stat:
                grandparent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if grandparent != 1 or len(visible) > 4:
                problems.append("no PID namespace of its own (%d processes)" % len(visible))
        elif not uid_low <= os.getuid() < uid_high:
            problems.append("uid %d is not an exclusive sandbox uid" % os.getuid())
        return "REFUSED: " + "; ".join(problems) if problems else None
    """
)

ADD = "def add(a, b):\n    return a + b\n"


def attack(
    sandbox: IsolatedSandbox,
    body: str,
    *,
    timeout_s: float = 2.0,
    guarded: bool = False,
    prelude: str = "",
    args: tuple[Any, ...] = (),
) -> PyOutcome:
    """Run `body` as function `attack(*args)` between two honest calls; check the honest
    calls and return the attack's outcome."""
    guard = "    refusal = refuse_unless_contained(*GUARD_ARGS)\n    if refusal: return refusal\n"
    code = (
        ADD
        + GUARD
        + f"GUARD_ARGS = ({sandbox.tier!r}, {UID_BASE}, {UID_BASE + POOL_SIZE})\n"
        + prelude
        + "\ndef attack(*args):\n"
        + (guard if guarded else "")
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    calls = [
        PyCall(args=(1, 1)),
        PyCall(call=f"attack(*{args!r})", timeout_s=timeout_s),
        PyCall(args=(2, 2)),
    ]
    before, outcome, after = sandbox.run_python(code, "add", calls)
    assert (before.status, before.value) == ("ok", 2), before
    assert (after.status, after.value) == ("ok", 4), after
    if outcome.status == "ok" and isinstance(outcome.value, str):
        assert not outcome.value.startswith("REFUSED"), outcome.value
    return outcome


@pytest.fixture(autouse=True)
def no_leftovers(uid_tracker: Any) -> Iterator[None]:
    yield
    assert uid_tracker.leftovers() == {}


def test_infinite_loop_times_out(sandbox: IsolatedSandbox) -> None:
    assert attack(sandbox, "while True:\n    pass\n", timeout_s=0.5).status == "timeout"


def test_sleep_times_out(sandbox: IsolatedSandbox) -> None:
    outcome = attack(sandbox, "import time\ntime.sleep(60)\n", timeout_s=0.5)
    assert outcome.status == "timeout"


def test_ignoring_signals_does_not_help(sandbox: IsolatedSandbox) -> None:
    body = """
    import signal
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(number, signal.SIG_IGN)
    while True:
        pass
    """
    assert attack(sandbox, body, timeout_s=0.5).status == "timeout"


def test_fork_bomb_is_contained(sandbox: IsolatedSandbox) -> None:
    body = """
    while True:
        try:
            os.fork()
        except OSError:
            pass
    """
    outcome = attack(sandbox, body, timeout_s=1.5, guarded=True)
    assert outcome.status in ("timeout", "crashed"), outcome
    # the machine can still start processes
    assert subprocess.run(["true"], check=False).returncode == 0


def test_memory_bomb_hits_the_address_space_limit(sandbox: IsolatedSandbox) -> None:
    body = """
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))
    """
    # Zero-filling some 700 MiB takes a while on a loaded machine: the time limit is not what
    # this tests, so it is generous (the limit on address space ends the bomb, not the clock).
    outcome = attack(sandbox, body, timeout_s=15.0, guarded=True)
    assert (outcome.status, outcome.exception) == ("raised", "MemoryError")


def test_one_huge_allocation_fails(sandbox: IsolatedSandbox) -> None:
    outcome = attack(sandbox, "return len(' ' * 10 ** 11)\n", guarded=True)
    assert (outcome.status, outcome.exception) == ("raised", "MemoryError")


def test_stdout_flood_is_discarded(sandbox: IsolatedSandbox) -> None:
    outcome = attack(sandbox, "while True:\n    print('x' * 65536)\n", timeout_s=1.0)
    assert outcome.status == "timeout"


def test_stderr_flood_ends_the_call(sandbox: IsolatedSandbox) -> None:
    body = "import sys\nwhile True:\n    sys.stderr.write('y' * 65536)\n"
    outcome = attack(sandbox, body, timeout_s=5.0)
    assert outcome.status in ("crashed", "timeout")


def test_huge_file_hits_the_file_size_limit(sandbox: IsolatedSandbox) -> None:
    body = """
    with open("big", "wb") as handle:
        for _ in range(1000):
            handle.write(b"\\0" * (1 << 20))
    """
    outcome = attack(sandbox, body)
    assert (outcome.status, outcome.exception) == ("raised", "OSError"), outcome


def test_inode_flood_hits_the_work_dir_cap(sandbox: IsolatedSandbox) -> None:
    body = """
    made = 0
    try:
        while made < 1_000_000:
            open("f%d" % made, "w").close()
            made += 1
    except OSError as error:
        return ["stopped", made, error.errno]
    return ["not stopped", made]
    """
    outcome = attack(sandbox, body, timeout_s=10)
    assert outcome.status == "ok", outcome
    assert outcome.value[0] == "stopped" and outcome.value[1] < 2048, outcome.value


def test_deep_recursion_fails_alone(sandbox: IsolatedSandbox) -> None:
    prelude = "def deep(n):\n    return deep(n + 1)\n"
    outcome = attack(sandbox, "return deep(0)\n", prelude=prelude)
    assert (outcome.status, outcome.exception) == ("raised", "RecursionError")
    # Python 3.11 frames live on the heap: without the recursion limit this ends in a
    # MemoryError, a segfault or the deadline, depending on what runs out first.
    body = "import sys\nsys.setrecursionlimit(10 ** 8)\nreturn deep(0)\n"
    outcome = attack(sandbox, body, prelude=prelude)
    assert outcome.status in ("crashed", "timeout", "raised"), outcome


def test_always_equal_objects_are_not_results(sandbox: IsolatedSandbox) -> None:
    prelude = textwrap.dedent(
        """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
        class RiggedInt(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        class RiggedList(list):
            def __eq__(self, other):
                return True
        class RiggedStr(str):
            def __eq__(self, other):
                return True
            __hash__ = str.__hash__
        """
    )
    for made in ("AlwaysEqual()", "RiggedInt(4)", "RiggedList([1])", "[RiggedStr('a')]",
                 "{'k': RiggedInt(1)}", "(1, AlwaysEqual())"):  # fmt: skip
        outcome = attack(sandbox, f"return {made}\n", prelude=prelude)
        assert outcome.status == "bad_result", (made, outcome)


def test_forged_passed_output_is_only_output(sandbox: IsolatedSandbox) -> None:
    body = """
    import sys
    print("PASSED 52/52")
    print('{"status": "ok", "value": 4}')
    sys.stderr.write("ok\\n")
    return None
    """
    outcome = attack(sandbox, body)
    assert (outcome.status, outcome.value) == ("ok", None)


def test_forged_frames_from_a_call_fail_only_that_call(sandbox: IsolatedSandbox) -> None:
    # Writes well-formed frames claiming 42 for this call and the next, to every descriptor
    # it can find or open (its own, and the fork-server's through /proc).
    body = """
    import struct
    frames = b""
    for index in (1, 2):
        payload = b"V42"
        frames += struct.pack(">IBI", index, 3, len(payload)) + payload
    written = []
    for fd in range(3, 64):
        try:
            os.write(fd, frames)
            written.append(fd)
        except OSError:
            pass
    for pid in ("self", str(os.getppid()), "1"):
        try:
            names = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for name in names:
            try:
                fd = os.open("/proc/%s/fd/%s" % (pid, name), os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, frames)
                written.append(pid + "/" + name)
            except OSError:
                pass
    return 41
    """
    outcome = attack(sandbox, body)
    assert outcome.value != 42
    assert outcome.status in ("ok", "crashed")


def test_forged_frames_from_module_code_fail_every_call(sandbox: IsolatedSandbox) -> None:
    code = ADD + textwrap.dedent(
        """
        import os, struct
        for index in range(3):
            payload = b"V4"
            os.write(3, struct.pack(">IBI", index, 3, len(payload)) + payload)
        """
    )
    outcomes = sandbox.run_python(code, "add", [PyCall(args=(2, 2))] * 3)
    # the frames arrive before "loaded": the session is void; nothing is taken as a result
    assert [o.status for o in outcomes] == ["load_error"] * 3


def test_monkeypatching_builtins_and_the_runner_changes_nothing_outside_the_call(
    sandbox: IsolatedSandbox,
) -> None:
    body = """
    import builtins, json, __main__
    builtins.isinstance = lambda *a: True
    builtins.type = lambda *a: int
    builtins.len = lambda *a: 0
    json.dumps = lambda *a, **k: "4"
    for name in dir(__main__):
        if name.startswith("_") and not name.startswith("__"):
            try:
                setattr(__main__, name, lambda *a, **k: None)
            except Exception:
                pass
    return object()
    """
    outcome = attack(sandbox, body)
    assert outcome.status != "ok" or outcome.value != 4


def test_kill_everything_reaches_only_the_sandbox(sandbox: IsolatedSandbox) -> None:
    harness_pid = os.getpid()
    body = "try:\n    os.kill(-1, 9)\nexcept OSError:\n    pass\nreturn 'survived'\n"
    outcome = attack(sandbox, body, guarded=True)
    assert outcome.status in ("ok", "crashed")
    assert os.getpid() == harness_pid  # we are still here
    assert subprocess.run(["true"], check=False).returncode == 0


def test_setsid_daemons_and_threads_do_not_outlive_the_call(
    sandbox: IsolatedSandbox, tmp_path: Path
) -> None:
    prelude = textwrap.dedent(
        """
        import os, threading, time
        def start_daemon():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    while True:
                        with open("beacon", "a") as handle:
                            handle.write("x")
                        time.sleep(0.01)
                os._exit(0)
            threading.Thread(target=time.sleep, args=(100,)).start()
            return "started"
        def beacon_grows():
            time.sleep(0.3)
            size = os.path.getsize("beacon") if os.path.exists("beacon") else -1
            time.sleep(0.3)
            return size != (os.path.getsize("beacon") if os.path.exists("beacon") else -1)
        """
    )
    code = ADD + prelude
    calls = [PyCall(call="start_daemon()"), PyCall(call="beacon_grows()")]
    started, grows = sandbox.run_python(code, "add", calls)
    assert (started.status, started.value) == ("ok", "started")
    assert (grows.status, grows.value) == ("ok", False)


def test_network_is_unreachable(full_sandbox: IsolatedSandbox) -> None:
    """Full tier only: the reduced tier has no network namespace (it is reported as weaker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    unix_dir = tempfile.mkdtemp()
    os.chmod(unix_dir, 0o755)
    unix_path = os.path.join(unix_dir, "sock")
    unix_server = socket.socket(socket.AF_UNIX)
    unix_server.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix_server.listen()
    body = """
    import socket
    reached = []
    for address in [("127.0.0.1", args[0]), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
        try:
            socket.create_connection(address, timeout=1).close()
            reached.append(address)
        except OSError:
            pass
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"x", ("1.1.1.1", 53))
        reached.append("udp")
    except OSError:
        pass
    try:
        unix = socket.socket(socket.AF_UNIX)
        unix.connect(args[1])
        reached.append("unix")
    except OSError:
        pass
    return reached
    """
    try:
        port = server.getsockname()[1]
        outcome = attack(full_sandbox, body, args=(port, unix_path), timeout_s=5)
    finally:
        server.close()
        unix_server.close()
        shutil.rmtree(unix_dir)
    assert (outcome.status, outcome.value) == ("ok", [])


@pytest.fixture
def planted_secrets() -> Iterator[dict[str, str]]:
    """A secret in /root, one in a home dir, one root-only file next to the work dirs."""
    secret = f"SECRET-{uuid.uuid4().hex}"
    root_file = Path(f"/root/.llmbench-test-{uuid.uuid4().hex}")
    home = Path(f"/home/llmbench-test-{uuid.uuid4().hex}")
    planted = {"secret": secret, "root": str(root_file), "home": str(home / "notes.txt")}
    root_file.write_text(secret)
    os.chmod(root_file, 0o600)
    home.mkdir(mode=0o700)
    (home / "notes.txt").write_text(secret)
    try:
        yield planted
    finally:
        root_file.unlink()
        shutil.rmtree(home)


def test_home_directories_are_unreadable(
    sandbox: IsolatedSandbox, planted_secrets: dict[str, str]
) -> None:
    body = """
    found = []
    for path in args:
        try:
            with open(path) as handle:
                found.append(handle.read())
        except OSError:
            pass
    for directory in ("/root", "/home"):
        try:
            found.append(repr(os.listdir(directory)))
        except OSError:
            pass
    return found
    """
    paths = (planted_secrets["root"], planted_secrets["home"])
    outcome = attack(sandbox, body, args=paths)
    assert outcome.status == "ok"
    assert planted_secrets["secret"] not in repr(outcome.value)
    assert os.path.basename(planted_secrets["home"]) not in repr(outcome.value)


def test_api_keys_in_the_harness_environment_do_not_reach_the_code(
    sandbox: IsolatedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("LLMBENCH_API_KEY", secret)
    body = """
    seen = [repr(dict(os.environ))]
    for name in os.listdir("/proc"):
        for part in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (name, part), "rb") as handle:
                    seen.append(handle.read().decode("latin-1"))
            except OSError:
                pass
    return "\\n".join(seen)
    """
    outcome = attack(sandbox, body)
    assert outcome.status == "ok"
    assert secret not in outcome.value


FIND_EXPECTED = """
import gc, re, sys
# Matches the harness's value, not this source text (which has no 32 hex digits after).
needle = re.compile(rb"EXPECTED-[0-9a-f]{32}")
hits = []
if any(needle.search(repr(thing)[:10000].encode()) for thing in gc.get_objects()):
    hits.append("gc")
frame = sys._getframe()
while frame is not None:
    if needle.search(repr(frame.f_locals).encode()):
        hits.append("frame")
    frame = frame.f_back
for fd in range(0, 256):
    try:
        data = os.pread(fd, 1 << 20, 0)
    except OSError:
        try:
            data = os.read(fd, 1 << 20) if fd != 0 else b""
        except OSError:
            continue
    if needle.search(data):
        hits.append("fd %d" % fd)
pids = [name for name in os.listdir("/proc") if name.isdigit()] + [str(args[0])]
for pid in pids:
    for part in ("cmdline", "environ"):
        try:
            with open("/proc/%s/%s" % (pid, part), "rb") as handle:
                if needle.search(handle.read()):
                    hits.append(pid + "/" + part)
        except OSError:
            pass
    try:
        with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb") as mem:
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if "rw" in line.split()[1] and end - start < 64 << 20:
                    mem.seek(start)
                    if needle.search(mem.read(end - start)):
                        hits.append(pid + "/mem")
                        break
    except (OSError, ValueError, OverflowError):
        pass
return hits
"""


def test_expected_values_cannot_be_found_from_inside(sandbox: IsolatedSandbox) -> None:
    expected = f"EXPECTED-{uuid.uuid4().hex}"  # lives in this (harness) process only
    outcome = attack(sandbox, FIND_EXPECTED, args=(os.getpid(),), timeout_s=20)
    assert outcome.status == "ok", outcome
    assert outcome.value == [], outcome.value
    assert expected.startswith("EXPECTED-")


def test_writing_outside_the_work_dir_fails(sandbox: IsolatedSandbox) -> None:
    name = f"llmbench-escape-{uuid.uuid4().hex}"
    system = ["/", "/usr", "/usr/bin", "/etc", "/root", "/var", os.getcwd()]
    shared = ["/tmp", "/var/tmp", "/dev/shm"]
    targets = [os.path.join(directory, name) for directory in system + shared]
    body = """
    written = []
    for path in args:
        try:
            with open(path, "w") as handle:
                handle.write("x")
            written.append(path)
        except OSError:
            pass
    return written
    """
    try:
        outcome = attack(sandbox, body, args=tuple(targets))
    finally:
        for path in targets:
            if os.path.lexists(path):
                os.unlink(path)
    assert outcome.status == "ok"
    if sandbox.tier == "full":
        assert outcome.value == []
    else:
        # Without a mount namespace the world-writable dirs stay writable (documented).
        assert set(outcome.value) <= {os.path.join(d, name) for d in shared}


def test_deleting_system_files_fails(sandbox: IsolatedSandbox) -> None:
    victim_dir = tempfile.mkdtemp(prefix="llmbench-victim-")
    os.chmod(victim_dir, 0o755)
    victim = os.path.join(victim_dir, "precious.txt")
    Path(victim).write_text("keep me")
    body = """
    import shutil
    removed = []
    for path in args:
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    for path in ("/usr/bin", "/etc"):
        shutil.rmtree(path, ignore_errors=True)
    return removed
    """
    try:
        outcome = attack(
            sandbox, body, guarded=True, args=(victim, "/usr/bin/python3", "/etc/hostname")
        )
        assert (outcome.status, outcome.value) == ("ok", [])
        assert Path(victim).read_text() == "keep me"
        assert os.path.exists("/usr/bin/python3") and os.path.exists("/etc/hostname")
    finally:
        shutil.rmtree(victim_dir)


# The corpus can fail: without isolation the guard refuses and the probes find what they seek.


def test_the_guard_refuses_where_isolation_is_missing() -> None:
    code = GUARD + "def check():\n    return refuse_unless_contained('full', 0, 1)\n"
    (outcome,) = make_sandbox("none").run_python(code, "check", [PyCall()])
    assert outcome.status == "ok" and outcome.value.startswith("REFUSED"), outcome
    assert "no process limit" in outcome.value


def test_the_expected_value_probe_finds_a_leak_without_isolation() -> None:
    if os.geteuid() != 0:
        pytest.fail("this check reads the harness's memory from an unisolated process as root")
    expected = f"EXPECTED-{uuid.uuid4().hex}"
    code = "import os\ndef attack(*args):\n" + textwrap.indent(
        textwrap.dedent(FIND_EXPECTED), "    "
    )
    (outcome,) = make_sandbox("none").run_python(
        code, "attack", [PyCall(args=(os.getpid(),), timeout_s=30)]
    )
    assert outcome.status == "ok", outcome
    assert any(hit.endswith("/mem") for hit in outcome.value), outcome.value
    assert expected


def test_nested_user_namespaces_are_refused(full_sandbox: IsolatedSandbox) -> None:
    """As root of a nested user namespace the code could mount an unaccounted tmpfs."""
    body = """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return [libc.unshare(0x10000000), ctypes.get_errno()]  # CLONE_NEWUSER
    """
    outcome = attack(full_sandbox, body)
    assert outcome.status == "ok" and outcome.value[0] == -1, outcome


def test_memory_outside_the_address_space_is_capped_per_file(sandbox: IsolatedSandbox) -> None:
    # memfd pages do not count against RLIMIT_AS; RLIMIT_FSIZE still caps each file.
    body = """
    fd = os.memfd_create("bomb")
    written = 0
    try:
        while written < 1 << 30:
            written += os.write(fd, b"\\0" * (1 << 20))
    except OSError:
        pass
    return written
    """
    outcome = attack(sandbox, body, guarded=True)
    assert outcome.status in ("ok", "crashed"), outcome
    if outcome.status == "ok":
        assert outcome.value <= 16 << 20
