"""One benchmark run inside pytest: the hooks of an active run, as the methods of one object.

plugin.py makes a BenchRun in pytest_configure when the run is active (it names models, or
validates tasks) and registers it as a plugin, so pytest calls its methods as hooks (the shape
of pytest-xdist's DSession); plugin.py's header and terminal summary hooks call `header` and
`end.show`. One exists per process: on an xdist controller it checks the
models and outputs before the workers start, gathers every item's CaseResult from the reports
and ends the run; on a worker it runs items and records their cases. Each method hands the
work to the module that owns it: the run's state and model manager (run/session.py), items
(run/items.py), the start-up check (run/preflight.py), the display (run/progress.py), the record
(storage/record_writer.py) and the end of the run (run/ending.py).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any, Protocol

import pytest

from .. import __version__
from ..options import SHORT_NAMES_TAKEN, Settings
from ..reporting.jsonl import check_writable, run_settings
from ..sandbox import SandboxUnavailable
from ..storage import transcript
from ..storage.database import database_path
from ..storage.record_writer import RECORD, RunRecord
from ..taskfiles.roots import (
    TaskRoots,
    bundled_nodeid,
    carry_last_failed,
    locate_bundled_args,
    resolve_roots,
)
from ..taskfiles.selection import Selection, declared_from_files, parse_case_id
from .ending import RunEnd
from .items import CaseItem, TaskFileCollector, case_results_of, needs_sandbox, reported_provenance
from .preflight import VERDICT, WORKER_KEY, deselect, for_worker, run_check, worker_verdict
from .progress import register as register_progress
from .session import STATE, ModelManager, RunState

MARKERS = {
    "llmbench": "a benchmark case generated from a task file",
    "python": "llmbench python-suite case",
    "cli": "llmbench cli-suite case",
    "tooling": "llmbench tooling-suite case",
    "easy": "llmbench task of difficulty easy",
    "medium": "llmbench task of difficulty medium",
    "hard": "llmbench task of difficulty hard",
}


class WorkerNode(Protocol):
    """What the run reads of xdist's handle on a worker (its WorkerController)."""

    config: pytest.Config
    workerinput: dict[str, Any]


