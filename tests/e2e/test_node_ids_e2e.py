"""A case's node id, as pytest prints it, selects that case again: `pytest 'ID'`, `--deselect`,
`--lf` and `-k` all work, for a project's own tasks and for the bundled ones."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import NOT_PASSED, bad_script, good_script, short_summary

QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai({"good": good_script(), "bad": bad_script()})


def bench_args(url: str) -> tuple[str, ...]:
    return ("--llmbench-backend=openai", f"--llmbench-base-url={url}", "--models=good,bad")


def ran(result: pytest.RunResult) -> dict[str, str]:
    """node id -> PASSED/FAILED, from -rA's short summary."""
    return short_summary(result.stdout.lines)


def test_the_failed_lines_id_reruns_that_case(bench_dir: pytest.Pytester, server: Any) -> None:
    first = bench_dir.runpytest(*bench_args(server.url), "-m", "python", "-rA", *QUIET)
    failed = [nodeid for nodeid, outcome in ran(first).items() if outcome == "FAILED"]
    assert "tasks/python/small_python.yaml::add/negative[bad]" in failed
    for nodeid in failed:
        again = bench_dir.runpytest(*bench_args(server.url), nodeid, "-rA", *QUIET)
        assert ran(again) == {nodeid: "FAILED"}, again.stdout.str()


def test_a_case_without_the_model_selects_it_for_every_model(
    bench_dir: pytest.Pytester, server: Any
) -> None:
    result = bench_dir.runpytest(
        *bench_args(server.url), "tasks/python/small_python.yaml::add/small", "-rA", *QUIET
    )
    assert ran(result) == {
        "tasks/python/small_python.yaml::add/small[good]": "PASSED",
        "tasks/python/small_python.yaml::add/small[bad]": "FAILED",
    }


def test_deselect_takes_exactly_that_case(bench_dir: pytest.Pytester, server: Any) -> None:
    nodeid = "tasks/python/small_python.yaml::add/negative[bad]"
    result = bench_dir.runpytest(
        *bench_args(server.url), "-m", "python", "--deselect", nodeid, "-rA", *QUIET
    )
    outcomes = ran(result)
    assert nodeid not in outcomes and len(outcomes) == 5


def test_last_failed_reruns_exactly_the_failed_ids(bench_dir: pytest.Pytester, server: Any) -> None:
    first = ran(bench_dir.runpytest(*bench_args(server.url), "-m", "python or cli", "-rA"))
    again = ran(bench_dir.runpytest(*bench_args(server.url), "-m", "python or cli", "--lf", "-rA"))
    assert again == {nodeid: o for nodeid, o in first.items() if o in NOT_PASSED}
    assert len(again) == 4


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("add", {"add/small", "add/negative", "add/floats"}),
        ("negative", {"add/negative"}),
        ("add and not floats", {"add/small", "add/negative"}),
    ],
)
def test_k_matches_task_and_case_ids(
    bench_dir: pytest.Pytester, server: Any, expr: str, expected: set[str]
) -> None:
    result = bench_dir.runpytest(*bench_args(server.url), "-k", f"({expr}) and good", "-rA")
    names = {nodeid.split("::")[1].removesuffix("[good]") for nodeid in ran(result)}
    assert names == expected


def test_bundled_cases_rerun_from_their_id_in_any_project(pytester: pytest.Pytester) -> None:
    # No tasks/ here: the bundled tasks, which live outside this directory. Their node ids are
    # their path in a clone, and pytest finds them from there.
    first = pytester.runpytest("--models=reference,null", "-m", "tooling and easy", "-rA", *QUIET)
    failed = sorted(nodeid for nodeid, o in ran(first).items() if o in NOT_PASSED)
    assert failed and all(nodeid.startswith("tasks/tooling/") for nodeid in failed)
    again = pytester.runpytest("--models=reference,null", failed[0], "-rA", *QUIET)
    assert ran(again) == {failed[0]: ran(first)[failed[0]]}
    deselected = pytester.runpytest(
        "--models=reference,null", "-m", "tooling and easy", "--deselect", failed[0], "-rA"
    )
    assert set(ran(deselected)) == set(ran(first)) - {failed[0]}
    # The cache now holds that last run's failures: --lf runs exactly those again.
    lf = pytester.runpytest("--models=reference,null", "-m", "tooling and easy", "--lf", "-rA")
    assert set(ran(lf)) == set(failed) - {failed[0]}


def test_ids_recorded_before_the_bundled_tasks_moved_still_select_their_cases(
    pytester: pytest.Pytester,
) -> None:
    """The bundled tasks lived in pytest_llmbench/tasks/ before they moved to the top-level
    tasks/: an id copied then, and pytest's --lf cache written then, select the same cases."""
    import json

    first = pytester.runpytest("--models=null", "-m", "cli and easy", "-rA", *QUIET)
    now = sorted(ran(first))
    former = [f"pytest_llmbench/{nodeid}" for nodeid in now]
    again = pytester.runpytest("--models=null", former[0], "-rA", *QUIET)
    assert ran(again) == {now[0]: ran(first)[now[0]]}
    cache = pytester.path / ".pytest_cache" / "v" / "cache"
    cache.mkdir(parents=True)
    (cache / "lastfailed").write_text(json.dumps({former[0]: True, former[1]: True}))
    lf = pytester.runpytest("--models=null", "-m", "cli and easy", "--lf", "-rA")
    assert set(ran(lf)) == {now[0], now[1]}
    # The cache is rewritten once, in the current names.
    assert all(key.startswith("tasks/") for key in json.loads((cache / "lastfailed").read_text()))


def test_control_ids_rerun_too(pytester: pytest.Pytester) -> None:
    from fakes.bench import PYTHON_TASKS

    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "small.yaml").write_text(PYTHON_TASKS)
    first = pytester.runpytest("--llmbench-validate", "-rA", *QUIET)
    ids = sorted(ran(first))
    assert "tasks/small.yaml::add/control:reference" in ids
    again = pytester.runpytest("--llmbench-validate", "tasks/small.yaml::add/control:null", "-rA")
    assert ran(again) == {"tasks/small.yaml::add/control:null": "PASSED"}
