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
import sqlite3
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from .. import __version__
from ..options import SHORT_NAMES_TAKEN, Settings
from ..reporting.jsonl import check_writable, run_settings
from ..sandbox import SandboxUnavailable
from ..storage import relay, transcript
from ..storage.database import database_path
from ..storage.record_writer import RECORD, RunRecord
from ..storage.relay import ANSWERS_INPUT, RELAY_PROPERTY, Outbox
from ..taskfiles.roots import (
    TaskRoots,
    bundled_nodeid,
    carry_last_failed,
    locate_bundled_args,
    resolve_roots,
)
from ..taskfiles.selection import Selection, declared_from_files, parse_case_id
from .client import ModelClient
from .ending import RunEnd
from .functions import (
    BUDGETS_LINE,
    FIXTURE,
    call_repeats,
    function_model,
    item_model,
    parametrize,
    report_case,
)
from .items import (
    CaseItem,
    ControlItem,
    TaskFileCollector,
    case_results_of,
    model_jobs,
    needs_sandbox,
    reported_memory,
    reported_provenance,
)
from .preflight import VERDICT, WORKER_KEY, deselect, for_worker, run_check, worker_verdict
from .progress import register as register_progress
from .session import STATE, ModelManager, RunState
from .stopping import warn

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
    workeroutput: dict[str, Any]


