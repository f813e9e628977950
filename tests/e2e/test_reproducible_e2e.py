"""End-to-end: answers decoded alone by default, kept apart from batched ones in the answer
store, the prompt cache off where answers must be exact, and the batching audit, against a
fake server whose answers depend on how many requests it holds at once (as llama.cpp's do)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fakes.bench import add_task_number, add_tasks, read_jsonl
from fakes.chat_stream import Answer, tokens
from fakes.llamacpp_server import LlamaServerFake
from fakes.openai_server import FakeOpenAI, Reply, Script

TASKS = add_tasks(8)
RIGHT = "```python\ndef add{n}(a, b):\n    return a + b + {n}\n```"
WRONG = "```python\ndef add{n}(a, b):\n    return a + b - {n}\n```"
# Batched, some tasks get another answer: add1 and add2 a wrong one (alone: right), add5 a right
# one (alone: wrong), add3 the same code with a comment (another answer, the same verdict).
ALONE = {n: RIGHT for n in range(8)} | {5: WRONG}
BATCHED = ALONE | {
    1: WRONG,
    2: WRONG,
    5: RIGHT,
    3: RIGHT.replace("    return", "    # sum\n    return"),
}
FLIPPED = ["python:add1", "python:add2", "python:add5"]
CHANGED = ["python:add1", "python:add2", "python:add3", "python:add5"]


class Occupancy:
    """A script whose answer depends on the requests the server holds at once: each request
    is held `hold_s`, and one that ever shared the server with another gets the batched
    answer. Requests sent one at a time get the alone answer."""

    def __init__(self, hold_s: float = 0.4) -> None:
        self.hold_s = hold_s
        self.held: list[set[int]] = []  # per request held now, the most it shared the server
        self.peak = 0
        self.asked = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        shared = {0}
        with self._lock:
            self.asked += 1
            self.held.append(shared)
            for other in self.held:
                other.add(len(self.held))
            self.peak = max(self.peak, len(self.held))
        time.sleep(self.hold_s)
        with self._lock:
            self.held.remove(shared)
        n = add_task_number(body)
        answers = BATCHED if max(shared) > 1 else ALONE
        return Reply(answers[n].format(n=n))


@pytest.fixture
def tasks_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    path = pytester.path / "tasks" / "python" / "add.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(TASKS)
    return pytester


def run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    (pytester.path / "out.jsonl").unlink(missing_ok=True)
    return pytester.runpytest(
        f"--llmbench-base-url={url}", "--llmbench-backend=openai", "--models=m",
        "-p", "no:cacheprovider", "--llmbench-jsonl=out.jsonl", *args,
    )  # fmt: skip


def outcomes(row: dict[str, Any]) -> dict[str, str]:
    return {f"{r['task']}/{c['id']}": c["outcome"] for r in row["results"] for c in r["cases"]}


def test_the_audit_finds_exactly_the_planted_flips(
    tasks_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    script = Occupancy()
    server = fake_openai({"m": script})
    result = run(
        tasks_dir, server.url, "--llmbench-concurrency=4", "--llmbench-audit=all",
        "--llmbench-cache=off",
    )  # fmt: skip
    assert script.peak == 4 and script.asked == 16  # 8 batched, then the same 8 alone
    (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
    assert (row["batched"], row["reproducible"]) == (True, False)
    audit = row["audit"]
    assert audit["tasks"] == 8
    assert sorted(audit["flipped"]) == FLIPPED and audit["verdicts_flipped"] == 3
    assert sorted(audit["changed"]) == CHANGED and audit["answers_changed"] == 4
    assert audit["flip_rate"] == 0.375
    low, high = audit["interval"]
    assert low < 0.375 < high  # Wilson's, over the 8 audited tasks
    # The items are scored on the batched answers (that is what the run measured) ...
    got = outcomes(row)
    assert got["add1/small"] == got["add2/small"] == "failed" and got["add5/small"] == "passed"
    # ... and every case carries its verdict alone.
    cases = {f"{r['task']}/{c['id']}": c for r in row["results"] for c in r["cases"]}
    assert cases["add1/small"]["audit"] == "passed" and cases["add5/zero"]["audit"] == "failed"
    assert cases["add3/small"]["audit_same_answer"] is False
    assert cases["add0/small"]["audit_same_answer"] is True
    labels = {r["task"]: r["stability"]["label"] for r in row["results"]}
    assert sorted(t for t, label in labels.items() if label == "batching-sensitive") == [
        "add1", "add2", "add5"
    ]  # fmt: skip
    text = result.stdout.str()
    assert (
        "BATCHING FLIPPED VERDICTS of m: 8 tasks generated again alone: 4 answers changed, "
        "3 verdicts flipped (38%, " in text
    )
    assert "python:add1, python:add2, python:add5" in text


def test_an_audit_of_a_share_picks_the_same_tasks_every_time(
    tasks_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    script = Occupancy(hold_s=0.2)
    server = fake_openai({"m": script})
    audited = []
    for _ in range(2):
        run(
            tasks_dir, server.url, "--llmbench-concurrency=4", "--llmbench-audit=25%",
            "--llmbench-cache=off",
        )  # fmt: skip
        (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
        assert row["audit"]["tasks"] == 2  # 25 % of 8
        audited.append(sorted(r["task"] for r in row["results"] if r["stability"]["audited"]))
    assert audited[0] == audited[1] and len(audited[0]) == 2


def test_a_reproducible_run_never_reuses_a_batched_answer(
    tasks_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    script = Occupancy(hold_s=0.2)
    server = fake_openai({"m": script})
    run(tasks_dir, server.url, "--llmbench-concurrency=4")  # batched, stored as such
    assert script.asked == 8
    batched = outcomes(read_jsonl(tasks_dir.path / "out.jsonl")[0])
    result = run(tasks_dir, server.url)  # the default: one at a time, asks again
    assert script.asked == 16 and script.peak == 4
    (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
    assert (row["answers_from_store"], row["batched"], row["reproducible"]) == (0, False, True)
    alone = outcomes(row)
    assert alone != batched  # the planted differences
    assert alone["add1/small"] == "passed" and alone["add5/small"] == "failed"
    assert "m: 1 in flight, reproducible at temperature 0.2, seed 1" in result.stdout.str()
    # Again: every answer from the store, each one of the alone ones.
    run(tasks_dir, server.url)
    assert script.asked == 16
    (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
    assert row["answers_from_store"] == 8 and outcomes(row) == alone
    # And a batched run finds the batched answers it stored.
    run(tasks_dir, server.url, "--llmbench-concurrency=4")
    assert script.asked == 16
    assert outcomes(read_jsonl(tasks_dir.path / "out.jsonl")[0]) == batched


def test_the_audit_answers_serve_a_later_reproducible_run(
    tasks_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    script = Occupancy(hold_s=0.2)
    server = fake_openai({"m": script})
    run(tasks_dir, server.url, "--llmbench-concurrency=4", "--llmbench-audit=all")
    assert script.asked == 16
    run(tasks_dir, server.url)
    assert script.asked == 16  # the audit's answers were generated alone: stored as such
    (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
    assert row["answers_from_store"] == 8


def test_nothing_to_audit_when_every_answer_was_decoded_alone(
    tasks_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    script = Occupancy(hold_s=0.0)
    server = fake_openai({"m": script})
    result = run(tasks_dir, server.url, "--llmbench-audit=all", "--llmbench-cache=off")
    assert script.asked == 8  # nothing generated twice
    (row,) = read_jsonl(tasks_dir.path / "out.jsonl")
    assert row["audit"] == {"tasks": 0, "why": "nothing to audit: every answer was decoded alone"}
    assert "audit of m: nothing to audit: every answer was decoded alone" in result.stdout.str()


def test_llama_server_is_asked_to_compute_exact_answers_from_scratch(
    tasks_dir: pytest.Pytester, serve: Any
) -> None:
    def answer(body: dict[str, Any]) -> Answer:
        n = add_task_number(body)
        return Answer(tokens(RIGHT.format(n=n)))

    fake = serve(LlamaServerFake(model="m", answers={"m": answer}, total_slots=4))
    base = ["--llmbench-backend=llamacpp", f"--llmbench-base-url={fake.url}", "--models=m",
            "-p", "no:cacheprovider", "--llmbench-cache=off"]  # fmt: skip
    tasks_dir.runpytest(*base).assert_outcomes(passed=16)
    bodies = fake.bodies("/v1/chat/completions")
    # Alone: the prompt cache's reused prefix would change the tokens.
    assert len(bodies) == 8 and all(b["cache_prompt"] is False for b in bodies)
    tasks_dir.runpytest(*base, "--llmbench-concurrency=server").assert_outcomes(passed=16)
    bodies = fake.bodies("/v1/chat/completions")[8:]
    # Batched: exact answers are out of reach anyway, and the cache saves time.
    assert len(bodies) == 8 and not any("cache_prompt" in b for b in bodies)


def _answers(pytester: pytest.Pytester) -> dict[str, str]:
    """Each task's answer text in the last run, read from the answer store by its key."""
    import json
    import sqlite3

    (row,) = read_jsonl(pytester.path / "out.jsonl")
    store = sqlite3.connect(pytester.path / ".llmbench" / "store.sqlite3")
    try:
        found = {}
        for task in row["results"]:
            (text,) = store.execute(
                "SELECT generation FROM answers WHERE key = ?", (task["answer_key"],)
            ).fetchone()
            found[task["task"]] = json.loads(text)["answer"]
        return found
    finally:
        store.close()


