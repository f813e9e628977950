"""pytest hooks and the `llm` fixture: what every pytest run meets, each a few lines.

A run that names models or validates tasks is "active": pytest_configure makes its BenchRun
(run/bench.py) and registers it, and the rest of the run's hooks are that object's methods (the
shape of pytest-xdist's DSession). The header and the terminal summary stay here, delegating to
it: their lines keep their place among those of the project's conftests. A project that merely
has this plugin installed pays for the import of this module and `options` (standard library and
pytest only) and a few option registrations: everything else (run state, backends, sandbox,
suites, reports) is imported only by an active run. An inactive run gets no header line, no
markers and no output from this plugin, but for a hint when it named task files and no models,
and a skip (with its reason) for each test that asks for the `llm` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from .options import (
    ROOTDIR_ARG,
    SHORT_NAMES_TAKEN,
    Settings,
    add_options,
    add_short_names,
    read_rootdir_args,
    resolve,
)

if TYPE_CHECKING:
    from .run.bench import BenchRun
    from .run.client import ModelClient

SETTINGS = pytest.StashKey[Settings]()
RUN: pytest.StashKey[BenchRun] = pytest.StashKey()  # only in active runs


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.addini(
        "llmbench_tasks",
        "directories holding benchmark task files (default: tasks/, else the bundled tasks)",
        type="linelist",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    if os.environ.get("PYTEST_XDIST_WORKER") and any(a.startswith(ROOTDIR_ARG) for a in args):
        # Paths a controller handed a worker relative to the project (run/remote.py), read
        # before pytest parses the command line or looks for conftests.
        read_rootdir_args(args)
    # The project's conftests register their options inside this hook; the short names are
    # registered after them, and only where they left the name free.
    yield
    early_config.stash[SHORT_NAMES_TAKEN] = add_short_names(parser)


def _settings(config: pytest.Config) -> Settings:
    """The run's settings, resolved once: pytest_cmdline_main needs them before configure, and
    xdist workers configure without running pytest_cmdline_main."""
    if SETTINGS not in config.stash:
        config.stash[SETTINGS] = settings = resolve(config)
        if settings.backend != Settings.backend:
            _check_backend(settings.backend)
    return config.stash[SETTINGS]


def _check_backend(name: str) -> None:
    """Only a run that names a backend pays for importing the backend registry (options.py
    sits below the backends, so the name is checked here)."""
    from .backends import BACKENDS

    if name not in BACKENDS:
        raise pytest.UsageError(
            f"--llmbench-backend must be one of {', '.join(BACKENDS)} (got {name!r})"
        )


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    settings = _settings(config)
    if not settings.list:
        return None
    from .run.listing import list_models

    return list_models(settings, config)


# The markers of test functions that use the llm fixture: registered in every run, so that a
# project's tests stay valid under --strict-markers when no model is named.
FUNCTION_MARKERS = (
    "llmbench_prompts(*prompts, system=None, param=None, max_tokens=None): prompts this test "
    "asks the llm fixture; their answers are generated ahead of the test",
    "llmbench_suite(name): the suite this test's cases count under",
)
NO_MODELS = "llmbench: no --models given; the llm fixture needs a model (pytest --models=KEY)"


def pytest_configure(config: pytest.Config) -> None:
    for line in FUNCTION_MARKERS:
        config.addinivalue_line("markers", line)
    settings = _settings(config)
    if not settings.active:
        return
    from .run.bench import BenchRun

    # Registered before it configures, so that pytest_unconfigure ends it whatever happens.
    run = config.stash[RUN] = BenchRun(config, settings)
    config.pluginmanager.register(run, "llmbench-run")
    run.configure()


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses the llm fixture runs once per model of --models (last: the model is
    the last part of its id, after the test's own parameters)."""
    run = metafunc.config.stash.get(RUN, None)
    if run is not None and "llm" in metafunc.fixturenames:
        run.generate_tests(metafunc)


@pytest.fixture(scope="session")
def llm(request: pytest.FixtureRequest) -> Iterator[ModelClient]:
    """Yields a ModelClient for one model of --models, loaded for the tests that use it:
    `llm.ask(prompt)` and `llm.chat(messages)` return an Answer (`text`, `reasoning`,
    `tool_calls`, tokens and timings). Without --models the test is skipped.

    One instance per model (tests run once per model, the model's key last in their id): set
    up by loading the model, torn down by unloading it, each model's tests grouped. `ask` and
    `chat` take `system` (ask), `tools` and `max_tokens`; Answer has `json()`, `code()` and
    `calls()`; `llm.model` and `llm.settings` say what is asked; `llm.run_python(code, name,
    *args)` runs code in the sandbox. Answers come from the answer store when the same request
    was answered before. A failed assert is the model's failure; a server fault is an error.
    """
    run = request.config.stash.get(RUN, None)
    model = getattr(request, "param", None)
    if run is None or not isinstance(model, str):
        pytest.skip(NO_MODELS)
    yield from run.client(model, request.session)


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(RUN, None)
    return run.header() if run is not None else []


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    run = config.stash.get(RUN, None)
    if run is not None:
        run.end.show(terminalreporter)
        return
    if exitstatus != pytest.ExitCode.NO_TESTS_COLLECTED:
        return
    from .taskfiles.roots import no_models_hint

    hint = no_models_hint(config)
    if hint is not None:
        terminalreporter.write_line(hint)
