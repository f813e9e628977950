"""What a person watching the terminal sees while a benchmark runs.

- Status letters per case (`pytest_report_teststatus`): each outcome's letter, under `-v` its
  word (the outcome vocabulary, outcome.py).
- Before each model, a line naming it with its backend and URL and "loading...", then one with
  the load time and the context length.
- While it runs: tasks done of those selected, cases passed so far, tokens per second and an
  estimate of the time left, redrawn in place below the letters on a terminal and printed as
  plain lines (at every tenth of a model's tasks) when the output is not a terminal.

Everything the controller prints comes from item reports, so a run under xdist (`-n 2`) shows
the same: workers attach what only they know (a model's load) to the reports they send.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import pytest

from ..caseresult import PROPERTY, CaseResult, read_case_result
from ..options import Settings
from ..outcome import VOCABULARY
from ..taskfiles.selection import model_of_id, parse_case_id
from .functions import item_model

if TYPE_CHECKING:
    from ..backends.base import Backend, LoadInfo
    from ..exchange import BackendError

Markup = dict[str, bool]
LOAD_PROPERTY = "llmbench_load"  # a worker's word that it loaded a model, on a setup report
PLAIN_STEPS = 10  # plain progress lines per model: one at every tenth of its tasks


class Models(Protocol):
    """What the display reads of the model manager (session.ModelManager)."""

    @property
    def loads(self) -> Mapping[str, LoadInfo]: ...

    @property
    def failed(self) -> Mapping[str, BackendError]:
        """Why a model's load failed, by model."""
        ...

    def url_for(self, model: str) -> str | None: ...

    def backend_for(self, model: str) -> Backend: ...


def _property(report: pytest.TestReport, name: str) -> Any:
    for key, value in report.user_properties:
        if key == name:
            return value
    return None


def teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, Markup]] | None:
    """A benchmark case's status by its outcome; None for anything else (pytest decides)."""
    if not (report.when == "call" or (report.when == "setup" and report.failed)):
        return None
    shown = VOCABULARY.get(_property(report, "llmbench_outcome"))
    if shown is None:
        return None
    # The category keeps pytest's meaning (counts, -rf, FAILURES); only the letter is ours. A
    # test function whose server failed inside the test is an error, as a failed setup is.
    failed_as = "error" if report.when == "setup" or shown is VOCABULARY["error"] else "failed"
    category = "passed" if report.passed else failed_as
    return category, shown.letter, (shown.word, {shown.colour: True})


class StatusLetters:
    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, Markup]] | None:
        return teststatus(report)


class LoadReports:
    """Where items run (in-process, or an xdist worker): tell the controller, on the first
    setup report of each model, how its load went."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.told: set[str] = set()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self._attach(item)

    def _attach(self, item: pytest.Item) -> None:
        model = item_model(item)
        if model is None or model in self.told:
            return
        manager = self.models
        info = manager.loads.get(model)
        failed = manager.failed.get(model)
        if info is not None:
            url = getattr(manager.backend_for(model), "base_url", None)
            data = {"seconds": info.seconds, "context_length": info.context_length, "url": url}
        elif failed is not None:
            data = {"error": failed.message}
        else:
            return  # not loaded yet: a later item will tell
        self.told.add(model)
        item.user_properties.append((LOAD_PROPERTY, json.dumps(data)))


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class ModelTally:
    """One model's progress: selected tasks and what has come back of them."""

    model: str
    cases_per_task: dict[str, int] = field(default_factory=dict)
    reported: Counter[str] = field(default_factory=Counter)
    tasks_done: int = 0
    cases_done: int = 0
    cases_passed: int = 0
    tokens: int = 0
    generation_s: float = 0.0
    timed_tasks: set[str] = field(default_factory=set)
    started: float | None = None  # when it began generating (after its load)
    finished: float | None = None

    @property
    def tasks(self) -> int:
        return len(self.cases_per_task)

    @property
    def running(self) -> bool:
        return self.started is not None and self.finished is None

    def seconds_per_task(self, now: float) -> float | None:
        if self.started is None or not self.tasks_done:
            return None
        return ((self.finished or now) - self.started) / self.tasks_done

    @property
    def tokens_per_second(self) -> float | None:
        return self.tokens / self.generation_s if self.generation_s > 0 and self.tokens else None

    def line(self) -> str:
        tps = self.tokens_per_second
        return (
            f"{self.model} {self.tasks_done}/{self.tasks} tasks, "
            f"{self.cases_passed}/{self.cases_done} cases passed, "
            f"{f'{tps:.0f}' if tps is not None else '-'} tok/s"
        )


