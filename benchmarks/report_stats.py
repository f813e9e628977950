"""What the statistics cost at the end of a run: the table, the markdown and the JSONL lines
(intervals by cluster bootstrap, paired comparisons between every pair of models) for
synthetic runs of growing size.

    python3 benchmarks/report_stats.py [--models 2,4,8] [--tasks 117,800] [--cases 4]

Each model passes each task's cases at random (seeded); the figure is the wall time of
rendering all three outputs once, as a run's end does, from cold caches. This measures; it
asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.reporting import jsonl, markdown, table
from pytest_llmbench.results import stats
from pytest_llmbench.results.aggregate import aggregate


def synthetic(models: int, tasks: int, cases: int, seed: int = 1) -> list[CaseResult]:
    rng = random.Random(seed)
    out = []
    for m in range(models):
        skill = 0.4 + 0.5 * m / max(1, models - 1)
        for t in range(tasks):
            easy = rng.random() < skill  # cases of one task tend to go together
            for c in range(cases):
                passed = rng.random() < (0.9 if easy else 0.2)
                out.append(
                    CaseResult(
                        f"model{m}",
                        "python",
                        f"t{t}",
                        f"c{c}",
                        "passed" if passed else "failed",
                        file="tasks/x.yaml",
                    )
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="2,4,8")
    parser.add_argument("--tasks", default="117,800")
    parser.add_argument("--cases", type=int, default=4)
    args = parser.parse_args()
    run = jsonl.RunInfo("bench", "now", "openai", "0", "d", {})
    print(f"{'models':>6} {'tasks':>6} {'cases':>7} {'seconds':>8}  (resamples {stats.RESAMPLES})")
    for models in (int(m) for m in args.models.split(",")):
        for tasks in (int(t) for t in args.tasks.split(",")):
            results = synthetic(models, tasks, args.cases)
            names = tuple(f"model{m}" for m in range(models))
            stats._cluster_bootstrap.cache_clear()
            stats._paired_difference.cache_clear()
            started = time.perf_counter()
            reports = aggregate(results, names)
            table.render_table(reports)
            markdown.render_markdown(reports)
            for r in reports:
                jsonl.jsonl_line(r, run, "openai", None, None, reports)
            seconds = time.perf_counter() - started
            print(f"{models:>6} {tasks:>6} {len(results):>7} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
