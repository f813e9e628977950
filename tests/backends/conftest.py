"""Fixtures for the backend tests (`serve`, which starts any fake, is in tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
