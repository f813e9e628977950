"""Task files are input from elsewhere: hostile or broken ones are refused with one error that
names file, line and field, before any data is built from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.taskfiles.bounded_yaml import Budget, YamlProblem, read_yaml
from pytest_llmbench.taskfiles.loading import TaskFileError, load_task_file
from pytest_llmbench.taskfiles.matchers import HEADS, parse_matcher

PYTHON_TASK = """\
suite: python
tasks:
  - id: add
    prompt: Write add.
    entry_point: add
    reference: "def add(a, b): return a + b"
    timeout_s: 5
    cases:
      - {id: one, args: [1, 2], expect: 3}
"""

TOOLING_TASK = """\
suite: tooling
tasks:
  - id: weather
    prompt: Weather in Paris?
    tools: [get_weather]
    reference: [[{name: get_weather, arguments: {city: Paris}}]]
    cases:
      - id: called
        called: get_weather
        args: {city: {contains: paris}}
"""


def bomb(levels: int = 9, fan: int = 9) -> str:
    """Billion laughs: `fan ** levels` strings once the aliases are expanded."""
    lines = ['      - &a0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"      - &a{level} [{', '.join(f'*a{level - 1}' for _ in range(fan))}]")
    return "\n".join(lines)


def refused(tmp_path: Path, text: str | bytes) -> TaskFileError:
    path = tmp_path / "tasks.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(TaskFileError) as caught:
        load_task_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    return caught.value


def test_anchor_bomb_in_a_case_is_refused_at_its_anchor(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace(
        "      - {id: one, args: [1, 2], expect: 3}\n",
        f"      - id: one\n        expect: 3\n        args:\n{bomb()}\n",
    )
    error = refused(tmp_path, text)
    assert "an anchor bomb?" in str(error) and "500,000" in str(error)
    # where the expansion passes the budget: a6 (each a_k is 1 + 9 * a_(k-1) nodes: a5 holds
    # 125,479, a6 1,129,312), before anything of a7 to a9 is composed
    assert error.line == 12 + 6
    assert error.task == "add"


def test_anchor_bomb_in_a_matcher_is_refused(tmp_path: Path) -> None:
    text = TOOLING_TASK.replace(
        "        args: {city: {contains: paris}}\n",
        "        args:\n          city:\n            one_of:\n"
        + bomb().replace("      ", "              ")
        + "\n",
    )
    error = refused(tmp_path, text)
    assert "an anchor bomb?" in str(error) and error.task == "weather"


def test_aliases_are_counted_as_their_expansion(tmp_path: Path) -> None:
    budget = Budget(max_nodes=100)
    path = tmp_path / "small.yaml"
    path.write_text("a: &x [1, 2, 3]\nb: [*x, *x, *x]\n")  # 23 nodes once expanded
    assert read_yaml(path, budget) == {"a": [1, 2, 3], "b": [[1, 2, 3]] * 3}
    path.write_text("a: &x [1, 2, 3, 4, 5, 6, 7, 8]\nb: [" + ", ".join(["*x"] * 20) + "]\n")
    with pytest.raises(YamlProblem, match="more than 100 YAML nodes") as caught:
        read_yaml(path, budget)  # b: 21 nodes written, 1 + 20 * 9 once expanded
    assert caught.value.line == 2


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace("args: [1, 2]", "args: &loop [1, *loop]")
    assert "contains it" in str(refused(tmp_path, text))


def test_nesting_beyond_the_limit_names_where_it_goes_too_deep(tmp_path: Path) -> None:
    deep = "[" * 200 + "]" * 200
    error = refused(tmp_path, PYTHON_TASK.replace("args: [1, 2]", f"args: {deep}"))
    assert "nested more than 64 levels deep" in str(error)
    assert error.line == 9 and error.task == "add"


@pytest.mark.parametrize("depth", [998, 5000])
def test_nesting_as_deep_as_libyaml_allows_is_refused_without_recursion(
    tmp_path: Path, depth: int
) -> None:
    deep = "[" * depth + "]" * depth
    error = refused(tmp_path, PYTHON_TASK.replace("args: [1, 2]", f"args: {deep}"))
    assert "nest" in str(error) and error.line == 9


def test_files_over_the_size_limit_are_refused_unread(tmp_path: Path) -> None:
    text = PYTHON_TASK + "# " + "x" * (4 * 1024 * 1024) + "\n"
    assert "larger than 4 MB" in str(refused(tmp_path, text))


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    raw = PYTHON_TASK.replace("Write add.", "Write \udcff add.").encode("utf-8", "surrogateescape")
    error = refused(tmp_path, raw)
    assert error.line == 4 and "not UTF-8" in str(error) and "0xff" in str(error)


@pytest.mark.parametrize("value", [".nan", "-1", "0", ".inf", "-.inf", "1e300", "soon"])
def test_timeout_must_be_a_positive_finite_number(tmp_path: Path, value: str) -> None:
    error = refused(tmp_path, PYTHON_TASK.replace("timeout_s: 5", f"timeout_s: {value}"))
    assert (error.line, error.task, error.field) == (7, "add", "timeout_s")


def test_a_case_timeout_is_checked_too(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace("expect: 3}", "expect: 3, timeout_s: .nan}")
    error = refused(tmp_path, text)
    assert (error.line, error.field) == (9, "cases.0.timeout_s")
    assert "finite" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "field", "suggestion"),
    [("    prompt:", "    promt:", "promt", "did you mean 'prompt'?"),
     ("expect: 3}", "expect: 3, kwarg: {}}", "cases.0.kwarg", "did you mean 'kwargs'?"),
     ("tasks:", "taks:", "taks", "did you mean 'tasks'?"),
     ("    timeout_s: 5", "    colour: red", "colour", "unknown key")],
)  # fmt: skip
def test_unknown_keys_suggest_the_nearest_name(
    tmp_path: Path, old: str, new: str, field: str, suggestion: str
) -> None:
    error = refused(tmp_path, PYTHON_TASK.replace(old, new))
    assert error.field == field and suggestion in str(error)


@pytest.mark.parametrize(
    ("matcher", "suggestion"),
    [("{contians: paris}", "'contains'"), ("{oneof: [Paris]}", "'one_of'"),
     ("{contains: paris, optinal: true}", "'optional'"), ("{aprox: 1.5, tol: 0.1}", "'approx'")],
)  # fmt: skip
def test_misspelt_matchers_suggest_the_nearest_name(
    tmp_path: Path, matcher: str, suggestion: str
) -> None:
    text = TOOLING_TASK.replace("args: {city: {contains: paris}}", f"args: {{city: {matcher}}}")
    error = refused(tmp_path, text)
    assert f"did you mean {suggestion}?" in str(error)
    assert (error.line, error.task) == (10, "weather")
    assert str(error.field).startswith("cases.0.args")


def test_a_malformed_matcher_is_refused_at_its_own_line(tmp_path: Path) -> None:
    text = TOOLING_TASK.replace(
        "        args: {city: {contains: paris}}\n",
        "        args:\n"
        "          city:\n"
        "            one_of:\n"
        "              - Paris\n"
        "              - {contains: 3}\n",
    )
    error = refused(tmp_path, text)
    assert (error.line, error.task) == (14, "weather")
    assert error.field == "cases.0.args.city.one_of.1.contains"
    assert "city.one_of[1]: contains needs a string" in str(error)


@pytest.mark.parametrize(("head", "value"), [("equals", "Paris"), ("one_of", ["Paris"]),
                                             ("contains", "par"), ("approx", 1.5)])  # fmt: skip
def test_the_loader_and_the_scorer_read_one_grammar(tmp_path: Path, head: str, value: Any) -> None:
    """Each head takes the modifiers of matchers.HEADS and no other: the loader refuses the
    others with the nearest one it takes, and the scorer reads the ones it takes."""
    samples: dict[str, Any] = {"optional": True, "unordered": True, "normalize": True,
                               "tol": 0.5, "rel": 0.25}  # fmt: skip
    assert set(samples) == set().union(*HEADS.values())
    for modifier, sample in samples.items():
        matcher = {head: value, modifier: sample}
        path = tmp_path / f"{head}_{modifier}.yaml"
        path.write_text(TOOLING_TASK.replace("{contains: paris}", json.dumps(matcher)))
        if modifier in HEADS[head]:
            case = load_task_file(path).tasks[0].cases[0]
            assert getattr(parse_matcher(case.args["city"]), modifier) == sample
        else:
            with pytest.raises(TaskFileError, match=f"{head} does not take '{modifier}'"):
                load_task_file(path)


def test_an_object_argument_that_only_resembles_a_matcher_can_be_wrapped(tmp_path: Path) -> None:
    text = TOOLING_TASK.replace(
        "args: {city: {contains: paris}}", "args: {city: {equals: {contians: paris}}}"
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert load_task_file(path).tasks[0].id == "weather"


def test_duplicate_keys_name_the_second_one(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace("    timeout_s: 5\n", "    timeout_s: 5\n    prompt: Again.\n")
    error = refused(tmp_path, text)
    assert (error.line, error.task, error.field) == (8, "add", "prompt")
    assert "duplicate key 'prompt' (first at line 4)" in str(error)


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace(
        "      - {id: one, args: [1, 2], expect: 3}\n",
        "      - &base {id: one, args: [1, 2], expect: 3}\n      - {<<: *base, id: two}\n",
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert [c.id for c in load_task_file(path).tasks[0].cases] == ["one", "two"]


def test_syntax_errors_name_where_the_construct_starts(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace("prompt: Write add.", "prompt: [Write add.")
    error = refused(tmp_path, text)
    assert error.line == 4
    assert "invalid YAML" in str(error) and "noticed at line" in str(error)


def test_unknown_tags_are_refused_with_their_line(tmp_path: Path) -> None:
    text = PYTHON_TASK.replace("expect: 3}", "expect: !!python/object:os.system x}")
    assert refused(tmp_path, text).line == 9


def test_the_node_budget_stops_composing_a_dense_file(tmp_path: Path) -> None:
    path = tmp_path / "dense.yaml"
    path.write_text("values:\n  - [" + "1, " * 5000 + "1]\n")
    with pytest.raises(YamlProblem, match="more than 1,000 YAML nodes") as caught:
        read_yaml(path, Budget(max_nodes=1000))
    assert caught.value.line == 2
