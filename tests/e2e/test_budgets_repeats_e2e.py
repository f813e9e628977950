"""Token budgets from one run, and repeated samples, end to end against the fake server."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import GOOD_CODE, THINKING, WRONG_CODE, read_jsonl
from fakes.openai_server import Reply, by_prompt

from pytest_llmbench.results import stats
from pytest_llmbench.run.sampling import repeat_seed


def verbose_script() -> Any:
    """Thinks, then answers, then explains: budgets cut it in the thinking, in the code, after
    the code, and in the middle of a tool chain."""
    return by_prompt(
        {
            "def add": Reply(GOOD_CODE + "\n\nThis returns the sum.", reasoning_content=THINKING),
            "lines": Reply("```bash\nwc -l < data.txt\n```\nCounts lines.", THINKING),
            "weather": [
                Reply(
                    tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                    reasoning_content="the user wants the weather",
                ),
                Reply("It is cloudy in Paris, as the tool says."),
            ],
            "Alice": [
                Reply(
                    tool_calls=[{"name": "get_user", "arguments": {"name": "Alice"}}],
                    reasoning_content="first the address",
                ),
                Reply(
                    tool_calls=[
                        {
                            "name": "send_email",
                            "arguments": {"to": "alice@example.com", "subject": "Hello"},
                        }
                    ],
                    reasoning_content="now the email itself, with the subject",
                ),
                Reply("Sent."),
            ],
        }
    )


BUDGETS = [2, 6, 12, 20, 23, 26, 60]


def run(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={url}", "--models=m",
        "--llmbench-temperature=0", "--llmbench-cache=off", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip


def outcomes_by_case(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{task['task']}:{case['id']}": case
        for row in rows
        for task in row["results"]
        for case in task["cases"]
    }


def test_one_run_curve_equals_capped_runs_case_by_case(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    server = fake_openai({"m": verbose_script()})
    budgets = ",".join(map(str, BUDGETS))
    curve = run(bench_dir, server.url, f"--llmbench-budgets={budgets}")
    # One generation per task, at the largest budget: add, count_lines, weather (2 turns),
    # lookup_then_email (3 turns).
    bodies = server.chat_requests()
    assert len(bodies) == 7 and {b["max_tokens"] for b in bodies} == {max(BUDGETS)}
    [row] = read_jsonl(bench_dir.path / "out.jsonl")
    one_run = {
        case: {int(b): outcome for b, outcome in entry["budgets"].items()}
        for case, entry in outcomes_by_case([row]).items()
    }
    assert len(one_run) == 7

    capped: dict[str, dict[int, str]] = {case: {} for case in one_run}
    for budget in BUDGETS:
        (bench_dir.path / "out.jsonl").unlink()
        run(bench_dir, server.url, f"--max-tokens={budget}")
        for case, entry in outcomes_by_case(read_jsonl(bench_dir.path / "out.jsonl")).items():
            capped[case][budget] = entry["outcome"]
    assert one_run == capped
    # Not a curve that is flat by accident: the budgets cut in thinking, code and chains.
    seen = {outcome for per_budget in one_run.values() for outcome in per_budget.values()}
    assert {"truncated", "passed", "failed"} <= seen
    # The chain: turn 1 (3 + 2 tokens) fits 6, turn 2 (7 + 2) does not: the chain ends there
    # with the lookup made and no email, a wrong answer; at 2 not even the lookup was made.
    chain = one_run["lookup_then_email:emailed"]
    assert (chain[2], chain[6], chain[12]) == ("truncated", "failed", "passed")

    # The curve in the JSONL and the table.
    points = {p["max_tokens"]: p for p in row["budgets"]}
    assert sorted(points) == BUDGETS
    for budget, point in points.items():
        passed = sum(per_budget[budget] == "passed" for per_budget in one_run.values())
        cut = sum(per_budget[budget] == "truncated" for per_budget in one_run.values())
        assert (point["passed"], point["total"], point["truncated"]) == (passed, 7, cut)
        assert point["suites"]["python"]["total"] == 3
        assert len(point["interval"]) == 2 and point["tasks_total"] == 4
    assert points[max(BUDGETS)]["passed"] == row["passed"] == 7
    text = curve.stdout.str()
    assert "llmbench token budgets (one generation at 60" in text
    assert "truncated" in text and "7/7 (" in text


def test_budgets_set_the_generation_cap_and_refuse_a_contradiction(
    bench_dir: pytest.Pytester,
) -> None:
    result = bench_dir.runpytest(
        "--models=reference", "--llmbench-budgets=100,50", "--max-tokens=80", "-p",
        "no:cacheprovider",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the largest budget (100) is the generation cap" in result.stderr.str()
    bad = bench_dir.runpytest("--models=reference", "--llmbench-budgets=0,10")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--llmbench-budgets: cannot use '0,10'" in bad.stderr.str()


def seed_script() -> Any:
    """Right or wrong about `add` by the parity of the seed; always right elsewhere."""
    from fakes.bench import good_script

    good = good_script()

    def script(body: dict[str, Any]) -> Reply:
        if "def add" in str(body["messages"]):
            return Reply(GOOD_CODE if body.get("seed", 0) % 2 == 0 else WRONG_CODE)
        return good(body)

    return script


def test_repeats_sample_with_derived_seeds_and_report_pass_at_k(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    server = fake_openai({"m": seed_script()})
    repeats, seed = 4, 11
    seeds = [repeat_seed(seed, r) for r in range(repeats)]
    assert len(set(seeds)) == repeats and seeds[0] == seed
    good = [s is not None and s % 2 == 0 for s in seeds]
    assert any(good) and not all(good), "pick a run seed whose repeats disagree"

    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        f"--llmbench-seed={seed}", f"--llmbench-repeat={repeats}", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    # Still one item per case: the three add cases fail (not right in every repeat).
    result.assert_outcomes(passed=4, failed=3)
    assert f"passed {sum(good)} of {repeats} repeats" in result.stdout.str()
    add_seeds = [b["seed"] for b in server.chat_requests() if "def add" in str(b["messages"])]
    assert sorted(add_seeds) == sorted(seeds)

    [row] = read_jsonl(bench_dir.path / "out.jsonl")
    add = next(t for t in row["results"] if t["task"] == "add")
    assert (add["passed"], add["total"]) == (3 * sum(good), 3 * repeats)
    assert [r["passed"] for r in add["repeats"]] == [3 if g else 0 for g in good]
    python = row["scores"]["python"]
    assert (python["passed"], python["total"]) == (3 * sum(good), 3 * repeats)
    pass_at = row["repeats"]["tasks_pass_at_k"]["python"]
    for k in range(1, repeats + 1):
        assert pass_at[str(k)]["rate"] == round(stats.pass_at_k(repeats, sum(good), k), 4)
    overall = row["repeats"]["tasks_pass_at_k"]["overall"]["1"]["rate"]
    assert overall == round((sum(good) / repeats + 3) / 4, 4)  # add, and three stable tasks
    assert sorted(row["repeats"]["unstable"]) == [
        "python:add:floats", "python:add:negative", "python:add:small"
    ]  # fmt: skip
    text = result.stdout.str()
    assert "llmbench repeats (4 samples per task" in text
    assert "unstable cases of m (3): python:add:small" in text

    # The store keeps the repeats apart: a second run asks nothing and scores the same.
    before = len(server.chat_requests())
    again = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        f"--llmbench-seed={seed}", f"--llmbench-repeat={repeats}", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider", "-k", "add",
    )  # fmt: skip
    again.assert_outcomes(failed=3)
    assert len(server.chat_requests()) == before
    second = read_jsonl(bench_dir.path / "out.jsonl")[-1]
    assert second["results"][0]["cases"] == add["cases"]
