"""`python -m pytest_llmbench.summary < results.jsonl`: one line per model from JSONL records.

A compact view of what the JSONL holds, for scripts and `make bench`; the full records stay in
the file.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from .stats import percent_range


def _score(record: dict[str, Any]) -> str:
    """`21/402 cases (3-8%), 5/117 tasks`; older records have the counts alone."""
    text = f"{record['passed']}/{record['total']} cases"
    interval = (record.get("scores") or {}).get("overall", {}).get("interval")
    if interval:
        text += f" ({percent_range(interval[0], interval[1])})"
    if "tasks_passed" in record:
        text += f", {record['tasks_passed']}/{record['tasks_total']} tasks"
    return text


def summarise(record: dict[str, Any]) -> str:
    tps = record.get("tokens_per_second")
    return (
        f"{record['model']} ({record['backend']}): {_score(record)}, "
        f"{record['seconds']:.1f}s generating, {record['completion_tokens']} completion tokens, "
        f"{f'{tps:.1f}' if tps else '-'} tok/s, max_tokens {record['settings'].get('max_tokens')}, "
        f"isolation {record['settings'].get('isolation')}, run {record['run_id']}"
    )


def main(stream: TextIO = sys.stdin) -> int:
    for line in stream:
        if line.strip():
            print("JSONL: " + summarise(json.loads(line)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
