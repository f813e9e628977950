"""`llmbench compare OLD NEW`: runs read back from JSONL, what changed, and its gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench import cli
from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.options import parse_rate
from pytest_llmbench.outcome import Outcome
from pytest_llmbench.reporting.jsonl import RunInfo, append_jsonl, jsonl_line
from pytest_llmbench.results.aggregate import ModelReport, aggregate
from pytest_llmbench.results.gate import GATE_FAILED, gate
from pytest_llmbench.results.history import (
    RunNotFound,
    load_run,
    parse_jsonl,
    read_jsonl,
    resolve_run,
)


def write_run(
    path: Path,
    run_id: str,
    failing: dict[str, set[int]],
    tasks: int = 20,
    provenance: dict[str, Any] | None = None,
    prefix: str = "",
) -> None:
    """Append one run: per model, `tasks` python tasks of 2 cases and 10 cli tasks of 1 case
    (their ids start with `prefix`); the python tasks in `failing[model]` fail their second
    case. Every model's line carries `provenance` when given, else none at all (as lines
    written before it existed)."""
    results = [
        CaseResult(model, "python", f"{prefix}p{t}", f"c{c}",
                   "failed" if t in fails and c == 1 else "passed", file="tasks/p.yaml")
        for model, fails in failing.items()
        for t in range(tasks)
        for c in range(2)
    ] + [
        CaseResult(model, "cli", f"{prefix}k{t}", "only", "passed", file="tasks/k.yaml")
        for model in failing
        for t in range(10)
    ]  # fmt: skip
    info = RunInfo(run_id, f"2026-01-0{len(run_id) % 9 + 1}T00:00:00+00:00", "openai",
                   "0.1.0", "d", {})  # fmt: skip
    reports = aggregate(results, tuple(failing))
    lines = [jsonl_line(r, info, "openai", None, None, reports, provenance=provenance)
             for r in reports]  # fmt: skip
    if provenance is None:
        lines = [json.dumps({k: v for k, v in json.loads(line).items() if k != "provenance"})
                 for line in lines]  # fmt: skip
    append_jsonl(path, lines)


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


def test_the_reader_skips_and_counts_what_is_not_a_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    good = [{"run_id": "r1", "model": "a"}, {"run_id": "r2", "model": "b", "passed": 1}]
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(good[0]).encode(),
                b"",  # blank: not counted
                b'{"run_id": "r1", "model": "cut \xc3',  # torn inside a UTF-8 character
                json.dumps(good[1]).encode(),
                b'["run_id", "model"]',  # whole JSON, but not an object
                b'{"model": "no run id"}',
                b'{"run_id": "r3", "model": "torn',  # the last line, without its newline
            ]
        )
    )
    found = read_jsonl(path)
    assert found.records == good
    assert found.unreadable == 4
    # The same rule over lines of text (a stream): what
    # `python -m pytest_llmbench.reporting.summary` reads.
    text = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    assert parse_jsonl(text) == found


def test_bad_references_are_one_line_errors(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(runs, "aaa999", {"qwen": set()})
    assert cli.main(["compare", "aaa", "bbb", "--jsonl", str(runs)]) == 1
    err = capsys.readouterr().err
    assert err == f"llmbench compare: run 'aaa' matches several runs in {runs}: aaa111, aaa999\n"
    assert cli.main(["compare", "zzz", "bbb", "--jsonl", str(runs)]) == 1
    err = capsys.readouterr().err
    assert err == f"llmbench compare: 'zzz' is neither a file nor a run id in {runs}\n"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert cli.main(["compare", str(empty), str(runs)]) == 1
    assert capsys.readouterr().err == f"llmbench compare: {empty} holds no runs yet\n"
    assert cli.main(["compare", "latest", str(runs), "--jsonl", str(empty)]) == 1
    assert capsys.readouterr().err == (
        f"llmbench compare: no run to take as 'latest': none recorded in {empty}\n"
    )


def test_latest_names_the_newest_run(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_run("latest", [runs]).run_id == "bbb222"
    # The first file that holds runs decides, as it does for a run id.
    assert load_run("latest", [runs.parent / "missing.jsonl", runs]).run_id == "bbb222"
    assert cli.main(["compare", "aaa111", "latest", "--jsonl", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "old: run aaa111" in out and "new: run bbb222" in out
    # `llmbench compare latest FILE`: the run just recorded against a baseline file.
    baseline = runs.parent / "baseline.jsonl"
    write_run(baseline, "base00", {"qwen": set(), "gemma": set()})
    code = cli.main(["compare", str(baseline), "latest", "--jsonl", str(runs),
                     "--fail-on-regression"])  # fmt: skip
    assert code == GATE_FAILED
    out = capsys.readouterr().out
    assert "old: run base00" in out and "new: run bbb222" in out
    assert "qwen: regressed" in out


def test_a_run_id_is_found_before_the_longer_ids_it_begins(runs: Path) -> None:
    write_run(runs, "bbb", {"qwen": set()})
    assert load_run("bbb", [runs]).run_id == "bbb"
    assert load_run("bbb2", [runs]).run_id == "bbb222"
    with pytest.raises(RunNotFound, match="'bb' matches several runs in x: bbb, bbb222"):
        resolve_run("bb", ["bbb", "bbb222"], "x")


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


def gate_lines(out: str) -> list[str]:
    return out[out.index("llmbench gate:") :].splitlines()


def test_a_regression_gate_that_compared_nothing_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    write_run(old, "aaa111", {"qwen": set(), "gemma": set()})
    # No model in common: nothing to compare, so nothing shown not to have regressed.
    write_run(new, "bbb222", {"phi": set()})
    assert cli.main(["compare", str(old), str(new)]) == 0  # without a gate, a comparison
    capsys.readouterr()
    assert cli.main(["compare", str(old), str(new), "--fail-on-regression"]) == GATE_FAILED
    assert gate_lines(capsys.readouterr().out) == [
        "llmbench gate: FAILED (exit status 7)",
        "  nothing compared: no model of this run is in the baseline (this run: phi; "
        "baseline: qwen, gemma)",
    ]
    # The same model, on other tasks.
    write_run(new, "ccc333", {"qwen": set()}, tasks=2, prefix="x")
    assert cli.main(["compare", str(old), str(new), "--fail-on-regression"]) == GATE_FAILED
    assert gate_lines(capsys.readouterr().out) == [
        "llmbench gate: FAILED (exit status 7)",
        "  qwen: nothing compared: no task in common (this run: python:xp0, python:xp1, "
        "cli:xk0, cli:xk1, cli:xk2, and 7 more; baseline: python:p0, python:p1, python:p2, "
        "python:p3, python:p4, and 25 more)",
    ]
    # A rate gate alone still passes: it needs no baseline.
    assert cli.main(["compare", str(old), str(new), "--fail-under", "0.5"]) == 0


def test_tasks_from_other_files_or_only_errors_compare_nothing(tmp_path: Path) -> None:
    def report(model: str, file: str, outcome: Outcome = "passed") -> ModelReport:
        [only] = aggregate([CaseResult(model, "python", "add", "c", outcome, file=file)], (model,))
        return only

    def verdict(old: ModelReport, new: ModelReport) -> list[str]:
        found = gate([new], fail_under=None, baseline=[old], fail_on_regression=True)
        return list(found.failures)

    assert verdict(report("m", "a.yaml"), report("m", "b.yaml")) == [
        "m: nothing compared: its tasks come from other task files (this run: b.yaml; "
        "baseline: a.yaml)"
    ]
    assert verdict(report("m", "a.yaml", "error"), report("m", "a.yaml")) == [
        "m: nothing compared: every task both runs ran ended in an error in one of them"
    ]
    assert verdict(report("m", "a.yaml"), report("m", "a.yaml")) == []


@pytest.mark.parametrize(("text", "value"), [("0.8", 0.8), ("80%", 0.8), ("80", 0.8), ("1", 1.0)])
def test_rates_read_as_fractions_or_percentages(text: str, value: float) -> None:
    assert parse_rate(text) == pytest.approx(value)


def test_impossible_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_rate("-3")
    with pytest.raises(ValueError):
        parse_rate("most")


def test_records_with_repeats_and_budgets_read_back_whole(tmp_path: Path) -> None:
    from pytest_llmbench.results.history import report_of

    results = [
        CaseResult("m", "python", "t", "c", outcome, file="f.yaml", repeat=r,
                   budgets=((8, "truncated"), (64, outcome)))
        for r, outcome in enumerate(["passed", "failed", "passed"])
    ]  # fmt: skip
    [report] = aggregate(results, ("m",))
    info = RunInfo("r", "t", "openai", "0", "d", {})
    back = report_of(json.loads(jsonl_line(report, info, "openai", None, None, [report])))
    assert back.repeats == 3 and back.budgets == [8, 64]
    assert back.score() == report.score()
    assert back.at_budget(8).count("truncated") == 3
    assert back.pass_at_k(2) == report.pass_at_k(2)


# -- provenance: what answered ---------------------------------------------------------------

LLAMA = {
    "server": "llama.cpp llama-server",
    "server_version": "b6000-abc1234",
    "model_file": {"path": "/m/q.gguf", "size_bytes": 9, "sha256_sampled": "1a2b" * 16},
    "chat_template_sha256": "c" * 64,
}


def compare_out(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> str:
    """What `llmbench compare` prints for two runs of qwen (same scores) whose lines carry
    these provenances (None: no `provenance` at all, as older lines)."""
    first, second = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    first.unlink(missing_ok=True)
    second.unlink(missing_ok=True)
    write_run(first, "aaa111", {"qwen": {0}}, provenance=old)
    write_run(second, "bbb222", {"qwen": {0}}, provenance=new)
    assert cli.main(["compare", str(first), str(second)]) == 0
    return capsys.readouterr().out


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("qwen:")]


def test_a_different_server_build_is_said_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = {**LLAMA, "server_version": "b6123-def4567"}
    assert warnings(compare_out(tmp_path, capsys, LLAMA, newer)) == [
        "qwen: different server build (b6000-abc1234 -> b6123-def4567): "
        "the difference may not be the model"
    ]


def test_each_kind_of_difference_has_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = {**LLAMA, "answers": "alone", "load_config": {"context_length": 4096, "flash": True},
           "gpu_layers": 99}  # fmt: skip
    new = {
        **LLAMA,
        "model_file": {"path": "/m/q.gguf", "size_bytes": 9, "sha256_sampled": "9f8e" * 16},
        "chat_template_sha256": "d" * 64,
        "answers": "batched",
        "load_config": {"context_length": 8192, "flash": True},
        "gpu_layers": 0,  # a field this version does not know: said by its name
        "threads": 2,  # only in the new run: nothing to compare it with
    }
    assert warnings(compare_out(tmp_path, capsys, old, new)) == [
        "qwen: different answers mode (alone -> batched): the difference may not be the model",
        "qwen: different load settings (context_length 4096 -> 8192): "
        "the difference may not be the model",
        "qwen: different chat template: the difference may not be the model",
        "qwen: different model file (sha256_sampled 1a2b1a2b1a2b -> 9f8e9f8e9f8e): "
        "another model answered",
        "qwen: different gpu layers (99 -> 0): the difference may not be the model",
    ]


def test_another_layout_of_the_embedded_servers_is_no_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two = {**LLAMA, "threads": 1, "servers": 2, "slots_per_server": 1, "answers": "alone"}
    eight = {**two, "servers": 8}
    assert warnings(compare_out(tmp_path, capsys, two, eight)) == []
    assert warnings(compare_out(tmp_path, capsys, two, {**eight, "threads": 2})) == [
        "qwen: different thread count (1 -> 2): the difference may not be the model"
    ]


def test_the_same_file_elsewhere_is_the_same_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = {**LLAMA, "model_file": {**LLAMA["model_file"], "path": "/other/q.gguf"}}
    assert warnings(compare_out(tmp_path, capsys, LLAMA, moved)) == []
    # A server on another machine names its file without measuring it: the path is all there is.
    remote = {**LLAMA, "model_file": {"path": "/srv/q.gguf"}}
    assert warnings(compare_out(tmp_path, capsys, LLAMA, remote)) == [
        "qwen: different model file (path /m/q.gguf -> /srv/q.gguf): another model answered"
    ]


def test_identical_provenance_warns_of_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert warnings(compare_out(tmp_path, capsys, LLAMA, dict(LLAMA))) == []


def test_records_without_provenance_compare_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    neither = compare_out(tmp_path, capsys, None, None)
    assert warnings(neither) == []
    # Exactly what identical provenance gives, but for the runs' labels: no line added.
    same = compare_out(tmp_path, capsys, LLAMA, LLAMA)
    assert neither.splitlines()[2:] == same.splitlines()[2:]
    # One side without (an older record): said once, since nothing can be checked.
    for old, new, which in ((None, LLAMA, "old"), (LLAMA, None, "new"), ({}, LLAMA, "old")):
        assert warnings(compare_out(tmp_path, capsys, old, new)) == [
            f"qwen: the {which} run records no provenance: the runs cannot be checked for a "
            "different server build, model file or chat template"
        ]


def test_what_a_server_sent_cannot_act_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rogue = {**LLAMA, "server_version": "b1\x1b[2J"}
    [line] = warnings(compare_out(tmp_path, capsys, LLAMA, rogue))
    assert "\x1b" not in line and "b1\\x1b[2J" in line


def test_a_run_recorded_before_the_bundled_tasks_moved_compares_task_by_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled tasks moved from pytest_llmbench/tasks/ to the top-level tasks/: the files a
    run recorded before name them by their former path, and still pair with today's."""
    from pytest_llmbench.results.history import load_run, read_jsonl

    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    write_run(before, "aaa111", {"qwen": set()})
    write_run(after, "bbb222", {"qwen": set(range(20))})  # every python task lost a case
    records = read_jsonl(before).records
    for record in records:
        for task in record["results"]:
            task["file"] = "pytest_llmbench/" + task["file"]
    before.write_text("".join(json.dumps(r) + "\n" for r in records))
    old = load_run(str(before), [])
    assert {t.file for t in old.reports[0].tasks} == {"tasks/p.yaml", "tasks/k.yaml"}
    assert cli.main(["compare", str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "20 lost" in out and "WORSE" in out  # paired over all 30 shared tasks
