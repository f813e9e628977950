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
        config.pluginmanager.register(ResultCollector(config.stash[STATE]), "llmbench-results")
        if settings.baseline:
            _read_baseline(config.stash[STATE])


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


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
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
    if model is None or getattr(nextitem, "model", None) == model:
        return
    state = item.config.stash[STATE]
    state.scheduler.finish(model)
    state.manager.unload(model)


class ResultCollector:
    """Controller-side: gathers each item's CaseResult from its report (also from workers)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A case's verdict is on its call report, or on its setup report when setup failed.
        if not (report.when == "call" or (report.when == "setup" and report.failed)):
            return
        from .collect import case_results_of

        self.state.results += case_results_of(report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash[STATE]
    if state._scheduler is not None:
        state.scheduler.close()
    state.manager.close()
    if _is_worker(config) or not state.results:
        return
    from .report import run_info, write_outputs

    write_outputs(state, run_info(state, Path(config.rootpath), __version__))
    settings = state.settings
    if settings.fail_under is not None or settings.fail_on_regression:
        _apply_gate(session, state)


def _apply_gate(session: pytest.Session, state: RunState) -> None:
    """With a gate, the gate decides the exit status: 7 when it fails; 0 when it passes and
    the only failures were the models' wrong answers. Errors, interruptions and failures of
    other tests keep their own status."""
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
    errors = any(r.outcome == "error" for r in state.results)
    if not errors and session.testsfailed == wrong:
        session.exitstatus = pytest.ExitCode.OK


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    state = config.stash[STATE]
    from .report import summary_lines

    for line in summary_lines(state):
        alarm = line.startswith(("SUSPECT", "llmbench gate: FAILED"))
        markup = {"red": True, "bold": True} if alarm else {}
        if line.startswith("llmbench ") and not line.startswith("llmbench gate"):
            terminalreporter.write_sep("=", line, **markup)
        else:
            terminalreporter.write_line(line, **markup)
