"""Shared fixtures: a scripted loopback OpenAI-style server and small task files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

# pytester's in-process runs drop the modules an inner run imported; libyaml's C extension
# cannot be imported a second time cleanly (its nodes would be of the first import's classes),
# so the loader is imported here, once, for every inner run to share.
import yaml  # noqa: F401
from fakes.bench import CLI_TASKS, PYTHON_TASKS, TOOLING_TASKS
from fakes.http_fake import FakeHttpServer
from fakes.openai_server import FakeOpenAI, Script

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_llmbench_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's LLMBENCH_* settings must not leak into the tests' own runs."""
    import os

    for name in list(os.environ):
        if name.startswith("LLMBENCH_"):
            monkeypatch.delenv(name)


S = TypeVar("S", bound=FakeHttpServer)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], Any]]:
    """`fake = serve(LMStudioFake(...))` starts a fake server for the test's duration."""
    started: list[FakeHttpServer] = []

    def start(server: S) -> S:
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fake_openai(serve: Callable[[Any], Any]) -> Callable[[dict[str, Script]], FakeOpenAI]:
    """Start FakeOpenAI servers on demand: `server = fake_openai({"model": script})`."""
    return lambda scripts: serve(FakeOpenAI(scripts))


@pytest.fixture
def bench_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir with the three small task files under tasks/."""
    for suite, text in (("python", PYTHON_TASKS), ("cli", CLI_TASKS), ("tooling", TOOLING_TASKS)):
        path = pytester.path / "tasks" / suite / f"small_{suite}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pytester
