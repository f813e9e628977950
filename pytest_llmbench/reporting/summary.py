"""One line per model from JSONL records:
`python -m pytest_llmbench.reporting.summary < results.jsonl`.

A compact view of what the JSONL holds, for scripts and `make bench`; the full records stay in
the file.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..results.history import parse_jsonl
from ..results.stats import percent_range


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
    if record.get("skipped"):
        return f"{record['model']} ({record['backend']}): skipped: {record['skipped']}"
    # The generation phase's wall-clock; `seconds` sums the requests' times, which with
    # several requests in flight is several times longer (older records have only that).
    wall = record.get("generation_wall_s")
    seconds = wall if wall is not None else record["seconds"]
    stored = record.get("answers_from_store") or 0
    # Every answer from the store: nothing was generated, whatever the answers once cost.
    generating = (
        f"{seconds:.1f}s generating"
        if wall is not None or not stored
        else f"no generation ({stored} answers from the store)"
    )
    in_flight = record.get("concurrency") or 1
    decode = record.get("decode_tok_s")
    prompt = record.get("prompt_tok_s")
    declared = record.get("declared_total")
    partial = ""
    if record.get("interrupted"):
        partial = f" (run ended by {record['interrupted']})"
    if declared and declared != record["total"]:
        partial += f" of {declared} declared"
    exact = record.get("reproducible")
    mode = "" if exact is None else "reproducible" if exact else "NOT reproducible"
    how = ", ".join(
        part for part in (f"{in_flight} in flight" if in_flight > 1 else "", mode) if part
    )
    return (
        f"{record['model']} ({record['backend']}): {_score(record)}"
        f"{partial}, {generating}"
        f"{f' ({how})' if how else ''}, {record['completion_tokens']} "
        f"completion tokens, {f'{decode:.1f}' if decode else '-'} decode tok/s"
        f"{f' (prompt {prompt:.0f})' if prompt else ''}, "
        f"max_tokens {record['settings'].get('max_tokens')}, "
        f"isolation {record['settings'].get('isolation')}, run {record['run_id']}"
    )


def main(stream: TextIO = sys.stdin) -> int:
    for record in parse_jsonl(stream).records:
        print("JSONL: " + summarise(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