class BenchRun:
    """The active run of this process; its `pytest_*` methods are its hooks."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = hasattr(config, "workerinput")
        self.state = RunState(settings, ModelManager(settings))
        if self.worker and "llmbench_run_id" in config.workerinput:  # type: ignore[attr-defined]
            self.state.run_id = config.workerinput["llmbench_run_id"]  # type: ignore[attr-defined]
        # A run that names models is recorded: each process writes its cases
        # (storage/record_writer.py).
        self.record = (
            RunRecord(database_path(config.rootpath), self.state.run_id)
            if settings.models
            else None
        )
        self.end = RunEnd(config, self.state, self.record, worker=self.worker)
        self.roots: TaskRoots | None = None
        self._missing_lines: list[str] = []  # a line per model skipped at start-up

    # ------------------------------------------------------------------ configure
    def configure(self) -> None:
        """What pytest_configure does for an active run, once this object is registered (so
        that pytest_unconfigure ends the run even when this stops half-way)."""
        config, settings = self.config, self.settings
        for name, text in MARKERS.items():
            config.addinivalue_line("markers", f"{name}: {text}")
        carry_last_failed(config)
        config.stash[STATE] = self.state
        if self.end.ending is not None:
            # SIGTERM and SIGHUP end a benchmark like Ctrl-C: results written, model unloaded.
            self.end.ending.guard.install()
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args[:] = locate_bundled_args(config.args, config.invocation_params.dir)
        self.roots = resolve_roots(config)
        if config.args_source != pytest.Config.ArgsSource.ARGS and self.roots.paths:
            # `pytest --models=a` with no paths means: benchmark the task roots, not the testpaths.
            config.args[:] = [str(path) for path in self.roots.paths]
        if self.record is None:
            return  # validating tasks: no model, no record, no progress to show
        if self._distributes():
            from . import xdist

            config.pluginmanager.register(xdist.ByServerPlugin(), "llmbench-xdist")
        if not self.worker and settings.baseline:
            self._read_baseline()
        config.stash[RECORD] = self.record
        if not self.worker:
            self.record.begin(self._record_info)
        register_progress(config, settings, self.state.manager, worker=self.worker)

    def _distributes(self) -> bool:
        """Whether this process is an xdist controller handing items to workers."""
        return (
            self.config.pluginmanager.hasplugin("xdist")
            and not self.worker
            and getattr(self.config.option, "dist", "no") != "no"
        )

    def _read_baseline(self) -> None:
        """Read the baseline now: this run appends to the same JSONL, and a wrong name must
        stop the run before any model is called."""
        from ..results.history import RunNotFound, load_run

        try:
            self.state.baseline = load_run(str(self.settings.baseline), [self.settings.jsonl_path])
        except (RunNotFound, OSError) as exc:
            raise pytest.UsageError(f"--llmbench-baseline: {exc}") from None

    def _record_info(self) -> dict[str, Any]:
        """What the record's runs table says about the run: who started it how, and its
        settings as the JSONL records them (jsonl.run_settings: `isolation` is the tier
        used; `isolation_asked` the option). Called when the run's first case is recorded,
        once the sandbox, if any, is chosen."""
        settings = self.settings
        return {
            "models": list(settings.models),
            "backend": settings.backend,
            "base_url": settings.base_url,
            "endpoints": dict(settings.endpoints),
            "settings": run_settings(settings, self.state.isolation_tier),
            "isolation_asked": settings.isolation,
            "args": list(self.config.invocation_params.args),
            "rootdir": str(self.config.rootpath),
            "plugin_version": __version__,
            "pid": os.getpid(),
            "output_cap": transcript.OUTPUT_CAP,
        }

    # ------------------------------------------------------------------ start
    def header(self) -> list[str]:
        """The run's lines in pytest's header (plugin.pytest_report_header)."""
        config, settings = self.config, self.settings
        lines = []
        if settings.models:
            where = settings.base_url or "default URL"
            if not settings.real_models:
                where = "built-in pseudo-models only, no server"
            models = ", ".join(settings.models)
            lines.append(f"llmbench: models {models} via {settings.backend} ({where})")
        else:
            lines.append("llmbench: validating the tasks with their controls (no models)")
        assert self.roots is not None
        lines.append(self.roots.describe(Path(config.rootpath)))
        taken = config.stash.get(SHORT_NAMES_TAKEN, ())
        if taken:
            long_names = ", ".join("--llmbench-" + name.lstrip("-") for name in taken)
            lines.append(
                f"llmbench: {', '.join(taken)} belong{'s' if len(taken) == 1 else ''} to this "
                f"project (a conftest or another plugin defines "
                f"{'it' if len(taken) == 1 else 'them'}); use {long_names}"
            )
        return lines

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Generator[None, None, None]:
        """Before xdist starts its workers and before anything is collected: the models are
        checked against their servers (and, on an xdist controller, the sandbox)."""
        self._check_before_start()
        yield
        # After the header (and also with -q, which hides it): one line per skipped model.
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for line in self._missing_lines:
            if reporter is not None:
                reporter.write_line(line, yellow=True)

    def _check_before_start(self) -> None:
        config = self.config
        if not self.settings.models or config.option.collectonly:
            return
        if self.worker:
            config.stash[VERDICT] = worker_verdict(config.workerinput)  # type: ignore[attr-defined]
            return
        self._check_outputs()  # before any server is asked anything
        verdict = run_check(config, self.settings)
        self._missing_lines = [missing.line() for missing in verdict.missing]
        # An xdist controller collects nothing; it checks for its workers on the same machine.
        if getattr(config.option, "dist", "no") != "no":
            self._check_isolation()

    def _check_outputs(self) -> None:
        """Stop before any model is called if the results could not be written."""
        outputs = (
            ("--llmbench-jsonl", self.settings.jsonl_path),
            ("--llmbench-markdown", self.settings.markdown),
        )
        for flag, path in outputs:
            problem = check_writable(path) if path is not None else None
            if problem:
                pytest.exit(f"llmbench: {flag}: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)

    def _check_isolation(self) -> None:
        """Stop before any model is called if model code cannot be isolated as asked."""
        try:
            self.state.sandbox  # noqa: B018
        except SandboxUnavailable as exc:
            pytest.exit(f"llmbench: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: WorkerNode) -> None:
        """xdist controller: hand the workers the models to skip (they deselect the same
        items)."""
        verdict = self.config.stash.get(VERDICT, None)
        if verdict is not None:
            node.workerinput[WORKER_KEY] = for_worker(verdict)

    # ------------------------------------------------------------------ collection
    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        assert self.roots is not None
        if file_path.suffix not in (".yaml", ".yml") or not self.roots.collects(file_path):
            return None
        nodeid = bundled_nodeid(file_path, Path(self.config.rootpath))
        if nodeid is not None:
            collector: pytest.Collector = TaskFileCollector.from_parent(
                parent, path=file_path, nodeid=nodeid
            )
        else:
            collector = TaskFileCollector.from_parent(parent, path=file_path)
        return collector

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Drop the items of models their server does not have; group the rest by model, in
        --models order, so each model loads once."""
        models = self.settings.models
        if not models:
            return
        verdict = self.config.stash.get(VERDICT, None)
        if verdict is not None:
            deselect(self.config, items, verdict.skipped)
        rank = {model: index for index, model in enumerate(models)}
        items.sort(key=lambda item: rank.get(getattr(item, "model", None), -1))  # type: ignore[arg-type]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.settings.models and not self.worker:
            cases = [item for item in session.items if isinstance(item, CaseItem)]
            declared = {(i.parent.nodeid if i.parent else "", i.task.id): len(i.task.cases)
                        for i in cases}  # fmt: skip
            self._select([i.nodeid for i in cases], declared)
        if session.config.option.collectonly or session.testsfailed:
            return  # nothing will run: collection-only, or collection errors stop the run
        if not self.worker and session.items:
            # The first model's answers are generated while the sandbox checks itself. (A
            # worker does not know yet which models xdist will give it, so it starts on first
            # use.)
            first = session.items[0]
            if isinstance(first, CaseItem):
                first.start_generating()
        if needs_sandbox(session.items):
            self._check_isolation()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: WorkerNode, ids: list[str]) -> None:
        # The controller collects nothing: every worker reports the same selected ids.
        ending = self.end.ending
        if not self.settings.models or ending is None or ending.selection is not None:
            return
        files = {case.file for case in map(parse_case_id, ids) if case is not None}
        self._select(ids, declared_from_files(Path(self.config.rootpath), files))

    def _select(self, nodeids: list[str], declared: dict[tuple[str, str], int]) -> None:
        """What the run set out to run: the JSONL says it beside what ran."""
        if self.end.ending is not None:
            self.end.ending.selection = Selection.build(self.config, nodeids, declared)

    # ------------------------------------------------------------------ items
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller gathers each case's result (also from xdist workers) and what
        answered its model; the first result opens the run in the record."""
        if self.worker or not self.settings.models:
            return
        # A case's verdict is on its call report, or on its setup report when setup failed.
        if not (report.when == "call" or (report.when == "setup" and report.failed)):
            return
        results = case_results_of(report)
        if not results:
            return
        self.state.results += results
        found = reported_provenance(report)
        if found is not None:
            self.state.provenance[found[0]] = found[1]
        if self.record is not None:
            self.record.open()

    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        model = getattr(item, "model", None)
        # After the last item the model is unloaded at the run's end, once the results are
        # written.
        if model is None or nextitem is None or getattr(nextitem, "model", None) == model:
            return
        self.state.scheduler.finish(model)
        self.state.manager.unload(model)

    # ------------------------------------------------------------------ the end (run/ending.py)
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.end.write(session)

    def pytest_unconfigure(self) -> None:
        self.end.unload()
