"""What loading a task file costs: time and peak memory for large and hostile files.

    python3 benchmarks/task_loading.py [--sizes 1,3.8] [--repeat 3]

Each file is loaded in a fresh child process (so peak memory is its own): a large legitimate
python-suite file of each size in MB (tasks of 20 cases each), and hostile files that must be
refused quickly: an anchor bomb (billion laughs), a bomb inside a tooling matcher, nesting
deeper than the limit, a dense flow list of a million numbers, a file over the size limit.
Printed (medians of `repeat`): wall and CPU seconds (CPU time is what a busy machine does not
inflate), the child's peak RSS growth over its start-up in MB, and the outcome's first words.

Children are capped at 2 GB of address space and 120 s. This measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The child is capped (address space, wall time): a loader without a budget would otherwise
# take the machine down on the hostile files.
MEMORY_CAP_BYTES = 2 * 1024**3
TIME_CAP_S = 120.0

CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
sys.path.insert(0, sys.argv[2])
from pytest_llmbench.taskfiles.loading import TaskFileError, load_task_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, cpu = time.perf_counter(), time.process_time()
try:
    loaded = load_task_file(__import__("pathlib").Path(sys.argv[1]))
    outcome = f"loaded {len(loaded.tasks)} tasks"
except TaskFileError as exc:
    outcome = "refused: " + str(exc).split(": ", 1)[-1]
except MemoryError:
    outcome = "MemoryError (over the cap)"
except RecursionError:
    outcome = "RecursionError"
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": (after - before) / 1024,
                  "outcome": outcome}))
"""


def large_python_file(megabytes: float) -> str:
    """A legitimate python-suite file of about `megabytes` MB, about as dense in YAML nodes as
    the bundled files (those run 20 to 45 bytes a node): tasks with a paragraph of prompt, a
    reference solution and five cases."""
    header = "suite: python\ntasks:\n"
    parts = [header]
    size, index = len(header), 0
    prompt = (
        "Write `def f(text: str, n: int) -> str` returning the n-th word of text, counting "
        "from 1, or an empty string when text has fewer words. Words are separated by runs "
        "of whitespace; punctuation belongs to the word it touches."
    )
    while size < megabytes * 1024 * 1024:
        cases = "".join(
            f'      - {{id: case_{c}, args: ["the quick brown fox jumps over the lazy dog '
            f'{c}", {c + 1}], expect: "{["the", "quick", "brown", "fox"][c % 4]}"}}\n'
            for c in range(5)
        )
        task = (
            f"  - id: task_{index}\n"
            f"    prompt: >-\n      {prompt}\n      (variant {index})\n"
            f"    entry_point: f\n    difficulty: medium\n    tags: [generated, strings]\n"
            f"    reference: |\n      def f(text, n):\n          words = text.split()\n"
            f"          return words[n - 1] if 0 < n <= len(words) else ''\n"
            f"    cases:\n{cases}"
        )
        parts.append(task)
        size += len(task)
        index += 1
    return "".join(parts)


def anchor_bomb(levels: int = 9, fan: int = 9, in_matcher: bool = False) -> str:
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join(f'*a{level - 1}' for _ in range(fan))}]")
    anchors = "\n".join("  " + line for line in lines)
    if in_matcher:
        return (
            "suite: tooling\nanchors:\n" + anchors + "\ntasks:\n  - id: t\n    prompt: p\n"
            "    tools: [get_weather]\n    reference: []\n    cases:\n"
            f"      - {{id: c, called: get_weather, args: {{city: {{one_of: *a{levels}}}}}}}\n"
        )
    return (
        "suite: python\nanchors:\n" + anchors + "\ntasks:\n  - id: t\n    prompt: p\n"
        f"    entry_point: f\n    reference: x\n    cases:\n      - {{id: c, args: *a{levels}, "
        "expect: 1}\n"
    )


def deep_file(depth: int = 900) -> str:
    return (
        "suite: python\ntasks:\n  - id: t\n    prompt: p\n    entry_point: f\n    reference: x\n"
        f"    cases:\n      - {{id: c, args: {'[' * depth}{']' * depth}, expect: 1}}\n"
    )


def dense_file(count: int) -> str:
    return (
        "suite: python\ntasks:\n  - id: t\n    prompt: p\n    entry_point: f\n    reference: x\n"
        f"    cases:\n      - {{id: c, args: [{'1,' * count}1], expect: 1}}\n"
    )


def measure(path: Path, repeat: int) -> tuple[float, float, float, str]:
    """Median wall seconds, CPU seconds and peak MB over `repeat` fresh processes."""
    runs = []
    for _ in range(repeat):
        command = [sys.executable, "-c", CHILD, str(path), str(ROOT), str(MEMORY_CAP_BYTES)]
        try:
            out = subprocess.run(
                command, capture_output=True, text=True, check=False, timeout=TIME_CAP_S
            )
        except subprocess.TimeoutExpired:
            nan = float("nan")
            return TIME_CAP_S, nan, nan, f"still loading after {TIME_CAP_S:g}s (killed)"
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines:
            tail = (out.stderr.strip().splitlines() or ["?"])[-1]
            nan = float("nan")
            return nan, nan, nan, f"crashed: {tail}"
        runs.append(json.loads(lines[-1]))
    return (
        statistics.median(r["seconds"] for r in runs),
        statistics.median(r["cpu"] for r in runs),
        statistics.median(r["peak_mb"] for r in runs),
        str(runs[0]["outcome"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,3.8", help="sizes in MB of the large files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files: list[tuple[str, Path]] = []
        for size in (float(s) for s in args.sizes.split(",") if s):
            path = Path(tmp, f"large_{size:g}mb.yaml")
            path.write_text(large_python_file(size))
            files.append((f"python suite, {path.stat().st_size / 1e6:.1f} MB", path))
        hostile = {
            "anchor bomb (9^9 expansion)": anchor_bomb(),
            "anchor bomb in a matcher": anchor_bomb(in_matcher=True),
            "nesting 900 deep": deep_file(),
            "dense list, 1M numbers, 2 MB": dense_file(1_000_000),
            "20 MB file": large_python_file(20),
        }
        for name, text in hostile.items():
            path = Path(tmp, name.replace(" ", "_") + ".yaml")
            path.write_text(text)
            files.append((name, path))
        print(f"{'file':32} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}  outcome")
        for name, path in files:
            seconds, cpu, peak, outcome = measure(path, args.repeat)
            print(f"{name:32} {seconds:8.3f} {cpu:8.3f} {peak:8.1f}  {outcome[:60]}", flush=True)


if __name__ == "__main__":
    main()
