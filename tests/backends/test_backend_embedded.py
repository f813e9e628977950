"""The `embedded` backend: its server process lifecycle (against a stand-in for `llama-server`,
run as a real child process) and one real run of the bundled SmolLM2 on the real llama-server."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes.chat_request import FAST_RETRY, ask

from pytest_llmbench.backends import embedded as embedded_module
from pytest_llmbench.backends import make_backend
from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.bundled_models import BUNDLED
from pytest_llmbench.backends.embedded import EmbeddedBackend, find_llama_server
from pytest_llmbench.exchange import BackendError

FAKE_SERVER = Path(__file__).resolve().parent.parent / "fakes" / "llama_server_process.py"


def alive(pid: int) -> bool:
    """Running, and not a zombie (nobody may reap orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def fake_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An executable stand-in for `llama-server ...` that serves the fake llama-server."""
    shim = tmp_path / "llama-server"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    shim.chmod(0o755)
    state = tmp_path / "server-state.json"
    monkeypatch.setenv("FAKE_LLAMA_STATE", str(state))
    return str(shim), state


@pytest.fixture
def gguf(tmp_path: Path) -> str:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


def embedded(executable: str, **kwargs: Any) -> EmbeddedBackend:
    kwargs.setdefault("slots", 2)
    kwargs.setdefault("servers", 1)
    kwargs.setdefault("threads", 2)
    return EmbeddedBackend(timeout_s=20.0, executable=executable, retry=FAST_RETRY, **kwargs)


def started(state: Path) -> list[dict[str, Any]]:
    """What each fake server started wrote: its argv, pid and helper's pid."""
    return [json.loads(line) for line in state.read_text().splitlines()]


def only_server(state: Path) -> dict[str, Any]:
    (server,) = started(state)
    return server


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_load_starts_a_server_and_unload_stops_it_and_its_children(
    fake_server: tuple[str, Path], gguf: str
) -> None:
    executable, state = fake_server
    backend = embedded(executable, slots=3)
    info = backend.load(gguf, LoadSettings(context_length=2048))
    server = only_server(state)
    argv = server["argv"]
    assert flag(argv, "--model") == gguf
    assert flag(argv, "--alias") == gguf
    # llama-server divides its context among the slots: each slot gets the context asked for.
    assert flag(argv, "--ctx-size") == str(3 * 2048)
    assert flag(argv, "--parallel") == "3"
    assert "--jinja" in argv
    assert flag(argv, "--reasoning-format") == "deepseek"
    assert flag(argv, "--host") == "127.0.0.1"
    assert backend.base_url == f"http://127.0.0.1:{flag(argv, '--port')}"
    assert flag(argv, "--threads") == "2"
    # Several slots share the host's prompt cache; a single slot gets none (see below).
    assert "--cache-ram" not in argv
    # What the server reports, not what we asked for: /props per slot, after /health said 200.
    assert info.context_length == 2048
    assert backend.parallel_slots(gguf) == 3
    assert backend.alone_slots(gguf) == 1
    assert alive(server["pid"]) and alive(server["helper"])

    backend.unload(gguf)
    assert not alive(server["pid"])
    assert not alive(server["helper"])
    assert backend.base_url == "embedded"
    assert backend.parallel_slots(gguf) is None


def test_provenance_names_the_file_the_executable_the_threads_and_the_template(
    fake_server: tuple[str, Path], gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from pytest_llmbench.backends.provenance import file_identity

    executable, _ = fake_server
    monkeypatch.setenv("FAKE_LLAMA_BUILD", "b6200-0a1b2c3")
    smollm2 = replace(BUNDLED["smollm2"], locate=lambda: Path(gguf))
    monkeypatch.setitem(BUNDLED, "smollm2", smollm2)
    backend = embedded(executable)
    backend.load("smollm2", LoadSettings())
    try:
        found = backend.provenance("smollm2")
    finally:
        backend.close()
    template = Path(__file__).parents[2] / "pytest_llmbench/backends/templates/chatml-tools.jinja"
    served_template = template.read_bytes().removesuffix(b"\n")
    assert found == {
        "server": "llama.cpp llama-server",
        "server_version": "b6200-0a1b2c3",
        "model_file": file_identity(gguf),
        # /props reports the template in use: ours, not the GGUF's (as the real server gives
        # it, without the file's final newline)
        "chat_template_sha256": hashlib.sha256(served_template).hexdigest(),
        "executable": file_identity(executable),
        "threads": 2,
        "servers": 1,
        "slots_per_server": 2,
    }
    assert backend.provenance("smollm2") == {}  # unloaded: nothing answers


def test_a_gguf_path_gets_the_same_context_as_the_bundled_models(
    fake_server: tuple[str, Path], gguf: str
) -> None:
    executable, state = fake_server
    backend = embedded(executable, slots=2)
    info = backend.load(gguf, LoadSettings())
    try:
        argv = only_server(state)["argv"]
        assert flag(argv, "--ctx-size") == str(2 * 8192)
        assert info.context_length == 8192 == BUNDLED["smollm2"].context_length
    finally:
        backend.close()


def test_smollm2_is_served_with_a_template_that_shows_the_tools(
    fake_server: tuple[str, Path], gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable, state = fake_server
    smollm2 = replace(BUNDLED["smollm2"], locate=lambda: Path(gguf))
    monkeypatch.setitem(BUNDLED, "smollm2", smollm2)
    backend = embedded(executable)
    backend.load("smollm2", LoadSettings())
    try:
        argv = only_server(state)["argv"]
    finally:
        backend.close()
    template = Path(flag(argv, "--chat-template-file"))
    assert template.name == "chatml-tools.jinja" and "<tool_call>" in template.read_text()
    assert flag(argv, "--alias") == "smollm2"


def test_chat_goes_through_the_llama_server_api(fake_server: tuple[str, Path], gguf: str) -> None:
    executable, _ = fake_server
    backend = embedded(executable)
    backend.load(gguf, LoadSettings())
    try:
        completion = backend.chat(ask(gguf, "one two three"))
    finally:
        backend.close()
    assert completion.content == f"hello from {gguf}"
    assert completion.usage.counted_by == "server"
    # the fake's timings block (42 tok/s decoding, 250 tok/s prompt), not the stream's clock
    assert completion.decode_tok_s == pytest.approx(42.0)
    assert completion.decode_timed_by == "server"
    assert completion.prompt_tok_s == pytest.approx(250.0)


def test_models_are_switched_one_server_at_a_time(
    fake_server: tuple[str, Path], gguf: str, tmp_path: Path
) -> None:
    executable, state = fake_server
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    backend = embedded(executable)
    backend.load(gguf, LoadSettings())
    first = only_server(state)["pid"]
    backend.unload(gguf)
    backend.load(str(other), LoadSettings())
    try:
        assert not alive(first)
        assert backend.chat(ask(str(other))).content == f"hello from {other}"
        # A request for another model is refused rather than answered by the one running.
        with pytest.raises(BackendError, match=r"runs model '.*other\.gguf' but was asked for"):
            backend.chat(ask(gguf))
    finally:
        backend.close()


def test_prompt_that_does_not_fit_the_context(fake_server: tuple[str, Path], gguf: str) -> None:
    executable, _ = fake_server
    backend = embedded(executable)
    backend.load(gguf, LoadSettings(context_length=12))
    try:
        # The fake's template adds "<|user|>" and "<|assistant|>": 9 words make 11 tokens.
        backend.chat(ask(gguf, " ".join(["w"] * 9)))
        with pytest.raises(BackendError, match="12-token context"):
            backend.chat(ask(gguf, " ".join(["w"] * 10)))
    finally:
        backend.close()


def test_a_server_that_dies_at_start_up_reports_its_log(
    fake_server: tuple[str, Path], gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable, _ = fake_server
    monkeypatch.setenv("FAKE_LLAMA_MODE", "crash")
    with pytest.raises(BackendError) as caught:
        embedded(executable).load(gguf, LoadSettings())
    assert "exited with code 3" in caught.value.message
    assert "error loading model" in caught.value.message


def test_finding_llama_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_server: tuple[str, Path]
) -> None:
    executable, _ = fake_server
    monkeypatch.setenv("LLMBENCH_LLAMA_SERVER", executable)
    assert find_llama_server() == executable
    monkeypatch.setenv("LLMBENCH_LLAMA_SERVER", str(tmp_path / "nope"))
    with pytest.raises(BackendError, match=r"LLMBENCH_LLAMA_SERVER=.*nope is not an executable"):
        find_llama_server()
    # Neither beside the interpreter nor on PATH: the error says how to get one.
    monkeypatch.delenv("LLMBENCH_LLAMA_SERVER")
    monkeypatch.setattr(embedded_module.sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BackendError, match=r"needs llama.cpp's `llama-server`: build it"):
        find_llama_server()
    monkeypatch.setenv("PATH", str(Path(executable).parent))
    assert find_llama_server() == executable


def test_list_models_shows_the_installed_bundled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUNDLED, "smollm2", replace(BUNDLED["smollm2"], installed=lambda: True))
    monkeypatch.setitem(
        BUNDLED, "gemma3-270m", replace(BUNDLED["gemma3-270m"], installed=lambda: False)
    )
    models = make_backend("embedded", None, timeout_s=5).list_models()
    assert [(m.key, m.context_length, m.quantization, m.loaded) for m in models] == [
        ("smollm2", 8192, "Q4_1", False)
    ]


def test_unknown_model_keys_and_missing_files(
    tmp_path: Path, fake_server: tuple[str, Path]
) -> None:
    backend = embedded(fake_server[0])
    with pytest.raises(BackendError, match="no model 'llama-70b'; use one of smollm2, gemma3-270m"):
        backend.load("llama-70b", LoadSettings())
    with pytest.raises(BackendError, match="no GGUF file at"):
        backend.load(str(tmp_path / "missing.gguf"), LoadSettings())


def test_chat_before_load_is_an_error() -> None:
    with pytest.raises(BackendError, match="not loaded"):
        make_backend("embedded", None, timeout_s=5).chat(ask("smollm2"))


@pytest.mark.embedded
def test_real_smollm2_through_the_embedded_backend() -> None:
    """The product end to end without fakes: the bundled model, a real server process."""
    backend = make_backend("embedded", None, timeout_s=300)
    info = backend.load("smollm2", LoadSettings())
    pid_url = backend.base_url
    try:
        completion = backend.chat(
            ask("smollm2", "Write a Python function that adds two numbers.", max_tokens=48,
                temperature=0.0, seed=1, timeout_s=120)
        )  # fmt: skip
    finally:
        backend.unload("smollm2")
    print(
        f"\nsmollm2: load {info.seconds:.2f}s ctx={info.context_length} "
        f"prompt={completion.usage.prompt_tokens} completion={completion.usage.completion_tokens} "
        f"({completion.usage.counted_by}) ttft={completion.ttft_s:.3f}s "
        f"decode={completion.decode_tok_s:.1f} tok/s wall={completion.wall_s:.2f}s "
        f"finish={completion.finish_reason}\n{completion.content}"
    )
    assert info.context_length == 8192
    assert completion.usage.counted_by == "server"
    assert completion.decode_timed_by == "server"
    assert completion.content.strip()
    assert (
        completion.usage.completion_tokens is not None
        and 0 < completion.usage.completion_tokens <= 48
    )
    assert completion.usage.prompt_tokens is not None and completion.usage.prompt_tokens > 10
    assert completion.finish_reason in ("stop", "length")
    assert completion.decode_tok_s is not None and completion.decode_tok_s > 1
    assert pid_url.startswith("http://127.0.0.1:")
    assert backend.base_url == "embedded"
    with pytest.raises(BackendError):
        backend.chat(ask("smollm2"))  # its server is gone


def test_by_default_one_single_slot_one_thread_server_per_cpu_each_answer_alone(
    fake_server: tuple[str, Path], gguf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable, state = fake_server
    monkeypatch.setattr(embedded_module, "usable_cpus", lambda: 2)
    backend = EmbeddedBackend(timeout_s=20.0, executable=executable, retry=FAST_RETRY)
    backend.load(gguf, LoadSettings())
    servers = started(state)
    try:
        assert len(servers) == 2
        assert len({flag(s["argv"], "--port") for s in servers}) == 2
        for server in servers:
            argv = server["argv"]
            assert flag(argv, "--parallel") == "1"
            assert flag(argv, "--threads") == flag(argv, "--threads-batch") == "1"
            # One slot never reuses another request's prompt: no RAM for copies of prompts.
            assert flag(argv, "--cache-ram") == "0"
            assert flag(argv, "--ctx-size") == "8192"
        assert backend.parallel_slots(gguf) == 2
        assert backend.alone_slots(gguf) == 2
        assert backend.chat(ask(gguf)).content == f"hello from {gguf}"
    finally:
        backend.close()
    assert not any(alive(s["pid"]) or alive(s["helper"]) for s in servers)
    assert backend.alone_slots(gguf) == 1


def test_requests_go_to_the_server_holding_the_fewest() -> None:
    backend = EmbeddedBackend(timeout_s=5.0)
    backend._running = [  # stand-ins: _take only counts
        embedded_module._Running(process=None, backend=None),  # type: ignore[arg-type]
        embedded_module._Running(process=None, backend=None),  # type: ignore[arg-type]
    ]
    first, second = backend._take(), backend._take()
    assert first is not second  # two in flight, two servers: each request alone
    third = backend._take()
    assert third is first and first.busy == 2 and second.busy == 1


@pytest.mark.parametrize(
    ("threads", "in_flight", "cpus", "layout"),
    [
        (1, None, 2, (2, 1)),  # one single-slot server per CPU
        (2, None, 2, (1, 1)),  # two threads each: one server
        (1, None, 1, (1, 1)),
        (1, 3, 2, (2, 2)),  # three in flight asked for: slots for them, batched
        (1, 1, 8, (1, 1)),  # one in flight asked for: one server is enough
        (1, 8, 2, (2, 4)),
    ],
)
def test_layout_of_servers_and_slots(
    threads: int, in_flight: int | None, cpus: int, layout: tuple[int, int]
) -> None:
    assert embedded_module.default_layout(threads, in_flight, cpus) == layout


def test_threads_and_servers_are_fixed_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmbench.backends.embedded import SERVERS_ENV, THREADS_ENV

    backend = EmbeddedBackend(timeout_s=5.0)
    monkeypatch.setattr(embedded_module, "usable_cpus", lambda: 4)
    # Not how busy the CPUs are: the thread count changes tokens, so it is fixed.
    assert backend.layout(LoadSettings()) == (4, 1, 1)
    monkeypatch.setenv(THREADS_ENV, "2")
    assert backend.layout(LoadSettings()) == (2, 1, 2)
    monkeypatch.setenv(SERVERS_ENV, "3")
    assert backend.layout(LoadSettings()) == (3, 1, 2)
    # Told how many servers, the requests asked for are spread over them.
    assert backend.layout(LoadSettings(in_flight=4)) == (3, 2, 2)
    monkeypatch.setenv(SERVERS_ENV, "1")
    assert backend.layout(LoadSettings(in_flight=4)) == (1, 4, 2)
    for env in (THREADS_ENV, SERVERS_ENV):
        for wrong in ("0", "two", "-1"):
            monkeypatch.setenv(env, wrong)
            with pytest.raises(BackendError, match=env):
                backend.layout(LoadSettings())
        monkeypatch.delenv(env)


def test_the_plan_keeps_answers_alone_unless_more_are_asked_for(
    fake_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llmbench.options import Settings
    from pytest_llmbench.run.session import ModelManager

    monkeypatch.setenv("LLMBENCH_LLAMA_SERVER", fake_server[0])
    monkeypatch.setattr(embedded_module, "usable_cpus", lambda: 2)
    gguf = fake_server[1].parent / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(BUNDLED, "smollm2", replace(BUNDLED["smollm2"], locate=lambda: gguf))
    plans = {}
    for concurrency in ("auto", "server", 3):
        manager = ModelManager(
            Settings(models=("smollm2",), backend="embedded", concurrency=concurrency)
        )
        manager.ensure_loaded("smollm2")
        try:
            plan = manager.plan("smollm2")
        finally:
            manager.close()
        plans[concurrency] = ([n for _, n in plan.replicas], plan.why, plan.batched)
    # Two single-slot servers: two in flight, each decoded alone, whatever auto or server say.
    assert plans["auto"] == ([2], "reproducible", False)
    assert plans["server"] == ([2], "server", False)
    # Three asked for: two servers of two slots each, three in flight, batched.
    assert plans[3] == ([3], "option", True)


def test_answers_of_another_thread_count_are_not_reused(
    fake_server: tuple[str, Path], gguf: str, bench_dir: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The thread count changes llama.cpp's tokens: the answer store keeps them apart."""
    from fakes.bench import read_jsonl

    monkeypatch.setenv("LLMBENCH_LLAMA_SERVER", fake_server[0])
    monkeypatch.setattr(embedded_module, "usable_cpus", lambda: 2)
    backend = embedded(fake_server[0], threads=3)
    assert backend.answer_settings(gguf) == {}  # nothing running: nothing to say
    backend.load(gguf, LoadSettings())
    try:
        assert backend.answer_settings(gguf) == {"threads": 3}
    finally:
        backend.close()

    def stored_after(threads: str | None = None) -> int:
        if threads is None:
            monkeypatch.delenv("LLMBENCH_EMBEDDED_THREADS", raising=False)
        else:
            monkeypatch.setenv("LLMBENCH_EMBEDDED_THREADS", threads)
        bench_dir.runpytest(f"--models={gguf}", "--llmbench-backend=embedded", "-m", "python",
                            "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider")  # fmt: skip
        (row,) = read_jsonl(bench_dir.path / "out.jsonl")
        (bench_dir.path / "out.jsonl").unlink()
        assert row["provenance"]["threads"] == int(threads or 1)
        return int(row["answers_from_store"])

    assert stored_after() == 0
    assert stored_after() == 1  # the same threads: the stored answer
    assert stored_after("2") == 0  # asked again
    assert stored_after("2") == 1
    assert stored_after() == 1  # the one-thread answer is still there
