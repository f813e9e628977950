"""End-to-end: what answered each model reaches its JSONL line (also from xdist workers), the
terminal names the server and its build, and `llmbench compare` warns when two runs differ in
it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fakes.bench import read_jsonl
from fakes.llamacpp_server import LlamaServerFake

WORKERS = pytest.mark.parametrize("workers", ["0", "2"])


def run(bench: pytest.Pytester, url: str, models: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=llamacpp",
        f"--llmbench-base-url={url}",
        f"--models={models}",
        "--llmbench-jsonl=out/results.jsonl",
        "--llmbench-cache=off",
        "-m",
        "tooling",  # no sandbox needed: quick
        "-p",
        "no:cacheprovider",
        *args,
    )


@WORKERS
def test_each_models_line_says_what_answered_it(
    bench_dir: pytest.Pytester, serve: Any, workers: str
) -> None:
    fake = serve(LlamaServerFake(router_models=["a", "b"], build_info="b6123-8f1d2c3"))
    result = run(bench_dir, fake.url, "a,b", "-n", workers, "--junitxml=out/junit.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # "ok" calls no tool
    rows = {row["model"]: row for row in read_jsonl(bench_dir.path / "out/results.jsonl")}
    for model in ("a", "b"):
        found = rows[model]["provenance"]
        assert found["server"] == "llama.cpp llama-server"
        assert found["server_version"] == "b6123-8f1d2c3"
        assert found["model_file"] == {"path": f"/models/{model}"}
        assert len(found["chat_template_sha256"]) == 64
    text = result.stdout.str()
    assert "a: 1 in flight, reproducible at temperature 0.2, seed 1: " in text
    assert "; llama.cpp llama-server b6123-8f1d2c3" in text
    for model in ("a", "b"):  # how the answers were decoded: one per server, each alone
        assert rows[model]["provenance"]["answers"] == "alone"
    # It travels once per model (and process), on one item's report, not on every case.
    junit = ET.parse(bench_dir.path / "out/junit.xml")
    carried = [
        json.loads(p.get("value") or "")["model"]
        for p in junit.iter("property")
        if p.get("name") == "llmbench_provenance"
    ]
    assert sorted(carried) == ["a", "b"]


def test_pseudo_models_and_silent_servers_record_none(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = serve(LlamaServerFake(router_models=["a"], props_extra={"build_info": None,
                 "chat_template": "", "model_path": None}))  # fmt: skip
    run(bench_dir, fake.url, "a,reference")
    rows = {row["model"]: row for row in read_jsonl(bench_dir.path / "out/results.jsonl")}
    # The server told nothing; how the plugin decoded its answers is still known.
    assert rows["a"]["provenance"] == {"answers": "alone"}
    assert rows["reference"]["provenance"] == {}
    assert rows["a"]["total"] == 3  # the load and the run went on as ever


def test_compare_warns_when_the_server_build_changed(
    bench_dir: pytest.Pytester, serve: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmbench import cli

    fake = serve(LlamaServerFake(router_models=["a"], build_info="b6000-abc1234"))
    out = bench_dir.path / "out"
    run(bench_dir, fake.url, "a", "--llmbench-jsonl=out/old.jsonl")
    run(bench_dir, fake.url, "a", "--llmbench-jsonl=out/same.jsonl")
    fake.build_info = "b6123-def4567"  # the server was rebuilt between two runs
    run(bench_dir, fake.url, "a", "--llmbench-jsonl=out/new.jsonl")
    capsys.readouterr()

    assert cli.main(["compare", str(out / "old.jsonl"), str(out / "new.jsonl")]) == 0
    warning = (
        "a: different server build (b6000-abc1234 -> b6123-def4567): "
        "the difference may not be the model"
    )
    assert warning in capsys.readouterr().out.splitlines()
    assert cli.main(["compare", str(out / "old.jsonl"), str(out / "same.jsonl")]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("a:")]


def test_the_baseline_comparison_warns_too(bench_dir: pytest.Pytester, serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a"], build_info="b6000-abc1234"))
    run(bench_dir, fake.url, "a", "--llmbench-jsonl=out/old.jsonl")
    fake.chat_template = "another template"
    result = run(bench_dir, fake.url, "a", "--llmbench-baseline=out/old.jsonl", "-n", "2")
    text = result.stdout.str()
    assert "against the baseline" in text
    assert "a: different chat template: the difference may not be the model" in text
    assert "server build" not in text
