"""Models that are not there: a named model its server does not have is skipped at start-up with
one line (model, backend, URL, how to list what is installed) and nothing else; a server that
does not answer stops the run with one line before any item runs. Plain and under xdist."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import GOOD_CODE, read_jsonl
from fakes.chat_stream import Answer
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel

from pytest_llmbench.reporting.summary import summarise
from pytest_llmbench.run.stopping import EXIT_INFRA_ERROR

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")
GOOD = Answer([GOOD_CODE])


def run(bench: pytest.Pytester, backend: str, url: str, models: str, *args: str) -> Any:
    return bench.runpytest(
        f"--llmbench-backend={backend}", f"--llmbench-base-url={url}", f"--models={models}",
        "--llmbench-jsonl=out.jsonl", "-m", "python", *QUIET, *args,
    )  # fmt: skip


def mentions(result: pytest.RunResult, text: str) -> list[str]:
    return [line for line in result.stdout.lines + result.stderr.lines if text in line]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_model_the_server_lacks_is_skipped_with_one_line(
    bench_dir: pytest.Pytester, serve: Any, workers: str
) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a")], answers={"org/a": GOOD}))
    result = run(bench_dir, "lmstudio", fake.url, "org/a,org/b,reference", "-n", workers, "-q")
    assert mentions(result, "org/b") == [
        f"llmbench: skipping org/b: not installed in lmstudio at {fake.url} (installed models: "
        f"pytest --llmbench-list --llmbench-backend=lmstudio --llmbench-base-url={fake.url})"
    ]
    result.assert_outcomes(passed=6)  # org/a and reference; nothing of org/b ran or failed
    assert not [event for event in fake.events if "org/b" in event]
    rows = {row["model"]: row for row in read_jsonl(bench_dir.path / "out.jsonl")}
    assert rows["org/a"]["passed"] == 3 and rows["reference"]["passed"] == 3
    skipped = rows["org/b"]
    assert skipped["skipped"] == "not installed" and skipped["results"] == []
    assert "passed" not in skipped and "total" not in skipped  # not scored zero
    assert (skipped["backend"], skipped["base_url"]) == ("lmstudio", fake.url)
    assert skipped["run_id"] == rows["org/a"]["run_id"]
    assert summarise(skipped) == "org/b (lmstudio): skipped: not installed"


def test_ollama_names_without_a_tag_mean_latest(bench_dir: pytest.Pytester, serve: Any) -> None:
    fake = serve(OllamaFake(models=[OllamaModel("a:latest")], answers={"a": GOOD}))
    result = run(bench_dir, "ollama", fake.url, "a,b:7b")
    result.assert_outcomes(passed=3)
    (line,) = mentions(result, "skipping")
    assert line.startswith("llmbench: skipping b:7b: not installed in ollama at ")


def test_when_no_named_model_is_installed_nothing_runs(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = serve(LMStudioFake(models=[Model("org/a")]))
    result = run(bench_dir, "lmstudio", fake.url, "org/x,org/y")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert len(mentions(result, "llmbench: skipping")) == 2
    assert "llmbench results" not in result.stdout.str()
    rows = read_jsonl(bench_dir.path / "out.jsonl")
    assert [(r["model"], r["skipped"]) for r in rows] == [
        ("org/x", "not installed"), ("org/y", "not installed")
    ]  # fmt: skip


def test_results_that_cannot_be_written_with_a_model_skipped_are_one_line(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    jsonl = bench_dir.path / "out.jsonl"

    def answer(body: dict[str, Any]) -> Answer:
        jsonl.mkdir(exist_ok=True)  # the results file is a directory by the end of the run
        return GOOD

    fake = serve(LMStudioFake(models=[Model("org/a")], answers={"org/a": answer}))
    result = run(bench_dir, "lmstudio", fake.url, "org/a,org/b")
    assert result.ret == EXIT_INFRA_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert len(mentions(result, "RESULTS NOT WRITTEN")) == 1
    assert "INTERNALERROR" not in text and "Traceback" not in text


@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_unreachable_server_is_one_line_before_any_item(
    bench_dir: pytest.Pytester, closed_url: str, workers: str
) -> None:
    result = run(bench_dir, "ollama", closed_url, "a,b,reference", "-n", workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = mentions(result, closed_url)
    assert line.startswith(f"ERROR: llmbench: cannot reach Ollama at {closed_url}")
    assert "`ollama serve`" in line
    assert "passed" not in result.stdout.str() and "error" not in result.stdout.str().lower()
    assert not (bench_dir.path / "out.jsonl").exists()


def test_collect_only_needs_no_server(bench_dir: pytest.Pytester, closed_url: str) -> None:
    result = run(bench_dir, "lmstudio", closed_url, "a", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert "tasks/python/small_python.yaml::add/small[a]" in result.stdout.lines
