"""What the plugin costs a project that merely has it installed.

    python benchmarks/startup.py [--runs 41] [--tests 12]

Runs `pytest --collect-only -q` on a small unrelated project (a few files of plain tests, no
task files, no models named) over and over, alternating between the plugin enabled and
`-p no:llmbench` (which stops pytest from even importing it), and reports the child process's
CPU time (user + system) and wall time. The plugin's share is the median of the paired
differences (each enabled run minus the disabled run next to it), which cancels most of the
drift of a busy machine; the medians of both sides are printed too.

Two settings: with pytest-xdist active (the default install: it is a dependency) and with
`-p no:xdist` on both sides.

On a busy shared machine the paired differences scatter by tens of milliseconds, so a second
measurement attributes the CPU time directly, in the same kind of run: a child process imports
pytest, then the plugin module (timed), wraps each of the plugin's hook functions with a CPU
timer, and runs `pytest.main(["--collect-only", ...])`; the figure is the import plus the time
spent inside the plugin's hooks (what they import lazily included). It leaves out pluggy's own
dispatch to those hooks, which the paired difference includes.

With `--callgrind` (needs valgrind, slow: minutes per run), a third measurement counts the
instructions each side executes (deterministic: PYTHONHASHSEED=0), which no machine load
disturbs; the plugin's share in instructions, scaled by the disabled side's median CPU time,
estimates its share in milliseconds.

This measures; it asserts nothing (the target is under 10 ms CPU for the plugin's share).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PLAIN_TEST = """
import pytest


def test_add():
    assert 1 + 1 == 2


@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n > 0


class TestThing:
    def test_method(self):
        assert "a" in "abc"
"""


PROBE = r"""
import functools, inspect, json, sys, time

import pytest

clock = time.process_time
spent = {"import": 0.0, "hooks": 0.0}
started = clock()
import pytest_llmbench.plugin as plugin
spent["import"] = clock() - started


def timed(fn):
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            begin = clock()
            gen = fn(*args, **kwargs)
            try:
                value = next(gen)
            finally:
                spent["hooks"] += clock() - begin
            while True:
                try:
                    sent = yield value
                except BaseException as exc:
                    begin = clock()
                    try:
                        value = gen.throw(exc)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        spent["hooks"] += clock() - begin
                else:
                    begin = clock()
                    try:
                        value = gen.send(sent)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        spent["hooks"] += clock() - begin
        return wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        begin = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent["hooks"] += clock() - begin
    return wrapper


for name in dir(plugin):
    if name.startswith("pytest_") and callable(getattr(plugin, name)):
        setattr(plugin, name, timed(getattr(plugin, name)))
extra = sys.argv[1:]
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *extra])
if code != 0:
    raise SystemExit(f"pytest exited {code}")
