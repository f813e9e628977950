"""The end of a benchmark run, in one place and in one order.

However a run ends (complete, -x, Ctrl-C, SIGTERM, SIGHUP, an internal error), RunEnd ends it
in this order:

1. Stop (pytest_sessionfinish, before other plugins'). From here on a signal is noted, not
   raised: one that lands just after the last item must not cost the results; the run still
   ends as interrupted. The scheduler drops the work it has not started and the sandbox closes,
   so that nothing is left running while the results are written.
2. The JSONL: a line per model that ran and one per model skipped at start-up, in one write.
   The results come first because they are what the run was for, and every later step can fail
   or hang without costing them.
3. The markdown table (--llmbench-markdown), from the same aggregate.
4. The exit status: EXIT_INFRA_ERROR when a case errored or the results could not be written,
   the gate's verdict when a gate option is set. It comes before the record, which keeps it.
5. The record: the cases still queued, then the run's end with each model's JSONL line. A run
   that ran no case opened no record and closes none.
6. The HTML report (--llmbench-html), read back from the finished record, so after it.
7. The table (pytest_terminal_summary, below pytest's own failures), then the record's line.
8. The unload (pytest_unconfigure), last: it talks to a server that may hang, so it must find
   everything written, and it is bounded (stopping.exit_unload_bound; a second signal
   abandons it).

On an xdist worker the end is 1, what its reports have not carried yet into xdist's worker
output, and 8 at once: the controller writes the results (storage/relay.py), and the worker's
model is unloaded before the worker tells the controller it is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from .. import __version__
from ..backends import BACKENDS, default_base_url
from ..exchange import PSEUDO_MODELS
from ..reporting.jsonl import RunInfo, append_jsonl, jsonl_line, run_settings, tasks_digest
from ..reporting.markdown import render_markdown
from ..results.aggregate import ModelReport, aggregate
from ..storage.database import database_path
from ..storage.record_reader import RecordError
from ..storage.record_writer import RunRecord
from ..storage.relay import RELAY_PROPERTY
from ..taskfiles.selection import Selection
from .preflight import VERDICT, jsonl_lines
from .session import RunState
from .stopping import (
    Ending,
    exit_status,
    exit_unload_bound,
    finish_within,
    gated_exit_status,
    lighten_exit,
    warn,
    why_stopped,
)
from .summary import run_choice, summary_lines

# Summary lines that say the results cannot be taken at face value: printed in red.
ALARMS = (
    "SUSPECT",
    "PARTIAL RUN",
    "RESULTS NOT WRITTEN",
    "llmbench gate: FAILED",
    "BATCHING FLIPPED",
)


class RunEnd:
    """Ends one process's run (see the module doc for the order): `write` at
    pytest_sessionfinish, `show` at pytest_terminal_summary, `unload` at pytest_unconfigure."""

    def __init__(
        self, config: pytest.Config, state: RunState, record: RunRecord | None, *, worker: bool
    ) -> None:
        self.config = config
        self.state = state
        self.record = record  # None when validating tasks
        self.worker = worker
        # How the run ended; only a run that names models has signals, results and outputs.
        self.ending = Ending() if state.settings.models else None
        self.html_error: str | None = None  # why the HTML report could not be written

    # ------------------------------------------------------------------ pytest_sessionfinish
    def write(self, session: pytest.Session) -> None:
        """Steps 1 to 6 (on an xdist worker: 1, its cases, 8)."""
        self._stop()
        if self.worker:
            if self.record is not None:
                self.record.close()
            outbox = self.state.outbox
            left = outbox.take() if outbox is not None else None
            if left is not None:  # the controller writes it (storage/relay.py)
                self.config.workeroutput[RELAY_PROPERTY] = left  # type: ignore[attr-defined]
            self._unload()
            return
        if self.ending is None:
            return  # tasks validated: nothing to write
        lines = self._write_results(session, self.ending)
        self._decide_exit_status(session, self.ending)
        self._close_record(lines, int(session.exitstatus))
        self._write_html()

    def _stop(self) -> None:
        if self.ending is not None and not self.worker:
            self.ending.guard.defer()
        self.state.close_scheduler()
        self.state.close_sandbox()

    def _write_results(self, session: pytest.Session, ending: Ending) -> list[str]:
        """The JSONL and the markdown; returns the models' JSONL lines."""
        state, settings = self.state, self.state.settings
        if ending.guard.received is not None and session.exitstatus in (0, 1):
            # A signal after the last item: the user still asked to stop; say so.
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        selection = ending.selection
        selected = sum(selection.selected.values()) if selection else len(state.results)
        ending.interrupted = why_stopped(
            session, session.exitstatus, ending.guard, cases_left=len(state.results) < selected
        )
        run = run_info(state, __version__, ending.interrupted)
        reports = aggregate(state.results, settings.models) if state.results else []
        lines = model_lines(state, run, reports, selection)
        skipped = self._skipped_lines(run)
        where = settings.jsonl_path
        try:
            if lines or skipped:
                append_jsonl(where, lines + skipped)
            if reports and settings.markdown is not None:
                where = settings.markdown
                where.parent.mkdir(parents=True, exist_ok=True)
                choice = run_choice(state, reports)
                text = render_markdown(reports, settings.oracle, choice)
                where.write_text(text, encoding="utf-8")
        except OSError as exc:
            ending.write_error = f"could not write {where}: {exc.strerror or exc}"
            if where == settings.jsonl_path:
                lines = []
        return lines

    def _skipped_lines(self, run: RunInfo) -> list[str]:
        """A JSONL line per model its server does not have: `skipped`, not a zero score."""
        verdict = self.config.stash.get(VERDICT, None)
        return jsonl_lines(verdict, run) if verdict is not None else []

    def _decide_exit_status(self, session: pytest.Session, ending: Ending) -> None:
        state, settings = self.state, self.state.settings
        session.exitstatus = exit_status(
            session.exitstatus,
            stopped_by_maxfail=bool(session.shouldfail) and ending.guard.received is None,
            any_error=any(r.outcome == "error" for r in state.results),
            write_failed=ending.write_error is not None,
        )
        if settings.fail_under is None and not settings.fail_on_regression:
            return
        from ..results.gate import gate

        state.gate = gate(
            aggregate(state.results, settings.models),
            fail_under=settings.fail_under,
            baseline=state.baseline.reports if state.baseline is not None else None,
            fail_on_regression=settings.fail_on_regression,
        )
        session.exitstatus = gated_exit_status(
            session.exitstatus,
            gate_passed=state.gate.passed,
            tests_failed=session.testsfailed,
            wrong_answers=sum(r.outcome not in ("passed", "error") for r in state.results),
        )

    def _close_record(self, lines: list[str], status: int) -> None:
        record = self.record
        if record is None:
            return
        if record.opened:
            record.finish([json.loads(line) for line in lines], status)
        record.close()

    def _write_html(self) -> None:
        html, record = self.state.settings.html, self.record
        if html is None or record is None or not record.opened or record.failure is not None:
            return
        from ..reporting.html.page import ReportError, write_report

        try:
            write_report(record.path, [record.run_id], html)
        except (ReportError, RecordError, OSError) as exc:
            self.html_error = f"cannot write the HTML report {html}: {exc}"

    # ------------------------------------------------------------------ pytest_terminal_summary
    def show(self, reporter: pytest.TerminalReporter) -> None:
        """Step 7: the table and everything below it, then where the record is."""
        if self.worker:
            return
        for line in summary_lines(self.state, self.ending):
            markup = {"red": True, "bold": True} if line.startswith(ALARMS) else {}
            if line.startswith("llmbench ") and not line.startswith("llmbench gate"):
                reporter.write_sep("=", line, **markup)
            else:
                reporter.write_line(line, **markup)
        record = self.record
        if record is None:
            return
        if record.failure is not None:
            reporter.write_line(f"llmbench: {record.failure}", red=True)
            return
        if not record.opened:
            return  # nothing ran, nothing recorded
        text = f"record: run {record.run_id} in {record.path}"
        html = self.state.settings.html
        if html is not None and self.html_error is None:
            text += f"; HTML report: {html}"
        reporter.write_line(text)
        if self.html_error is not None:
            reporter.write_line(f"llmbench: {self.html_error}", red=True)

    # ------------------------------------------------------------------ pytest_unconfigure
    def unload(self) -> None:
        """Step 8 (a worker unloaded at its step 1), then the signals as they were before."""
        try:
            if not self.worker:
                self._unload()
        finally:
            if self.ending is not None:
                self.ending.guard.restore()
                lighten_exit()

    def _unload(self) -> None:
        """Unload whatever is still loaded, within the bound (the results are written)."""
        manager = self.state.manager
        loaded = manager.loaded
        if self.ending is None:
            manager.close()
            return
        guard = self.ending.guard
        bound = exit_unload_bound(guard, self.ending.interrupted, self.state.settings.timeout)
        guard.allow()
        problem = finish_within(manager.close, bound)
        if problem is not None and loaded is not None:
            warn(f"model {loaded!r} may still be loaded: its unload was {problem}")


