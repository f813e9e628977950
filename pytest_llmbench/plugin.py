"""pytest hooks, and nothing else: each hook hands its work to the module that owns it.

Heavy modules (backends, sandbox, suites) load only when a run names models, so `pytest --help`
and ordinary test runs in a project that has this plugin installed stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .options import Settings, add_options, resolve
from .session import STATE, ModelManager, RunState
from .stopping import EXIT_UNLOAD_COMPLETE_S, EXIT_UNLOAD_S, Ending, finish_within, warn

MARKERS = {
    "llmbench": "a benchmark case generated from a task file",
    "python": "llmbench python-suite case",
    "cli": "llmbench cli-suite case",
    "tooling": "llmbench tooling-suite case",
    "easy": "llmbench task of difficulty easy",
    "medium": "llmbench task of difficulty medium",
    "hard": "llmbench task of difficulty hard",
}
SETTINGS = pytest.StashKey[Settings]()
ENDING = pytest.StashKey[Ending]()  # only for runs that name models
NO_MODELS_HINT = (
    "llmbench: no models named, so no benchmark items are collected. Name models with "
    "--models=KEY[,KEY] (or LLMBENCH_MODELS); list installed ones with `pytest --llmbench-list`; "
    "`--models=reference,null` checks the tasks without a server."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.addini(
        "llmbench_tasks", "directories holding benchmark task files", type="linelist",
        default=["tasks"],
    )  # fmt: skip


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _bundled_tasks() -> Path | None:
    """The tasks that ship with the plugin: beside the package in a clone or editable install,
    or where a wheel installs its data files."""
    for candidate in (
        Path(__file__).resolve().parent.parent / "tasks",
        Path(sys.prefix) / "share" / "pytest-llmbench" / "tasks",
    ):
        if candidate.is_dir():
            return candidate
    return None


def _task_roots(config: pytest.Config) -> list[Path]:
    """The configured task roots that exist; failing those, the bundled tasks."""
    roots = [Path(config.rootpath, entry) for entry in config.getini("llmbench_tasks")]
    existing = [root for root in roots if root.is_dir()]
    bundled = _bundled_tasks()
    return existing or ([bundled] if bundled else [])


def _settings(config: pytest.Config) -> Settings:
    """The run's settings, resolved once: pytest_cmdline_main needs them before configure, and
    xdist workers configure without running pytest_cmdline_main."""
    if SETTINGS not in config.stash:
        config.stash[SETTINGS] = resolve(config)
    return config.stash[SETTINGS]


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    settings = _settings(config)
    config.stash[STATE] = RunState(settings, ModelManager(settings))
    if _is_worker(config) and "llmbench_run_id" in config.workerinput:  # type: ignore[attr-defined]
        config.stash[STATE].run_id = config.workerinput["llmbench_run_id"]  # type: ignore[attr-defined]
    if settings.models:
        # SIGTERM and SIGHUP end a benchmark like Ctrl-C: results written, model unloaded.
        ending = config.stash[ENDING] = Ending()
        ending.guard.install()
    if (
        settings.models or settings.validate
    ) and config.args_source != pytest.Config.ArgsSource.ARGS:
        # `pytest --models=a` with no paths means: benchmark the task roots, not the testpaths.
        roots = [str(root) for root in _task_roots(config)]
        if roots:
            config.args[:] = roots
    if config.pluginmanager.hasplugin("xdist"):
        from . import xdist

        config.pluginmanager.register(xdist.ByServerPlugin(), "llmbench-xdist")
    if settings.models and not _is_worker(config):
        collector = ResultCollector(config, config.stash[STATE], config.stash[ENDING])
        config.pluginmanager.register(collector, "llmbench-results")


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    settings = _settings(config)
    if not settings.list:
        return None
    from .listing import list_models

    return list_models(settings, config)


def pytest_report_header(config: pytest.Config) -> str | list[str]:
    settings = config.stash[STATE].settings
    if settings.validate and not settings.models:
        return "llmbench: validating the tasks with their controls (no models)"
    if not settings.models:
        return NO_MODELS_HINT
    where = settings.base_url or "default URL"
    if not settings.real_models:
        where = "built-in pseudo-models only, no server"
    return f"llmbench: models {', '.join(settings.models)} via {settings.backend} ({where})"


PATHS = pytest.StashKey[tuple[set[Path], list[Path]]]()


def _collected_paths(config: pytest.Config) -> tuple[set[Path], list[Path]]:
    """The files named on the command line and the task roots, resolved once per run (asked
    for every file collected)."""
    if PATHS not in config.stash:
        explicit = {Path(arg.split("::")[0]).resolve() for arg in config.args}
        config.stash[PATHS] = explicit, [root.resolve() for root in _task_roots(config)]
    return config.stash[PATHS]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    settings = config.stash[STATE].settings
    if not settings.models and not settings.validate:
        return None
    explicit, roots = _collected_paths(config)
    path = file_path.resolve()
    if path not in explicit and not any(path.is_relative_to(root) for root in roots):
        return None
    from .collect import TaskFileCollector

    item: pytest.Collector = TaskFileCollector.from_parent(parent, path=file_path)
    return item


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group items by model, in --models order, so each model loads once."""
    models = config.stash[STATE].settings.models
    if not models:
        return
    rank = {model: index for index, model in enumerate(models)}
    items.sort(key=lambda item: rank.get(getattr(item, "model", None), -1))  # type: ignore[arg-type]