class Tally:
    """Counts for the progress display, from node ids and case results only (no terminal)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.models: dict[str, ModelTally] = {}
        self.task_of: dict[str, tuple[str, str]] = {}  # nodeid -> (model, task key)

    def select(self, items: Iterable[tuple[str, str]]) -> None:
        """The selected benchmark items as (nodeid, model)."""
        for nodeid, model in items:
            case = parse_case_id(nodeid)
            task = f"{case.file}::{case.task}" if case else nodeid
            self.task_of[nodeid] = (model, task)
            tally = self.models.setdefault(model, ModelTally(model))
            tally.cases_per_task[task] = tally.cases_per_task.get(task, 0) + 1

    def model_of(self, nodeid: str) -> str | None:
        found = self.task_of.get(nodeid)
        return found[0] if found else None

    def start(self, model: str) -> None:
        tally = self.models.setdefault(model, ModelTally(model))
        tally.started = self.clock()

    def add(self, nodeid: str, result: CaseResult) -> ModelTally:
        """Count one case's verdict; returns its model's tally."""
        model, task = self.task_of.get(nodeid, (result.model, f"{result.file}::{result.task}"))
        tally = self.models.setdefault(model, ModelTally(model))
        if tally.started is None:
            tally.started = self.clock()
        if task not in tally.cases_per_task:
            tally.cases_per_task[task] = 1  # not in the selection we were told of
        tally.cases_done += 1
        tally.cases_passed += result.outcome == "passed"
        if task not in tally.timed_tasks:  # the generation is shared by the task's cases
            tally.timed_tasks.add(task)
            tally.tokens += result.generation.completion_tokens or 0
            tally.generation_s += result.generation.seconds
        tally.reported[task] += 1
        if tally.reported[task] == tally.cases_per_task[task]:
            tally.tasks_done += 1
            if tally.tasks_done == tally.tasks:
                tally.finished = self.clock()
        return tally

    def eta(self) -> float | None:
        """Seconds left: tasks left at the mean seconds per task so far, spread over the models
        running side by side."""
        now = self.clock()
        rates = [r for t in self.models.values() if (r := t.seconds_per_task(now)) is not None]
        if not rates:
            return None
        left = sum(t.tasks - t.tasks_done for t in self.models.values())
        running = sum(t.running for t in self.models.values()) or 1
        return left * (sum(rates) / len(rates)) / running

    def status(self) -> str:
        running = [t.line() for t in self.models.values() if t.running]
        eta = self.eta()
        return " | ".join(running) + f", ETA {duration(eta) if eta is not None else '-'}"


def describe_backend(settings: Settings, models: Models, model: str) -> str:
    """The model's backend and URL as a person knows them, before anything is loaded."""
    from ..backends import default_base_url
    from ..exchange import PSEUDO_MODELS

    if model in PSEUDO_MODELS:
        return "built-in pseudo-model, no server"
    if settings.backend == "embedded":
        return "embedded llama.cpp server on a free loopback port"
    url = models.url_for(model) or default_base_url(settings.backend)
    return f"{settings.backend} at {url}"


