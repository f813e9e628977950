"""`llmbench compare OLD NEW`: runs read back from JSONL, what changed, and its gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmbench import cli
from pytest_llmbench import report as rep
from pytest_llmbench.compare import GATE_FAILED, load_run, parse_rate
from pytest_llmbench.results import CaseResult, aggregate


def write_run(path: Path, run_id: str, failing: dict[str, set[int]], tasks: int = 20) -> None:
    """Append one run: per model, `tasks` python tasks of 2 cases and 10 cli tasks of 1 case;
    the python tasks in `failing[model]` fail their second case."""
    results = [
        CaseResult(model, "python", f"p{t}", f"c{c}",
                   "failed" if t in fails and c == 1 else "passed", file="tasks/p.yaml")
        for model, fails in failing.items()
        for t in range(tasks)
        for c in range(2)
    ] + [
        CaseResult(model, "cli", f"k{t}", "only", "passed", file="tasks/k.yaml")
        for model in failing
        for t in range(10)
    ]  # fmt: skip
    info = rep.RunInfo(run_id, f"2026-01-0{len(run_id) % 9 + 1}T00:00:00+00:00", "openai",
                       "0.1.0", "d", {})  # fmt: skip
    reports = aggregate(results, tuple(failing))
    rep.append_jsonl(
        path, [rep.jsonl_line(r, info, "openai", None, None, reports) for r in reports]
    )


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    write_run(path, "aaa111", {"qwen": {0}, "gemma": {1, 2}})
    write_run(path, "bbb222", {"qwen": set(range(12)), "gemma": {2, 3}, "phi": set()})
    return path


def test_compare_two_run_ids(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "aaa", "bbb222", "--jsonl", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "old: run aaa111" in out and "new: run bbb222" in out
    qwen = out.split("\nqwen\n")[1].split("\ngemma\n")[0]
    python = next(line for line in qwen.splitlines() if line.strip().startswith("python"))
    assert "39/40 (" in python and "28/40 (" in python
    assert "-27.5 pts" in python and python.endswith("WORSE")
    total = next(line for line in qwen.splitlines() if line.strip().startswith("total"))
    assert "-22.0 pts" in total  # 49/50 -> 38/50
    assert "now failing (11): python:p1, python:p2" in qwen
    assert "now passing" not in qwen
    gemma = out.split("\ngemma\n")[1]
    assert "now failing (1): python:p3" in gemma and "now passing (1): python:p1" in gemma
    assert "noise" in gemma  # one task each way is no evidence
    assert "only in the new run: phi" in out


def test_a_file_means_its_last_run(runs: Path, tmp_path: Path) -> None:
    assert load_run(str(runs), []).run_id == "bbb222"
    assert load_run("aaa1", [tmp_path / "missing.jsonl", runs]).run_id == "aaa111"


def test_torn_lines_are_skipped(runs: Path) -> None:
    with runs.open("a") as handle:
        handle.write('{"run_id": "ccc", "model": "qw')  # an interrupted write
    assert load_run(str(runs), []).run_id == "bbb222"


def test_bad_references_are_one_line_errors(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(runs, "aaa999", {"qwen": set()})
    assert cli.main(["compare", "aaa", "bbb", "--jsonl", str(runs)]) == 1
    assert "run id 'aaa' is ambiguous" in capsys.readouterr().err
    assert cli.main(["compare", "zzz", "bbb", "--jsonl", str(runs)]) == 1
    assert "'zzz' is neither a file nor a run id in " + str(runs) in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert cli.main(["compare", str(empty), str(runs)]) == 1
    assert "holds no llmbench results" in capsys.readouterr().err


def test_compare_gates_on_regression_and_rate(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", "aaa111", "bbb222", "--jsonl", str(runs)]
    assert cli.main([*args, "--fail-on-regression"]) == GATE_FAILED
    out = capsys.readouterr().out
    assert "llmbench gate: FAILED (exit status 7)" in out
    assert "qwen: regressed -22.0 pts" in out and "gemma" not in out.split("gate:")[1]
    assert cli.main([*args, "--fail-under", "70%"]) == 0
    assert cli.main([*args, "--fail-under", "0.8"]) == GATE_FAILED
    assert "qwen: 38/50 = 76.0% of cases passed, under 80.0%" in capsys.readouterr().out
    assert cli.main(["compare", "bbb222", "bbb222", "--jsonl", str(runs),
                     "--fail-on-regression"]) == 0  # fmt: skip


@pytest.mark.parametrize(("text", "value"), [("0.8", 0.8), ("80%", 0.8), ("80", 0.8), ("1", 1.0)])
def test_rates_read_as_fractions_or_percentages(text: str, value: float) -> None:
    assert parse_rate(text) == pytest.approx(value)


def test_impossible_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_rate("-3")
    with pytest.raises(ValueError):
        parse_rate("most")


def test_records_with_repeats_and_budgets_read_back_whole(tmp_path: Path) -> None:
    from pytest_llmbench.compare import report_of

    results = [
        CaseResult("m", "python", "t", "c", outcome, file="f.yaml", repeat=r,
                   budgets=((8, "truncated"), (64, outcome)))
        for r, outcome in enumerate(["passed", "failed", "passed"])
    ]  # fmt: skip
    [report] = aggregate(results, ("m",))
    info = rep.RunInfo("r", "t", "openai", "0", "d", {})
    import json

    back = report_of(json.loads(rep.jsonl_line(report, info, "openai", None, None, [report])))
    assert back.repeats == 3 and back.budgets == [8, 64]
    assert back.score() == report.score()
    assert back.at_budget(8).count("truncated") == 3
    assert back.pass_at_k(2) == report.pass_at_k(2)
