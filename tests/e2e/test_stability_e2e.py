"""Stability labels and pass^k end to end: a repeated run with a budget curve against the fake
server, whose answers depend on the request's seed and are long enough for small budgets to
cut. Every expected value below is worked out by hand from `seeded_script`'s answers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fakes.bench import DOUBLE_TASKS, read_jsonl, seeded_script

from pytest_llmbench.run.sampling import repeat_seed

SEED, REPEATS = 1, 3
BUDGETS = (4, 16, 24)


def stability(label: str, labels: list[str], passed: int, from_budget: int | None) -> Any:
    return {"label": label, "labels": labels, "samples": REPEATS, "samples_passed": passed,
            "from_budget": from_budget, "audited": False, "batching_flipped": False}  # fmt: skip


# The seeds of the three samples are 1, 1801111726 and 865957720 (checked in the test):
# odd, even, even; 1, 2 and 0 mod 4.
EXPECTED = {
    # Wrong in sample 0, right in 1 and 2; 11 tokens of thinking and 10 of code: cut at 4
    # and 16, whole at 24. Flaky (samples 1 and 2 passed) and budget-sensitive: the samples
    # that pass at 24 fail at 16.
    "add": stability("flaky", ["flaky", "budget-sensitive"], 2, 24),
    # Always wrong (cut at 4, wrong from 16): nothing varies.
    "double": stability("stable fail", ["stable fail"], 0, None),
    # Always right, 11 + 4 = 15 tokens: cut at 4, whole from 16.
    "count_lines": stability("budget-sensitive", ["budget-sensitive"], 3, 16),
    # Always right, and every turn fits 4 tokens.
    "weather": stability("stable pass", ["stable pass"], 3, None),
    # Right only in sample 1 (seed 2 mod 4); every turn fits 4 tokens.
    "lookup_then_email": stability("flaky", ["flaky"], 1, None),
}


def test_labels_and_pass_hat_k_match_a_hand_computation(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    seeds = [repeat_seed(SEED, r) for r in range(REPEATS)]
    assert seeds == [1, 1801111726, 865957720], "the hand computation above assumes these"
    (bench_dir.path / "tasks/python/double.yaml").write_text(DOUBLE_TASKS)
    server = fake_openai({"m": seeded_script()})
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        f"--llmbench-seed={SEED}", f"--llmbench-repeat={REPEATS}",
        f"--llmbench-budgets={','.join(map(str, BUDGETS))}", "--llmbench-jsonl=out.jsonl",
        "--llmbench-markdown=out.md", "-p", "no:cacheprovider",
    )  # fmt: skip
    # An item passes when its case passed in every sample: count_lines, weather's two cases.
    result.assert_outcomes(passed=3, failed=3 + 1 + 1)

    [row] = read_jsonl(bench_dir.path / "out.jsonl")
    assert {t["task"]: t["stability"] for t in row["results"]} == EXPECTED
    assert row["stability"] == {"batching-sensitive": 0, "flaky": 2, "budget-sensitive": 1,
                                "stable pass": 1, "stable fail": 1}  # fmt: skip

    # pass^k per task is C(c,k)/C(n,k) with n = 3 and c = 2, 0, 3, 3, 1 samples passed.
    passed = [2, 0, 3, 3, 1]
    hat = row["repeats"]["tasks_pass_hat_k"]
    for k, by_hand in ((1, (2 / 3 + 0 + 1 + 1 + 1 / 3) / 5), (2, (1 / 3 + 0 + 1 + 1 + 0) / 5),
                       (3, (0 + 0 + 1 + 1 + 0) / 5)):  # fmt: skip
        assert hat["overall"][str(k)]["rate"] == round(by_hand, 4)
        assert by_hand == pytest.approx(sum(math.comb(c, k) for c in passed) / 5 / math.comb(3, k))
        low, high = hat["overall"][str(k)]["interval"]
        assert low <= by_hand <= high
    # pass^1 is pass@1; python alone: add (2 of 3) and double (0 of 3).
    assert hat["overall"]["1"] == row["repeats"]["tasks_pass_at_k"]["overall"]["1"]
    assert hat["python"]["2"]["rate"] == round((1 / 3 + 0) / 2, 4)
    assert set(hat) == {"overall", "python", "cli", "tooling"}

    # The terminal: a notes line for the flaky tasks, with the samples that passed.
    text = result.stdout.str()
    [flaky] = [line for line in text.splitlines() if line.startswith("flaky tasks of m")]
    head, listed = flaky.split(": ", 1)
    assert head == "flaky tasks of m (2; samples that passed)"
    assert sorted(listed.split(", ")) == ["python:add 2 of 3", "tooling:lookup_then_email 1 of 3"]
    header = next(line for line in text.splitlines() if line.startswith("model  suite"))
    assert "tasks pass^2" in header and "tasks pass^3" in header and "pass^1" not in header

    # The markdown: counts per model, then the tasks that are not stable.
    markdown = (bench_dir.path / "out.md").read_text().splitlines()
    start = markdown.index("| model | evidence | batching-sensitive | flaky | budget-sensitive "
                           "| stable pass | stable fail |")  # fmt: skip
    assert markdown[start + 2] == "| `m` | 3 samples, 3 budgets | 0 | 2 | 1 | 1 | 1 |"
    listed_md = markdown[markdown.index("Not stable in `m`:") + 2 :]
    assert sorted(line for line in listed_md if line.startswith("- ")) == [
        "- `cli:count_lines`: budget-sensitive (from 16)",
        "- `python:add`: flaky (2 of 3), budget-sensitive (from 24)",
        "- `tooling:lookup_then_email`: flaky (1 of 3)",
    ]
