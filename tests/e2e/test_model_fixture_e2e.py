"""End-to-end: the llm fixture. Test functions run against every model of --models beside the
task files, one load per model, each (test function, model) a case in the table, the JSONL and
the record, against a fake LM Studio."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from browser import chromium_page, grid_cell
from fakes.bench import GOOD_CODE, PYTHON_TASKS, read_jsonl, short_summary
from fakes.chat_stream import Answer, tokens
from fakes.http_fake import Json, Response
from fakes.lmstudio_server import LMStudioFake, Model

from pytest_llmbench.storage.database import database_path
from pytest_llmbench.storage.record_reader import list_runs, read_run

TESTS = """\
import pytest


def test_capital(llm):
    answer = llm.ask("What is the capital of France? One word.", system="Be brief.")
    assert answer.text.strip().lower() == "paris"


@pytest.mark.llmbench_prompts("Reply with the JSON object {\\"n\\": 2}.")
def test_json(llm):
    assert llm.ask("Reply with the JSON object {\\"n\\": 2}.").json() == {"n": 2}


def test_not_a_model_test():
    assert True
"""


def user_text(body: dict[str, Any]) -> str:
    return " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")


def answer_for(body: dict[str, Any]) -> Answer | Response:
    prompt = user_text(body)
    if "def add" in prompt:
        return Answer(content=tokens(GOOD_CODE))
    if "capital" in prompt:  # beta gets it wrong
        return Answer(content=tokens("Paris" if body["model"] == "alpha" else "Lyon"))
    if "JSON" in prompt:
        return Answer(content=tokens('{"n": 2}'))
    if "fault" in prompt:
        return Json(500, {"error": "the GPU fell over"})
    if "long" in prompt:
        return Answer(content=tokens("once upon a time"), finish_reason="length")
    return Answer(content=tokens("no idea"))


def lmstudio(*keys: str) -> LMStudioFake:
    return LMStudioFake(models=[Model(k) for k in keys], answers={k: answer_for for k in keys})


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "tasks" / "python").mkdir(parents=True)
    (pytester.path / "tasks" / "python" / "small.yaml").write_text(PYTHON_TASKS)
    pytester.makepyfile(test_extract=TESTS)
    return pytester


def run_module(
    pytester: pytest.Pytester,
    fake: LMStudioFake,
    module: str,
    *args: str,
    models: str = "alpha",
    subprocess: bool = False,
) -> pytest.RunResult:
    """Run one test module of the project, and nothing else, against `fake`."""
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run(
        f"{module}.py", f"--llmbench-base-url={fake.url}", f"--models={models}",
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip


def chats(fake: LMStudioFake) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path.endswith("/chat/completions")]


def table_row(output: str, model: str) -> dict[str, str]:
    lines = output.splitlines()
    header = next(line for line in lines if line.startswith("model ") and "total" in line)
    row = next(line for line in lines if line.startswith(model + " ") and "/" in line)
    names = header.split()
    return dict(zip(names, row.split()[: len(names)], strict=False))


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_task_files_and_test_functions_share_each_models_load(
    project: pytest.Pytester, serve: Any, xdist: list[str]
) -> None:
    fake = serve(lmstudio("alpha", "beta"))
    args = [f"--llmbench-base-url={fake.url}", "--models=alpha,beta", "-p", "no:cacheprovider",
            "--llmbench-jsonl=out.jsonl", "-rA", *xdist]  # fmt: skip
    result = project.runpytest_subprocess(*args)
    output = result.stdout.str()
    # No paths named: the task files and the tests that use the fixture; the plain test is
    # left alone (deselected; xdist's workers deselect it themselves).
    result.assert_outcomes(passed=9, failed=1, deselected=0 if xdist else 1)
    assert "PASSED test_extract.py::test_json[alpha]" in output
    assert "FAILED test_extract.py::test_capital[beta]" in output
    assert "test_not_a_model_test" not in output
    assert fake.lifecycle() == ["load alpha", "chat alpha", "unload alpha", "load beta",
                               "chat beta", "unload beta"]  # fmt: skip
    assert len(chats(fake)) == 2 * 3  # per model: add, capital, json
    # The table has the test functions' suite, named after their module.
    assert table_row(output, "alpha")["extract"] == "2/2"
    assert table_row(output, "beta")["extract"] == "1/2"
    rows = {row["model"]: row for row in read_jsonl(project.path / "out.jsonl")}
    beta = {t["task"]: t for t in rows["beta"]["results"] if t["suite"] == "extract"}
    assert beta["test_capital"]["cases"] == [
        {"id": "call", "outcome": "failed", "detail": "AssertionError: assert 'lyon' == 'paris'"}
    ]
    assert beta["test_json"]["passed"] == 1
    # The record holds each test function's prompt and answer, as the HTML report shows them.
    (listing,) = list_runs(database_path(project.path))
    run = read_run(database_path(project.path), listing.run_id)
    recorded = {(t.model, t.task): t for t in run.tasks if t.suite == "extract"}
    capital = recorded[("beta", "test_capital")]
    assert capital.inputs["prompt"] == "What is the capital of France? One word."
    assert capital.inputs["system"] == "Be brief."
    assert capital.cases[0].outcome == "failed"
    answer = capital.generation or {}
    if capital.answer_key is not None:  # the record points at the answer store
        with __import__("sqlite3").connect(database_path(project.path)) as conn:
            (text,) = conn.execute(
                "SELECT generation FROM answers WHERE key = ?", (capital.answer_key,)
            ).fetchone()
        answer = json.loads(text)
    assert answer["answer"] == "Lyon"

    # A rerun of the unchanged project asks the server nothing, with the same verdicts.
    before = len(chats(fake))
    again = project.runpytest_subprocess(*args)
    again.assert_outcomes(passed=9, failed=1, deselected=0 if xdist else 1)
    assert len(chats(fake)) == before


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_server_fault_is_an_error_a_wrong_answer_a_failure(
    pytester: pytest.Pytester, serve: Any, xdist: list[str]
) -> None:
    pytester.makepyfile(
        test_faults="""
        def test_fault(llm):
            llm.ask("please fault now")

        def test_wrong(llm):
            assert llm.ask("anything").text == "something else"

        def test_cut_off(llm):
            assert llm.ask("tell me a long story").text.endswith("the end")
        """
    )
    fake = serve(lmstudio("alpha"))
    result = run_module(
        pytester, fake, "test_faults", "--llmbench-jsonl=out.jsonl", "-rA", *xdist, subprocess=True
    )
    output = result.stdout.str()
    result.assert_outcomes(failed=2, errors=1)
    assert short_summary(result.stdout.lines) == {
        "test_faults.py::test_fault[alpha]": "ERROR",
        "test_faults.py::test_wrong[alpha]": "FAILED",
        "test_faults.py::test_cut_off[alpha]": "TRUNCATED",
    }
    # The error is the server's one line, naming it; not a traceback through the client.
    assert "ERROR at call of test_fault[alpha]" in output
    assert "error: LM Studio at http://127.0.0.1" in output and "HTTP 500" in output
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    outcomes = {t["task"]: t["cases"][0]["outcome"] for t in row["results"]}
    assert outcomes == {"test_fault": "error", "test_wrong": "failed", "test_cut_off": "truncated"}


def test_without_models_the_tests_skip_with_one_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_extract=TESTS)
    result = pytester.runpytest("-rs", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    reason = "llmbench: no --models given; the llm fixture needs a model (pytest --models=KEY)"
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] test_extract.py:*: {reason}"] * 2)


def test_a_projects_own_llm_fixture_wins(pytester: pytest.Pytester, serve: Any) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def llm():
            return "the project's own"
        """
    )
    pytester.makepyfile(
        test_own="""
        def test_own(llm):
            assert llm == "the project's own"
        """
    )
    fake = serve(lmstudio("alpha", "beta"))
    result = run_module(pytester, fake, "test_own", "-v", models="alpha,beta")
    result.assert_outcomes(passed=1)  # once, not once per model
    assert "test_own.py::test_own PASSED" in result.stdout.str()


