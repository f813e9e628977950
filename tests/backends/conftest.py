"""Fixtures for the backend tests: start fakes on loopback and stop them afterwards."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from fakes.http_fake import FakeHttpServer

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
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
