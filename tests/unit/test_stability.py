"""Stability labels and pass^k, against hand computations on results built case by case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.outcome import Outcome
from pytest_llmbench.reporting.jsonl import RunInfo, jsonl_line, repeat_record
from pytest_llmbench.reporting.markdown import render_markdown
from pytest_llmbench.reporting.table import repeat_lines
from pytest_llmbench.results import stats
from pytest_llmbench.results.aggregate import aggregate, pass_at_k, pass_hat_k
from pytest_llmbench.results.stability import Stability, TaskResult

RUN = RunInfo("r", "t", "openai", "0", "d", {})


def case(
    task: str,
    case_id: str,
    outcome: Outcome,
    repeat: int = 0,
    budgets: dict[int, Outcome] | None = None,
    **kw: Any,
) -> CaseResult:
    """A case; `budgets` gives the outcome at the smaller budgets, the largest being `outcome`
    at 64."""
    curve = tuple({**(budgets or {}), 64: outcome}.items()) if budgets else ()
    return CaseResult("m", "python", task, case_id, outcome, file="f.yaml", repeat=repeat,
                      budgets=curve, **kw)  # fmt: skip


def judge(*cases: CaseResult) -> Stability | None:
    [report] = aggregate(list(cases), ("m",))
    [task] = report.tasks
    return task.stability


def test_a_task_passing_only_from_a_mid_budget() -> None:
    # x passes at every budget; y is cut at 8 and passes from 32: the task passes from 32.
    found = judge(
        case("t", "x", "passed", budgets={8: "passed", 32: "passed"}),
        case("t", "y", "passed", budgets={8: "truncated", 32: "passed"}),
    )
    assert found == Stability(("budget-sensitive",), 1, 1, from_budget=32)
    assert found.text() == "budget-sensitive (from 32)"
    # Passing at 8, failing at 32, passing at 64: it passes from 64 (at B and every larger).
    dip = judge(case("t", "x", "passed", budgets={8: "passed", 32: "failed"}))
    assert dip is not None and (dip.labels, dip.from_budget) == (("budget-sensitive",), 64)


def test_a_task_that_passes_only_below_the_largest_budget() -> None:
    # Its short answer was right, the longer one wrong: not stable, and no budget from which
    # it passes.
    found = judge(case("t", "x", "failed", budgets={8: "passed", 32: "failed"}))
    assert found == Stability(("budget-sensitive",), 1, 0, from_budget=None)
    assert found.text() == "budget-sensitive (only at smaller budgets)"


def test_a_flaky_task_two_of_five() -> None:
    outcomes: list[Outcome] = ["passed", "failed", "truncated", "passed", "failed"]
    found = judge(*(case("t", "x", o, r) for r, o in enumerate(outcomes)))
    assert found == Stability(("flaky",), 5, 2)
    assert found.label == "flaky" and found.text() == "flaky (2 of 5)" and not found.stable


def test_a_flaky_task_that_is_also_budget_sensitive() -> None:
    found = judge(
        case("t", "x", "passed", 0, budgets={16: "passed"}),  # passes at both budgets
        case("t", "x", "passed", 1, budgets={16: "truncated"}),  # only at 64
        case("t", "x", "failed", 2, budgets={16: "failed"}),  # at neither
    )
    # Flaky at 64 (sample 2 failed); of the samples that pass at 64, sample 1 fails at 16.
    assert found == Stability(("flaky", "budget-sensitive"), 3, 2, from_budget=64)
    assert found.label == "flaky"
    assert found.text() == "flaky (2 of 3), budget-sensitive (from 64)"


def test_the_failing_sample_of_a_flaky_task_does_not_make_it_budget_sensitive() -> None:
    # Sample 1 passes at 16 but not at 64; the sample that passes at 64 passes at 16 too.
    found = judge(
        case("t", "x", "passed", 0, budgets={16: "passed"}),
        case("t", "x", "failed", 1, budgets={16: "passed"}),
    )
    assert found == Stability(("flaky",), 2, 1)


def test_a_batching_flipped_task() -> None:
    flipped = judge(
        case("t", "x", "passed", audit_outcome="failed", audit_same_answer=False),
        case("t", "y", "passed", audit_outcome="passed", audit_same_answer=False),
    )
    assert flipped == Stability(("batching-sensitive",), 1, 1, audited=True)
    assert flipped.to_dict()["batching_flipped"] is True
    # Audited, the answer changed, the verdicts did not: stable.
    same = judge(case("t", "x", "failed", audit_outcome="failed", audit_same_answer=False))
    assert same == Stability(("stable fail",), 1, 0, audited=True)
    # An error on either side says nothing about batching.
    unknown = judge(case("t", "x", "passed", audit_outcome="error"))
    assert unknown == Stability(("stable pass",), 1, 1, audited=False)
    # Batching-sensitive comes first, whatever else the task earned.
    both = judge(
        case("t", "x", "passed", 0, audit_outcome="failed", audit_same_answer=False),
        case("t", "x", "failed", 1),
    )
    assert both is not None and both.labels == ("batching-sensitive", "flaky")


def test_errors_say_nothing() -> None:
    assert judge(case("t", "x", "error", 0), case("t", "y", "error", 1)) is None
    # An error next to a pass is not flakiness; the errored sample did not pass in full.
    found = judge(case("t", "x", "passed", 0), case("t", "x", "error", 1))
    assert found == Stability(("stable pass",), 2, 1)
    # The label is judged on the cases that did not error; `samples_passed` counts samples
    # whose every case passed, as the tasks column does.
    partly = judge(
        case("t", "x", "passed", budgets={8: "passed"}),
        case("t", "y", "error"),
        case("t", "z", "passed", budgets={8: "truncated"}),
    )
    assert partly == Stability(("budget-sensitive",), 1, 0, from_budget=64)


def test_stable_pass_and_stable_fail_carry_their_samples() -> None:
    one = judge(case("t", "x", "passed", budgets={8: "passed"}))
    assert one == Stability(("stable pass",), 1, 1)
    assert one.stable and one.text() == "stable pass (1 sample)"
    fail = judge(*(case("t", "x", "failed", r, budgets={8: "truncated"}) for r in range(3)))
    assert fail == Stability(("stable fail",), 3, 0)
    assert fail.text() == "stable fail (3 samples)"
    # Failing one case in every sample, passing the other in every sample: no case varies.
    split = judge(
        *(case("t", c, o, r) for r in range(2) for c, o in (("x", "passed"), ("y", "failed")))
    )
    assert split == Stability(("stable fail",), 2, 0)


def test_the_model_counts_tasks_by_primary_label_and_the_jsonl_carries_them() -> None:
    results = [
        *(case("flaky", "x", o, r) for r, o in enumerate(["passed", "failed"])),
        *(case("pass", "x", "passed", r) for r in range(2)),
        *(case("fail", "x", "failed", r) for r in range(2)),
        *(case("lost", "x", "error", r) for r in range(2)),
    ]
    [report] = aggregate(results, ("m",))
    assert report.stability_counts() == {"batching-sensitive": 0, "flaky": 1,
                                         "budget-sensitive": 0, "stable pass": 1,
                                         "stable fail": 1}  # fmt: skip
    assert [(t.task, s.label) for t, s in report.not_stable()] == [("flaky", "flaky")]
    record = json.loads(jsonl_line(report, RUN, "openai", None, None, [report]))
    assert record["stability"] == report.stability_counts()
    by_task = {t["task"]: t["stability"] for t in record["results"]}
    assert by_task["lost"] is None
    assert by_task["flaky"] == {"label": "flaky", "labels": ["flaky"], "samples": 2,
                                "samples_passed": 1, "from_budget": None, "audited": False,
                                "batching_flipped": False}  # fmt: skip
    assert Stability.from_dict(by_task["flaky"]) == report.tasks[0].stability


def test_pass_hat_k_over_tasks() -> None:
    # Task a: 2 of 5 samples passed; task b: 4 of 5. pass^2 = (C(2,2) + C(4,2)) / C(5,2) / 2.
    results = [
        *(case("a", "x", "passed" if r < 2 else "failed", r) for r in range(5)),
        *(case("b", "x", "passed" if r < 4 else "failed", r) for r in range(5)),
    ]
    [report] = aggregate(results, ("m",))
    rate, interval = report.pass_hat_k(2) or (None, None)
    assert rate == pytest.approx((1 / 10 + 6 / 10) / 2)
    assert interval is not None and interval.contains((1 / 10 + 6 / 10) / 2)
    assert pass_hat_k(report.tasks, 5) == (0.0, stats.wilson(0, 2))  # no task passed all 5
    hat_1, at_1 = pass_hat_k(report.tasks, 1), pass_at_k(report.tasks, 1)
    assert hat_1 is not None and at_1 is not None
    assert hat_1[0] == pytest.approx(at_1[0]) and hat_1[1] == at_1[1]  # pass^1 is pass@1
    assert pass_hat_k(report.tasks, 6) is None  # fewer samples than k
    assert pass_hat_k([], 1) is None
    # A task whose samples all pass has pass^k 1 for every k.
    always = TaskResult("python", "c", [case("c", "x", "passed", r) for r in range(3)])
    assert [pass_hat_k([always], k) for k in (1, 2, 3)] == [(1.0, stats.wilson(1, 1))] * 3
    record = repeat_record(report)
    assert record["tasks_pass_hat_k"]["overall"]["2"]["rate"] == round(0.35, 4)
    assert set(record["tasks_pass_hat_k"]["overall"]) == {"1", "2", "3", "4", "5"}
    assert record["tasks_pass_hat_k"]["python"] == record["tasks_pass_hat_k"]["overall"]


def test_terminal_lists_flaky_tasks_briefly_and_says_nothing_when_none() -> None:
    flaky = [
        case(f"t{i:02}", "x", o, r) for i in range(12) for r, o in enumerate(["passed", "failed"])
    ]
    steady = [case("s", "x", "passed", r) for r in range(2)]
    [report] = aggregate(flaky + steady, ("m",))
    lines = repeat_lines([report])
    [line] = [x for x in lines if x.startswith("flaky tasks of m")]
    listed = ", ".join(f"python:t{i:02} 1 of 2" for i in range(10))
    assert line == f"flaky tasks of m (12; samples that passed): {listed}, and 2 more"
    header = next(x for x in lines if x.startswith("model"))
    assert "tasks pass^2" in header and "pass^1" not in header
    [calm] = aggregate(steady, ("m",))
    assert not [x for x in repeat_lines([calm]) if "flaky" in x]


def test_markdown_gives_counts_and_the_tasks_not_stable() -> None:
    results = [
        case("mid", "x", "passed", budgets={8: "truncated"}),
        case("ok", "x", "passed", budgets={8: "passed"}),
    ]
    text = render_markdown(aggregate(results, ("m",)))
    assert "| `m` | 1 sample, 2 budgets | 0 | 0 | 1 | 1 | 0 |" in text.splitlines()
    assert text.endswith("Not stable in `m`:\n\n- `python:mid`: budget-sensitive (from 64)\n")
    calm = render_markdown(aggregate(results[1:], ("m",)))
    assert "| `m` | 1 sample, 2 budgets | 0 | 0 | 0 | 1 | 0 |" in calm and "Not stable" not in calm