class Progress:
    """The controller's display: model lines, plain progress lines, the live status line."""

    def __init__(
        self,
        config: pytest.Config,
        reporter: pytest.TerminalReporter,
        settings: Settings,
        models: Models,
    ) -> None:
        self.config = config
        self.tr = reporter
        self.settings = settings
        self.models = models
        self.tally = Tally()
        self.stream: TextIO = sys.stdout  # what the terminal reporter writes to
        # How pytest prints items: letters after each file's path (default), letters in one
        # stream (-q, xdist), or a line per item (-v). Our lines fit in with each.
        self.verbose = config.get_verbosity() > 0
        self.prefixed = not self.verbose and bool(reporter.showfspath)
        self.live = (
            self.stream.isatty()
            and os.environ.get("TERM") != "dumb"
            and config.getoption("capture", "fd") != "no"
            and not config.getini("log_cli")
        )
        self.shown = False  # the live status line is on screen
        self.own_line = False  # our last line is still open (the next writer ends it)
        self.pending: dict[str, str] = {}  # model -> nodeid whose path prefix is owed
        self.announced: set[str] = set()
        self.loaded: set[str] = set()
        self.steps: dict[str, int] = {}  # model -> tenths of its tasks printed as plain lines

    # ------------------------------------------------------------------ what was selected
    def select_items(self, session: pytest.Session) -> None:
        self.tally.select(
            (item.nodeid, model)
            for item in session.items
            if (model := item_model(item)) is not None
        )

    def select_ids(self, ids: Sequence[str]) -> None:
        if self.tally.task_of:
            return  # every worker collects the same items
        models = self.settings.models
        self.tally.select((i, m) for i in ids if (m := model_of_id(i, models)) is not None)

    # ------------------------------------------------------------------ before pytest writes
    def announce_first(self, items: Sequence[pytest.Item]) -> list[str]:
        """The first model starts loading as soon as collection ends: say so right under
        pytest's "collected N items", before the wait."""
        model = item_model(items[0]) if items else None
        if model is None or self.config.option.collectonly:
            return []
        self.announced.add(model)
        return [self._loading_text(model)]

    def _loading_text(self, model: str) -> str:
        describe = describe_backend(self.settings, self.models, model)
        return f"llmbench {model}: {describe}, loading..."

    def before_logstart(self, nodeid: str) -> None:
        self.hide()
        model = self.tally.model_of(nodeid)
        if model is not None and model not in self.announced:
            self.announced.add(model)
            self._write(self._loading_text(model), {"bold": True})
            self.own_line = False
            self.tr.currentfspath = None  # pytest's next line or path ends ours
        elif self.own_line:
            # Let the reporter end our line and print its path prefix (no progress filling).
            self.tr.currentfspath = None
            self.own_line = False
        if (
            model is not None
            and self.prefixed
            and model not in self.loaded
            and model not in self.pending
        ):
            # The path prefix waits until the load line is out, so letters follow the path.
            self.tr.currentfspath = self.config.rootpath / nodeid.split("::")[0]
            self.pending[model] = nodeid

    def before_report(self, report: pytest.TestReport) -> None:
        self.hide()
        model = self.tally.model_of(report.nodeid)
        loaded = _property(report, LOAD_PROPERTY)
        if model is not None and loaded is not None and model not in self.loaded:
            self.loaded.add(model)  # the item's later reports carry the property too
            data = json.loads(loaded)
            self._write(self._load_text(model, data), {"bold": True})
            self.tally.start(model)
        if model is not None and model in self.pending:
            # The reporter's newline ends the open load line; then it prints the path.
            nodeid = self.pending.pop(model)
            self.tr.currentfspath = None
            self.tr.write_fspath_result(nodeid, "")
            self.own_line = False

    @staticmethod
    def _load_text(model: str, data: dict[str, Any]) -> str:
        if "error" in data:
            return f"llmbench {model}: load failed: {data['error']}"
        parts = [f"loaded in {data['seconds']:.1f}s"]
        if data.get("context_length"):
            parts.append(f"context {data['context_length']} tokens")
        if data.get("url") and str(data["url"]).startswith("http"):
            parts.append(f"at {data['url']}")
        return f"llmbench {model}: {', '.join(parts)}"

    # ------------------------------------------------------------------ after pytest wrote
    def after_report(self, report: pytest.TestReport) -> None:
        result = None
        if report.when == "call" or (report.when == "setup" and report.failed):
            result = _case_result(report)
        if result is not None:
            tally = self.tally.add(report.nodeid, result)
            if tally.finished is not None:
                elapsed = duration(tally.finished - (tally.started or tally.finished))
                self._write(f"llmbench {tally.line()}, done in {elapsed}", {"bold": True})
            elif not self.live and tally.tasks:
                step = tally.tasks_done * PLAIN_STEPS // tally.tasks
                if step > self.steps.get(tally.model, 0):
                    self.steps[tally.model] = step
                    self._write(f"llmbench progress: {self.tally.status()}", {})
        self.show()

    # ------------------------------------------------------------------ the terminal
    def _write(self, text: str, markup: Markup) -> None:
        """A line of ours. Among letters in one stream it is a whole line (the letters go on
        below it); otherwise it is left open and the next writer, ours or pytest's, ends it
        (so no blank line appears before pytest's next path or item line)."""
        tw = self.config.get_terminal_writer()
        if tw.width_of_current_line:
            tw.line()
        if not self.prefixed and not self.verbose:
            tw.line(text, **markup)
            return
        self.tr.write(text, **markup)
        self.tr.currentfspath = -2  # pytest's own mark for "a line is open"
        self.own_line = True

    def show(self) -> None:
        """Draw the status on the line below the cursor and come back, without pytest's
        writer knowing (its idea of the current line's width stays right)."""
        if not self.live or self.shown or not any(t.running for t in self.tally.models.values()):
            return
        tw = self.config.get_terminal_writer()
        text = ("llmbench " + self.tally.status())[: max(tw.fullwidth - 1, 20)]
        column = tw.width_of_current_line
        back = f"\x1b[{column}C" if column else ""
        self.stream.write(f"\n\x1b[2K{text}\x1b[1A\r{back}")
        self.stream.flush()
        self.shown = True

    def hide(self) -> None:
        if not self.shown:
            return
        column = self.config.get_terminal_writer().width_of_current_line
        back = f"\x1b[{column}C" if column else ""
        self.stream.write(f"\x1b[1B\r\x1b[2K\x1b[1A\r{back}")
        self.stream.flush()
        self.shown = False


