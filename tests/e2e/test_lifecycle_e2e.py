"""End-to-end: the model lifecycle against a fake LM Studio (load, requests, unload, Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from fakes.bench import GOOD_CODE, read_jsonl
from fakes.chat_stream import Answer, tokens
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.signals import default_signals


def answer_for(body: dict[str, Any]) -> Answer:
    prompt = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
    if "def add" in prompt:
        return Answer(content=tokens(GOOD_CODE))
    if "data.txt" in prompt:
        return Answer(content=tokens("```bash\nwc -l < data.txt\n```"))
    return Answer(content=tokens("No tools needed."))


def lmstudio(*keys: str, delay: float = 0.0) -> LMStudioFake:
    return LMStudioFake(
        models=[Model(k) for k in keys],
        answers={k: answer_for for k in keys},
        chunk_delay_s=delay,
    ).start()


def test_each_model_is_loaded_once_around_its_requests(bench_dir: pytest.Pytester) -> None:
    fake = lmstudio("alpha", "beta")
    try:
        result = bench_dir.runpytest(
            f"--llmbench-base-url={fake.url}", "--models=alpha,beta", "-p", "no:cacheprovider"
        )
    finally:
        fake.stop()
    result.assert_outcomes(passed=8, failed=6)  # tooling answers are text: no_answer
    chats = [(r.path, r.body.get("model")) for r in fake.requests if "/chat/" in r.path]
    assert fake.lifecycle() == ["load alpha", "chat alpha", "unload alpha", "load beta",
                                "chat beta", "unload beta"]  # fmt: skip
    assert len(chats) == 2 * 4  # per model: add, count_lines, weather, lookup_then_email


def test_a_model_that_is_not_installed_is_skipped_and_the_run_goes_on(
    bench_dir: pytest.Pytester,
) -> None:
    # (A model that is installed but fails to load errors: test_backend_plugin_runs.py.)
    fake = lmstudio("alpha")
    try:
        result = bench_dir.runpytest(
            f"--llmbench-base-url={fake.url}", "--models=missing,alpha", "-m", "python",
            "-p", "no:cacheprovider",
        )  # fmt: skip
    finally:
        fake.stop()
    result.assert_outcomes(passed=3)
    assert "llmbench: skipping missing: not installed in lmstudio" in result.stdout.str()
    loads = [r.body["model"] for r in fake.requests if r.path.endswith("/load")]
    assert loads == ["alpha"]  # the missing model is found missing, never loaded
    chats = {r.body["model"] for r in fake.requests if r.path.endswith("/chat/completions")}
    assert chats == {"alpha"}


def test_ctrl_c_unloads_the_model_and_keeps_finished_results(bench_dir: pytest.Pytester) -> None:
    fake = lmstudio("alpha", delay=0.05)
    try:
        proc = subprocess.Popen(
            # Four in flight: the tooling answers are still coming when the signal lands.
            [sys.executable, "-m", "pytest", f"--llmbench-base-url={fake.url}", "--models=alpha",
             "--llmbench-jsonl=out.jsonl", "-v", "-p", "no:cacheprovider",
             "--llmbench-concurrency=4"],
            cwd=bench_dir.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=default_signals,
        )  # fmt: skip
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # until the python task's three cases have passed
            seen.append(line)
            if sum("::add/" in x and "PASSED" in x for x in seen) == 3:
                break
        proc.send_signal(signal.SIGINT)
        output = "".join(seen) + proc.communicate(timeout=60)[0]
    finally:
        fake.stop()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert fake.instances == [], f"still loaded after Ctrl-C: {fake.instances}"
    assert any(r.path.endswith("/unload") for r in fake.requests)
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    finished = {t["task"]: t for t in row["results"]}
    assert finished["add"]["passed"] == 3
