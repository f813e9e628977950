"""What changed between two runs, in lines: per model and suite, the rates before and after,
the difference and whether it is real, the tasks that flipped, and a warning when something
other than the model changed (the server's build, the model file, the chat template: the
`provenance` of each model's line).

Works on results only (JSONL records or the reports of the run that just finished); it never
talks to a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..caseresult import SUITES
from ..display import printable
from .aggregate import Comparison, ModelReport, compare
from .stats import Interval


def _cell(passed: int, total: int, interval: Interval) -> str:
    if not total:
        return "-"
    return f"{passed}/{total} ({interval.percent()})"


def _verdict(diff: Comparison) -> str:
    if not diff.cases.tasks:
        return "no shared tasks"
    if not diff.cases.significant:
        return "noise"
    return "better" if diff.cases.delta > 0 else "WORSE"


def difference(diff: Comparison) -> str:
    if not diff.cases.tasks:
        return "no task ran without errors in both"
    if diff.cases.interval == Interval(0.0, 0.0):
        return "no change"
    lo, hi = diff.cases.interval.low * 100, diff.cases.interval.high * 100
    return f"{diff.cases.delta * 100:+.1f} pts ({lo:+.1f} to {hi:+.1f}) {_verdict(diff)}"


@dataclass
class ModelChange:
    """One model in both runs: its scores before and after, per suite and overall."""

    model: str
    old: ModelReport
    new: ModelReport
    by_suite: dict[str, Comparison] = field(default_factory=dict)
    overall: Comparison | None = None

    def flipped(self) -> tuple[list[str], list[str]]:
        """Tasks fully passed before and not now, and the other way round (`suite:task`;
        tasks with an infrastructure error on either side are left out)."""
        before = {(t.suite, t.task): t for t in self.old.tasks if not t.errored}
        lost: list[str] = []
        gained: list[str] = []
        for task in self.new.tasks:
            old = before.get((task.suite, task.task))
            if old is None or task.errored or old.fully_passed == task.fully_passed:
                continue
            (gained if task.fully_passed else lost).append(f"{task.suite}:{task.task}")
        return lost, gained


def changes(old: Sequence[ModelReport], new: Sequence[ModelReport]) -> list[ModelChange]:
    """Per model present in both, in the new run's order."""
    before = {r.model: r for r in old}
    out = []
    for report in new:
        previous = before.get(report.model)
        if previous is None:
            continue
        change = ModelChange(report.model, previous, report)
        ran = set(previous.suites()) | set(report.suites())
        suites = [s for s in SUITES if s in ran] + sorted(ran - set(SUITES))
        for suite in suites:
            change.by_suite[suite] = compare(
                [t for t in previous.tasks if t.suite == suite],
                [t for t in report.tasks if t.suite == suite],
            )
        change.overall = compare(previous, report)
        out.append(change)
    return out


# Provenance fields (backends/provenance.py) in the words of a warning, in the order warned
# about; a field not named here (a later one) is said by its key.
_FIELD_WORDS = {
    "server": "server",
    "server_version": "server build",
    "executable": "server executable",
    "threads": "thread count",
    "answers": "answers mode",
    "load_config": "load settings",
    "chat_template_sha256": "chat template",
    "chat_template_tool_use_sha256": "tool-use chat template",
    "replicas": "replicas",
    "model_file": "model file",
    "model_digest": "model digest",
    "model_source": "model source",
    "model_listing": "model listing",
}
# Fields that name the model itself: there, a difference means another model answered.
_MODEL_FIELDS = ("model_file", "model_digest", "model_source", "model_listing")
_FILE_FIELDS = ("model_file", "executable")
# How the embedded servers were laid out: more servers decode answers alone as exactly as fewer
# (whether answers were batched is `answers`), so another machine's CPU count is no warning.
_LAYOUT_FIELDS = ("servers", "slots_per_server")
ProvenanceByModel = Mapping[str, Mapping[str, Any] | None]


