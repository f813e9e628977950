"""End-to-end: option twins (ini, environment), listing models, markdown output."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import good_script, read_jsonl

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai({"good": good_script(), "other": good_script()})


def test_list_prints_the_servers_models(pytester: pytest.Pytester, server: Any) -> None:
    result = pytester.runpytest(
        "--llmbench-list", "--llmbench-backend=openai", f"--llmbench-base-url={server.url}/v1"
    )
    assert result.ret == 0
    text = result.stdout.str()
    assert "model" in text and "context" in text and "tools" in text
    assert "good" in text and "other" in text


def test_list_against_no_server_says_where_and_how(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--llmbench-list", "--llmbench-base-url=http://127.0.0.1:9")
    assert result.ret == 1
    text = result.stdout.str()
    assert "http://127.0.0.1:9" in text
    assert "lms server start" in text or "LM Studio" in text


def _settings_file(pytester: pytest.Pytester, url: str, models: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        llmbench_models = {models}
        llmbench_backend = openai
        llmbench_base_url = {url}
        llmbench_jsonl = out/results.jsonl
        """
    )


def test_ini_twins_configure_a_run(bench_dir: pytest.Pytester, server: Any) -> None:
    _settings_file(bench_dir, server.url, "good")
    result = bench_dir.runpytest("-m", "python", *QUIET)
    result.assert_outcomes(passed=3)
    assert [r["model"] for r in read_jsonl(bench_dir.path / "out/results.jsonl")] == ["good"]


def test_environment_beats_ini_and_command_line_beats_both(
    bench_dir: pytest.Pytester, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings_file(bench_dir, server.url, "good")
    monkeypatch.setenv("LLMBENCH_MODELS", "other")
    bench_dir.runpytest("-m", "python", *QUIET)
    monkeypatch.setenv("LLMBENCH_TEMPERATURE", "0.7")
    bench_dir.runpytest("-m", "python", "--models=good,other", "--llmbench-temperature=0", *QUIET)
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert [r["model"] for r in rows] == ["other", "good", "other"]
    assert [r["settings"]["temperature"] for r in rows] == [0.2, 0.0, 0.0]


def test_oracle_alone_names_the_model_to_run(bench_dir: pytest.Pytester, server: Any) -> None:
    _settings_file(bench_dir, server.url, "")
    result = bench_dir.runpytest("--oracle=good", *QUIET)
    result.assert_outcomes(passed=7)
    assert "Oracle OK" in result.stdout.str()


def test_markdown_table_is_written(bench_dir: pytest.Pytester, server: Any) -> None:
    _settings_file(bench_dir, server.url, "good,reference")
    bench_dir.runpytest("--llmbench-markdown=out/table.md", *QUIET)
    lines = (bench_dir.path / "out/table.md").read_text().splitlines()
    assert lines[0].startswith("| model | python | cli | tooling | total | tasks |")
    # Every count with its 95 % interval; all passed: Wilson with the tasks as the trials.
    row = "3/3 (20-100%) | 1/1 (20-100%) | 3/3 (34-100%) | 7/7 (51-100%)"
    assert lines[2].startswith(f"| `good` | {row} | 4/4 (51-100%) |")
    # The same results: not significantly different from the leader.
    assert lines[3].startswith(f"| `reference` | {row}~ | 4/4 (51-100%) |")
    assert "| `reference` | `good` | +0.0 pts | +0.0 to +0.0 | no | 0 / 0 | 1 |" in lines


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--models=reference", "--max-tokens=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--max-tokens" in result.stderr.str()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_per_model_endpoints_spread_models_over_servers(
    bench_dir: pytest.Pytester, fake_openai: Any, workers: str
) -> None:
    first = fake_openai({"good": good_script()})
    second = fake_openai({"other": good_script()})
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={first.url}",
        f"--llmbench-endpoint=other={second.url}", "--models=good,other", "-m", "python",
        "--llmbench-jsonl=out/results.jsonl", "-n", workers, *QUIET,
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    assert {b["model"] for b in first.chat_requests()} == {"good"}
    assert {b["model"] for b in second.chat_requests()} == {"other"}
    rows = {r["model"]: r for r in read_jsonl(bench_dir.path / "out/results.jsonl")}
    assert rows["good"]["base_url"] == first.url and rows["other"]["base_url"] == second.url


def test_twin_names_follow_the_flags() -> None:
    from pytest_llmbench.options import OPTIONS

    twins = {opt.flag: (opt.ini, opt.env) for opt in OPTIONS}
    assert twins["--llmbench-models"] == ("llmbench_models", "LLMBENCH_MODELS")
    assert twins["--llmbench-max-tokens"] == ("llmbench_max_tokens", "LLMBENCH_MAX_TOKENS")
    assert twins["--llmbench-context"] == ("llmbench_context", "LLMBENCH_CONTEXT")
    assert twins["--llmbench-base-url"] == ("llmbench_base_url", "LLMBENCH_BASE_URL")


def test_environment_twin_of_a_renamed_option_is_read(
    bench_dir: pytest.Pytester, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings_file(bench_dir, server.url, "good")
    monkeypatch.setenv("LLMBENCH_CONTEXT", "2048")
    monkeypatch.setenv("LLMBENCH_MAX_TOKENS", "77")
    bench_dir.runpytest("-m", "python", *QUIET)
    (row,) = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert row["settings"]["context_length"] == 2048
    assert row["settings"]["max_tokens"] == 77
    assert {b["max_tokens"] for b in server.chat_requests()} == {77}
