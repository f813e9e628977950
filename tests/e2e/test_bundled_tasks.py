"""The bundled tasks prove themselves: reference passes every case, null none, controls hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes.bench import case_outcomes, read_jsonl

REPO = Path(__file__).resolve().parents[2]
QUIET = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def bundled(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(REPO / "tasks", pytester.path / "tasks")
    return pytester


def declared_cases() -> int:
    from pytest_llmbench.taskfiles.loading import load_task_file

    return sum(
        len(task.cases)
        for path in sorted((REPO / "tasks").rglob("*.yaml"))
        for task in load_task_file(path).tasks
    )


def test_reference_passes_every_case_and_null_none(bundled: pytest.Pytester) -> None:
    result = bundled.runpytest(
        "--models=reference,null", "--llmbench-jsonl=out.jsonl", "-n", "2", *QUIET
    )
    total = declared_cases()
    result.assert_outcomes(passed=total, failed=total)
    outcomes = case_outcomes(read_jsonl(bundled.path / "out.jsonl"))
    reference = [o for k, o in outcomes.items() if k[0] == "reference"]
    null = [o for k, o in outcomes.items() if k[0] == "null"]
    assert len(reference) == len(null) == total
    assert set(reference) == {"passed"}
    assert "passed" not in null and "error" not in null
    table = [line.split() for line in result.stdout.lines if line.startswith(("reference", "null"))]
    assert table[0][4] == f"{total}/{total}" and table[1][4] == f"0/{total}"


def test_every_bundled_task_holds_its_controls(bundled: pytest.Pytester) -> None:
    result = bundled.runpytest("--llmbench-validate", "-n", "2", *QUIET)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 3 * len(list((REPO / "tasks").rglob("*.yaml")))


WEAK_TASK = """\
suite: python
tasks:
  - id: weak
    prompt: Write `def ident(x)` returning x.
    entry_point: ident
    reference: "def ident(x):\\n    return x\\n"
    mutants:
      - "def ident(x):\\n    return x if x != 3 else 4\\n"
    cases:
      - {id: one, args: [1], expect: 1}
      - {id: two, args: [2], expect: 2}
  - id: wrong_reference
    prompt: Write `def double(x)`.
    entry_point: double
    reference: "def double(x):\\n    return x + 2\\n"
    cases:
      - {id: three, args: [3], expect: 6}
"""


def test_validate_reports_tasks_that_cannot_tell_wrong_from_right(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "weak.yaml").write_text(WEAK_TASK)
    result = pytester.runpytest("--llmbench-validate", "-rf", *QUIET)
    text = result.stdout.str()
    # returns-first-arg and the listed mutant both pass every case of `weak`
    assert "weak/control:returns-first-arg" in text
    assert "weak/control:mutant-1" in text
    assert "cannot tell it apart" in text
    assert "wrong_reference/control:reference" in text
    assert "the reference answer fails three" in text
    result.assert_outcomes(failed=3, passed=6)


def test_a_project_without_tasks_gets_the_bundled_ones(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--models=reference", "-m", "tooling", *QUIET)
    from pytest_llmbench.taskfiles.loading import load_task_file

    tooling = sum(
        len(task.cases)
        for path in sorted((REPO / "tasks" / "tooling").glob("*.yaml"))
        for task in load_task_file(path).tasks
    )
    result.assert_outcomes(passed=tooling)


STRICT_TASK = """\
suite: tooling
tasks:
  - id: too_strict
    prompt: Search the shop for wireless mice.
    tools: [search_products, search]
    reference:
      - [{name: search_products, arguments: {query: wireless mouse}}]
    accepted:
      - [[{name: search_products, arguments: {query: wireless mice}}]]
    cases:
      - {id: query, called: search_products, args: {query: {contains: mouse}}}
"""


def test_validate_reports_a_case_stricter_than_the_prompt(pytester: pytest.Pytester) -> None:
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "strict.yaml").write_text(STRICT_TASK)
    result = pytester.runpytest("--llmbench-validate", "-rf", *QUIET)
    text = result.stdout.str()
    assert "tasks/strict.yaml::too_strict/control:accepted-1" in text
    assert "the accepted-1 fails query" in text
    # reference, null and the two made mutants hold
    result.assert_outcomes(failed=1, passed=4)
