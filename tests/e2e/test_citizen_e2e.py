"""The plugin in someone else's project: it stays out of the way until a run names models.

Short option names are the project's when it defines them; no header line and no markers
without models; directories named on the command line are collected like files; the header
says where the tasks come from.
"""

from __future__ import annotations

import pytest
from fakes.bench import PYTHON_TASKS, TOOLING_TASKS, read_jsonl

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")

OWN_OPTIONS = """
def pytest_addoption(parser):
    parser.addoption("--models", action="store", default="none", help="the project's own")
    parser.addoption("--max-tokens", action="store", type=int, default=1)


def pytest_report_header(config):
    return f"project: models={config.getoption('models')} max={config.getoption('max_tokens')}"
"""


def plugin_lines(result: pytest.RunResult) -> list[str]:
    """What this plugin printed (the `plugins:` line names every installed plugin)."""
    return [line for line in result.stdout.lines if line.startswith("llmbench")]


PLAIN_TESTS = """
def test_one():
    assert 1

def test_two():
    assert 2
"""


def test_a_conftest_that_defines_models_keeps_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OWN_OPTIONS)
    pytester.makepyfile(PLAIN_TESTS)
    result = pytester.runpytest("--models=mine", "--max-tokens=7", *QUIET)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["project: models=mine max=7"])
    assert plugin_lines(result) == []  # not a benchmark run: the plugin is silent


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_long_names_work_beside_a_conftest_that_took_the_short_ones(
    pytester: pytest.Pytester, workers: str
) -> None:
    pytester.makeconftest(OWN_OPTIONS)
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "small_python.yaml").write_text(PYTHON_TASKS)
    result = pytester.runpytest(
        "--llmbench-models=reference", "--llmbench-max-tokens=64", "--models=theirs",
        "--oracle=reference", "--llmbench-jsonl=out.jsonl", "-n", workers, *QUIET,
    )  # fmt: skip
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "llmbench: --models, --max-tokens belong to this project (a conftest or another "
            "plugin defines them); use --llmbench-models, --llmbench-max-tokens",
            "project: models=theirs max=1",
        ]
    )
    # --oracle was free, so it is the plugin's.
    assert "Oracle OK: reference" in result.stdout.str()
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    assert row["settings"]["max_tokens"] == 64


OTHER_PLUGIN = """
def pytest_addoption(parser):
    parser.getgroup("other").addoption("--oracle", dest="other_oracle", default="x")
"""


def test_another_plugin_loaded_first_keeps_its_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(other_plugin=OTHER_PLUGIN, test_plain=PLAIN_TESTS)
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "other_plugin", "--oracle=y", *QUIET)
    result.assert_outcomes(passed=2)
    help_text = pytester.runpytest("-p", "other_plugin", "--help").stdout.str()
    assert "--llmbench-oracle" in help_text and "--llmbench-models" in help_text
    assert "--models=A,B" in help_text  # the free short names are still there


def test_short_names_are_registered_when_free(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    for short, long in (
        ("--models", "--llmbench-models"),
        ("--oracle", "--llmbench-oracle"),
        ("--max-tokens", "--llmbench-max-tokens"),
    ):
        assert f"same as {long}" in help_text and short in help_text


def test_no_models_no_header_line_and_no_generic_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PLAIN_TESTS)
    run = pytester.runpytest("-v", *QUIET)
    run.assert_outcomes(passed=2)
    assert plugin_lines(run) == []
    markers = pytester.runpytest("--markers").stdout.str()
    for name in ("python", "cli", "tooling", "easy", "medium", "hard", "llmbench"):
        assert f"@pytest.mark.{name}:" not in markers
    # A run that uses them registers them (so --strict-markers accepts -m python).
    active = pytester.runpytest("--markers", "--models=reference").stdout.str()
    for name in ("python", "cli", "tooling", "easy", "medium", "hard", "llmbench"):
        assert f"@pytest.mark.{name}:" in active


def test_validating_registers_markers_and_says_so(pytester: pytest.Pytester) -> None:
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "small_python.yaml").write_text(PYTHON_TASKS)
    result = pytester.runpytest("--llmbench-validate", "--strict-markers", "-m", "python", *QUIET)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["llmbench: validating the tasks with their controls (no models)",
         "llmbench: tasks from tasks/ (the project's task root)"]
    )  # fmt: skip


def _imported(pytester: pytest.Pytester) -> None:
    """A project with its own YAML folder (not tasks/), and YAML that is not a task file."""
    (pytester.path / "imported").mkdir()
    (pytester.path / "imported" / "mine.yaml").write_text(PYTHON_TASKS)
    (pytester.path / "imported" / "more").mkdir()
    (pytester.path / "imported" / "more" / "tools.yml").write_text(TOOLING_TASKS)
    (pytester.path / "imported" / "mkdocs.yml").write_text("site_name: docs\nnav: []\n")


def test_a_directory_named_on_the_command_line_is_collected(pytester: pytest.Pytester) -> None:
    _imported(pytester)
    result = pytester.runpytest("--models=reference", "imported/", "--collect-only", *QUIET)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    collected = [line.split()[-1] for line in result.stdout.lines if "CaseItem" in line]
    assert len(collected) == 3 + 3  # mine.yaml's add (3 cases), more/tools.yml (3 cases)
    result.stdout.fnmatch_lines(["llmbench: tasks from imported/ (named on the command line)"])
    # A named file and a named directory mix as pytest users expect.
    both = pytester.runpytest(
        "--models=reference", "imported/mine.yaml", "imported/more", "--collect-only", "-q",
        *QUIET,
    )  # fmt: skip
    assert len([line for line in both.stdout.lines if "::" in line]) == 6


