"""pytest runs of the plugin against each server's fake: the lifecycle as the server sees it.

Two models, the python task's three cases each: every server must see model a loaded, a's one
generation, a unloaded, then the same for b, and the scores must come from each model's answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import GOOD_CODE, WRONG_CODE, case_outcomes, read_jsonl
from fakes.chat_stream import Answer
from fakes.http_fake import Json
from fakes.llamacpp_server import LlamaServerFake
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel

GOOD = Answer([GOOD_CODE])
WRONG = Answer([WRONG_CODE])


def run(
    bench: pytest.Pytester, backend: str, url: str, models: str, *args: str
) -> pytest.RunResult:
    return bench.runpytest(
        f"--llmbench-backend={backend}",
        f"--llmbench-base-url={url}",
        f"--models={models}",
        "--llmbench-jsonl=out/results.jsonl",
        "-k",
        "add",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *args,
    )


def outcomes(bench: pytest.Pytester) -> dict[str, set[str]]:
    by_model: dict[str, set[str]] = {}
    for (model, _suite, _task, _case), outcome in case_outcomes(
        read_jsonl(bench.path / "out/results.jsonl")
    ).items():
        by_model.setdefault(model, set()).add(outcome)
    return by_model


def test_lmstudio_run(bench_dir: pytest.Pytester, serve: Any) -> None:
    fake = serve(
        LMStudioFake(
            models=[Model("org/a"), Model("org/b")], answers={"org/a": GOOD, "org/b": WRONG}
        )
    )
    result = run(bench_dir, "lmstudio", fake.url + "/v1", "org/a,org/b", "--llmbench-context=8192")
    assert fake.events == [
        "load org/a ctx=8192", "chat org/a", "unload org/a",
        "load org/b ctx=8192", "chat org/b", "unload org/b",
    ]  # fmt: skip
    assert outcomes(bench_dir) == {"org/a": {"passed"}, "org/b": {"failed"}}
    result.assert_outcomes(passed=3, failed=3)


def test_lmstudio_model_that_cannot_load_is_an_error_not_a_score(
    bench_dir: pytest.Pytester, serve: Any
) -> None:
    fake = serve(
        LMStudioFake(
            models=[Model("org/a"), Model("org/b")],
            answers={"org/a": GOOD},
            failing_loads={"org/b": Json(500, {"error": "out of memory"})},
        )
    )
    fake.preload("org/a", 4096)
    # org/b is installed, but its load fails: an error for its cases, nothing scored.
    result = run(bench_dir, "lmstudio", fake.url, "org/a,org/b")
    assert "out of memory" in result.stdout.str()
    assert outcomes(bench_dir) == {"org/a": {"passed"}, "org/b": {"error"}}
    assert "chat org/b" not in fake.events
    result.assert_outcomes(passed=3, errors=3)


def test_ollama_run(bench_dir: pytest.Pytester, serve: Any) -> None:
    fake = serve(
        OllamaFake(
            models=[OllamaModel("a:latest"), OllamaModel("b:1b")],
            answers={"a": GOOD, "b:1b": WRONG},
        )
    )
    result = run(bench_dir, "ollama", fake.url, "a,b:1b", "--llmbench-context=4096")
    assert fake.events == [
        "load a:latest ctx=4096 keep_alive=-1", "chat a", "unload a:latest",
        "load b:1b ctx=4096 keep_alive=-1", "chat b:1b", "unload b:1b",
    ]  # fmt: skip
    assert outcomes(bench_dir) == {"a": {"passed"}, "b:1b": {"failed"}}
    result.assert_outcomes(passed=3, failed=3)


def test_llamacpp_router_run(bench_dir: pytest.Pytester, serve: Any) -> None:
    fake = serve(LlamaServerFake(router_models=["a", "b"], answers={"a": GOOD, "b": WRONG}))
    result = run(bench_dir, "llamacpp", fake.url, "a,b")
    assert fake.events == ["load a", "chat a", "unload a", "load b", "chat b", "unload b"]
    assert outcomes(bench_dir) == {"a": {"passed"}, "b": {"failed"}}
    result.assert_outcomes(passed=3, failed=3)


@pytest.mark.parametrize("backend", ["lmstudio", "ollama", "llamacpp", "vllm", "openai"])
def test_llmbench_list_prints_each_servers_models(
    pytester: pytest.Pytester, serve: Any, backend: str
) -> None:
    from fakes.openai_server import FakeOpenAI, Reply
    from fakes.vllm_server import VLLMFake

    fakes: dict[str, Any] = {
        "lmstudio": lambda: LMStudioFake(models=[Model("org/a"), Model("org/b")]),
        "ollama": lambda: OllamaFake(models=[OllamaModel("a:latest"), OllamaModel("b:1b")]),
        "llamacpp": lambda: LlamaServerFake(router_models=["org/a", "b:1b"]),
        "vllm": lambda: VLLMFake(served="org/a"),
        "openai": lambda: FakeOpenAI({"org/a": lambda body: Reply("x")}),
    }
    fake = serve(fakes[backend]())
    result = pytester.runpytest(
        "--llmbench-list", f"--llmbench-backend={backend}", f"--llmbench-base-url={fake.url}"
    )
    assert result.ret == 0, result.stdout.str()
    lines = result.stdout.lines
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[header].split() == ["model", "size", "quant", "context", "tools", "reasoning",
                                     "loaded"]  # fmt: skip
    listed = [line.split()[0] for line in lines[header + 2 :] if line and not line.startswith(
        "benchmark")]  # fmt: skip
    assert "org/a" in listed or "a:latest" in listed


def test_llmbench_list_shows_the_bundled_embedded_models(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--llmbench-list", "--llmbench-backend=embedded")
    assert result.ret == 0, result.stdout.str()
    assert any(line.startswith("smollm2 ") for line in result.stdout.lines)


def test_vllm_run_keeps_many_requests_in_flight(bench_dir: pytest.Pytester, serve: Any) -> None:
    from fakes.vllm_server import VLLMFake

    from pytest_llmbench.backends.vllm import VLLM_IN_FLIGHT

    fake = serve(VLLMFake(answers={"Qwen/Qwen3-4B": GOOD}))
    # Asked for speed: as many as vLLM keeps busy, batched (vLLM batches like llama.cpp).
    result = run(bench_dir, "vllm", fake.url, "Qwen/Qwen3-4B", "--llmbench-concurrency=server")
    result.assert_outcomes(passed=3)
    (row,) = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert (row["concurrency"], row["concurrency_source"]) == (VLLM_IN_FLIGHT, "server")
    assert (row["batched"], row["reproducible"]) == (True, False)
    # Started batch-invariant (VLLM_BATCH_INVARIANT=1), as the user says: busy and exact.
    (bench_dir.path / "out/results.jsonl").unlink()
    run(bench_dir, "vllm", fake.url, "Qwen/Qwen3-4B", "--llmbench-batch-invariant")
    (row,) = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert (row["concurrency"], row["concurrency_source"]) == (VLLM_IN_FLIGHT, "server")
    assert (row["batched"], row["reproducible"]) == (False, True)
    assert "batch-invariant" in row["reproducibility"]
