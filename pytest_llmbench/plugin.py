"""pytest hooks, and nothing else: each hook hands its work to the module that owns it.

A project that merely has this plugin installed pays for the import of this module and
`options` (standard library and pytest only) and a few option registrations: everything else
(run state, backends, sandbox, suites, reports) is imported only by a run that names models or
validates tasks. Such a run is "active"; an inactive run gets no header line, no markers and no
output from this plugin.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import SHORT_NAMES_TAKEN, Settings, add_options, add_short_names, resolve

if TYPE_CHECKING:
    from .session import RunState
    from .stopping import Ending
    from .taskroots import TaskRoots

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
ROOTS: pytest.StashKey[TaskRoots] = pytest.StashKey()
ENDING: pytest.StashKey[Ending] = pytest.StashKey()  # only for runs that name models
NO_MODELS_HINT = (
    "llmbench: task files were named but no models, so no benchmark items were collected. Name "
    "models with {flag}=KEY[,KEY] (or LLMBENCH_MODELS); list installed ones with "
    "`pytest --llmbench-list`; `{flag}=reference,null` checks the tasks without a server."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.addini(
        "llmbench_tasks",
        "directories holding benchmark task files (default: tasks/, else the bundled tasks)",
        type="linelist",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser
) -> Generator[None, None, None]:
    # The project's conftests register their options inside this hook; the short names are
    # registered after them, and only where they left the name free.
    yield
    early_config.stash[SHORT_NAMES_TAKEN] = add_short_names(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _settings(config: pytest.Config) -> Settings:
    """The run's settings, resolved once: pytest_cmdline_main needs them before configure, and
    xdist workers configure without running pytest_cmdline_main."""
    if SETTINGS not in config.stash:
        config.stash[SETTINGS] = resolve(config)
    return config.stash[SETTINGS]


def _state(config: pytest.Config) -> RunState | None:
    """The run's state, or None in an inactive run (nothing was imported or created)."""
    if not _settings(config).active:
        return None
    from .session import STATE

    return config.stash.get(STATE, None)


def pytest_configure(config: pytest.Config) -> None:
    settings = _settings(config)
    if not settings.active:
        return
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from .session import STATE, ModelManager, RunState
    from .taskroots import carry_last_failed, locate_bundled_args, resolve_roots

    carry_last_failed(config)

    config.stash[STATE] = state = RunState(settings, ModelManager(settings))
    if _is_worker(config) and "llmbench_run_id" in config.workerinput:  # type: ignore[attr-defined]
        config.stash[STATE].run_id = config.workerinput["llmbench_run_id"]  # type: ignore[attr-defined]
    if settings.models:
        from .stopping import Ending

        # SIGTERM and SIGHUP end a benchmark like Ctrl-C: results written, model unloaded.
        ending = config.stash[ENDING] = Ending()
        ending.guard.install()
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args[:] = locate_bundled_args(config.args, config.invocation_params.dir)
    roots = config.stash[ROOTS] = resolve_roots(config)
    if config.args_source != pytest.Config.ArgsSource.ARGS and roots.paths:
        # `pytest --models=a` with no paths means: benchmark the task roots, not the testpaths.
        config.args[:] = [str(path) for path in roots.paths]
    if settings.models and _distributes(config):
        from . import xdist  # imports xdist's schedulers: only where xdist will use them

        config.pluginmanager.register(xdist.ByServerPlugin(), "llmbench-xdist")
    if settings.models and not _is_worker(config):
        collector = ResultCollector(config, config.stash[STATE], config.stash[ENDING])
        config.pluginmanager.register(collector, "llmbench-results")
        if settings.baseline:
            _read_baseline(config.stash[STATE])
    if settings.models:
        from . import __version__
        from .progress import register as register_progress
        from .record import install as install_record

        install_record(config, state, __version__, worker=_is_worker(config))
        register_progress(config, state, worker=_is_worker(config))