def test_a_named_file_that_is_not_a_task_file_is_an_error(pytester: pytest.Pytester) -> None:
    _imported(pytester)
    result = pytester.runpytest("--models=reference", "imported/mkdocs.yml", *QUIET)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "mkdocs.yml" in result.stdout.str()


def test_bundled_tasks_are_never_mixed_in_and_never_silent(pytester: pytest.Pytester) -> None:
    _imported(pytester)
    own = pytester.runpytest("--models=reference", "imported", "-q", "--collect-only", *QUIET)
    assert not [line for line in own.stdout.lines if line.startswith("tasks/")]  # bundled ids
    # No path named and no tasks/: the bundled tasks, and the header says so.
    bundled = pytester.runpytest("--models=reference", "--collect-only", *QUIET)
    bundled.stdout.fnmatch_lines(
        ["llmbench: tasks from */tasks/ (bundled with the plugin: this project "
         "has no tasks/ and sets no llmbench_tasks)"]
    )  # fmt: skip
    assert not [line for line in bundled.stdout.lines if "imported" in line]
    # The project's own root, configured: only it.
    pytester.makeini("[pytest]\nllmbench_tasks = imported\n")
    configured = pytester.runpytest("--models=reference", "--collect-only", *QUIET)
    configured.stdout.fnmatch_lines(["llmbench: tasks from imported/ (ini option llmbench_tasks)"])
    assert len([line for line in configured.stdout.lines if "CaseItem" in line]) == 6


def test_a_configured_task_root_that_does_not_exist_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nllmbench_tasks = benchmarks/llm\n")
    result = pytester.runpytest("--models=reference", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "llmbench_tasks names benchmarks/llm, which does not exist" in result.stderr.str()


RECORD_MODULES = """
import sys


def pytest_sessionfinish(session):
    names = sorted(m for m in sys.modules if m.startswith("pytest_llmbench"))
    (session.config.rootpath / "modules.txt").write_text("\\n".join(names))
"""


def test_an_unrelated_run_imports_only_the_hook_module(pytester: pytest.Pytester) -> None:
    # Start-up cost is measured in benchmarks/startup.py; this pins down why it is small.
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    imported = (pytester.path / "modules.txt").read_text().split()
    assert imported == ["pytest_llmbench", "pytest_llmbench.options", "pytest_llmbench.plugin"]
    xdist = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    xdist.assert_outcomes(passed=2)
    assert (pytester.path / "modules.txt").read_text().split() == imported


BFCL_LIKE = """\
suite: tooling
tasks:
  - id: simple_python_3
    prompt: What is the weather in Paris?
    tags: [bfcl, simple]
    tools: [get_weather]
    reference:
      - [{name: get_weather, arguments: {city: Paris}}]
    cases:
      - {id: call, called: get_weather, args: {city: Paris}, strict: true}
"""


def test_m_selects_a_suite_where_k_matches_any_name(pytester: pytest.Pytester) -> None:
    # The BFCL importer keeps BFCL's ids (simple_python_3 is a tooling task): -k matches
    # substrings of every name, -m matches the suite exactly, as the README says.
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "small_python.yaml").write_text(PYTHON_TASKS)
    (pytester.path / "tasks" / "bfcl_simple.yaml").write_text(BFCL_LIKE)

    def selected(*args: str) -> set[str]:
        result = pytester.runpytest("--models=reference", "--collect-only", "-q", *args, *QUIET)
        return {line.split("::")[1] for line in result.stdout.lines if "::" in line}

    by_marker = selected("-m", "python")
    assert by_marker == {"add/small[reference]", "add/negative[reference]", "add/floats[reference]"}
    assert selected("-k", "python") == by_marker | {"simple_python_3/call[reference]"}
    assert selected("-m", "tooling") == {"simple_python_3/call[reference]"}
    assert selected("-k", "bfcl") == {"simple_python_3/call[reference]"}  # tags are keywords


EXIT_WATCH = """
import atexit, gc, pathlib

class Cycle:
    def __del__(self):
        pathlib.Path("finalized.txt").write_text("yes")

# Registered first, so it runs last among the exit handlers: what does the exit's collection
# still have to walk?
atexit.register(lambda: pathlib.Path("frozen.txt").write_text(str(gc.get_freeze_count())))

def pytest_unconfigure(config):
    garbage = Cycle()
    garbage.me = garbage  # a cycle: only a collection finalizes it
"""


def test_a_benchmark_run_spares_its_exit_the_collection_but_finalizes_garbage(
    bench_dir: pytest.Pytester,
) -> None:
    """The objects alive at exit are frozen (the interpreter's exit collection skips them: a
    run's tail of about 0.15 s with the openai client loaded); garbage is still collected, its
    finalizers run."""
    bench_dir.makeconftest(EXIT_WATCH)
    result = bench_dir.runpytest_subprocess("--models=reference", "-m", "python", "-p",
                                            "no:cacheprovider")  # fmt: skip
    assert result.ret == 0
    assert int((bench_dir.path / "frozen.txt").read_text()) > 1000
    assert (bench_dir.path / "finalized.txt").read_text() == "yes"
