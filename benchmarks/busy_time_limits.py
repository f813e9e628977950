"""Time limits on a busy machine: the bundled python tasks' reference solutions for their
`*_large` cases (the ones whose limit separates fast algorithms from slow ones), run in the
sandbox on an idle CPU and on one CPU shared with busy loops.

    python3 benchmarks/busy_time_limits.py [--spinners 6] [--all-cases] [--tier full]

For each case it prints the limit, the wall time idle and busy, and the outcome busy. A call's
limit counts the time it runs (CPU time, or elapsed time less time spent waiting for a CPU),
so the busy outcome should be `ok` everywhere; the "wall > limit" count is how many cases a
wall-clock limit would have timed out on the busy CPU. This measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes.busy_cpu import one_busy_cpu

from pytest_llmbench.sandbox.base import PyCall, PyOutcome, Tier
from pytest_llmbench.sandbox.tiers import make_sandbox
from pytest_llmbench.taskfiles.format import PythonTask
from pytest_llmbench.taskfiles.loading import load_task_file

TASKS = Path(__file__).resolve().parent.parent / "tasks" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spinners", type=int, default=6)
    parser.add_argument("--all-cases", action="store_true", help="not only the *_large cases")
    parser.add_argument("--tier", default="full", choices=["full", "reduced"])
    args = parser.parse_args()
    tier: Tier = args.tier
    sandbox = make_sandbox(tier)
    runs: list[tuple[str, PythonTask, PyCall]] = []
    for path in sorted(TASKS.glob("*.yaml")):
        for task in load_task_file(path).tasks:
            assert isinstance(task, PythonTask)
            for case in task.cases:
                if args.all_cases or case.id.endswith("_large"):
                    limit = case.timeout_s or task.timeout_s
                    call = PyCall(case.args, case.kwargs, case.setup, case.call, limit)
                    runs.append((f"{task.id}::{case.id}", task, call))

    def run_all() -> list[PyOutcome]:
        return [sandbox.run_python(t.reference, t.entry_point, [c])[0] for _, t, c in runs]

    on_idle = run_all()
    # A python sandbox is kept between runs; the busy runs need one started on the busy CPU.
    sandbox.close()
    with one_busy_cpu(args.spinners):
        on_busy = run_all()
    sandbox.close()
    rows = [(n, c.timeout_s, i, b) for (n, _, c), i, b in zip(runs, on_idle, on_busy, strict=True)]
    print(f"tier {tier}; busy = one CPU shared with {args.spinners} busy loops")
    print(f"{'case':44} {'limit':>6} {'idle s':>7} {'busy s':>7}  busy outcome")
    for name, limit, idle, busy in rows:
        print(f"{name:44} {limit:6g} {idle.seconds:7.2f} {busy.seconds:7.2f}  {busy.status}")
    over = sum(busy.seconds > limit for _, limit, _, busy in rows)
    timeouts = sum(busy.status == "timeout" for *_, busy in rows)
    slowdown = sorted(b.seconds / i.seconds for _, _, i, b in rows if i.seconds > 0)
    print(
        f"{len(rows)} cases; busy/idle wall time median {slowdown[len(slowdown) // 2]:.1f}x; "
        f"wall > limit on the busy CPU: {over}; timeouts: {timeouts}"
    )


if __name__ == "__main__":
    main()
