"""What isolation costs: the bundled tasks' reference solutions scored through each sandbox
tier, against bare subprocess execution.

    python3 benchmarks/sandbox_overhead.py [--repeat 5] [--limit 0] [--tiers full,reduced,none]

Python tasks: each task is run with all its cases and with its first case only (each `repeat`
times, alternating between tiers, median kept), which splits its time into a per-task part
(start-up, loading the code) and a per-case part: per_case = (T_all - T_first) / (n - 1),
per_task = T_first - per_case.
"bare" is what the original harness did: one `python3 -I` subprocess that execs the code and
runs every case in-process. Overhead = tier - bare, per task; the table shows the median and
90th percentile over tasks. Cli tasks: every case is one command, so the whole run is per case;
"bare" is `/bin/sh -c` in a temporary directory.

This measures; it asserts nothing (the target is 30 ms per task and 5 ms per case for the
full tier, median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.sandbox.base import PyCall, Tier
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

ROOT = Path(__file__).resolve().parent.parent
BARE_RUNNER = r"""
import json, sys
spec = json.loads(sys.stdin.read())
namespace = {"__name__": "solution"}
exec(compile(spec["code"], "solution.py", "exec"), namespace)
results = []
for call in spec["calls"]:
    scope = dict(namespace)
    try:
        if call["setup"]:
            exec(call["setup"], scope)
        if call["call"]:
            value = eval(call["call"], scope)
        else:
            value = scope[spec["entry"]](*call["args"], **call["kwargs"])
        results.append(repr(value))
    except BaseException as exc:
        results.append(type(exc).__name__)
print(json.dumps(results))
"""


@dataclass(frozen=True)
class PyTask:
    name: str
    code: str
    entry: str
    calls: tuple[PyCall, ...]


@dataclass(frozen=True)
class CliTask:
    name: str
    command: str
    files: dict[str, str]
    tools: tuple[str, ...]


def load_tasks() -> tuple[list[PyTask], list[CliTask]]:
    python: list[PyTask] = []
    cli: list[CliTask] = []
    for path in sorted((ROOT / "tasks" / "python").glob("*.yaml")):
        for task in yaml.safe_load(path.read_text())["tasks"]:
            calls = tuple(
                PyCall(
                    args=tuple(case.get("args", ())),
                    kwargs=case.get("kwargs", {}),
                    setup=case.get("setup"),
                    call=case.get("call"),
                )
                for case in task["cases"]
            )
            python.append(PyTask(task["id"], task["reference"], task["entry_point"], calls))
    default_tools = (
        "echo", "printf", "cat", "ls", "wc", "sort", "head", "tail", "grep", "cut", "awk",
        "tr", "sed", "uniq", "mkdir", "touch", "python3",
    )  # fmt: skip
    for path in sorted((ROOT / "tasks" / "cli").glob("*.yaml")):
        for task in yaml.safe_load(path.read_text())["tasks"]:
            tools = tuple(task.get("tools", default_tools))
            cli.append(CliTask(task["id"], task["reference"], task.get("files", {}), tools))
    return python, cli


def bare_python(task: PyTask, calls: Sequence[PyCall]) -> None:
    spec = {
        "code": task.code,
        "entry": task.entry,
        "calls": [
            {"args": list(c.args), "kwargs": dict(c.kwargs), "setup": c.setup, "call": c.call}
            for c in calls
        ],
    }
    subprocess.run(
        ["/usr/bin/python3", "-I", "-c", BARE_RUNNER],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=True,
    )


def bare_shell(task: CliTask) -> None:
    with tempfile.TemporaryDirectory() as work:
        for name, text in task.files.items():
            target = Path(work, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        subprocess.run(["/bin/sh", "-c", task.command], cwd=work, capture_output=True)


def sandbox_for(tier: str) -> IsolatedSandbox | None:
    """None stands for bare subprocess execution."""
    tiers: dict[str, Tier] = {"full": "full", "reduced": "reduced", "none": "none"}
    return None if tier == "bare" else make_sandbox(tiers[tier])


def run_python(sandbox: IsolatedSandbox | None, task: PyTask, calls: Sequence[PyCall]) -> None:
    if sandbox is None:
        bare_python(task, calls)
        return
    outcomes = sandbox.run_python(task.code, task.entry, calls)
    bad = [o for o in outcomes if o.status not in ("ok", "raised")]
    if bad:
        raise RuntimeError(f"{sandbox.tier} {task.name}: {bad[0]}")


def interleaved(actions: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median seconds per action. Runs alternate between the actions, so drift in the
    machine's state (the kernel tearing down namespaces in the background, other load)
    spreads over all tiers instead of landing on whichever ran last."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def python_costs(
    tasks: Sequence[PyTask], tiers: Sequence[str], repeat: int
) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Per tier: (per-task seconds by task name, per-case seconds by task name)."""
    sandboxes = {tier: sandbox_for(tier) for tier in tiers}
    costs: dict[str, tuple[dict[str, float], dict[str, float]]] = {t: ({}, {}) for t in tiers}
    for task in tasks:
        first = interleaved(
            {t: partial(run_python, sandboxes[t], task, task.calls[:1]) for t in tiers}, repeat
        )
        everything = (
            interleaved(
                {t: partial(run_python, sandboxes[t], task, task.calls) for t in tiers}, repeat
            )
            if len(task.calls) > 1
            else {}
        )
        for tier in tiers:
            per_task, per_case = costs[tier]
            if everything:
                case = max(0.0, (everything[tier] - first[tier]) / (len(task.calls) - 1))
                per_case[task.name] = case
                per_task[task.name] = first[tier] - case
            else:
                per_task[task.name] = first[tier]
    return costs