class BenchRun:
    """The active run of this process; its `pytest_*` methods are its hooks."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = hasattr(config, "workerinput")
        self.state = RunState(settings, ModelManager(settings))
        if self.worker:
            # The controller owns the results: a worker sends its answers and cases with its
            # reports and reads the stored answers the controller handed it
            # (storage/relay.py).
            workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
            self.state.run_id = workerinput.get("llmbench_run_id", self.state.run_id)
            self.state.outbox = Outbox()
            self.state.relayed_answers = dict(workerinput.get(ANSWERS_INPUT) or {})
        # A run that names models is recorded (storage/record_writer.py).
        self.record = (
            RunRecord(database_path(config.rootpath), self.state.run_id, self.state.outbox)
            if settings.models
            else None
        )
        self._stored_answers: dict[str, str] | None = None  # handed to each xdist worker
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
        self.defaulted = config.args_source != pytest.Config.ArgsSource.ARGS
        if self.defaulted and self.roots.paths:
            # `pytest --models=a` with no paths means: benchmark the task roots and the test
            # functions that use the llm fixture (found where pytest looks for tests).
            config.args[:] = self._default_args(self.roots.paths)
        if self.record is None:
            return  # validating tasks: no model, no record, no progress to show
        if self._distributes():
            from . import xdist

            config.pluginmanager.register(xdist.ByServerPlugin(), "llmbench-xdist")
            self._watch_remote_nodes()
        if not self.worker and settings.baseline:
            self._read_baseline()
        config.stash[RECORD] = self.record
        if not self.worker:
            self.record.begin(self._record_info)
        register_progress(config, settings, self.state.manager, worker=self.worker)

    def _default_args(self, roots: tuple[Path, ...] | list[Path]) -> list[str]:
        """The task roots, and where pytest would collect tests (the ini's testpaths from the
        rootdir, else the invocation directory) when models are named."""
        config = self.config
        tests: list[Path] = []
        if self.settings.models:
            here = config.invocation_params.dir
            if here == config.rootpath:
                for pattern in config.getini("testpaths"):
                    tests += sorted(p for p in config.rootpath.glob(pattern) if p.exists())
            tests = tests or [here]
        # A root inside a test path is collected from there; naming it again would not help.
        rest = [r for r in roots if not any(r == t or t in r.parents for t in tests)]
        return [str(path) for path in (*tests, *rest)]

    def _watch_remote_nodes(self) -> None:
        """Workers on other machines (any --tx but a local popen) are checked before they run
        anything, and get no copy of pytest in their directory (run/remote.py)."""
        import execnet

        from . import remote

        specs = [execnet.XSpec(tx) for tx in self.config.getoption("tx", None) or ()]
        if not any(remote.is_remote(spec) for spec in specs):
            return
        assert self.roots is not None
        need = remote.needs(self.config, self.settings, self.roots)
        plugin = remote.RemoteNodes(self.config, need, lambda: self.state.isolation_tier)
        self.config.pluginmanager.register(plugin, "llmbench-remote")

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
        if self.settings.models:
            if self._stored_answers is None:
                self._stored_answers = self._reusable_answers()
            node.workerinput[ANSWERS_INPUT] = self._stored_answers

    def _reusable_answers(self) -> dict[str, str]:
        """The stored answers this run's workers could reuse (they do not read the store)."""
        from .sampling import repeat_seed

        settings = self.settings
        seeds = [repeat_seed(settings.seed, repeat) for repeat in range(settings.repeat)]
        return self.state.store.stored(
            settings.backend, settings.real_models, settings.temperature, seeds
        )

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
        if self.defaulted:
            # No paths named: the benchmark, not the project's other tests.
            ours: list[pytest.Item] = []
            others: list[pytest.Item] = []
            for item in items:
                benchmark = item_model(item) is not None or isinstance(item, ControlItem)
                (ours if benchmark else others).append(item)
            if others:
                items[:] = ours
                self.config.hook.pytest_deselected(items=others)
        verdict = self.config.stash.get(VERDICT, None)
        if verdict is not None:
            deselect(self.config, items, verdict.skipped)
        rank = {model: index for index, model in enumerate(models)}
        items.sort(key=lambda item: rank.get(item_model(item) or "", -1))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.settings.models and not self.worker:
            cases = [item for item in session.items if isinstance(item, CaseItem)]
            declared = {(i.parent.nodeid if i.parent else "", i.task.id): len(i.task.cases)
                        for i in cases}  # fmt: skip
            functions = [i.nodeid for i in session.items if function_model(i) is not None]
            self._select([i.nodeid for i in cases] + functions, declared)
            if functions and self.settings.budgets:
                reporter = self.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(BUDGETS_LINE.format(cap=self.settings.budgets[-1]))
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
            self.end.ending.selection = Selection.build(
                self.config, nodeids, declared, self.settings.models
            )

    # ------------------------------------------------------------------ items
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller gathers each case's result (also from xdist workers) and what
        answered its model; the first result opens the run in the record. What a worker
        generated and recorded is written here (before other plugins see the report, so
        that junit XML does not carry it)."""
        if self.worker or not self.settings.models:
            return
        relayed = [value for key, value in report.user_properties if key == RELAY_PROPERTY]
        if relayed:
            report.user_properties = [p for p in report.user_properties if p[0] != RELAY_PROPERTY]
            for text in relayed:
                self._write_relayed(str(text))
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
        memory = reported_memory(report)
        if memory is not None:
            self.state.memory[memory[0]] = memory[1]
        if self.record is not None:
            self.record.open()

    def _write_relayed(self, text: str) -> None:
        answers, statements = relay.parse(text)
        try:
            self.state.store.put_rows(answers)
        except sqlite3.Error as exc:
            where = self.state.store.path
            warn(f"cannot keep {len(answers)} answers from a worker in {where}: {exc}")
        if self.record is not None:
            self.record.relayed(statements)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: WorkerNode, error: object) -> None:
        """What a worker had not sent with a report when it finished."""
        text = getattr(node, "workeroutput", {}).get(RELAY_PROPERTY)
        if text and self.settings.models:
            self._write_relayed(str(text))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """A model is released after its last item (before pytest tears down fixtures, so
        the llm fixture's own release finds it done). After the run's last item the model is
        unloaded at the run's end, once the results are written."""
        if nextitem is None:
            self.state.last_item_done = True
            return
        model = item_model(item)
        if model is not None and item_model(nextitem) != model:
            self.state.release(model)

    # ------------------------------------------------------------------ test functions
    def client(self, model: str, session: pytest.Session) -> Iterator[ModelClient]:
        """The llm fixture for `model`: load it (starting the generation of everything its
        items declared, task files included), yield its client, release it."""
        state = self.state
        state.acquire(model, model_jobs(session.items, model, self.settings.repeat))
        failed = state.manager.failed.get(model)
        if failed is not None:
            pytest.fail(f"error: {failed.message}", pytrace=False)
        try:
            yield ModelClient(model, state.scheduler, lambda: state.sandbox)
        finally:
            state.release(model)

    def generate_tests(self, metafunc: pytest.Metafunc) -> None:
        parametrize(metafunc, self.settings.models)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """A test function using the llm fixture runs once per repeat, each run's requests
        kept for its case."""
        client = pyfuncitem.funcargs.get(FIXTURE)
        if not isinstance(client, ModelClient):
            return None
        call_repeats(pyfuncitem, client, self.settings.repeat)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        model = function_model(item)
        verdict = call.when == "call" or (call.when == "setup" and report.failed)
        if model is not None and self.settings.models and not report.skipped and verdict:
            record = self.config.stash.get(RECORD, None)
            report_case(item, model, report, self.state.manager, record)
        outbox = self.state.outbox
        if outbox is not None and call.when == "teardown":
            # A worker's answers and cases so far travel to the controller with the item's
            # last report (the one junit reads properties from: the controller strips them).
            text = outbox.take()
            if text is not None:
                report.user_properties.append((RELAY_PROPERTY, text))
        return report

    # ------------------------------------------------------------------ the end (run/ending.py)
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.end.write(session)

    def pytest_unconfigure(self) -> None:
        self.end.unload()
