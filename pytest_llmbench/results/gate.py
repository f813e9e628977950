"""The CI gate: thresholds (a pass rate to reach, no regression against a baseline run)
turned into a verdict, with the exit status a failed gate ends the run with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .aggregate import ModelReport, task_pairs
from .comparison import ModelChange, changes, difference, shortened

# pytest uses 0-5; a failed gate gets its own code so that CI can tell "below the bar" from
# "some cases failed" (1) and from infrastructure trouble.
GATE_FAILED = 7


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


@dataclass(frozen=True)
class GateVerdict:
    failures: tuple[str, ...]
    checked: tuple[str, ...]  # what was checked, for the line that says it passed

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        if self.passed:
            return [f"llmbench gate: passed ({'; '.join(self.checked)})"]
        return [f"llmbench gate: FAILED (exit status {GATE_FAILED})"] + [
            f"  {failure}" for failure in self.failures
        ]


def gate(
    reports: Sequence[ModelReport],
    *,
    fail_under: float | None,
    baseline: Sequence[ModelReport] | None,
    fail_on_regression: bool,
) -> GateVerdict:
    """The CI verdict: every model's share of cases passed at least `fail_under`, and (with
    `fail_on_regression`) no model significantly worse than in the baseline, and something
    compared: a model in both runs that shares no task with the baseline (none ran without an
    error in both), or a baseline with none of the run's models, fails the gate."""
    failures: list[str] = []
    checked: list[str] = []
    if fail_under is not None:
        checked.append(f"every model passed at least {_percent(fail_under)} of its cases")
        for report in reports:
            rate = report.score().rate
            if rate < fail_under:
                failures.append(
                    f"{report.model}: {report.passed}/{report.total} = {_percent(rate)} of cases "
                    f"passed, under {_percent(fail_under)}"
                )
    if fail_on_regression and baseline is not None:
        checked.append("no model significantly worse than the baseline")
        found = changes(baseline, reports)
        # A regression gate that compared nothing has shown nothing: it must not pass.
        if not found:
            failures.append(
                "nothing compared: no model of this run is in the baseline (this run: "
                f"{shortened([r.model for r in reports]) or 'none'}; baseline: "
                f"{shortened([r.model for r in baseline]) or 'none'})"
            )
        for change in found:
            assert change.overall is not None
            diff = change.overall.cases
            if not diff.tasks:
                failures.append(f"{change.model}: nothing compared: {_unmatched(change)}")
            elif diff.significant and diff.delta < 0:
                failures.append(f"{change.model}: regressed {difference(change.overall)}")
    return GateVerdict(tuple(failures), tuple(checked))


def _unmatched(change: ModelChange) -> str:
    """Why a model in both runs had no task to compare, naming what did not match."""
    old, new = change.old.tasks, change.new.tasks
    if task_pairs(old, new):
        return "every task both runs ran ended in an error in one of them"
    ours = list(dict.fromkeys(f"{t.suite}:{t.task}" for t in new))
    theirs = list(dict.fromkeys(f"{t.suite}:{t.task}" for t in old))
    if set(ours) & set(theirs):  # the same ids: the tasks are matched by their files too
        ours = list(dict.fromkeys(t.file for t in new))
        theirs = list(dict.fromkeys(t.file for t in old))
        return (
            f"its tasks come from other task files (this run: {shortened(ours)}; "
            f"baseline: {shortened(theirs)})"
        )
    return (
        f"no task in common (this run: {shortened(ours) or 'none'}; "
        f"baseline: {shortened(theirs) or 'none'})"
    )