def _check_isolation(config: pytest.Config) -> None:
    """Stop before any model is called if model code cannot be isolated as asked."""
    from .sandbox import SandboxUnavailable

    try:
        config.stash[STATE].sandbox  # noqa: B018
    except SandboxUnavailable as exc:
        pytest.exit(f"llmbench: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def _check_outputs(config: pytest.Config) -> None:
    """Stop before any model is called if the results could not be written."""
    from .report import check_writable

    settings = config.stash[STATE].settings
    outputs = (
        ("--llmbench-jsonl", settings.jsonl_path),
        ("--llmbench-markdown", settings.markdown),
    )
    for flag, path in outputs:
        problem = check_writable(path) if path is not None else None
        if problem:
            pytest.exit(f"llmbench: {flag}: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash[STATE].settings
    if settings.models and not _is_worker(config) and not config.option.collectonly:
        _check_outputs(config)
    # An xdist controller collects nothing; it checks for its workers on the same machine.
    xdist_controller = getattr(config.option, "dist", "no") != "no" and not _is_worker(config)
    if config.stash[STATE].settings.models and xdist_controller and not config.option.collectonly:
        _check_isolation(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or session.testsfailed:
        return  # nothing will run: collection-only, or collection errors stop the run
    if not _is_worker(session.config) and session.items:
        # The first model's answers are generated while the sandbox checks itself. (A worker
        # does not know yet which models xdist will give it, so it starts on first use.)
        from .collect import CaseItem

        first = session.items[0]
        if isinstance(first, CaseItem):
            first.start_generating()
    if any(getattr(item, "suite", None) in ("python", "cli") for item in session.items):
        _check_isolation(session.config)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    model = getattr(item, "model", None)
    # After the last item the model is unloaded at exit, once the results are written.
    if model is None or nextitem is None or getattr(nextitem, "model", None) == model:
        return
    state = item.config.stash[STATE]
    state.scheduler.finish(model)
    state.manager.unload(model)


class ResultCollector:
    """Controller-side: gathers each item's CaseResult from its report (also from workers),
    what was selected, and writes the results when the session ends."""

    def __init__(self, config: pytest.Config, state: RunState, ending: Ending) -> None:
        self.config = config
        self.state = state
        self.ending = ending

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A case's verdict is on its call report, or on its setup report when setup failed.
        if not (report.when == "call" or (report.when == "setup" and report.failed)):
            return
        from .collect import case_result_of

        result = case_result_of(report)
        if result is not None:
            self.state.results.append(result)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from .collect import CaseItem
        from .selection import Selection

        items = [item for item in session.items if isinstance(item, CaseItem)]
        declared = {(i.parent.nodeid if i.parent else "", i.task.id): len(i.task.cases)
                    for i in items}  # fmt: skip
        self.ending.selection = Selection.build(self.config, [i.nodeid for i in items], declared)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The controller collects nothing: every worker reports the same selected ids.
        if self.ending.selection is not None:
            return
        from .selection import Selection, declared_from_files, parse_case_id

        files = {case.file for case in map(parse_case_id, ids) if case is not None}
        declared = declared_from_files(Path(self.config.rootpath), files)
        self.ending.selection = Selection.build(self.config, ids, declared)

    def write(self, session: pytest.Session, exitstatus: int) -> None:
        """Results first, whatever ended the run; a signal now waits until they are written."""
        from .report import run_info, write_outputs
        from .stopping import exit_status, why_stopped

        ending, state = self.ending, self.state
        ending.guard.defer()
        selection = ending.selection
        selected = sum(selection.selected.values()) if selection else len(state.results)
        ending.interrupted = why_stopped(
            session, exitstatus, ending.guard, cases_left=len(state.results) < selected
        )
        if state.results:
            try:
                write_outputs(state, run_info(state, __version__, ending.interrupted), selection)
            except OSError as exc:
                where = state.settings.jsonl_path
                ending.write_error = f"could not write {where}: {exc.strerror or exc}"
        session.exitstatus = exit_status(
            session.exitstatus,
            stopped_by_maxfail=bool(session.shouldfail) and ending.guard.received is None,
            any_error=any(r.outcome == "error" for r in state.results),
            write_failed=ending.write_error is not None,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash[STATE]
    if state._scheduler is not None:
        state.scheduler.close()  # nothing more will be asked of it: drop what is not started
    if _is_worker(config):
        # A worker writes nothing; it unloads before telling the controller it is done.
        _unload_at_exit(config)
        return
    collector = config.pluginmanager.get_plugin("llmbench-results")
    if isinstance(collector, ResultCollector):
        collector.write(session, exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    try:
        if not _is_worker(config) and STATE in config.stash:
            _unload_at_exit(config)  # after the JSONL and the table
    finally:
        ending = config.stash.get(ENDING, None)
        if ending is not None:
            ending.guard.restore()


def _unload_at_exit(config: pytest.Config) -> None:
    """Unload whatever is still loaded; bounded when the run was cut short, abandoned by a
    second interrupt: the results are written by now."""
    state = config.stash[STATE]
    ending = config.stash.get(ENDING, None)
    loaded = state.manager.loaded
    if ending is None:
        state.manager.close()
        return
    if ending.guard.deferred:
        bound = 1.0  # interrupted twice: the user wants out
    elif ending.guard.received is not None or ending.interrupted is not None:
        bound = EXIT_UNLOAD_S
    else:
        bound = min(state.settings.timeout, EXIT_UNLOAD_COMPLETE_S)
    ending.guard.allow()
    problem = finish_within(state.manager.close, bound)
    if problem is not None and loaded is not None:
        warn(f"model {loaded!r} may still be loaded: its unload was {problem}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    state = config.stash[STATE]
    from .report import summary_lines

    for line in summary_lines(state, config.stash.get(ENDING, None)):
        alarm = line.startswith(("SUSPECT", "PARTIAL RUN", "RESULTS NOT WRITTEN"))
        markup = {"red": True, "bold": True} if alarm else {}
        if line.startswith("llmbench "):
            terminalreporter.write_sep("=", line, **markup)
        else:
            terminalreporter.write_line(line, **markup)