sys.stderr.write("PROBE " + json.dumps(spent) + "\n")
"""


def clean_env() -> dict[str, str]:
    """The environment of an ordinary project: no LLMBENCH_*/PYTEST_* settings, and bytecode
    caching on (with PYTHONDONTWRITEBYTECODE every start-up would compile the sources)."""
    dropped = ("LLMBENCH_", "PYTEST_", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def probe_once(root: Path, extra: Sequence[str]) -> tuple[float, float]:
    """(import CPU seconds, hook CPU seconds) of the plugin inside one pytest run."""
    import json

    env = clean_env()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *extra], cwd=root, env=env, capture_output=True, text=True
    )
    line = next((x for x in done.stderr.splitlines() if x.startswith("PROBE ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"probe failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    spent = json.loads(line.removeprefix("PROBE "))
    return float(spent["import"]), float(spent["hooks"])


def probe(label: str, root: Path, runs: int, extra: Sequence[str]) -> None:
    probe_once(root, extra)  # writes the bytecode caches
    samples = [probe_once(root, extra) for _ in range(runs)]
    imports = [i for i, _ in samples]
    hooks = [h for _, h in samples]
    total = [i + h for i, h in samples]
    print(f"\n{label}: the plugin's own CPU, attributed directly ({runs} runs, median)")
    print(f"  import of pytest_llmbench.plugin  {ms(statistics.median(imports))} ms")
    print(f"  inside its hooks                  {ms(statistics.median(hooks))} ms")
    print(f"  total                             {ms(statistics.median(total))} ms "
          f"(quartiles {ms(statistics.quantiles(total, n=4)[0]).strip()} / "
          f"{ms(statistics.quantiles(total, n=4)[2]).strip()} ms)")  # fmt: skip


def instructions_once(root: Path, extra: Sequence[str]) -> int:
    """Instructions executed by one `pytest --collect-only -q` under callgrind."""
    import re

    env = {**clean_env(), "PYTHONHASHSEED": "0"}
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
            "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra]  # fmt: skip
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def instructions(label: str, root: Path, runs: int, extra: Sequence[str]) -> None:
    run_once(root, extra)  # bytecode caches written
    on = min(instructions_once(root, extra) for _ in range(runs))
    off = min(instructions_once(root, [*extra, "-p", "no:llmbench"]) for _ in range(runs))
    off_cpu = statistics.median(run_once(root, [*extra, "-p", "no:llmbench"])[0] for _ in range(9))
    share = (on - off) / off
    print(f"\n{label}: instructions under callgrind (min of {runs})")
    print(f"  plugin enabled   {on:>14,}")
    print(f"  -p no:llmbench   {off:>14,}")
    print(f"  plugin's share   {on - off:>14,}  ({share:.2%}; at the disabled side's median "
          f"{off_cpu * 1000:.0f} ms CPU that is {share * off_cpu * 1000:.1f} ms)")  # fmt: skip


def make_project(root: Path, files: int) -> None:
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    tests = root / "tests"
    tests.mkdir()
    for index in range(files):
        (tests / f"test_plain_{index}.py").write_text(PLAIN_TEST)


def run_once(root: Path, extra: Sequence[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one `pytest --collect-only -q` in its own process."""
    env = clean_env()
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*argv, *extra], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure(root: Path, runs: int, common: Sequence[str]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"on_cpu": [], "off_cpu": [], "on_wall": [], "off_wall": []}
    for _ in range(3):  # warm the page cache and the bytecode caches of both sides
        run_once(root, common)
        run_once(root, [*common, "-p", "no:llmbench"])
    for index in range(runs):
        # Alternate which side goes first, so a trend in machine load hits both alike.
        order = ("on", "off") if index % 2 == 0 else ("off", "on")
        for side in order:
            extra = list(common) if side == "on" else [*common, "-p", "no:llmbench"]
            cpu, wall = run_once(root, extra)
            samples[f"{side}_cpu"].append(cpu)
            samples[f"{side}_wall"].append(wall)
    return samples


def ms(value: float) -> str:
    return f"{value * 1000:7.1f}"


def report(label: str, samples: dict[str, list[float]]) -> None:
    paired_cpu = [a - b for a, b in zip(samples["on_cpu"], samples["off_cpu"], strict=True)]
    paired_wall = [a - b for a, b in zip(samples["on_wall"], samples["off_wall"], strict=True)]
    quartiles = statistics.quantiles(paired_cpu, n=4)
    print(f"\n{label} ({len(paired_cpu)} pairs)")
    print("                      CPU ms   wall ms")
    print(f"  plugin enabled    {ms(statistics.median(samples['on_cpu']))}   "
          f"{ms(statistics.median(samples['on_wall']))}")  # fmt: skip
    print(f"  -p no:llmbench    {ms(statistics.median(samples['off_cpu']))}   "
          f"{ms(statistics.median(samples['off_wall']))}")  # fmt: skip
    print(f"  plugin's share    {ms(statistics.median(paired_cpu))}   "
          f"{ms(statistics.median(paired_wall))}   (median of paired differences)")  # fmt: skip
    print(f"  share, CPU quartiles: {ms(quartiles[0]).strip()} / {ms(quartiles[1]).strip()} / "
          f"{ms(quartiles[2]).strip()} ms")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=41, help="pairs per setting (default 41)")
    parser.add_argument("--tests", type=int, default=4, help="test files (default 4)")
    parser.add_argument("--callgrind", type=int, default=0, metavar="RUNS",
                        help="also count instructions under valgrind, RUNS per side")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmbench-startup-") as tmp:
        root = Path(tmp)
        make_project(root, args.tests)
        print(f"pytest --collect-only -q on {args.tests} files of plain tests; "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        probe("with pytest-xdist", root, args.runs, [])
        probe("with -p no:xdist", root, args.runs, ["-p", "no:xdist"])
        report("with pytest-xdist (installed with the plugin)", measure(root, args.runs, []))
        report("with -p no:xdist on both sides", measure(root, args.runs, ["-p", "no:xdist"]))
        if args.callgrind:
            instructions("with pytest-xdist", root, args.callgrind, [])
            instructions("with -p no:xdist", root, args.callgrind, ["-p", "no:xdist"])
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
