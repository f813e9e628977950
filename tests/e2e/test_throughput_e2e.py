"""End-to-end: concurrent generation, the answer store, one model per server, replicas."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fakes.bench import (
    add_task_number,
    add_tasks,
    bad_script,
    case_outcomes,
    good_script,
    read_jsonl,
)
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.openai_server import FakeOpenAI, Reply, Script, last_user_text

MANY_TASKS = add_tasks(10)  # prompts the scripts below can tell apart


def answer_many(body: dict[str, Any]) -> Reply:
    n = add_task_number(body)
    # Odd tasks get a wrong answer, so verdicts are not all alike.
    op = "+" if n % 2 == 0 else "-"
    return Reply(f"```python\ndef add{n}(a, b):\n    return a + b {op} {n}\n```")


class InFlight:
    """Wraps a script: each request holds for `hold_s`, counting requests held at once."""

    def __init__(self, script: Script, hold_s: float = 0.15) -> None:
        self.script = script
        self.hold_s = hold_s
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold_s)
        with self._lock:
            self.now -= 1
        return self.script(body)


def many_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    path = pytester.path / "tasks" / "python" / "many.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MANY_TASKS)
    return pytester


def run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        f"--llmbench-base-url={url}", "--llmbench-backend=openai", "-p", "no:cacheprovider",
        "--llmbench-jsonl=out.jsonl", *args,
    )  # fmt: skip


@pytest.mark.parametrize("concurrency", [1, 3])
def test_requests_in_flight_reach_the_concurrency_and_never_exceed_it(
    pytester: pytest.Pytester,
    fake_openai: Callable[[dict[str, Script]], FakeOpenAI],
    concurrency: int,
) -> None:
    many_dir(pytester)
    counter = InFlight(answer_many)
    server = fake_openai({"m": counter})
    result = run(
        pytester, server.url, "--models=m", f"--llmbench-concurrency={concurrency}",
        "--llmbench-cache=off",
    )  # fmt: skip
    result.assert_outcomes(passed=10, failed=10)
    assert counter.peak == concurrency
    assert len(server.chat_requests()) == 10
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert row["concurrency"] == concurrency
    assert row["concurrency_source"] == "option"
    assert row["settings"]["concurrency"] == concurrency


def test_verdicts_are_identical_at_concurrency_1_and_4(
    bench_dir: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(bench_dir)

    def with_many(script: Script) -> Script:
        def either(body: dict[str, Any]) -> Reply:
            many = re.search(r"`def add\d", last_user_text(body))
            return (answer_many if many else script)(body)

        return either

    server = fake_openai({"good": with_many(good_script()), "bad": with_many(bad_script())})
    outcomes = []
    for concurrency in (1, 4):
        (bench_dir.path / "out.jsonl").unlink(missing_ok=True)
        run(
            bench_dir, server.url, "--models=good,bad", "--llmbench-cache=off",
            f"--llmbench-concurrency={concurrency}",
        )  # fmt: skip
        outcomes.append(case_outcomes(read_jsonl(bench_dir.path / "out.jsonl")))
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0]) == 2 * (7 + 20)  # every declared case, per model
    assert set(outcomes[0].values()) >= {"passed", "failed", "truncated"}


def test_only_selected_tasks_are_generated(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    server = fake_openai({"m": answer_many})
    result = run(pytester, server.url, "--models=m", "-k", "add3 or add4")
    result.assert_outcomes(passed=2, failed=2)
    prompts = sorted(last_user_text(body) for body in server.chat_requests())
    assert len(prompts) == 2
    assert "add3" in prompts[0] and "add4" in prompts[1]


def test_auto_concurrency_sends_one_at_a_time_so_answers_are_reproducible(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    counter = InFlight(answer_many)
    server = fake_openai({"m": counter})
    result = run(pytester, server.url, "--models=m", "--llmbench-cache=off")
    result.assert_outcomes(passed=10, failed=10)
    assert counter.peak == 1
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert (row["concurrency"], row["concurrency_source"]) == (1, "reproducible")
    assert (row["reproducible"], row["batched"]) == (True, False)
    assert row["provenance"]["answers"] == "alone"
    note = (
        "reproducible at temperature 0.2, seed 1: each answer decoded alone; "
        "--llmbench-concurrency=server for speed, answers then depend on batching"
    )
    assert row["reproducibility"] == note
    assert f"m: 1 in flight, {note}" in result.stdout.str()
    # Every request carried the seed, and asked a llama.cpp server for no prompt-cache reuse
    # only where it is one (this is the generic backend: nothing server-specific is sent).
    assert all(b["seed"] == 1 and "cache_prompt" not in b for b in server.chat_requests())


def test_server_concurrency_uses_the_default_when_the_server_cannot_say(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    counter = InFlight(answer_many)
    server = fake_openai({"m": counter})
    result = run(
        pytester, server.url, "--models=m", "--llmbench-cache=off", "--llmbench-concurrency=server"
    )
    result.assert_outcomes(passed=10, failed=10)
    assert counter.peak == 4
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert (row["concurrency"], row["concurrency_source"]) == (4, "default")
    assert (row["reproducible"], row["batched"]) == (False, True)
    assert "m: 4 in flight, NOT reproducible: answers share the server's batches" in (
        result.stdout.str()
    )


def test_without_a_seed_auto_keeps_the_server_busy_answers_vary_anyway(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    counter = InFlight(answer_many)
    server = fake_openai({"m": counter})
    run(pytester, server.url, "--models=m", "--llmbench-cache=off", "--llmbench-seed=none")
    assert counter.peak == 4
    assert all("seed" not in body for body in server.chat_requests())
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert row["settings"]["seed"] is None
    assert row["reproducible"] is False
    assert row["reproducibility"].startswith("answers vary from run to run: temperature 0.2")
    # Greedy decoding needs no seed: one at a time again.
    counter.peak = 0
    run(
        pytester, server.url, "--models=m", "--llmbench-cache=off", "--llmbench-seed=none",
        "--llmbench-temperature=0",
    )  # fmt: skip
    assert counter.peak == 1


def test_replicas_share_one_models_requests(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    first, second = fake_openai({"m": InFlight(answer_many)}), fake_openai({"m": answer_many})
    result = pytester.runpytest(
        "--llmbench-backend=openai", "--models=m",
        f"--llmbench-endpoint=m={first.url},{second.url}",
        "--llmbench-concurrency=2", "--llmbench-cache=off", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=10, failed=10)
    served = len(first.chat_requests()), len(second.chat_requests())
    assert sum(served) == 10 and min(served) >= 1, served
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert row["concurrency"] == 4  # two replicas, two in flight each


def test_replicas_keep_a_tasks_repeats_together(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    """Every sample of a task goes to the replica that took its first one (the server's
    prompt cache serves the others), and the JSONL says which replica that was."""
    many_dir(pytester)
    first, second = fake_openai({"m": InFlight(answer_many, 0.05)}), fake_openai({"m": answer_many})
    result = pytester.runpytest(
        "--llmbench-backend=openai", "--models=m",
        f"--llmbench-endpoint=m={first.url},{second.url}", "--llmbench-repeat=3",
        "--llmbench-seed=1", "--llmbench-concurrency=2", "--llmbench-cache=off",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=10, failed=10)
    where: dict[str, set[str]] = {}
    for server in (first, second):
        for body in server.chat_requests():
            where.setdefault(last_user_text(body), set()).add(server.url)
    assert len(where) == 10  # every task asked ...
    assert all(len(servers) == 1 for servers in where.values()), where  # ... of one replica
    assert {url for servers in where.values() for url in servers} == {first.url, second.url}
    samples = [last_user_text(b) for s in (first, second) for b in s.chat_requests()]
    assert len(samples) == 30  # three samples of each
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    by_task = {t["task"]: t for t in row["results"]}
    for task in by_task.values():
        (prompt,) = [p for p in where if f"add{task['task'].removeprefix('add')}(" in p]
        assert task["replica"].rstrip("/").startswith(next(iter(where[prompt])).rstrip("/"))


def test_each_replica_takes_the_requests_its_url_star_n_asks_for(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    """`URL*N` keeps N in flight on that replica, whatever --llmbench-concurrency says (auto
    here: one each), and the URL is used and reported without it."""
    many_dir(pytester)
    big, small = InFlight(answer_many), InFlight(answer_many)
    first, second = fake_openai({"m": big}), fake_openai({"m": small})
    result = pytester.runpytest(
        "--llmbench-backend=openai", "--models=m",
        f"--llmbench-endpoint=m={first.url}*2,{second.url}*1", "--llmbench-cache=off",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=10, failed=10)
    assert (big.peak, small.peak) == (2, 1)
    assert len(first.chat_requests()) + len(second.chat_requests()) == 10
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert (row["concurrency"], row["concurrency_source"]) == (3, "endpoint")
    # The generic server says nothing of its slots: two at once may share a batch.
    assert (row["reproducible"], row["batched"]) == (False, True)
    assert row["base_url"] == first.url  # the first replica, as reports name the model
    replicas = {t["replica"].rstrip("/") for t in row["results"]}
    assert replicas == {first.url.rstrip("/"), second.url.rstrip("/")}


def lmstudio_two_models() -> LMStudioFake:
    def answer(body: dict[str, Any]) -> Any:
        from fakes.chat_stream import Answer, tokens

        return Answer(content=tokens(answer_many(body).content))

    return LMStudioFake(
        models=[Model("alpha"), Model("beta")],
        answers={"alpha": answer, "beta": answer},
        chunk_delay_s=0.01,
    ).start()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "n2"])
def test_one_model_loaded_per_server_also_under_xdist(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    many_dir(pytester)
    fake = lmstudio_two_models()
    try:
        result = pytester.runpytest(
            f"--llmbench-base-url={fake.url}", "--models=alpha,beta", "--llmbench-cache=off",
            "-p", "no:cacheprovider", *workers,
        )  # fmt: skip
    finally:
        fake.stop()
    result.assert_outcomes(passed=20, failed=20)
    loaded: set[str] = set()
    most = 0
    for event in fake.events:
        verb, _, rest = event.partition(" ")
        name = rest.split(" ")[0]  # "load KEY ctx=N", "unload INSTANCE", "chat KEY"
        if verb == "load":
            loaded.add(name)
        elif verb == "unload":
            loaded = {n for n in loaded if not name.startswith(n)}
        elif verb == "chat":
            most = max(most, len(loaded))
            assert loaded == {name}, f"{name} answered while {loaded} were loaded"
    assert most == 1


def test_models_on_different_servers_run_side_by_side_under_xdist(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    hold = threading.Event()
    seen: set[str] = set()

    def meet(name: str) -> Script:
        def script(body: dict[str, Any]) -> Reply:
            seen.add(name)
            # Each server waits (bounded) until the other one has been asked too: only
            # models that run at the same time on two workers get past this quickly.
            if len(seen) == 2:
                hold.set()
            hold.wait(timeout=20)
            return answer_many(body)

        return script

    first, second = fake_openai({"a": meet("a")}), fake_openai({"b": meet("b")})
    started = time.monotonic()
    result = pytester.runpytest(
        "--llmbench-backend=openai", "--models=a,b", f"--llmbench-endpoint=a={first.url}",
        f"--llmbench-endpoint=b={second.url}", "--llmbench-cache=off", "-n", "2",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=20, failed=20)
    assert hold.is_set(), "the two models never ran at the same time"
    assert time.monotonic() - started < 60


def store_rows(root: Any) -> int:
    with sqlite3.connect(root / ".llmbench" / "store.sqlite3") as conn:
        return int(conn.execute("SELECT count(*) FROM answers").fetchone()[0])


def test_rerunning_asks_nothing_and_says_the_answers_came_from_the_store(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    server = fake_openai({"m": answer_many})
    first = run(pytester, server.url, "--models=m")
    first.assert_outcomes(passed=10, failed=10)
    assert len(server.chat_requests()) == 10
    assert store_rows(pytester.path) == 10
    again = run(pytester, server.url, "--models=m")
    again.assert_outcomes(passed=10, failed=10)
    assert len(server.chat_requests()) == 10  # nothing asked again
    assert "10 of 10 answers from the store" in again.stdout.str()
    rows = read_jsonl(pytester.path / "out.jsonl")
    assert [r["answers_from_store"] for r in rows] == [0, 10]
    assert case_outcomes(rows[:1]) == case_outcomes(rows[1:])
    keys = {t["task"]: t["answer_key"] for t in rows[1]["results"]}
    assert keys == {t["task"]: t["answer_key"] for t in rows[0]["results"]}
    assert all(len(k) == 64 for k in keys.values())


@pytest.mark.parametrize(
    "change",
    [["--llmbench-seed=7"], ["--max-tokens=99"], ["--llmbench-temperature=0.9"],
     ["--llmbench-cache=refresh"]],
    ids=["seed", "max_tokens", "temperature", "refresh"],
)  # fmt: skip
def test_what_shapes_the_answer_misses_the_store(
    pytester: pytest.Pytester,
    fake_openai: Callable[[dict[str, Script]], FakeOpenAI],
    change: list[str],
) -> None:
    many_dir(pytester)
    server = fake_openai({"m": answer_many})
    run(pytester, server.url, "--models=m", "-k", "add1 or add2")
    assert len(server.chat_requests()) == 2
    run(pytester, server.url, "--models=m", "-k", "add1 or add2", *change)
    assert len(server.chat_requests()) == 4
    run(pytester, server.url, "--models=m", "-k", "add1 or add2")
    assert len(server.chat_requests()) == 4  # the first answers are still there


def test_cache_off_neither_reads_nor_writes(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    server = fake_openai({"m": answer_many})
    run(pytester, server.url, "--models=m", "-k", "add1", "--llmbench-cache=off")
    run(pytester, server.url, "--models=m", "-k", "add1", "--llmbench-cache=off")
    assert len(server.chat_requests()) == 2
    # The database still holds the run record (the transcripts), but no stored answer.
    database = pytester.path / ".llmbench" / "store.sqlite3"
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "answers" not in tables
        rows = conn.execute("SELECT run_id, model, task_ref, case_id FROM case_records").fetchall()
        assert len(rows) == 4, rows


def test_changed_cases_are_scored_again_without_asking_the_model(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    server = fake_openai({"m": answer_many})
    run(pytester, server.url, "--models=m", "-k", "add1").assert_outcomes(failed=2)
    # add1's model answer is a - b - 1: a case that expects exactly that now passes.
    tasks = pytester.path / "tasks" / "python" / "many.yaml"
    tasks.write_text(
        tasks.read_text().replace(
            "{id: zero, args: [0, 0], expect: 1}", "{id: zero, args: [1, 0], expect: 0}"
        )
    )
    result = run(pytester, server.url, "--models=m", "-k", "add1")
    result.assert_outcomes(passed=1, failed=1)
    assert len(server.chat_requests()) == 1


def test_a_run_killed_by_sigterm_regenerates_nothing_that_had_finished(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    # Each answer takes a second: the run is still generating when the signal lands, even on
    # a machine so busy that the exit takes a while.
    server = fake_openai({"m": InFlight(answer_many, hold_s=1.0)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", f"--llmbench-base-url={server.url}", "--models=m",
         "--llmbench-backend=openai", "--llmbench-concurrency=2", "-p", "no:cacheprovider"],
        cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(server.chat_requests()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    finished = store_rows(pytester.path)
    asked_first = len(server.chat_requests())
    assert 1 <= finished < 10, finished
    result = run(pytester, server.url, "--models=m", "--llmbench-concurrency=2")
    result.assert_outcomes(passed=10, failed=10)
    assert len(server.chat_requests()) - asked_first == 10 - finished
    assert store_rows(pytester.path) == 10


def test_a_broken_answer_store_fails_the_tasks_and_never_hangs_the_run(
    pytester: pytest.Pytester, fake_openai: Callable[[dict[str, Script]], FakeOpenAI]
) -> None:
    many_dir(pytester)
    (pytester.path / ".llmbench" / "store.sqlite3").mkdir(parents=True)  # cannot be opened
    server = fake_openai({"m": answer_many})
    result = run(pytester, server.url, "--models=m", "-k", "add1 or add2")
    result.assert_outcomes(errors=4)
    assert "internal error" in result.stdout.str()