def test_declared_prompts_are_generated_ahead_of_their_test(
    pytester: pytest.Pytester, serve: Any
) -> None:
    pytester.makepyfile(
        test_order="""
        import pytest

        @pytest.mark.parametrize("prompt", ["declared one", "declared two"])
        @pytest.mark.llmbench_prompts(param="prompt")
        def test_declared(llm, prompt):
            assert llm.ask(prompt).text in ("together", "two")

        def test_built_at_run_time(llm):
            assert llm.ask("asked " + "when it runs").text == "ok"
        """
    )
    second_arrived = threading.Event()

    def answer(body: dict[str, Any]) -> Answer:
        prompt = user_text(body)
        if prompt == "declared two":
            second_arrived.set()
            return Answer(content=tokens("two"))
        if prompt == "declared one":
            # Answered "together" only if the second prompt reaches the server while this one
            # is in flight: the test asks them one after the other, so only their generation
            # ahead of it, two at a time, gets there.
            return Answer(content=tokens("together" if second_arrived.wait(10) else "alone"))
        return Answer(content=tokens("ok"))

    fake = serve(LMStudioFake(models=[Model("alpha")], answers={"alpha": answer}))
    result = run_module(pytester, fake, "test_order", "-v", "--llmbench-concurrency=2")
    result.assert_outcomes(passed=3)
    asked = [user_text(body) for body in chats(fake)]
    assert sorted(asked[:2]) == ["declared one", "declared two"]  # each asked once, ahead
    assert asked[2:] == ["asked when it runs"]
    assert "test_declared[declared one-alpha] PASSED" in result.stdout.str()


