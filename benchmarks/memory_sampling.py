"""What measuring a model's memory costs a run (target: under 1 % of its wall-clock).

    python benchmarks/memory_sampling.py [--rounds 3] [--tasks 12]

The embedded backend samples the resident memory of its llama-server processes every
`backends/memory.SAMPLE_S` seconds on a daemon thread (backends/memory.py). Two measurements:

1. The cost of one sample, directly: the bundled SmolLM2 is loaded (its real servers), and
   `resident(pids)` is called a few thousand times; its CPU time per call, over the interval
   between samples, is the share of one core the sampling takes.
2. Whole runs: the same small benchmark (python tasks on SmolLM2, the answer store off, so
   every answer is generated) alternately with sampling as shipped and with sampling reduced
   to the load and the unload (a `-p` plugin stretches the interval to an hour), `--rounds`
   pairs; the median of the per-pair wall-clock ratios.

This measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NO_SAMPLING = "import pytest_llmbench.backends.memory as memory\nmemory.SAMPLE_S = 3600.0\n"


def per_sample_cost(calls: int) -> tuple[float, int, int]:
    """(CPU seconds per sample, server processes, resident bytes) on the loaded SmolLM2."""
    from pytest_llmbench.backends import make_backend
    from pytest_llmbench.backends.base import LoadSettings
    from pytest_llmbench.backends.memory import resident

    backend = make_backend("embedded", None, timeout_s=300)
    backend.load("smollm2", LoadSettings())
    try:
        found = backend.memory_processes("smollm2")  # type: ignore[attr-defined]
        assert found is not None
        pids, _ = found
        started = time.process_time()
        for _ in range(calls):
            now, _ = resident(pids)
        return (time.process_time() - started) / calls, len(pids), now
    finally:
        backend.unload("smollm2")


def run_once(project: Path, plugin_dir: Path, sampling: bool, tasks: str) -> float:
    args = [sys.executable, "-m", "pytest", "--models=smollm2", "--llmbench-backend=embedded",
            "--llmbench-cache=off", "-m", "python", "-k", tasks, "-q", "--tb=no",
            "-p", "no:cacheprovider", "--max-tokens=256",
            "--llmbench-jsonl", str(project / "out.jsonl")]  # fmt: skip
    if not sampling:
        args += ["-p", "no_sampling"]
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    started = time.perf_counter()
    subprocess.run(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument(
        "--tasks",
        default="two_sum or is_palindrome or is_anagram or roman_to_int or caesar_shift or "
        "run_length_encode or trapezoid or top_word or parse_kv or int_to_roman",
    )
    options = parser.parse_args()
    from pytest_llmbench.backends.memory import SAMPLE_S

    cost, servers, rss = per_sample_cost(options.calls)
    print(
        f"one sample of {servers} llama-server processes ({rss / 1e6:.0f} MB resident): "
        f"{cost * 1e6:.1f} us CPU; every {SAMPLE_S:g} s that is {100 * cost / SAMPLE_S:.4f} % "
        "of one core"
    )
    with tempfile.TemporaryDirectory() as tmp:
        plugin_dir = Path(tmp)
        (plugin_dir / "no_sampling.py").write_text(NO_SAMPLING)
        pairs = []
        for index in range(options.rounds):
            # Alternate which side goes first, so that a drift of the machine cancels.
            order = (True, False) if index % 2 == 0 else (False, True)
            times = {s: run_once(plugin_dir, plugin_dir, s, options.tasks) for s in order}
            pairs.append((times[True], times[False]))
            print(f"round {index + 1}: sampling {times[True]:.2f} s, without {times[False]:.2f} s")
    with_, without = (statistics.median(side) for side in zip(*pairs, strict=True))
    ratio = statistics.median(a / b for a, b in pairs)
    print(
        f"whole run, median of {options.rounds}: sampling {with_:.2f} s, without {without:.2f} s; "
        f"ratio {ratio:.4f} ({100 * (ratio - 1):+.2f} %)"
    )


if __name__ == "__main__":
    main()
