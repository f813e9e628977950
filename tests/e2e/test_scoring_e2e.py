"""End-to-end: python answers are scored as code, not as scripts (--llmbench-sanitize)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import case_outcomes, read_jsonl
from fakes.openai_server import Reply, by_prompt

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")

# A right function followed by what small models add: a demo call, a print, and a self-test
# that asserts a wrong value of its own.
RIGHT_WITH_SCRIPT = """```python
def add(a, b):
    return a + b

result = add(2, 2)
print("2 + 2 =", result)
assert add(2, 2) == 5, "self-test"
```"""
WRONG_WITH_SCRIPT = """```python
def add(a, b):
    return a - b

print(add(1, 2))
```"""


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai(
        {
            "chatty": by_prompt({"def add": Reply(RIGHT_WITH_SCRIPT)}),
            "wrong": by_prompt({"def add": Reply(WRONG_WITH_SCRIPT)}),
        }
    )


def run(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--models=chatty,wrong", "--llmbench-backend=openai", f"--llmbench-base-url={url}",
        "--llmbench-jsonl=out/results.jsonl", "-m", "python", *QUIET, *args,
    )  # fmt: skip


def test_a_right_function_passes_despite_its_failing_self_test(
    bench_dir: pytest.Pytester, server: Any
) -> None:
    result = run(bench_dir, server.url)
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    outcomes = case_outcomes(rows)
    assert {v for k, v in outcomes.items() if k[0] == "chatty"} == {"passed"}
    assert {v for k, v in outcomes.items() if k[0] == "wrong"} == {"failed"}
    result.assert_outcomes(passed=3, failed=3)
    # every case records that its answer was trimmed; the table counts them
    for row in rows:
        assert row["settings"]["sanitize"] is True
        assert all(case.get("trimmed") is True for case in row["results"][0]["cases"])
    table = [line for line in result.stdout.lines if line.startswith(("chatty", "wrong"))]
    assert "3 trimmed" in table[0] and "3 trimmed" in table[1]
    # a failure says the answer ran trimmed
    assert "ran without its top-level calls" in result.stdout.str()


def test_sanitize_off_scores_the_raw_script(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run(bench_dir, server.url, "--llmbench-sanitize=off")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    outcomes = case_outcomes(rows)
    assert {v for k, v in outcomes.items() if k[0] == "chatty"} == {"failed"}
    details = [c["detail"] for c in rows[0]["results"][0]["cases"]]
    assert all("self-test" in d for d in details), details
    assert all(row["settings"]["sanitize"] is False for row in rows)
    assert not any("trimmed" in c for row in rows for c in row["results"][0]["cases"])
    assert "trimmed" not in result.stdout.str()


def test_sanitize_has_ini_and_environment_twins(
    bench_dir: pytest.Pytester, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench_dir.makeini("[pytest]\nllmbench_sanitize = off\n")
    run(bench_dir, server.url)
    monkeypatch.setenv("LLMBENCH_SANITIZE", "on")
    run(bench_dir, server.url)
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert [r["settings"]["sanitize"] for r in rows] == [False, False, True, True]
    # the second run rescored the stored answers: sanitizing does not change what is asked
    assert len(server.chat_requests()) == 2
    assert [r["passed"] for r in rows] == [0, 0, 3, 0]


def test_a_bad_sanitize_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--models=reference", "--llmbench-sanitize=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--llmbench-sanitize must be on or off (got 'maybe')" in result.stderr.str()