def run_shell(sandbox: IsolatedSandbox | None, task: CliTask) -> None:
    if sandbox is None:
        bare_shell(task)
    else:
        sandbox.run_shell(task.command, task.files, task.tools, 20)


def shell_costs(
    tasks: Sequence[CliTask], tiers: Sequence[str], repeat: int
) -> dict[str, dict[str, float]]:
    sandboxes = {tier: sandbox_for(tier) for tier in tiers}
    costs: dict[str, dict[str, float]] = {tier: {} for tier in tiers}
    for task in tasks:
        medians = interleaved({t: partial(run_shell, sandboxes[t], task) for t in tiers}, repeat)
        for tier, value in medians.items():
            costs[tier][task.name] = value
    return costs


def summary(values: Sequence[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:8.1f} {p90 * 1000:8.1f}"


def overhead(tier: dict[str, float], bare: dict[str, float]) -> list[float]:
    return [tier[name] - bare[name] for name in tier if name in bare]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="first N tasks per suite (0: all)")
    parser.add_argument("--tiers", default="full,reduced,none")
    options = parser.parse_args()
    python, cli = load_tasks()
    if options.limit:
        python, cli = python[: options.limit], cli[: options.limit]
    tiers: list[str] = ["bare", *options.tiers.split(",")]
    cases = sum(len(task.calls) for task in python)
    print(
        f"sandbox overhead on {os.cpu_count()} cores, uid {os.geteuid()}; "
        f"{len(python)} python tasks ({cases} cases), {len(cli)} cli tasks; "
        f"median of {options.repeat} runs per task; times in ms\n"
    )
    for tier in tiers:  # first use pays one-off costs (finding libraries, the self-test's)
        if (sandbox := sandbox_for(tier)) is not None and python and cli:
            run_python(sandbox, python[0], python[0].calls[:1])
            run_shell(sandbox, cli[0])
    py_results = python_costs(python, tiers, options.repeat)
    sh_results = shell_costs(cli, tiers, options.repeat)
    bare_task, bare_case = py_results["bare"]
    header = (
        f"{'python':8} {'task med':>8} {'p90':>8} {'case med':>8} {'p90':>8} | "
        f"{'+task med':>9} {'p90':>8} {'+case med':>9} {'p90':>8}"
    )
    print(header)
    print("-" * len(header))
    for tier in tiers:
        per_task, per_case = py_results[tier]
        print(
            f"{tier:8} {summary(list(per_task.values()))} {summary(list(per_case.values()))} | "
            f" {summary(overhead(per_task, bare_task))}  {summary(overhead(per_case, bare_case))}"
        )
    print()
    header = f"{'cli':8} {'cmd med':>8} {'p90':>8} | {'+cmd med':>9} {'p90':>8}"
    print(header)
    print("-" * len(header))
    for tier in tiers:
        costs = sh_results[tier]
        print(
            f"{tier:8} {summary(list(costs.values()))} | "
            f" {summary(overhead(costs, sh_results['bare']))}"
        )
    print(
        "\n+ columns: overhead against bare subprocess execution of the same task "
        "(target for full: +task <= 30 ms, +case <= 5 ms, medians)."
    )


if __name__ == "__main__":
    main()