class _First:
    """Runs before pytest's reporter writes: takes the status line away, prints our lines."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.select_items(session)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: Sequence[str]) -> None:
        self.progress.select_ids(ids)

    def pytest_report_collectionfinish(self, items: Sequence[pytest.Item]) -> list[str]:
        return self.progress.announce_first(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.progress.before_logstart(nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.progress.before_report(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self) -> None:
        self.progress.hide()

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self) -> None:
        self.progress.hide()

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self) -> None:
        self.progress.hide()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.progress.hide()

    @pytest.hookimpl(tryfirst=True)
    def pytest_internalerror(self) -> None:
        self.progress.hide()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.progress.hide()


class _Last:
    """Runs after pytest's reporter wrote: counts the verdict, draws the status line again
    (it stays up while the next item loads, generates and runs)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logstart(self) -> None:
        self.progress.show()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.progress.after_report(report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self) -> None:
        self.progress.show()


def _case_result(report: pytest.TestReport) -> CaseResult | None:
    value = _property(report, PROPERTY)
    return read_case_result(str(value)) if value is not None else None


class _Display:
    """Installs the display once pytest's terminal reporter exists (after configure)."""

    def __init__(self, settings: Settings, models: Models) -> None:
        self.settings = settings
        self.models = models

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        manager = session.config.pluginmanager
        reporter = manager.get_plugin("terminalreporter")
        if reporter is None:
            return  # -p no:terminal: nobody to show progress to
        progress = Progress(session.config, reporter, self.settings, self.models)
        manager.register(_First(progress), "llmbench-progress-first")
        manager.register(_Last(progress), "llmbench-progress-last")


def register(config: pytest.Config, settings: Settings, models: Models, *, worker: bool) -> None:
    """Install the letters everywhere, load reports where items run, the display on the
    controller."""
    manager = config.pluginmanager
    manager.register(StatusLetters(), "llmbench-letters")
    manager.register(LoadReports(models), "llmbench-load-reports")
    if not worker:
        manager.register(_Display(settings, models), "llmbench-display")