def test_repeats_run_a_test_function_once_per_seed(pytester: pytest.Pytester, serve: Any) -> None:
    pytester.makepyfile(
        test_rep="""
        def test_once(llm):
            assert llm.ask("say something").text
        """
    )
    fake = serve(lmstudio("alpha"))
    result = run_module(
        pytester,
        fake,
        "test_rep",
        "--llmbench-repeat=3",
        "--llmbench-seed=7",
        "--llmbench-jsonl=out.jsonl",
    )
    result.assert_outcomes(passed=1)
    seeds = [body.get("seed") for body in chats(fake)]
    assert len(seeds) == 3 and seeds[0] == 7 and len(set(seeds)) == 3
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    (task,) = row["results"]
    assert task["task"] == "test_once"
    assert row["repeats"]["samples"] == 3


def test_budgets_leave_test_functions_whole_and_say_so(
    pytester: pytest.Pytester, serve: Any
) -> None:
    pytester.makepyfile(
        test_budget="""
        def test_once(llm):
            assert llm.ask("say something").text
        """
    )
    fake = serve(lmstudio("alpha"))
    result = run_module(pytester, fake, "test_budget", "--llmbench-budgets=8,64")
    result.assert_outcomes(passed=1)
    line = "llmbench: --llmbench-budgets scores task files only; test functions ran at the "
    result.stdout.fnmatch_lines([line + "largest budget (max_tokens 64)"])
    assert [body["max_tokens"] for body in chats(fake)] == [64]


def test_the_fixture_is_listed_with_what_it_yields(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["llm [[]session scope[]] -- *",
         "*Yields a ModelClient for one model of --models, loaded for the tests that use it:",
         "*`llm.ask(prompt)` and `llm.chat(messages)` return an Answer (`text`, `reasoning`,"]
    )  # fmt: skip


def test_a_question_asked_at_run_time_waits_for_a_free_slot(
    pytester: pytest.Pytester, serve: Any
) -> None:
    """With one request in flight (the reproducible default), a test's own ask waits for the
    declared prompts being generated ahead: the server never has two at once."""
    pytester.makepyfile(
        test_slots="""
        import pytest

        def test_first(llm):
            assert llm.ask("asked at run time").text == "ok"

        @pytest.mark.llmbench_prompts("declared one", "declared two")
        def test_declared(llm):
            assert llm.ask("declared one").text == llm.ask("declared two").text == "ok"
        """
    )
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def answer(body: dict[str, Any]) -> Answer:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return Answer(content=tokens("ok"))

    fake = serve(LMStudioFake(models=[Model("alpha")], answers={"alpha": answer}))
    result = run_module(pytester, fake, "test_slots", "--llmbench-concurrency=1")
    result.assert_outcomes(passed=2)
    assert len(chats(fake)) == 3
    assert in_flight[1] == 1


