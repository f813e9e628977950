"""Unit tests: answer extraction, the cli path rule, value comparison, verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmbench.exchange import Completion, ToolCall
from pytest_llmbench.sandbox.base import FileEntry, PyOutcome, ShellResult
from pytest_llmbench.suites.answer import (
    PYTHON_LANGS,
    SHELL_LANGS,
    code_blocks,
    first_block,
    shell_command,
)
from pytest_llmbench.suites.base import Generation
from pytest_llmbench.suites.cli import CliExecution, CliSuite, path_violation
from pytest_llmbench.suites.python import PythonExecution, PythonSuite, values_equal
from pytest_llmbench.taskfiles.format import CliCase, CliTask, PythonCase, PythonTask


def test_first_python_block_wins_over_other_languages() -> None:
    text = (
        "Here:\n```text\nnot code\n```\n```python\ndef f():\n    return 1\n```\n```python\nx=2\n```"
    )
    block = first_block(text, PYTHON_LANGS)
    assert block is not None and block.code == "def f():\n    return 1" and block.closed


def test_unlabelled_block_is_accepted_when_no_labelled_one() -> None:
    block = first_block("```\nprint(1)\n```", PYTHON_LANGS)
    assert block is not None and block.code == "print(1)"


def test_unclosed_block_is_marked() -> None:
    (block,) = code_blocks("```python\ndef f(:\n")
    assert not block.closed and block.code.startswith("def f")


def test_longer_fences_may_hold_shorter_ones() -> None:
    (block,) = code_blocks("````python\ns = '''\n```\n'''\n````")
    assert block.code == "s = '''\n```\n'''"


def test_shell_command_skips_comments_and_prompt() -> None:
    block = first_block("```bash\n# count\n$ wc -l < data.txt\n```", SHELL_LANGS)
    assert block is not None and shell_command(block) == "wc -l < data.txt"


@pytest.mark.parametrize(
    "command",
    [
        "awk '$1 ~ /x/' data.txt",
        "cat file.rm",
        "sed 's/a/b/g' in.txt > out.txt",
        "grep -c foo data.txt",
        "sort names.txt | uniq -c",
        "mkdir -p a/b/c && touch a/b/c/d",
        "awk -F, '{print $2}' data.csv",
        "awk '/ERROR/{c++} END {print c}' app.log",
        "grep -c '/api/' access.log",
    ],
)
def test_path_rule_allows_ordinary_commands(command: str) -> None:
    assert path_violation(command) is None


@pytest.mark.parametrize(
    "command",
    [
        "cat /etc/passwd",
        "cat ..",
        "cat ../secret",
        "cat ~/.ssh/id_rsa",
        "ls sub/../..",
        "wc -l < /etc/hosts",
        "grep --file=/etc/passwd x",
        "echo $(cat /etc/hostname)",
        "cd .. && ls",
    ],
)
def test_path_rule_rejects_leaving_the_work_dir(command: str) -> None:
    assert path_violation(command) is not None


@pytest.mark.parametrize(
    ("expected", "actual", "tol", "same"),
    [
        (3, 3, None, True),
        (3, 3.0, None, False),
        (True, 1, None, False),
        (1, True, None, False),
        ([1, 2], (1, 2), None, False),
        ([[1, 2]], [[1, 2]], None, True),
        ({"a": 1}, {"a": 1}, None, True),
        (0.3, 0.1 + 0.2, None, False),
        (0.3, 0.1 + 0.2, 1e-9, True),
        (3.0, 3, 1e-9, True),
        ([0.5, 1.5], [0.5000001, 1.5], 1e-3, True),
        ("IV", "IV", None, True),
    ],
)
def test_values_equal_is_exact_in_type(expected: Any, actual: Any, tol: Any, same: bool) -> None:
    assert values_equal(expected, actual, tol) is same


def _python_task(**case: Any) -> PythonTask:
    return PythonTask.model_validate(
        {
            "id": "t",
            "prompt": "p",
            "entry_point": "f",
            "reference": "def f(): pass",
            "cases": [{"id": "c", "args": [[2, 7, 11, 15], 9], **case}],
        }
    )


def _generation(answer: str, truncated: bool = False) -> Generation:
    return Generation((Completion(answer),), answer, "", truncated)


def _score_python(task: PythonTask, outcome: PyOutcome) -> str:
    execution = PythonExecution(None, {"c": outcome})
    return PythonSuite().score(task, task.cases[0], _generation("x"), execution).outcome


def test_validator_accepts_any_right_answer() -> None:
    task = _python_task(validate="sorted(result) == [0, 1] and type(result) in (list, tuple)")
    assert _score_python(task, PyOutcome("ok", value=[1, 0])) == "passed"
    assert _score_python(task, PyOutcome("ok", value=(0, 1))) == "passed"
    assert _score_python(task, PyOutcome("ok", value=[0, 2])) == "failed"
    assert _score_python(task, PyOutcome("ok", value=None)) == "failed"


def test_validator_sees_its_names_inside_comprehensions() -> None:
    task = _python_task(validate="all(isinstance(i, int) for i in result) and len(result) == 2")
    assert _score_python(task, PyOutcome("ok", value=[0, 1])) == "passed"
    assert _score_python(task, PyOutcome("ok", value=["0", 1])) == "failed"


def test_expected_exception_is_an_outcome() -> None:
    task = _python_task(raises="ValueError")
    assert _score_python(task, PyOutcome("raised", exception="ValueError")) == "passed"
    assert _score_python(task, PyOutcome("raised", exception="TypeError")) == "failed"
    assert _score_python(task, PyOutcome("ok", value=1)) == "failed"


def test_python_timeouts_and_crashes_are_distinct() -> None:
    task = _python_task(expect=[0, 1])
    assert _score_python(task, PyOutcome("timeout")) == "timeout"
    assert _score_python(task, PyOutcome("crashed", detail="exit 1")) == "failed"
    assert _score_python(task, PyOutcome("load_error", detail="NameError")) == "failed"


def test_python_case_needs_exactly_one_check() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PythonCase.model_validate({"id": "c", "expect": 1, "raises": "ValueError"})
    with pytest.raises(ValueError, match="exactly one"):
        PythonCase.model_validate({"id": "c"})


class _NoSandbox:
    tier = "none"

    def run_python(self, *args: Any) -> Any:
        raise AssertionError("nothing must run")

    def run_shell(self, *args: Any) -> Any:
        raise AssertionError("nothing must run")

    def close(self) -> None:
        pass


def test_truncated_python_answer_is_truncated_not_failed() -> None:
    task = _python_task(expect=[0, 1])
    execution = PythonSuite().execute(task, _generation("```python\ndef f(", True), _NoSandbox())
    assert execution.verdict is not None and execution.verdict.outcome == "truncated"
    no_code = PythonSuite().execute(task, _generation("I would use a dict."), _NoSandbox())
    assert no_code.verdict is not None and no_code.verdict.outcome == "no_answer"


def _cli_task() -> CliTask:
    return CliTask.model_validate(
        {
            "id": "t",
            "prompt": "p",
            "reference": "cat a > b",
            "files": {"a": "x\n"},
            "cases": [{"id": "out", "file": {"name": "b", "content": "x"}}],
        }
    )


def test_cli_file_check_does_not_trust_symlinks() -> None:
    task = _cli_task()
    case: CliCase = task.cases[0]
    link = ShellResult("", "", 0, False, {"b": FileEntry("symlink")})
    verdict = CliSuite().score(task, case, _generation(""), CliExecution(None, "ln", link))
    assert verdict.outcome == "failed" and "symlink" in verdict.detail
    real = ShellResult("", "", 0, False, {"b": FileEntry("file", b"x\n")})
    assert CliSuite().score(task, case, _generation(""), CliExecution(None, "c", real)).outcome == (
        "passed"
    )


def test_cli_rejected_command_never_runs() -> None:
    execution = CliSuite().execute(
        _cli_task(), _generation("```bash\ncat /etc/passwd\n```"), _NoSandbox()
    )
    assert execution.verdict is not None and execution.verdict.outcome == "failed"
    assert "absolute path" in execution.verdict.detail


def test_tool_call_arguments_parse_or_report_malformed() -> None:
    assert ToolCall("1", "f", '{"a": 1}').parsed_arguments() == {"a": 1}
    assert ToolCall("1", "f", "").parsed_arguments() == {}
    assert ToolCall("1", "f", '{"a": ').parsed_arguments() is None
    assert ToolCall("1", "f", "[1]").parsed_arguments() is None


def _tooling_task(tools: list[Any], cases: list[dict[str, Any]]) -> Any:
    from pytest_llmbench.taskfiles.format import ToolingTask

    return ToolingTask.model_validate(
        {"id": "t", "prompt": "p", "tools": tools, "reference": [], "cases": cases}
    )


def test_mocks_answer_only_for_tools_named_from_the_toolbox() -> None:
    from pytest_llmbench.suites.toolbox import FALLBACK_RESULT
    from pytest_llmbench.suites.tooling import run_tool

    call = ToolCall("1", "get_weather", '{"city": "Paris"}')
    named = _tooling_task(["get_weather"], [{"id": "n", "no_call": True}])
    _, result = run_tool(named, call)
    assert result != FALLBACK_RESULT and "Paris" in str(result)
    spec = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    bare = _tooling_task([spec], [{"id": "n", "no_call": True}])
    assert run_tool(bare, call)[1] == FALLBACK_RESULT
    assert "unknown tool" in str(run_tool(bare, ToolCall("2", "nope", "{}"))[1])


def test_no_call_case_needs_a_text_answer() -> None:
    from pytest_llmbench.suites.tooling import ToolingSuite

    task = _tooling_task(["get_weather"], [{"id": "n", "no_call": True}])
    suite = ToolingSuite()
    assert suite.score(task, task.cases[0], _generation("No tool fits."), None).outcome == "passed"
    assert suite.score(task, task.cases[0], _generation(""), None).outcome == "no_answer"


def test_reference_effects_compare_stdout_and_every_file() -> None:
    from pytest_llmbench.suites.cli import effects_differ

    def run(stdout: str, **files: FileEntry) -> ShellResult:
        return ShellResult(stdout, "", 0, False, files)

    ref = run("a\nb\n", out=FileEntry("file", b"x\n"), d=FileEntry("dir"))
    assert effects_differ(run("a\nb", out=FileEntry("file", b"x"), d=FileEntry("dir")), ref) is None
    assert "stdout" in (
        effects_differ(run("b\na\n", out=ref.files["out"], d=FileEntry("dir")), ref) or ""
    )
    assert "missing" in (effects_differ(run("a\nb\n", out=ref.files["out"]), ref) or "")
    extra = run("a\nb\n", out=ref.files["out"], d=FileEntry("dir"), junk=FileEntry("file", b""))
    assert "should not exist" in (effects_differ(extra, ref) or "")
    link = run("a\nb\n", out=FileEntry("symlink"), d=FileEntry("dir"))
    assert "symlink" in (effects_differ(link, ref) or "")
    wrong = run("a\nb\n", out=FileEntry("file", b"y\n"), d=FileEntry("dir"))
    assert "holds" in (effects_differ(wrong, ref) or "")


def test_jsonl_summary_line_names_model_score_tokens_and_speed() -> None:
    import io
    import json

    from pytest_llmbench.reporting.summary import main

    record = {
        "model": "smollm2", "backend": "embedded", "passed": 27, "total": 384, "seconds": 395.8,
        "completion_tokens": 14021, "decode_tok_s": 35.4, "prompt_tok_s": 812.3, "run_id": "abc",
        "settings": {"max_tokens": 512, "isolation": "full"},
    }  # fmt: skip
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        main(io.StringIO(json.dumps(record) + "\n"))
    assert out.getvalue() == (
        "JSONL: smollm2 (embedded): 27/384 cases, 395.8s generating, 14021 completion tokens, "
        "35.4 decode tok/s (prompt 812), max_tokens 512, isolation full, run abc\n"
    )
    record.update(tasks_passed=5, tasks_total=117, scores={"overall": {"interval": [0.051, 0.1]}})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(io.StringIO(json.dumps(record) + "\n"))
    assert out.getvalue().startswith(
        "JSONL: smollm2 (embedded): 27/384 cases (5-10%), 5/117 tasks,"
    )


@pytest.mark.parametrize(
    "answer",
    [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        'Sure: {"name": "get_weather", "arguments": {"city": "Paris"}}',
        '[TOOL_CALLS] [{"name": "get_weather"}]',
        '<function=get_weather>{"city": "Paris"}</function>',
    ],
)
def test_a_tool_call_written_as_text_is_recorded_as_such(answer: str) -> None:
    from pytest_llmbench.suites.tooling import ToolingSuite

    task = _tooling_task(["get_weather"], [{"id": "c", "called": "get_weather"}])
    verdict = ToolingSuite().score(task, task.cases[0], _generation(answer), None)
    assert verdict.outcome == "failed"
    assert verdict.detail.startswith("a tool call left as text in the answer")


def test_prose_mentioning_a_tool_is_not_a_call() -> None:
    from pytest_llmbench.suites.tooling import ToolingSuite

    task = _tooling_task(["get_weather"], [{"id": "c", "called": "get_weather"}])
    verdict = ToolingSuite().score(task, task.cases[0], _generation("I'd use get_weather."), None)
    assert verdict.outcome == "no_answer"


def test_decode_rate_weighs_requests_by_the_time_they_took() -> None:
    from pytest_llmbench.exchange import Usage
    from pytest_llmbench.suites.base import stats_of

    fast = Completion("a", usage=Usage(completion_tokens=100), decode_tok_s=100.0)  # 1 s
    slow = Completion("b", usage=Usage(completion_tokens=30), decode_tok_s=10.0)  # 3 s
    unknown = Completion("c", usage=Usage(completion_tokens=50))
    assert stats_of((fast, slow, unknown), 512).decode_tok_s == pytest.approx(130 / 4)
    assert stats_of((unknown,), 512).decode_tok_s is None


@pytest.mark.parametrize(
    "arguments",
    ["[" * 5000 + "]" * 5000,  # deeper than the decoder's recursion limit
     '{"a": ' * 100 + "1" + "}" * 100,  # decodes, but deeper than MAX_ARGUMENT_DEPTH
     '{"a": [' + "[" * 70 + "]" * 70 + "]}",
     '{"a": NaN}', '{"a": -Infinity}',  # not JSON
     '{"a": ' + "9" * 10_000 + "}",  # an integer too long to convert
     '{"a": "\\ud800"}' + "x",  # trailing garbage
     '{"a": 1e999}', "null", '"text"'],
)  # fmt: skip
def test_hostile_tool_arguments_are_malformed_not_a_crash(arguments: str) -> None:
    assert ToolCall("1", "f", arguments).parsed_arguments() is None


def test_arguments_up_to_the_depth_limit_parse() -> None:
    from pytest_llmbench.exchange import MAX_ARGUMENT_DEPTH

    nested = '{"a": ' * (MAX_ARGUMENT_DEPTH - 1) + "{}" + "}" * (MAX_ARGUMENT_DEPTH - 1)
    assert ToolCall("1", "f", nested).parsed_arguments() is not None
    deeper = '{"a": ' * MAX_ARGUMENT_DEPTH + "{}" + "}" * MAX_ARGUMENT_DEPTH
    assert ToolCall("1", "f", deeper).parsed_arguments() is None


def test_jsonl_summary_says_a_run_was_partial_and_skips_torn_lines() -> None:
    import contextlib
    import io
    import json

    from pytest_llmbench.reporting.summary import main

    record = {
        "model": "m", "backend": "openai", "passed": 2, "total": 2, "seconds": 1.0,
        "completion_tokens": 10, "tokens_per_second": None, "run_id": "r",
        "settings": {"max_tokens": 64, "isolation": "full"}, "interrupted": "SIGTERM",
        "declared_total": 402,
    }  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(io.StringIO('{"model": "torn mid-wr\n' + json.dumps(record) + "\n\n"))
    assert out.getvalue().startswith(
        "JSONL: m (openai): 2/2 cases (run ended by SIGTERM) of 402 declared, 1.0s generating"
    )


def test_the_summary_line_gives_the_generation_wall_clock_not_the_sum_of_requests() -> None:
    from pytest_llmbench.reporting.summary import summarise

    record = {
        "model": "smollm2", "backend": "embedded", "passed": 29, "total": 405,
        "seconds": 1961.6, "generation_wall_s": 501.9, "concurrency": 4,
        "completion_tokens": 31394, "run_id": "r", "settings": {"max_tokens": 512},
    }  # fmt: skip
    assert ", 501.9s generating (4 in flight), 31394 completion tokens" in summarise(record)
    # Whether the answers can be had again, where the line records it.
    exact = summarise({**record, "concurrency": 2, "reproducible": True})
    assert ", 501.9s generating (2 in flight, reproducible), " in exact
    batched = summarise({**record, "reproducible": False, "concurrency": 1})
    assert ", 501.9s generating (NOT reproducible), " in batched
    stored = {**record, "generation_wall_s": None, "answers_from_store": 117}
    assert ", no generation (117 answers from the store) (4 in flight)" in summarise(stored)


def test_a_turn_cut_by_max_tokens_ends_the_chain_with_the_calls_it_finished() -> None:
    """A turn that hit max_tokens made only the calls it completed; the one it was writing is
    not run, and no later turn is asked for (the model never finished this one)."""
    from pytest_llmbench.exchange import ChatRequest
    from pytest_llmbench.suites.base import RequestSettings
    from pytest_llmbench.suites.tooling import ToolingSuite

    task = _tooling_task(
        ["get_user", "send_email"],
        [{"id": "looked_up", "called": "get_user"}, {"id": "mailed", "called": "send_email"}],
    ).model_copy(update={"max_steps": 4})
    cut_turn = Completion(
        "",
        tool_calls=(
            ToolCall("a", "get_user", '{"name": "Alice"}'),
            ToolCall("b", "send_email", '{"to": "ali'),
        ),
        finish_reason="length",
    )
    requests: list[ChatRequest] = []

    def chat(request: ChatRequest) -> Completion:
        requests.append(request)
        return cut_turn

    suite = ToolingSuite()
    generation = suite.generate(task, "m", chat, RequestSettings(64, 0.0, None, 10.0))
    assert len(requests) == 1
    assert [e.call.name for e in generation.exchanges] == ["get_user"]
    assert generation.truncated
    verdicts = [suite.score(task, case, generation, None).outcome for case in task.cases]
    assert verdicts == ["passed", "failed"]

    # Cut before any call was whole: nothing was made, and the answer is truncated.
    bare = Completion("", tool_calls=(ToolCall("a", "get_user", '{"na'),), finish_reason="length")
    generation = suite.generate(task, "m", lambda request: bare, RequestSettings(8, 0.0, None, 1))
    assert generation.exchanges == ()
    assert suite.score(task, task.cases[0], generation, None).outcome == "truncated"
