"""End-to-end runs of the plugin (pytester) against the scripted loopback server."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fakes.bench import bad_script, case_outcomes, good_script, read_jsonl, thinker_script

from pytest_llmbench.outcome import VOCABULARY

WORDS = tuple(shown.word for shown in VOCABULARY.values())  # PASSED, FAILED, TRUNCATED, ...


def run_bench(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai",
        f"--llmbench-base-url={url}",
        "--llmbench-jsonl=out/results.jsonl",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *args,
    )


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai({"good": good_script(), "bad": bad_script(), "thinker": thinker_script()})


def test_outcomes_per_case_for_scripted_models(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good,bad,thinker")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    outcomes = case_outcomes(rows)
    good = {k[1:]: v for k, v in outcomes.items() if k[0] == "good"}
    assert set(good.values()) == {"passed"}, good
    assert len(good) == 7
    bad = {k[1:]: v for k, v in outcomes.items() if k[0] == "bad"}
    assert bad == {
        ("python", "add", "small"): "failed",
        ("python", "add", "negative"): "failed",
        # a - b happens to be right for nothing here: 0.1 - 0.2 != 0.3
        ("python", "add", "floats"): "failed",
        ("cli", "count_lines", "three"): "truncated",
        ("tooling", "weather", "called"): "no_answer",
        ("tooling", "weather", "not_time"): "no_answer",
        ("tooling", "lookup_then_email", "emailed"): "failed",
    }
    thinker = {k[1:]: v for k, v in outcomes.items() if k[0] == "thinker"}
    assert thinker[("python", "add", "small")] == "passed"
    assert thinker[("cli", "count_lines", "three")] == "passed"
    assert thinker[("tooling", "weather", "called")] == "no_answer"
    result.assert_outcomes(passed=7 + 4, failed=3 + 7)


def test_table_and_jsonl_metadata(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good,bad", "--llmbench-seed=7")
    text = result.stdout.str()
    assert "llmbench results" in text
    table = [line for line in text.splitlines() if line.startswith(("good", "bad", "model"))]
    assert table[0].split()[:9] == [
        "model", "python", "cli", "tooling", "total", "tasks", "time", "decode", "tok/s"
    ]  # fmt: skip
    assert table[1].split()[:5] == ["good", "3/3", "1/1", "3/3", "7/7"]
    assert table[2].split()[:5] == ["bad", "0/3", "0/1", "0/3", "0/7"]
    assert "1 truncated" in table[2]
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert [r["model"] for r in rows] == ["good", "bad"]
    for row in rows:
        assert row["backend"] == "openai"
        assert row["base_url"] == server.url
        assert row["settings"]["seed"] == 7
        assert row["settings"]["temperature"] == 0.2
        assert row["run_id"] == rows[0]["run_id"]
        for key in ("timestamp", "plugin_version", "tasks_digest"):
            assert row[key]
        by_task = {t["task"]: t for t in row["results"]}
        assert by_task["add"]["total"] == 3
        assert by_task["add"]["completion_tokens"] > 0
        assert by_task["add"]["ttft_s"] is not None and by_task["add"]["ttft_s"] >= 0
    # what the server received: the seed and the temperature, for every chat request
    bodies = server.chat_requests()
    assert bodies and all(b["seed"] == 7 and b["temperature"] == 0.2 for b in bodies)


def test_one_generation_per_model_and_task(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=good")
    bodies = server.chat_requests()
    # add (1 request) + count_lines (1) + weather (2 turns) + lookup_then_email (3 turns)
    assert len(bodies) == 7


def test_jsonl_is_appended_run_after_run(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=good")
    run_bench(bench_dir, server.url, "--models=good")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert len(rows) == 2 and rows[0]["run_id"] != rows[1]["run_id"]


def test_junit_xml_carries_case_properties(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=bad", "--junitxml=out/junit.xml")
    tree = ET.parse(bench_dir.path / "out/junit.xml")
    props: dict[str, dict[str, str]] = {}
    for case in tree.iter("testcase"):
        props[case.get("name", "")] = {
            p.get("name", ""): p.get("value", "") for p in case.iter("property")
        }
    assert props["count_lines/three[bad]"]["llmbench_outcome"] == "truncated"
    assert props["add/small[bad]"]["llmbench_outcome"] == "failed"
    assert int(props["add/small[bad]"]["llmbench_completion_tokens"]) > 0


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("cli", {"count_lines/three[good]", "count_lines/three[bad]"}),
        ("weather and good", {"weather/called[good]", "weather/not_time[good]"}),
        ("bad and python", {"add/small[bad]", "add/negative[bad]", "add/floats[bad]"}),
    ],
)
def test_k_selects_suites_tasks_and_models(
    bench_dir: pytest.Pytester, server: Any, expr: str, expected: set[str]
) -> None:
    result = run_bench(bench_dir, server.url, "--models=good,bad", "-k", expr, "-rA")
    ran = {
        line.split("::", 1)[1].split(" ")[0]
        for line in result.stdout.lines
        if line.startswith(WORDS)
    }
    assert ran == expected


def test_m_selects_by_suite_marker(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good", "-m", "tooling")
    result.assert_outcomes(passed=3)


def test_node_ids_are_readable_and_stable(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good", "--collect-only", "-q")
    assert "tasks/python/small_python.yaml::add/small[good]" in result.stdout.lines


def test_items_run_grouped_by_model(bench_dir: pytest.Pytester, server: Any) -> None:
    # Collection yields each file's items for every model; the run must still be by model.
    result = run_bench(bench_dir, server.url, "--models=good,bad", "-v")
    models = [
        line.split(" ")[0].rsplit("[", 1)[1].rstrip("]")
        for line in result.stdout.lines
        if line.startswith("tasks/") and any(f" {word}" in line for word in WORDS)
    ]
    assert models == ["good"] * 7 + ["bad"] * 7


def test_xdist_gives_the_same_outcomes(bench_dir: pytest.Pytester, server: Any) -> None:
    run_bench(bench_dir, server.url, "--models=good,bad,thinker", "-n", "0")
    plain = case_outcomes(read_jsonl(bench_dir.path / "out/results.jsonl"))
    (bench_dir.path / "out/results.jsonl").unlink()
    result = run_bench(bench_dir, server.url, "--models=good,bad,thinker", "-n", "2")
    rows = read_jsonl(bench_dir.path / "out/results.jsonl")
    assert [r["model"] for r in rows] == ["good", "bad", "thinker"]
    assert case_outcomes(rows) == plain
    assert result.stdout.str().count("llmbench results") == 1


def test_xdist_puts_each_model_on_one_worker(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good,bad", "-n", "2", "-v")
    workers: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if line.startswith("[gw") and "[" in line[4:]:
            worker = line[1:4]
            model = line.rsplit("[", 1)[1].split("]")[0]
            workers.setdefault(model, set()).add(worker)
    assert set(workers) == {"good", "bad"}
    assert all(len(w) == 1 for w in workers.values()), workers


def test_oracle_flags_suspect_tasks(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=good", "--oracle=bad")
    text = result.stdout.str()
    assert "SUSPECT TASK(S)" in text
    assert "cli:count_lines:three (truncated" in text
    ok = run_bench(bench_dir, server.url, "--models=good,bad", "--oracle=good")
    assert "Oracle OK" in ok.stdout.str()


def test_unreachable_backend_is_one_clear_error(bench_dir: pytest.Pytester) -> None:
    result = run_bench(bench_dir, "http://127.0.0.1:9", "--models=ghost,reference", "-m", "python")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [x for x in result.stderr.lines if x.strip()]
    assert line.startswith("ERROR: llmbench: cannot reach the OpenAI-compatible server at ")
    assert "http://127.0.0.1:9" in line
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (bench_dir.path / "out/results.jsonl").exists()  # nothing ran, nothing scored


def test_server_errors_are_errors_not_failures(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    from fakes.openai_server import Reply

    server = fake_openai({"flaky": lambda body: Reply(status=500)})
    result = run_bench(bench_dir, server.url, "--models=flaky", "-m", "python")
    result.assert_outcomes(errors=3)


def test_no_models_collects_nothing_and_says_how(bench_dir: pytest.Pytester) -> None:
    result = bench_dir.runpytest("tasks", "-p", "no:cacheprovider")
    assert "--models=" in result.stdout.str() and "--llmbench-list" in result.stdout.str()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_malformed_task_file_names_file_line_task_field(bench_dir: pytest.Pytester) -> None:
    bad = bench_dir.path / "tasks" / "python" / "broken.yaml"
    bad.write_text(
        "suite: python\ntasks:\n  - id: oops\n    prompt: x\n    entry_point: f\n"
        "    reference: 'def f(): pass'\n    cases:\n      - id: a\n        args: [1]\n"
        "        expect: 1\n        timeout_s: soon\n"
    )
    result = bench_dir.runpytest("--models=reference", "-p", "no:cacheprovider")
    text = result.stdout.str()
    assert "broken.yaml:11" in text
    assert "task 'oops'" in text and "cases.0.timeout_s" in text
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run


BROKEN_SANDBOX = """
import pytest
from pytest_llmbench.sandbox.base import SandboxError
from pytest_llmbench.run.session import STATE


