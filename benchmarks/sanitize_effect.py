"""What scoring answers as code (suites/sanitize.py) changes for a real model: one answer per
bundled python task from the embedded backend, each scored as the raw script and as trimmed code.

    python3 benchmarks/sanitize_effect.py [--model smollm2] [--max-tokens 512] [--seed 1]

Prints, over the python suite's cases: passed raw, passed trimmed, answers trimmed, and the
cases that flip either way (a right function sunk by its own script flips to passed; a case
that flips to failed would be a sanitizer bug). This measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.sandbox import get_sandbox
from pytest_llmbench.suites.base import RequestSettings
from pytest_llmbench.suites.python import PythonSuite
from pytest_llmbench.taskfiles.format import PythonTask
from pytest_llmbench.taskfiles.loading import load_task_file

TASKS = Path(__file__).resolve().parent.parent / "tasks" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    backend = make_backend("embedded", None, timeout_s=600.0, context_length=None)
    backend.load(args.model, LoadSettings(None))
    sandbox = get_sandbox("auto")
    raw, trimmed = PythonSuite(sanitize=False), PythonSuite(sanitize=True)
    settings = RequestSettings(args.max_tokens, 0.0, args.seed, 600.0)
    totals = {"cases": 0, "raw": 0, "trimmed": 0, "answers_trimmed": 0, "to_pass": 0, "to_fail": 0}
    try:
        for path in sorted(TASKS.glob("*.yaml")):
            for task in load_task_file(path).tasks:
                assert isinstance(task, PythonTask)
                generation = raw.generate(task, args.model, backend.chat, settings)
                as_script = raw.execute(task, generation, sandbox)
                as_code = trimmed.execute(task, generation, sandbox)
                totals["answers_trimmed"] += as_code.trimmed
                for case in task.cases:
                    before = raw.score(task, case, generation, as_script).outcome == "passed"
                    after = trimmed.score(task, case, generation, as_code).outcome == "passed"
                    totals["cases"] += 1
                    totals["raw"] += before
                    totals["trimmed"] += after
                    totals["to_pass"] += after and not before
                    totals["to_fail"] += before and not after
                    if before and not after:
                        print(f"flipped to failed: {task.id}::{case.id}")
    finally:
        backend.unload(args.model)
        backend.close()
    print(
        f"model {args.model}, max_tokens {args.max_tokens}, temperature 0, seed {args.seed}: "
        f"{totals['cases']} cases; passed as scripts {totals['raw']}, as code {totals['trimmed']} "
        f"({totals['answers_trimmed']} answers trimmed; {totals['to_pass']} cases flipped to "
        f"passed, {totals['to_fail']} to failed)"
    )


if __name__ == "__main__":
    main()
