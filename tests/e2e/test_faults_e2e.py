"""End-to-end: a server that misbehaves on one task. That task's cases are `error` (asked once
per task, retries counted), every other task is scored as usual, and no case goes missing,
with and without xdist."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import case_outcomes, good_script, read_jsonl
from fakes.http_fake import Raw, Sse
from fakes.openai_server import Reply, by_prompt, last_user_text

from pytest_llmbench.run.stopping import EXIT_INFRA_ERROR

FAULTS = {
    # garbage is not retried: one request for the task's three cases
    "invalid JSON chunk": (Raw(b"data: {not json\n\n"), "malformed", 1),
    # a stream cut short is retried twice like a 5xx, then written off
    "no finish_reason": (
        Sse([{"model": "m", "choices": [{"index": 0, "delta": {"content": "x"}}]}], done=False),
        "without a finish_reason",
        3,
    ),
}


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_faulty_answer_is_an_error_for_its_task_only(
    bench_dir: pytest.Pytester, fake_openai: Any, workers: str, fault: str
) -> None:
    response, words, requests = FAULTS[fault]
    good = good_script()

    def script(body: dict[str, Any]) -> Reply:
        return Reply(fault=response) if "def add" in last_user_text(body) else good(body)

    server = fake_openai({"m": script})
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider", "-n", workers,
    )  # fmt: skip
    result.assert_outcomes(passed=4, errors=3)
    assert result.ret == EXIT_INFRA_ERROR
    text = result.stdout.str()
    assert words in text and server.url in text
    assert "Traceback" not in text
    asked = [b for b in server.chat_requests() if "def add" in last_user_text(b)]
    assert len(asked) == requests
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert (row["passed"], row["total"]) == (4, 7)
    add = next(t for t in row["results"] if t["task"] == "add")
    assert add["outcomes"] == {"error": 3} and add["total"] == 3
    assert add["retries"] == requests - 1
    assert all(words in case["detail"] for case in add["cases"])
    outcomes = case_outcomes([row])
    assert {v for k, v in outcomes.items() if k[2] != "add"} == {"passed"}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_hostile_tool_call_arguments_are_the_models_failure(
    bench_dir: pytest.Pytester, fake_openai: Any, workers: str
) -> None:
    deep_list = "[" * 5000 + "]" * 5000
    deep_object = '{"city": ' * 300 + '"Paris"' + "}" * 300
    script = by_prompt(
        {
            "weather": [
                Reply(tool_calls=[{"name": "get_weather", "arguments": deep_list}]),
                Reply("done"),
            ],
            "Alice": [
                Reply(tool_calls=[{"name": "get_user", "arguments": deep_object}]),
                Reply(tool_calls=[{"name": "send_email", "arguments": deep_object}]),
                Reply("done"),
            ],
        }
    )
    server = fake_openai({"m": script})
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider", "-m", "tooling", "-n", workers,
    )  # fmt: skip
    text = result.stdout.str()
    assert "RecursionError" not in text and "Traceback" not in text
    result.assert_outcomes(passed=1, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the model's failure, not ours
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    outcomes = case_outcomes([row])
    assert outcomes == {
        ("m", "tooling", "weather", "called"): "failed",
        ("m", "tooling", "weather", "not_time"): "passed",
        ("m", "tooling", "lookup_then_email", "emailed"): "failed",
    }
    details = [c.get("detail", "") for t in row["results"] for c in t["cases"]]
    assert any("not valid JSON" in d for d in details)
    # the mock told the model its arguments were unusable, and the run went on
    answers = [
        b["messages"][-1] for b in server.chat_requests() if b["messages"][-1]["role"] == "tool"
    ]
    assert answers and all("not a valid JSON object" in a["content"] for a in answers)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_load_that_fails_once_is_retried_and_the_model_benchmarked(
    bench_dir: pytest.Pytester, serve: Any, workers: str
) -> None:
    from fakes.bench import GOOD_CODE
    from fakes.chat_stream import Answer
    from fakes.http_fake import Json
    from fakes.lmstudio_server import LMStudioFake, Model

    fake = serve(
        LMStudioFake(
            models=[Model("alpha")],
            answers={"alpha": Answer([GOOD_CODE])},
            load_failures=[Json(500, {"error": "still unloading the previous model"})],
        )
    )
    result = bench_dir.runpytest(
        f"--llmbench-base-url={fake.url}", "--models=alpha", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider", "-m", "python", "-n", workers,
    )  # fmt: skip
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    assert [p for p in fake.paths("POST") if p.endswith("/load")] == ["/api/v1/models/load"] * 2
    assert fake.events[0] == "load alpha ctx=4096"
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert row["passed"] == 3
