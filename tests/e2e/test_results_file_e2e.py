"""End-to-end: the JSONL says what a run set out to do and what it did, its path is checked
before any model is called, and a write never fuses with what an earlier run left; the exit
status tells CI whether the models were wrong or the infrastructure failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import bad_script, good_script, read_jsonl
from fakes.http_fake import Raw
from fakes.openai_server import Reply, last_user_text

from pytest_llmbench.results import history
from pytest_llmbench.run.stopping import EXIT_INFRA_ERROR
from pytest_llmbench.storage.database import database_path
from pytest_llmbench.storage.record_reader import read_run

WORKERS = pytest.mark.parametrize("workers", ["0", "2"])


def run(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={url}",
        "--llmbench-jsonl=out/results.jsonl", "-p", "no:cacheprovider", *args,
    )  # fmt: skip


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai({"good": good_script(), "bad": bad_script()})


def rows(bench: pytest.Pytester, path: str = "out/results.jsonl") -> list[dict[str, Any]]:
    return read_jsonl(bench.path / path)


@WORKERS
def test_a_keyword_selection_is_recorded_beside_the_declared_total(
    bench_dir: pytest.Pytester, server: Any, workers: str
) -> None:
    result = run(bench_dir, server.url, "--models=good", "-k", "add and floats", "-n", workers)
    assert result.ret == pytest.ExitCode.OK
    (row,) = rows(bench_dir)
    assert (row["passed"], row["total"], row["declared_total"]) == (1, 1, 3)
    assert row["selection"] == {"k": "add and floats", "m": None, "lf": False, "args": [],
                                "selected": 1, "ran": 1}  # fmt: skip
    (task,) = row["results"]
    assert (task["task"], task["total"], task["declared"]) == ("add", 1, 3)
    assert row["interrupted"] is None


@WORKERS
def test_x_stops_the_run_and_says_so(bench_dir: pytest.Pytester, server: Any, workers: str) -> None:
    # Tooling only: nothing runs in the sandbox, so no sandbox run is cut short by the stop
    # (the scheduler's scoring threads do not wait for one when a session ends).
    result = run(bench_dir, server.url, "--models=bad", "-x", "-m", "tooling", "-n", workers)
    # the same status with and without xdist (which reports its stop as an interruption)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    (row,) = rows(bench_dir)
    assert row["interrupted"] == "-x"
    assert row["selection"]["selected"] == row["declared_total"] == 3
    assert row["total"] == row["selection"]["ran"] < 3
    assert "PARTIAL RUN: ended by -x" in result.stdout.str()


def test_paths_and_markers_are_recorded(bench_dir: pytest.Pytester, server: Any) -> None:
    paths = ["tasks/python", "tasks/tooling/small_tooling.yaml"]
    run(bench_dir, server.url, "--models=good", *paths, "-m", "not tooling")
    (row,) = rows(bench_dir)
    assert row["selection"]["args"] == paths and row["selection"]["m"] == "not tooling"
    assert (row["total"], row["declared_total"]) == (3, 3)


def test_last_failed_is_recorded(bench_dir: pytest.Pytester, server: Any) -> None:
    args = ("--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=bad",
            "--llmbench-jsonl=out/results.jsonl", "-m", "python or cli")  # fmt: skip
    bench_dir.runpytest(*args)
    bench_dir.runpytest(*args, "--lf")
    first, second = rows(bench_dir)
    assert first["selection"]["lf"] is False and second["selection"]["lf"] is True
    assert second["selection"]["selected"] == 4  # the failed ones: add's 3, count_lines' 1


def test_the_digest_names_the_case_set_that_ran(bench_dir: pytest.Pytester, server: Any) -> None:
    run(bench_dir, server.url, "--models=good", "-m", "python")
    run(bench_dir, server.url, "--models=good", "-m", "python")
    run(bench_dir, server.url, "--models=good", "-m", "python", "-k", "floats")
    full, again, narrowed = (r["tasks_digest"] for r in rows(bench_dir))
    assert full == again != narrowed
    # and the task file's contents: an edited task is another case set
    path = bench_dir.path / "tasks/python/small_python.yaml"
    path.write_text(path.read_text().replace("expect: 3}", "expect: 3, timeout_s: 5}"))
    run(bench_dir, server.url, "--models=good", "-m", "python")
    assert rows(bench_dir)[-1]["tasks_digest"] != full


@WORKERS
@pytest.mark.parametrize("where", ["directory", "under a file"])
def test_an_unwritable_results_path_stops_the_run_before_any_model_is_called(
    bench_dir: pytest.Pytester, server: Any, workers: str, where: str
) -> None:
    (bench_dir.path / "taken").mkdir()
    (bench_dir.path / "plain").write_text("x")
    target = "taken" if where == "directory" else "plain/results.jsonl"
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=good",
        f"--llmbench-jsonl={target}", "-p", "no:cacheprovider", "-n", workers,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    expected = "taken is a directory" if where == "directory" else "cannot write plain/results"
    lines = [line for line in text.splitlines() if "llmbench: --llmbench-jsonl:" in line]
    assert len(lines) == 1 and expected in lines[0], text
    assert server.requests == []  # not even the model list was asked for


def test_a_write_that_fails_at_the_end_still_prints_the_table(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    out = bench_dir.path / "out"
    good = good_script()

    def script(body: dict[str, Any]) -> Reply:
        if out.is_dir():  # the results directory vanishes mid-run, a file in its place
            shutil.rmtree(out)
            out.write_text("not a directory")
        return good(body)

    server = fake_openai({"good": script})
    result = run(bench_dir, server.url, "--models=good", "-m", "python")
    assert result.ret == EXIT_INFRA_ERROR
    text = result.stdout.str()
    assert "llmbench results" in text
    assert any(line.split()[:2] == ["good", "3/3"] for line in text.splitlines())
    written = [line for line in text.splitlines() if "RESULTS NOT WRITTEN" in line]
    assert len(written) == 1 and "out/results.jsonl" in written[0], text
    assert "Traceback" not in text


def test_a_markdown_table_that_cannot_be_written_is_named_and_the_jsonl_kept(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    tables = bench_dir.path / "tables"
    good = good_script()

    def script(body: dict[str, Any]) -> Reply:
        if tables.is_dir():  # the markdown's directory vanishes mid-run, a file in its place
            shutil.rmtree(tables)
            tables.write_text("not a directory")
        return good(body)

    server = fake_openai({"good": script})
    result = run(
        bench_dir, server.url, "--models=good", "-m", "python",
        "--llmbench-markdown=tables/table.md",
    )  # fmt: skip
    assert result.ret == EXIT_INFRA_ERROR
    written = [line for line in result.stdout.lines if "RESULTS NOT WRITTEN" in line]
    assert len(written) == 1 and "tables/table.md" in written[0], result.stdout.str()
    (row,) = rows(bench_dir)  # written before the markdown was tried
    assert row["passed"] == 3
    recorded = read_run(database_path(bench_dir.path), row["run_id"])
    assert recorded.summaries["good"]["passed"] == 3


def test_a_torn_last_line_is_left_on_its_own(bench_dir: pytest.Pytester, server: Any) -> None:
    path = bench_dir.path / "out/results.jsonl"
    path.parent.mkdir()
    earlier = json.dumps({"run_id": "r0", "model": "earlier", "passed": 1})
    torn = '{"run_id": "r1", "model": "killed mid-wri\xc3'  # no newline, and half a character
    path.write_bytes(f"{earlier}\n{torn}".encode()[:-1])
    run(bench_dir, server.url, "--models=good", "-m", "python")
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == earlier.encode()
    assert lines[1] == torn.encode()[:-1]
    assert json.loads(lines[2])["model"] == "good" and lines[3] == b""
    # Readers skip the torn line, and can say how many they skipped.
    found = history.read_jsonl(path)
    assert [r["model"] for r in found.records] == ["earlier", "good"]
    assert found.unreadable == 1


def test_appends_from_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "results.jsonl"
    processes = [multiprocessing.Process(target=_append_many, args=(path, n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 50
    assert all(len(json.loads(line)["pad"]) == 20_000 for line in lines)


def _append_many(path: Path, writer: int) -> None:
    from pytest_llmbench.reporting.jsonl import append_jsonl

    for index in range(50):
        record = {"writer": writer, "index": index, "pad": "x" * 20_000}
        append_jsonl(path, [json.dumps(record)] * 1)


# --------------------------------------------------------------------------- exit status


@WORKERS
@pytest.mark.parametrize(
    ("models", "status"),
    [("good", pytest.ExitCode.OK), ("bad", pytest.ExitCode.TESTS_FAILED),
     ("good,faulty", EXIT_INFRA_ERROR), ("bad,faulty", EXIT_INFRA_ERROR)],
)  # fmt: skip
def test_exit_status_tells_wrong_answers_from_infrastructure_errors(
    bench_dir: pytest.Pytester, fake_openai: Any, workers: str, models: str, status: int
) -> None:
    good, bad = good_script(), bad_script()

    def faulty(body: dict[str, Any]) -> Reply:
        if "def add" in last_user_text(body):
            return Reply(fault=Raw(b"data: {not json\n\n"))
        return good(body)

    server = fake_openai({"good": good, "bad": bad, "faulty": faulty})
    result = run(bench_dir, server.url, f"--models={models}", "-n", workers)
    assert result.ret == status, result.stdout.str()