class Broken:
    tier = "full"

    def run_python(self, *args):
        raise SandboxError("bwrap: setting up uid map: Permission denied")

    def run_shell(self, *args):
        raise SandboxError("bwrap: setting up uid map: Permission denied")

    def close(self):
        pass


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.stash[STATE]._sandbox = Broken()
"""


def test_a_sandbox_failure_is_an_error_not_a_model_failure(bench_dir: pytest.Pytester) -> None:
    bench_dir.makeconftest(BROKEN_SANDBOX)
    result = bench_dir.runpytest(
        "--models=reference", "-m", "python or cli", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(errors=4)
    assert "uid map" in result.stdout.str()
    assert "tasks no model passed" not in result.stdout.str()
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert {t["task"]: t["outcomes"] for t in row["results"]} == {
        "add": {"error": 3},
        "count_lines": {"error": 1},
    }


# A suite that said it runs its answers in the sandbox, on a machine that has none.
SANDBOX_FOR_TOOLING = """
from pytest_llmbench import sandbox
from pytest_llmbench.suites.tooling import ToolingSuite


def refuse(required="auto"):
    raise sandbox.SandboxUnavailable("no sandbox on this machine")


sandbox.get_sandbox = refuse
ToolingSuite.uses_sandbox = True
"""


def test_which_suites_need_the_sandbox_is_each_suites_own_word(
    bench_dir: pytest.Pytester,
) -> None:
    bench_dir.makeconftest(SANDBOX_FOR_TOOLING)
    # In a process of its own: the conftest changes a class of the package.
    result = bench_dir.runpytest_subprocess(
        "--models=reference", "-m", "tooling", "-p", "no:cacheprovider"
    )
    # The sandbox is checked before any model is called, as for python and cli.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "llmbench: no sandbox on this machine" in result.stdout.str() + result.stderr.str()


def test_task_files_named_without_models_get_a_hint(bench_dir: pytest.Pytester) -> None:
    result = bench_dir.runpytest("tasks/python", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    (hint,) = [line for line in result.stdout.lines if line.startswith("llmbench:")]
    assert hint.startswith("llmbench: task files were named but no models") and "--models=" in hint
    # Named nothing of the kind: pytest's own run, without a word from the plugin.
    other = bench_dir.runpytest("-p", "no:cacheprovider")
    assert not [line for line in other.stdout.lines if line.startswith("llmbench")]


def test_last_failed_reruns_only_the_failed_cases(bench_dir: pytest.Pytester, server: Any) -> None:
    args = ("--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=good,bad")
    bench_dir.runpytest(*args, "-m", "python or cli")
    again = bench_dir.runpytest(*args, "-m", "python or cli", "--lf", "-v")
    again.assert_outcomes(failed=4)
    assert not [line for line in again.stdout.lines if "[good]" in line and "PASSED" in line]


def test_tasks_no_model_passed_are_listed(bench_dir: pytest.Pytester, server: Any) -> None:
    result = run_bench(bench_dir, server.url, "--models=bad,thinker")
    (line,) = [x for x in result.stdout.lines if x.startswith("tasks no model passed")]
    assert line == "tasks no model passed: tooling:weather, tooling:lookup_then_email"
    single = run_bench(bench_dir, server.url, "--models=bad")
    assert "tasks no model passed" not in single.stdout.str()


def test_json_report_carries_case_properties(bench_dir: pytest.Pytester, server: Any) -> None:
    import json

    run_bench(bench_dir, server.url, "--models=bad", "-m", "cli",
              "--json-report", "--json-report-file=out/report.json")  # fmt: skip
    report = json.loads((bench_dir.path / "out/report.json").read_text())
    (test,) = report["tests"]
    props = {k: v for prop in test["user_properties"] for k, v in prop.items()}
    assert props["llmbench_outcome"] == "truncated"
    assert test["outcome"] == "failed"


def test_jsonl_names_the_backend_that_answered(bench_dir: pytest.Pytester, serve: Any) -> None:
    from fakes.lmstudio_server import LMStudioFake, Model

    fake = serve(LMStudioFake(models=[Model("ghost")]))
    bench_dir.runpytest(
        "--models=reference,ghost", f"--llmbench-base-url={fake.url}", "-m", "tooling",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider",
    )  # fmt: skip
    rows = {r["model"]: r for r in read_jsonl(bench_dir.path / "out.jsonl")}
    assert (rows["reference"]["backend"], rows["reference"]["base_url"]) == ("builtin", None)
    assert (rows["ghost"]["backend"], rows["ghost"]["base_url"]) == ("lmstudio", fake.url)
    bad_name = bench_dir.runpytest("--models=ghost", "--llmbench-backend=nope")
    assert bad_name.ret == pytest.ExitCode.USAGE_ERROR
    assert "--llmbench-backend must be one of lmstudio" in bad_name.stderr.str()
