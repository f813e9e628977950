"""The baseline comparison at the end of a run, and the gate's exit statuses."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import bad_script, good_script, read_jsonl
from fakes.openai_server import Reply, last_user_text

from pytest_llmbench.run.stopping import EXIT_INFRA_ERROR

GATE_FAILED = 7  # documented in the README


def run(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai",
        f"--llmbench-base-url={url}",
        "--llmbench-jsonl=out/results.jsonl",
        "--llmbench-cache=off",  # the same model name answers differently from test to test
        "-m",
        "tooling",  # no sandbox needed: quick
        "-p",
        "no:cacheprovider",
        *args,
    )


def mixed(body: dict[str, Any]) -> Reply:
    """Right about the weather (2 of 2 cases), wrong about Alice (0 of 1)."""
    good, bad = good_script(), bad_script()
    return good(body) if "weather" in last_user_text(body) else bad(body)


def test_fail_under_decides_the_exit_status(bench_dir: pytest.Pytester, fake_openai: Any) -> None:
    server = fake_openai({"m": mixed})
    assert run(bench_dir, server.url, "--models=m").ret == pytest.ExitCode.TESTS_FAILED
    above = run(bench_dir, server.url, "--models=m", "--llmbench-fail-under=0.6")
    assert above.ret == pytest.ExitCode.OK  # wrong answers alone do not fail a passed gate
    assert "llmbench gate: passed" in above.stdout.str()
    for workers in ([], ["-n", "2"]):  # the controller decides, also under xdist
        below = run(bench_dir, server.url, "--models=m", "--llmbench-fail-under=80%", *workers)
        assert below.ret == GATE_FAILED
        text = below.stdout.str()
        assert "llmbench gate: FAILED (exit status 7)" in text
        assert "m: 2/3 = 66.7% of cases passed, under 80.0%" in text


def test_errors_keep_their_status_when_the_gate_passes(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    server = fake_openai({"m": mixed, "flaky": lambda body: Reply(status=500)})
    result = run(bench_dir, server.url, "--models=m,flaky", "--llmbench-fail-under=0")
    assert "llmbench gate: passed" in result.stdout.str()
    assert result.ret == EXIT_INFRA_ERROR  # errors say nothing about the models: 10, gate or not


def test_baseline_comparison_and_regression_gate(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    good = fake_openai({"m": good_script()})
    bad = fake_openai({"m": bad_script()})
    assert run(bench_dir, good.url, "--models=m").ret == pytest.ExitCode.OK
    [first] = read_jsonl(bench_dir.path / "out/results.jsonl")
    (bench_dir.path / "baseline.jsonl").write_text(
        (bench_dir.path / "out/results.jsonl").read_text()
    )

    worse = run(
        bench_dir, bad.url, "--models=m", "--llmbench-baseline=baseline.jsonl",
        "--llmbench-fail-on-regression",
    )  # fmt: skip
    text = worse.stdout.str()
    assert f"llmbench against the baseline, run {first['run_id']}" in text
    assert "now failing (2): tooling:weather, tooling:lookup_then_email" in text
    assert "m: regressed -100.0 pts" in text
    assert worse.ret == GATE_FAILED

    # The same answers again, the baseline named by its run id in the JSONL: no change.
    same = run(
        bench_dir, good.url, "--models=m", f"--llmbench-baseline={first['run_id']}",
        "--llmbench-fail-on-regression",
    )  # fmt: skip
    assert "no change" in same.stdout.str()
    assert "llmbench gate: passed" in same.stdout.str()
    assert same.ret == pytest.ExitCode.OK


def test_the_latest_run_as_the_baseline(bench_dir: pytest.Pytester, fake_openai: Any) -> None:
    good = fake_openai({"m": good_script()})
    bad = fake_openai({"m": bad_script()})
    assert run(bench_dir, good.url, "--models=m").ret == pytest.ExitCode.OK
    assert run(bench_dir, good.url, "--models=m").ret == pytest.ExitCode.OK
    _, second = read_jsonl(bench_dir.path / "out/results.jsonl")
    # `latest` is read before this run appends its own line: the run before it.
    worse = run(bench_dir, bad.url, "--models=m", "--llmbench-baseline=latest",
                "--llmbench-fail-on-regression")  # fmt: skip
    assert f"llmbench against the baseline, run {second['run_id']}" in worse.stdout.str()
    assert "m: regressed -100.0 pts" in worse.stdout.str()
    assert worse.ret == GATE_FAILED


def test_a_regression_gate_that_compared_nothing_fails(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    server = fake_openai({"m": good_script(), "n": good_script()})
    assert run(bench_dir, server.url, "--models=m", "-k", "weather").ret == pytest.ExitCode.OK
    [first] = read_jsonl(bench_dir.path / "out/results.jsonl")
    gate = ["--llmbench-fail-on-regression", f"--llmbench-baseline={first['run_id']}"]

    other_model = run(bench_dir, server.url, "--models=n", "-k", "weather", *gate)
    assert other_model.ret == GATE_FAILED
    other_model.stdout.fnmatch_lines(
        [
            "llmbench gate: FAILED (exit status 7)",
            "  nothing compared: no model of this run is in the baseline (this run: n; "
            "baseline: m)",
        ]
    )

    other_task = run(bench_dir, server.url, "--models=m", "-k", "lookup", *gate)
    assert other_task.ret == GATE_FAILED
    other_task.stdout.fnmatch_lines(
        [
            "llmbench gate: FAILED (exit status 7)",
            "  m: nothing compared: no task in common (this run: tooling:lookup_then_email; "
            "baseline: tooling:weather)",
        ]
    )

    # The same task again: compared, no change, the gate passes.
    same = run(bench_dir, server.url, "--models=m", "-k", "weather", *gate)
    assert same.ret == pytest.ExitCode.OK
    assert "llmbench gate: passed" in same.stdout.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llmbench-fail-on-regression"], "--llmbench-fail-on-regression needs"),
        (["--llmbench-baseline=nowhere.jsonl"], "'nowhere.jsonl' is neither a file nor a run"),
        (
            ["--llmbench-baseline=latest"],
            "--llmbench-baseline: no run to take as 'latest': no JSONL file (none of: ",
        ),
        (["--llmbench-fail-under=most"], "--llmbench-fail-under: cannot use 'most'"),
        (["--llmbench-fail-under=120%"], "--llmbench-fail-under: cannot use '120%'"),
    ],
)
def test_gate_options_are_checked_before_anything_runs(
    bench_dir: pytest.Pytester, args: list[str], message: str
) -> None:
    result = bench_dir.runpytest("--models=reference", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert not (bench_dir.path / ".llmbench" / "results.jsonl").exists()