def test_results_name_the_module_the_class_and_the_parameters(
    pytester: pytest.Pytester, serve: Any
) -> None:
    pytester.makepyfile(
        test_sql_checks="""
        import pytest

        class TestQueries:
            @pytest.mark.parametrize("table", ["users", "orders"])
            def test_select(self, llm, table):
                assert llm.ask(f"select from {table}").text

        @pytest.mark.llmbench_suite("sql")
        def test_marked(llm):
            assert llm.ask("anything").text
        """
    )
    fake = serve(lmstudio("alpha"))
    result = run_module(pytester, fake, "test_sql_checks", "--llmbench-jsonl=out.jsonl", "-v")
    result.assert_outcomes(passed=3)
    assert "test_sql_checks.py::TestQueries::test_select[users-alpha] PASSED" in result.stdout.str()
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    found = {(t["suite"], t["task"]): [c["id"] for c in t["cases"]] for t in row["results"]}
    assert found == {
        ("sql_checks", "TestQueries.test_select[users]"): ["call"],
        ("sql_checks", "TestQueries.test_select[orders]"): ["call"],
        ("sql", "test_marked"): ["call"],
    }


def test_a_model_that_fails_to_load_errors_its_tests(pytester: pytest.Pytester, serve: Any) -> None:
    pytester.makepyfile(
        test_load="""
        def test_one(llm):
            llm.ask("anything")

        def test_two(llm):
            llm.ask("anything")
        """
    )
    fake = serve(
        LMStudioFake(
            models=[Model("alpha"), Model("beta")],
            answers={"beta": answer_for},
            failing_loads={"alpha": Json(500, {"error": "out of memory"})},
        )
    )
    result = run_module(
        pytester, fake, "test_load", "--llmbench-jsonl=out.jsonl", models="alpha,beta"
    )
    result.assert_outcomes(passed=2, errors=2)
    assert "out of memory" in result.stdout.str()
    rows = {row["model"]: row for row in read_jsonl(pytester.path / "out.jsonl")}
    assert {c["outcome"] for t in rows["alpha"]["results"] for c in t["cases"]} == {"error"}
    assert {user_text(body) for body in chats(fake)} == {"anything"}
    assert {body["model"] for body in chats(fake)} == {"beta"}


@pytest.mark.embedded
def test_a_test_function_asks_the_real_bundled_model(pytester: pytest.Pytester) -> None:
    """The fixture end to end without fakes: SmolLM2 on the embedded llama-server."""
    pytester.makepyfile(
        test_real="""
        def test_answers(llm):
            answer = llm.ask("Name one colour of the sky, in one word.", max_tokens=24)
            print(f"\\nsmollm2 said {answer.text!r}: {answer.completion_tokens} tokens, "
                  f"{answer.decode_tok_s:.1f} tok/s, from store: {answer.from_store}")
            assert answer.text.strip()
            assert answer.completion_tokens is not None and 0 < answer.completion_tokens <= 24
            assert answer.decode_tok_s is not None and answer.decode_tok_s > 0
            assert llm.model == "smollm2"
        """
    )
    args = ["test_real.py", "--models=smollm2", "--llmbench-backend=embedded", "-s",
            "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider"]  # fmt: skip
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    assert "from store: False" in result.stdout.str()
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    (task,) = row["results"]
    assert (task["suite"], task["task"], task["passed"]) == ("real", "test_answers", 1)
    assert "llama-server" in row["provenance"]["server"]
    # The same test again: the answer comes from the store; the model is asked nothing.
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=1)
    assert "from store: True" in again.stdout.str()


def test_the_html_report_shows_a_test_functions_prompt_and_answer(
    project: pytest.Pytester, serve: Any
) -> None:
    fake = serve(lmstudio("alpha", "beta"))
    result = project.runpytest(
        f"--llmbench-base-url={fake.url}", "--models=alpha,beta", "-p", "no:cacheprovider",
        "--llmbench-html=report.html",
    )  # fmt: skip
    result.assert_outcomes(passed=9, failed=1, deselected=1)
    with chromium_page() as page:
        page.goto((project.path / "report.html").as_uri())
        page.select_option("#f-suite", "extract")
        assert page.locator("#grid tbody tr").count() == 2  # test_capital, test_json
        grid_cell(page, "beta", "test_capital").click()
        page.wait_for_selector("#case:not([hidden])")
        assert page.text_content("#case-title") == "test_capital · beta (extract)"
        body = page.text_content("#case-body") or ""
        assert "What is the capital of France? One word." in body
        assert "Lyon" in body
        assert "assert 'lyon' == 'paris'" in body
        assert page.llmbench_errors == []