def _shown(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # a sha256: its start tells two apart
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _file_change(old: Any, new: Any) -> str | None:
    """How two file identities differ: by content where both were measured, else by path."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return None if old == new else f"{_shown(old)} -> {_shown(new)}"
    for field_name in ("sha256_sampled", "path"):
        if old.get(field_name) and new.get(field_name):
            if old[field_name] == new[field_name]:
                return None
            return f"{field_name} {_shown(old[field_name])} -> {_shown(new[field_name])}"
    return None


def _change(key: str, old: Any, new: Any) -> str | None:
    """What differs in one provenance field, in a few words ("" when the values say nothing to
    a reader); None when nothing does."""
    if key in _FILE_FIELDS:
        return _file_change(old, new)
    if old == new:
        return None
    if key.endswith("_sha256"):
        return ""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return ", ".join(
            f"{k} {_shown(old.get(k))} -> {_shown(new.get(k))}"
            for k in sorted(set(old) | set(new), key=str)
            if old.get(k) != new.get(k)
        )
    return f"{_shown(old)} -> {_shown(new)}"


def provenance_lines(
    model: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[str]:
    """A warning per provenance field present in both runs whose value differs, or one line
    when only one run recorded what answered it."""
    if not old and not new:
        return []
    if not old or not new:
        which = "old" if not old else "new"
        return [
            printable(
                f"{model}: the {which} run records no provenance: the runs cannot be checked "
                "for a different server build, model file or chat template"
            )
        ]
    order = list(_FIELD_WORDS)
    shared = sorted(
        (set(old) & set(new)) - set(_LAYOUT_FIELDS),
        key=lambda k: (order.index(k) if k in order else len(order), k),
    )
    lines = []
    for key in shared:
        change = _change(key, old[key], new[key])
        if change is None:
            continue
        words = _FIELD_WORDS.get(key, key.replace("_", " "))
        detail = f" ({change})" if change else ""
        tail = (
            "another model answered"
            if key in _MODEL_FIELDS
            else "the difference may not be the model"
        )
        lines.append(printable(f"{model}: different {words}{detail}: {tail}"))
    return lines


def comparison_lines(
    old: Sequence[ModelReport],
    new: Sequence[ModelReport],
    *,
    flips_shown: int | None = None,
    provenance: tuple[ProvenanceByModel, ProvenanceByModel] | None = None,
) -> list[str]:
    """What changed from `old` to `new`, per model and suite: rates with their intervals, the
    difference with its interval and whether it is real, the tasks that flipped, and (given
    each run's `provenance` per model) what else changed."""
    lines: list[str] = []
    for change in changes(old, new):
        lines.append(change.model)
        rows = [["", "old", "new", "difference (95 %)"]]
        for suite, diff in change.by_suite.items():
            o, n = change.old.score(suite), change.new.score(suite)
            rows.append(
                [
                    suite,
                    _cell(o.passed, o.total, o.interval),
                    _cell(n.passed, n.total, n.interval),
                    difference(diff),
                ]
            )
        o, n = change.old.score(), change.new.score()
        assert change.overall is not None
        rows.append(
            [
                "total",
                _cell(o.passed, o.total, o.interval),
                _cell(n.passed, n.total, n.interval),
                difference(change.overall),
            ]
        )
        mcnemar = change.overall.tasks
        rows.append(
            [
                "tasks",
                _cell(o.tasks_passed, o.tasks_total, o.tasks_interval),
                _cell(n.tasks_passed, n.tasks_total, n.tasks_interval),
                f"{mcnemar.only_new} gained, {mcnemar.only_old} lost "
                f"(McNemar p={mcnemar.p_value:.2g})",
            ]
        )
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]
            lines.append(("  " + "  ".join([*cells, row[3]])).rstrip())
        lost, gained = change.flipped()
        for title, flipped in (("now failing", lost), ("now passing", gained)):
            if flipped:
                lines.append(f"  {title} ({len(flipped)}): {shortened(flipped, flips_shown)}")
        if provenance is not None:
            model, (before, after) = change.model, provenance
            lines += provenance_lines(model, before.get(model), after.get(model))
    only_old = [r.model for r in old if r.model not in {n.model for n in new}]
    only_new = [r.model for r in new if r.model not in {o.model for o in old}]
    if only_old:
        lines.append(f"only in the old run: {', '.join(only_old)}")
    if only_new:
        lines.append(f"only in the new run: {', '.join(only_new)}")
    return lines


def shortened(names: Sequence[str], shown: int | None = 5) -> str:
    """The first `shown` names (all with None), and how many more there are."""
    more = len(names) - shown if shown is not None else 0
    return ", ".join(names[:shown]) + (f", and {more} more" if more > 0 else "")
