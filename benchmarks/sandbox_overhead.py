"""What isolation costs: the bundled tasks' reference solutions scored through each sandbox
tier, against bare subprocess execution.

    python3 benchmarks/sandbox_overhead.py [--repeat 5] [--limit 0] [--tiers full,reduced,none]

Python tasks: each task is run with all its cases and with its first case only (each `repeat`
times, median kept), which splits its time into a per-task part (start-up, loading the code)
and a per-case part: per_case = (T_all - T_first) / (n - 1), per_task = T_first - per_case.
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
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.sandbox.base import PyCall, Tier  # noqa: E402
from pytest_llmbench.sandbox.tiers import make_sandbox  # noqa: E402

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


def timed(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def python_costs(
    tasks: Sequence[PyTask], tier: str, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Per task name: (per-task seconds, per-case seconds)."""
    per_task: dict[str, float] = {}
    per_case: dict[str, float] = {}
    sandbox = make_sandbox(tier) if tier != "bare" else None  # type: ignore[arg-type]
    for task in tasks:

        def run(calls: Sequence[PyCall], task: PyTask = task) -> None:
            if sandbox is None:
                bare_python(task, calls)
            else:
                outcomes = sandbox.run_python(task.code, task.entry, calls)
                bad = [o for o in outcomes if o.status not in ("ok", "raised")]
                if bad:
                    raise RuntimeError(f"{tier} {task.name}: {bad[0]}")

        first = timed(lambda: run(task.calls[:1]), repeat)
        if len(task.calls) > 1:
            everything = timed(lambda: run(task.calls), repeat)
            case = max(0.0, (everything - first) / (len(task.calls) - 1))
            per_case[task.name] = case
            per_task[task.name] = first - case
        else:
            per_task[task.name] = first
    return per_task, per_case


def shell_costs(tasks: Sequence[CliTask], tier: str, repeat: int) -> dict[str, float]:
    costs: dict[str, float] = {}
    sandbox = make_sandbox(tier) if tier != "bare" else None  # type: ignore[arg-type]
    for task in tasks:
        if sandbox is None:
            costs[task.name] = timed(lambda task=task: bare_shell(task), repeat)  # type: ignore[misc]
        else:
            costs[task.name] = timed(
                lambda task=task: sandbox.run_shell(  # type: ignore[misc]
                    task.command, task.files, task.tools, 20
                ),
                repeat,
            )
    return costs


def summary(values: Sequence[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
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
    py_results = {tier: python_costs(python, tier, options.repeat) for tier in tiers}
    sh_results = {tier: shell_costs(cli, tier, options.repeat) for tier in tiers}
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
