"""get_sandbox, the self-test and the error that says what to install."""

from __future__ import annotations

import pytest

import pytest_llmbench.sandbox as sandbox_api
from pytest_llmbench.sandbox import SandboxUnavailable, get_sandbox, selftest


def test_auto_gives_the_full_tier_on_a_machine_with_bubblewrap() -> None:
    sandbox = get_sandbox()
    assert sandbox.tier == "full", sandbox_api.self_test().problems
    assert get_sandbox("full").tier == "full"
    assert get_sandbox("reduced").tier == "full"  # the strongest available, not the weakest


def test_the_self_test_runs_once_per_process() -> None:
    assert sandbox_api.self_test() is sandbox_api.self_test()


def test_missing_bubblewrap_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "BWRAP", "/nonexistent/bwrap")
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(sandbox_api, "_result", None)
    with pytest.raises(SandboxUnavailable) as error:
        get_sandbox("full")
    assert "apt-get install bubblewrap" in str(error.value)
    assert "/nonexistent/bwrap" in str(error.value)
    # auto falls back to the reduced tier, and says so through `tier`
    assert get_sandbox("auto").tier == "reduced"
    assert get_sandbox("reduced").tier == "reduced"


def test_no_tier_at_all_is_an_error_not_a_silent_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "probe", lambda tier: [f"{tier} broken for the test"])
    monkeypatch.setattr(sandbox_api, "_result", None)
    with pytest.raises(SandboxUnavailable, match="reduced broken for the test"):
        get_sandbox()


def test_required_is_checked() -> None:
    with pytest.raises(ValueError):
        get_sandbox("none")  # type: ignore[arg-type]