def run_info(state: RunState, version: str, interrupted: str | None = None) -> RunInfo:
    """The run's metadata for every JSONL line: id, time, settings, how it ended."""
    settings = state.settings
    return RunInfo(
        run_id=state.run_id,
        timestamp=RunInfo.now(),
        backend=settings.backend,
        plugin_version=version,
        tasks_digest=tasks_digest(settings.rootdir, state.results),
        settings=run_settings(settings, state.isolation_tier),
        interrupted=interrupted,
        record={"database": str(database_path(settings.rootdir)), "run_id": state.run_id},
    )


def model_lines(
    state: RunState,
    run: RunInfo,
    reports: Sequence[ModelReport],
    selection: Selection | None = None,
) -> list[str]:
    """One JSONL line per model of `reports` (the run's results, aggregated)."""
    settings = state.settings
    choice = run_choice(state, reports)
    lines = []
    for report in reports:
        results = [r for r in state.results if r.model == report.model]
        if report.model in PSEUDO_MODELS:
            backend, url = "builtin", None
        else:
            backend = settings.backend
            url = state.manager.url_for(report.model)
            if url is None and backend in BACKENDS:
                url = default_base_url(backend)
        digest = tasks_digest(settings.rootdir, results)
        lines.append(
            jsonl_line(
                report,
                run,
                backend,
                url,
                report.load_s,
                reports,
                digest=digest,
                selection=selection,
                provenance=state.provenance.get(report.model),
                choice=choice,
            )
        )
    return lines
