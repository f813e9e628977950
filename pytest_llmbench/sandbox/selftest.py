"""Finding out, by trying, which isolation tier works on this machine.

Each tier is checked by running a probe through it and verifying from the inside what the tier
promises (non-root, limits in force, no network, own PID namespace, read-only system) and that
a shell command with a tool works. A tier whose probe fails is unavailable, with the reasons
kept for the error message.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from .base import PyCall, SandboxError, Tier
from .identity import running_as_root
from .launch import BWRAP, SETPRIV
from .limits import PYTHON_LIMITS
from .tiers import IsolatedSandbox, make_sandbox

INSTALL_HINT = "install it with `apt-get install bubblewrap` (Debian/Ubuntu)"

PROBE_CODE = r"""
import os, resource, socket

def probe(harness_pid):
    facts = {"uid": os.getuid(), "euid": os.geteuid()}
    facts["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    facts["as"] = resource.getrlimit(resource.RLIMIT_AS)[1]
    facts["sees_harness"] = os.path.exists("/proc/%d" % harness_pid)
    facts["ppid"] = os.getppid()
    facts["processes"] = sum(name.isdigit() for name in os.listdir("/proc"))
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=1).close()
        facts["network"] = True
    except OSError:
        facts["network"] = False
    try:
        open("/usr/llmbench-probe", "w").close()
        facts["usr_writable"] = True
    except OSError:
        facts["usr_writable"] = False
    with open("/proc/self/status") as handle:
        facts["cap_eff"] = [line.split()[1] for line in handle if line.startswith("CapEff")][0]
    open("probe.txt", "w").close()
    return facts
"""


@dataclass(frozen=True)
class SelfTest:
    """Which tiers passed, and why the others did not."""

    available: tuple[Tier, ...]
    problems: dict[Tier, list[str]] = field(default_factory=dict)

    @property
    def best(self) -> Tier | None:
        return self.available[0] if self.available else None


def _missing_binaries(tier: Tier) -> list[str]:
    problems = []
    if not os.path.exists("/usr/bin/python3"):
        problems.append("/usr/bin/python3 is missing: install it with `apt-get install python3`")
    if not os.path.exists("/usr/bin/prlimit") or (
        running_as_root() and not os.path.exists(SETPRIV)
    ):
        problems.append("prlimit/setpriv are missing: install `util-linux`")
    if tier == "full" and not (os.path.exists(BWRAP) or shutil.which("bwrap")):
        problems.append(f"bubblewrap is not installed ({BWRAP} is missing): {INSTALL_HINT}")
    return problems


def _check_facts(tier: Tier, facts: object) -> list[str]:
    if not isinstance(facts, dict):
        return [f"the probe returned {facts!r}"]
    problems = []
    if running_as_root() and (facts.get("uid") == 0 or facts.get("euid") == 0):
        problems.append("sandboxed code still runs as root (the uid drop did not happen)")
    if facts.get("nproc") != PYTHON_LIMITS.processes or facts.get("as") != (
        PYTHON_LIMITS.address_space
    ):
        problems.append(f"resource limits are not in force ({facts})")
    if tier == "full":
        # PID 1 of the sandbox's namespace is the session, the probe task's fork-server is
        # its first child and the probe the fork-server's: only these three are visible.
        if facts.get("ppid") != 2 or facts.get("processes") != 3 or facts.get("sees_harness"):
            problems.append(f"no PID namespace of its own ({facts})")
        if facts.get("network"):
            problems.append("the sandbox can reach the network")
        if facts.get("usr_writable"):
            problems.append("the sandbox can write to /usr")
        if facts.get("cap_eff") != "0000000000000000":
            problems.append(f"the sandbox keeps capabilities ({facts.get('cap_eff')})")
    return problems


def probe(tier: Tier) -> list[str]:
    """Problems that keep `tier` from working here; empty when it works as promised."""
    problems = _missing_binaries(tier)
    if problems:
        return problems
    sandbox: IsolatedSandbox = make_sandbox(tier)
    try:
        return _probe(tier, sandbox)
    finally:
        sandbox.close()


def _probe(tier: Tier, sandbox: IsolatedSandbox) -> list[str]:
    try:
        (outcome,) = sandbox.run_python(
            PROBE_CODE, "probe", [PyCall(args=(os.getpid(),), timeout_s=10)]
        )
    except (OSError, SandboxError) as exc:
        return [f"starting the {tier} sandbox failed: {exc}"]
    if outcome.status != "ok":
        detail = outcome.detail.strip()[-800:]
        hint = ""
        if tier == "full":
            hint = (
                "; bwrap needs unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0; on "
                "Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0)"
            )
        return [f"the {tier} sandbox probe ended with {outcome.status}: {detail}{hint}"]
    problems = _check_facts(tier, outcome.value)
    if problems:
        return problems
    try:
        result = sandbox.run_shell("cat in.txt > out.txt", {"in.txt": "ok"}, ["cat"], 10)
    except (OSError, SandboxError) as exc:
        return [f"starting a shell in the {tier} sandbox failed: {exc}"]
    if result.exit_code != 0 or getattr(result.files.get("out.txt"), "content", None) != b"ok":
        return [f"a shell command failed in the {tier} sandbox: {result.stderr.strip()[-800:]}"]
    return []


def run_self_test() -> SelfTest:
    """Probe the tiers strongest first and stop at the first that works (a weaker one is
    never used when a stronger one is there, so probing it would only cost start-up time)."""
    order: tuple[Tier, ...] = ("full", "reduced")
    problems: dict[Tier, list[str]] = {}
    for tier in order:
        found = probe(tier)
        if not found:
            return SelfTest((tier,), problems)
        problems[tier] = found
    return SelfTest((), problems)