def _distributes(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller handing items to workers."""
    return (
        config.pluginmanager.hasplugin("xdist")
        and not _is_worker(config)
        and getattr(config.option, "dist", "no") != "no"
    )


def _read_baseline(state: RunState) -> None:
    """Read the baseline now: this run appends to the same JSONL, and a wrong name must stop
    the run before any model is called."""
    from .compare import RunNotFound, load_run

    try:
        state.baseline = load_run(str(state.settings.baseline), [state.settings.jsonl_path])
    except (RunNotFound, OSError) as exc:
        raise pytest.UsageError(f"--llmbench-baseline: {exc}") from None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    settings = _settings(config)
    if not settings.list:
        return None
    from .listing import list_models

    return list_models(settings, config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = _settings(config)
    if not settings.active:
        return []
    lines = []
    if settings.models:
        where = settings.base_url or "default URL"
        if not settings.real_models:
            where = "built-in pseudo-models only, no server"
        models = ", ".join(settings.models)
        lines.append(f"llmbench: models {models} via {settings.backend} ({where})")
    else:
        lines.append("llmbench: validating the tasks with their controls (no models)")
    lines.append(config.stash[ROOTS].describe(Path(config.rootpath)))
    taken = config.stash.get(SHORT_NAMES_TAKEN, ())
    if taken:
        long_names = ", ".join("--llmbench-" + name.lstrip("-") for name in taken)
        lines.append(
            f"llmbench: {', '.join(taken)} belong{'s' if len(taken) == 1 else ''} to this "
            f"project (a conftest or another plugin defines {'it' if len(taken) == 1 else 'them'})"
            f"; use {long_names}"
        )
    return lines


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    if not _settings(config).active or not config.stash[ROOTS].collects(file_path):
        return None
    from .collect import TaskFileCollector
    from .taskroots import bundled_nodeid

    nodeid = bundled_nodeid(file_path, Path(config.rootpath))
    if nodeid is not None:
        collector: pytest.Collector = TaskFileCollector.from_parent(
            parent, path=file_path, nodeid=nodeid
        )
    else:
        collector = TaskFileCollector.from_parent(parent, path=file_path)
    return collector


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the items of models their server does not have; group the rest by model, in
    --models order, so each model loads once."""
    models = _settings(config).models
    if not models:
        return
    from .preflight import VERDICT, deselect

    verdict = config.stash.get(VERDICT, None)
    if verdict is not None:
        deselect(config, items, verdict.skipped)
    rank = {model: index for index, model in enumerate(models)}
    items.sort(key=lambda item: rank.get(getattr(item, "model", None), -1))  # type: ignore[arg-type]


def _check_isolation(state: RunState) -> None:
    """Stop before any model is called if model code cannot be isolated as asked."""
    from .sandbox import SandboxUnavailable

    try:
        state.sandbox  # noqa: B018
    except SandboxUnavailable as exc:
        pytest.exit(f"llmbench: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def _check_outputs(state: RunState) -> None:
    """Stop before any model is called if the results could not be written."""
    from .report import check_writable

    settings = state.settings
    outputs = (
        ("--llmbench-jsonl", settings.jsonl_path),
        ("--llmbench-markdown", settings.markdown),
    )
    for flag, path in outputs:
        problem = check_writable(path) if path is not None else None
        if problem:
            pytest.exit(f"llmbench: {flag}: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """Before xdist starts its workers and before anything is collected: the models are
    checked against their servers (and, on an xdist controller, the sandbox)."""
    config = session.config
    state = _state(config)
    if state is None or not state.settings.models or config.option.collectonly:
        return (yield)
    from .preflight import VERDICT, run_check, worker_verdict

    if _is_worker(config):
        config.stash[VERDICT] = worker_verdict(config.workerinput)  # type: ignore[attr-defined]
        return (yield)
    _check_outputs(state)  # before any server is asked anything
    verdict = run_check(config, state.settings)
    # An xdist controller collects nothing; it checks for its workers on the same machine.
    if getattr(config.option, "dist", "no") != "no":
        _check_isolation(state)
    yield
    # After the header (and also with -q, which hides it): one line per skipped model.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for missing in verdict.missing:
        if reporter is not None:
            reporter.write_line(missing.line(), yellow=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the workers the models to skip (they deselect the same items)."""
    if not _settings(node.config).active:
        return
    from .preflight import VERDICT, WORKER_KEY, for_worker

    verdict = node.config.stash.get(VERDICT, None)
    if verdict is not None:
        node.workerinput[WORKER_KEY] = for_worker(verdict)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None or session.config.option.collectonly or session.testsfailed:
        return  # nothing will run: collection-only, or collection errors stop the run
    if not _is_worker(session.config) and session.items:
        # The first model's answers are generated while the sandbox checks itself. (A worker
        # does not know yet which models xdist will give it, so it starts on first use.)
        from .collect import CaseItem

        first = session.items[0]
        if isinstance(first, CaseItem):
            first.start_generating()
    if any(getattr(item, "suite", None) in ("python", "cli") for item in session.items):
        _check_isolation(state)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    model = getattr(item, "model", None)
    # After the last item the model is unloaded at exit, once the results are written.
    if model is None or nextitem is None or getattr(nextitem, "model", None) == model:
        return
    state = _state(item.config)
    if state is None:
        return
    state.scheduler.finish(model)
    state.manager.unload(model)


class ResultCollector:
    """Controller-side: gathers each item's CaseResult from its report (also from workers),
    what answered each model, what was selected, and writes the results when the session
    ends."""

    def __init__(self, config: pytest.Config, state: RunState, ending: Ending) -> None:
        self.config = config
        self.state = state
        self.ending = ending

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A case's verdict is on its call report, or on its setup report when setup failed.
        if not (report.when == "call" or (report.when == "setup" and report.failed)):
            return
        from .collect import case_results_of, reported_provenance

        self.state.results += case_results_of(report)
        found = reported_provenance(report)
        if found is not None:
            self.state.provenance[found[0]] = found[1]

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

    def write(self, session: pytest.Session, exitstatus: int) -> list[str]:
        """Results first, whatever ended the run; a signal now waits until they are written.
        The JSONL lines written."""
        from . import __version__
        from .report import run_info, write_outputs
        from .stopping import exit_status, why_stopped

        ending, state = self.ending, self.state
        ending.guard.defer()
        if ending.guard.received is not None and exitstatus in (0, 1):
            # A signal after the last item: the user still asked to stop; say so.
            session.exitstatus = exitstatus = pytest.ExitCode.INTERRUPTED
        selection = ending.selection
        selected = sum(selection.selected.values()) if selection else len(state.results)
        ending.interrupted = why_stopped(
            session, exitstatus, ending.guard, cases_left=len(state.results) < selected
        )
        lines: list[str] = []
        if state.results:
            try:
                run = run_info(state, __version__, ending.interrupted)
                lines = write_outputs(state, run, selection)
            except OSError as exc:
                where = state.settings.jsonl_path
                ending.write_error = f"could not write {where}: {exc.strerror or exc}"
        session.exitstatus = exit_status(
            session.exitstatus,
            stopped_by_maxfail=bool(session.shouldfail) and ending.guard.received is None,
            any_error=any(r.outcome == "error" for r in state.results),
            write_failed=ending.write_error is not None,
        )
        settings = state.settings
        if settings.fail_under is not None or settings.fail_on_regression:
            _apply_gate(session, state)
        return lines


def _apply_gate(session: pytest.Session, state: RunState) -> None:
    """With a gate, the gate decides the exit status: 7 when it fails; 0 when it passes and
    the only failures were the models' wrong answers. Infrastructure errors (10),
    interruptions and failures of other tests keep their own status."""
    from .compare import GATE_FAILED, gate
    from .results import aggregate

    reports = aggregate(state.results, state.settings.models)
    verdict = gate(
        reports,
        fail_under=state.settings.fail_under,
        baseline=state.baseline.reports if state.baseline is not None else None,
        fail_on_regression=state.settings.fail_on_regression,
    )
    state.gate = verdict
    if session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return
    if not verdict.passed:
        session.exitstatus = GATE_FAILED
        return
    wrong = sum(r.outcome not in ("passed", "error") for r in state.results)
    if session.testsfailed == wrong:
        session.exitstatus = pytest.ExitCode.OK


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    if state is None:
        return
    ending = config.stash.get(ENDING, None)
    if ending is not None and not _is_worker(config):
        # From the last item on, the run is writing its results: a signal that lands now is
        # noted (the run ends as interrupted), never raised where it would lose them.
        ending.guard.defer()
    if state._scheduler is not None:
        state.scheduler.close()  # nothing more will be asked of it: drop what is not started
    state.close_sandbox()
    if _is_worker(config):
        # A worker writes no results; it writes its cases to the record and unloads before
        # telling the controller it is done.
        from .record import finish as finish_record

        finish_record(config, [], int(session.exitstatus))
        _unload_at_exit(config)
        return
    collector = config.pluginmanager.get_plugin("llmbench-results")
    lines: list[str] = []
    if isinstance(collector, ResultCollector):
        lines = collector.write(session, exitstatus)
    _write_skipped(config, state)
    from .record import finish

    finish(config, lines, int(session.exitstatus))


def _write_skipped(config: pytest.Config, state: RunState) -> None:
    """A JSONL line per model its server does not have: `skipped`, not a zero score."""
    from .preflight import VERDICT, jsonl_lines

    verdict = config.stash.get(VERDICT, None)
    if verdict is None or not verdict.missing:
        return
    from . import __version__
    from .report import append_jsonl, run_info

    ending = config.stash.get(ENDING, None)
    run = run_info(state, __version__, ending.interrupted if ending else None)
    append_jsonl(state.settings.jsonl_path, jsonl_lines(verdict, run))


def pytest_unconfigure(config: pytest.Config) -> None:
    try:
        if not _is_worker(config) and _state(config) is not None:
            _unload_at_exit(config)  # after the JSONL and the table
    finally:
        ending = config.stash.get(ENDING, None)
        if ending is not None:
            ending.guard.restore()
            _lighten_exit()


def _lighten_exit() -> None:
    """Spare the interpreter's exit a garbage collection of everything a benchmark run loaded.

    At exit the interpreter empties its modules and collects them as garbage: with the `openai`
    client's types loaded, that takes about 0.15 s after the results are out. At exit (an
    atexit handler, so that a pytest run inside another process, as under pytester, changes
    nothing for it), the garbage that exists is collected, its finalizers run as they would
    have, and the objects still alive are frozen: the exit's collection skips them, as it would
    if the process ended outright. The process's end frees them.
    """
    global _EXIT_LIGHTENED
    if not _EXIT_LIGHTENED:
        import atexit
        import gc

        def collect_then_freeze() -> None:
            gc.collect()
            gc.freeze()

        atexit.register(collect_then_freeze)
        _EXIT_LIGHTENED = True


_EXIT_LIGHTENED = False


def _unload_at_exit(config: pytest.Config) -> None:
    """Unload whatever is still loaded; bounded when the run was cut short, abandoned by a
    second interrupt: the results are written by now."""
    state = _state(config)
    assert state is not None
    ending = config.stash.get(ENDING, None)
    loaded = state.manager.loaded
    if ending is None:
        state.manager.close()
        return
    from .stopping import EXIT_UNLOAD_COMPLETE_S, EXIT_UNLOAD_S

    if ending.guard.deferred:
        bound = 1.0  # interrupted twice: the user wants out
    elif ending.guard.received is not None or ending.interrupted is not None:
        bound = EXIT_UNLOAD_S
    else:
        bound = min(state.settings.timeout, EXIT_UNLOAD_COMPLETE_S)
    from .stopping import finish_within, warn

    ending.guard.allow()
    problem = finish_within(state.manager.close, bound)
    if problem is not None and loaded is not None:
        warn(f"model {loaded!r} may still be loaded: its unload was {problem}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    state = _state(config)
    if state is None:
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _names_task_files(config):
            taken = "--models" in config.stash.get(SHORT_NAMES_TAKEN, ())
            flag = "--llmbench-models" if taken else "--models"
            terminalreporter.write_line(NO_MODELS_HINT.format(flag=flag))
        return
    from .report import summary_lines

    for line in summary_lines(state, config.stash.get(ENDING, None)):
        alarm = line.startswith(
            (
                "SUSPECT",
                "PARTIAL RUN",
                "RESULTS NOT WRITTEN",
                "llmbench gate: FAILED",
                "BATCHING FLIPPED",
            )
        )
        markup = {"red": True, "bold": True} if alarm else {}
        if line.startswith("llmbench ") and not line.startswith("llmbench gate"):
            terminalreporter.write_sep("=", line, **markup)
        else:
            terminalreporter.write_line(line, **markup)


def _names_task_files(config: pytest.Config) -> bool:
    """Whether the command line named task files (or a directory of them) without models."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    from .taskroots import resolve_roots

    roots = resolve_roots(config)
    for root in roots.paths:
        candidates = [root] if root.is_file() else [*root.rglob("*.yaml"), *root.rglob("*.yml")]
        if any(roots.collects(path) for path in candidates if path.suffix in (".yaml", ".yml")):
            return True
    return False
