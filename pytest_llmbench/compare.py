"""Comparing runs, and the CI gate: read runs back from the JSONL, say what changed and whether
it is real, warn when something other than the model changed (the server's build, the model
file, the chat template: the `provenance` of each model's line), and turn thresholds into a
verdict.

The one reader of the JSONL (`read_jsonl`: torn lines skipped and counted) and the one
resolver of a run reference (`resolve_run`: `latest`, a run id or a unique prefix; the run
record's reader uses it too) are here.

Works on results only (JSONL records or the reports of the run that just finished); it never
talks to a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aggregate import Comparison, ModelReport, compare, task_pairs
from .caseresult import SUITES, CaseResult
from .display import printable
from .stability import TaskResult
from .stats import Interval
from .taskroots import current_name

# pytest uses 0-5; a failed gate gets its own code so that CI can tell "below the bar" from
# "some cases failed" (1) and from infrastructure trouble.
GATE_FAILED = 7


class RunNotFound(ValueError):
    """A run reference that names no run (or several) where runs were looked up."""


@dataclass(frozen=True)
class Run:
    """One run read back from JSONL: one record per model."""

    run_id: str
    timestamp: str
    source: str
    reports: list[ModelReport]
    # Per model, what answered it (its line's `provenance`); None for lines written before
    # runs recorded it.
    provenance: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def label(self) -> str:
        return f"run {self.run_id} ({self.timestamp}, {self.source})"


def report_of(record: dict[str, Any]) -> ModelReport:
    """A model's report rebuilt from its JSONL record (outcomes per case; enough to compare)."""
    model = str(record["model"])
    tasks = []
    for entry in record.get("results", []):
        # Files named as they are now: a run recorded before the bundled tasks moved compares.
        suite, task, file = entry["suite"], entry["task"], current_name(entry.get("file", ""))
        cases = [
            CaseResult(
                model,
                suite,
                task,
                c["id"],
                c["outcome"],
                c.get("detail", ""),
                file,
                repeat=c.get("repeat", 0),
                budgets=tuple((int(b), o) for b, o in (c.get("budgets") or {}).items()),
                audit_outcome=c.get("audit"),
                audit_same_answer=c.get("audit_same_answer"),
            )
            for c in entry.get("cases", [])
        ]
        if cases:
            tasks.append(TaskResult(suite, task, cases))
    return ModelReport(model, tasks)


@dataclass(frozen=True)
class JsonlRecords:
    """The results lines of a JSONL file, and how many of its lines were not one."""

    records: list[dict[str, Any]]
    # Lines that are not a whole JSON object naming its run and model: the torn last line of
    # a run killed mid-write (the writer starts the next run on a fresh line), or a foreign line.
    unreadable: int


def parse_jsonl(lines: Iterable[str | bytes]) -> JsonlRecords:
    """The records among `lines`, skipping (and counting) those that are not whole records;
    blank lines are neither."""
    records: list[dict[str, Any]] = []
    unreadable = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            unreadable += 1
            continue
        if isinstance(record, dict) and "run_id" in record and "model" in record:
            records.append(record)
        else:
            unreadable += 1
    return JsonlRecords(records, unreadable)


def read_jsonl(path: Path) -> JsonlRecords:
    """The records of a results file (`--llmbench-jsonl`), by the rule of `parse_jsonl`."""
    # Decoded line by line: a torn line may end inside a UTF-8 sequence, which makes it one bad
    # line, not a file that cannot be read.
    return parse_jsonl(path.read_bytes().split(b"\n"))


def _run(records: list[dict[str, Any]], run_id: str, source: str) -> Run:
    mine = [r for r in records if r["run_id"] == run_id]
    provenance = {
        str(r["model"]): r["provenance"] if isinstance(r.get("provenance"), dict) else None
        for r in mine
    }
    return Run(
        run_id,
        str(mine[0].get("timestamp", "?")),
        source,
        [report_of(r) for r in mine],
        provenance,
    )


LATEST = "latest"  # names the newest run, wherever a run can be named


def matching_runs(wanted: str, runs: Sequence[str]) -> list[str]:
    """The runs among `runs` (oldest first, each once) that `wanted` names: `latest` names the
    newest, a run id itself, anything else every run it is a prefix of."""
    if wanted == LATEST:
        return list(runs[-1:])
    if wanted in runs:
        return [wanted]
    return [run for run in runs if run.startswith(wanted)]


def resolve_run(wanted: str, runs: Sequence[str], where: str) -> str:
    """The run `wanted` names among `runs` (oldest first), held in `where` (a JSONL file, the
    run record): `latest`, a run id, or a unique prefix of one. Raises RunNotFound, one line,
    when it names no run or several."""
    if not runs:
        raise RunNotFound(f"{where} holds no runs yet")
    match = matching_runs(wanted, runs)
    if len(match) > 1:
        raise RunNotFound(f"run {wanted!r} matches several runs in {where}: {shortened(match, 10)}")
    if not match:
        raise RunNotFound(f"run {wanted!r} is not in {where}; known runs: {', '.join(runs[-10:])}")
    return match[0]


def run_ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The runs of JSONL records, oldest first (a run's lines are written together)."""
    return list(dict.fromkeys(str(r["run_id"]) for r in records))


def load_run(reference: str, jsonl: Sequence[Path]) -> Run:
    """A run by reference: a JSONL file (its latest run), or `latest`, a run id or a unique
    prefix of one, looked up in the `jsonl` files (the first of them that names a run)."""
    path = Path(reference)
    if path.is_file():
        records = read_jsonl(path).records
        return _run(records, resolve_run(LATEST, run_ids(records), str(path)), str(path))
    searched = []
    for source in jsonl:
        if not source.is_file():
            continue
        searched.append(str(source))
        records = read_jsonl(source).records
        ids = run_ids(records)
        if matching_runs(reference, ids):
            return _run(records, resolve_run(reference, ids, str(source)), str(source))
    missing = f"no JSONL file (none of: {', '.join(str(p) for p in jsonl)})"
    if reference == LATEST:
        why = f"none recorded in {', '.join(searched)}" if searched else missing
        raise RunNotFound(f"no run to take as {LATEST!r}: {why}")
    where = ", ".join(searched) if searched else missing
    raise RunNotFound(f"{reference!r} is neither a file nor a run id in {where}")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


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


def _difference(diff: Comparison) -> str:
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
        suites = [s for s in SUITES if s in set(previous.suites()) | set(report.suites())]
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
                    _difference(diff),
                ]
            )
        o, n = change.old.score(), change.new.score()
        assert change.overall is not None
        rows.append(
            [
                "total",
                _cell(o.passed, o.total, o.interval),
                _cell(n.passed, n.total, n.interval),
                _difference(change.overall),
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


def parse_rate(text: str) -> float:
    """`0.75`, `75%` or `75` (a number above 1 is a percentage) as a fraction."""
    value = float(text.strip().removesuffix("%"))
    if text.strip().endswith("%") or value > 1:
        value /= 100
    if not 0 <= value <= 1:
        raise ValueError(f"a pass rate is between 0 and 1 (or 0% and 100%), got {text!r}")
    return value


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
                failures.append(f"{change.model}: regressed {_difference(change.overall)}")
    return GateVerdict(tuple(failures), tuple(checked))


def shortened(names: Sequence[str], shown: int | None = 5) -> str:
    """The first `shown` names (all with None), and how many more there are."""
    more = len(names) - shown if shown is not None else 0
    return ", ".join(names[:shown]) + (f", and {more} more" if more > 0 else "")


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