@pytest.mark.embedded
def test_the_real_model_gives_the_same_answers_in_any_order_and_layout(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SmolLM2 on the embedded llama-servers, with default options: ten bundled python tasks
    on one server per CPU, then five of them on a single server (another order of requests,
    another server per task): every answer is the same text."""
    ten = "two_sum or is_palindrome or is_anagram or roman_to_int or int_to_roman or " \
          "caesar_shift or run_length_encode or trapezoid or top_word or parse_kv"  # fmt: skip
    five = "parse_kv or top_word or caesar_shift or is_anagram or two_sum"
    args = ["--models=smollm2", "--llmbench-backend=embedded", "-m", "python",
            "--max-tokens=256", "--llmbench-cache=refresh", "--llmbench-jsonl=out.jsonl",
            "-p", "no:cacheprovider"]  # fmt: skip
    pytester.runpytest(*args, "-k", ten)
    first = _answers(pytester)
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    cpus = len(os.sched_getaffinity(0))
    assert (row["provenance"]["servers"], row["concurrency"]) == (cpus, cpus)
    (pytester.path / "out.jsonl").unlink()
    monkeypatch.setenv("LLMBENCH_EMBEDDED_SERVERS", "1")
    result = pytester.runpytest(*args, "-k", five)
    second = _answers(pytester)
    assert len(first) == 10 and len(second) == 5, result.stdout.str()
    assert {task: first[task] for task in second} == second
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert (row["reproducible"], row["batched"], row["concurrency"]) == (True, False, 1)
    assert row["provenance"]["threads"] == 1 and row["provenance"]["servers"] == 1
