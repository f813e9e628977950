"""Replicas, concurrency and the xdist unit of work, from options to server groups."""

from __future__ import annotations

import pytest

from pytest_llmbench.options import Settings, _concurrency, _endpoints
from pytest_llmbench.run.xdist import server_units


def test_endpoint_replicas_follow_their_model() -> None:
    assert _endpoints("a=http://x:1,http://y:2,b=http://z:3") == (
        ("a", ("http://x:1", "http://y:2")),
        ("b", ("http://z:3",)),
    )


def test_repeated_endpoint_flags_add_replicas_once() -> None:
    assert _endpoints("a=http://x:1,a=http://y:2,a=http://x:1") == (
        ("a", ("http://x:1", "http://y:2")),
    )


@pytest.mark.parametrize("text", ["http://x:1", "=http://x:1", "a="])
def test_an_endpoint_without_a_model_is_a_usage_error(text: str) -> None:
    with pytest.raises(pytest.UsageError, match="MODEL=URL"):
        _endpoints(text)


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("AUTO", "auto"), ("3", 3)])
def test_concurrency_is_a_count_or_auto(text: str, value: int | str) -> None:
    assert _concurrency(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "many"])
def test_concurrency_rejects_what_is_not_a_positive_count(text: str) -> None:
    with pytest.raises(ValueError):
        _concurrency(text)


def test_models_on_one_server_share_a_unit_and_others_do_not() -> None:
    settings = Settings(
        models=("a", "b", "c", "reference"),
        backend="lmstudio",
        endpoint=(("c", ("http://other:1",)),),
    )
    units = server_units(settings)
    assert units["a"] == units["b"]  # both on the default server
    assert units["c"] != units["a"]
    assert "reference" not in units  # no server: xdist may put it anywhere


def test_overlapping_replicas_join_their_models() -> None:
    settings = Settings(
        models=("a", "b", "c"),
        backend="vllm",
        endpoint=(
            ("a", ("http://h1", "http://h2")),
            ("b", ("http://h2", "http://h3")),
            ("c", ("http://h4",)),
        ),
    )
    units = server_units(settings)
    assert units["a"] == units["b"] != units["c"]


def test_embedded_models_share_the_machine() -> None:
    units = server_units(Settings(models=("smollm2", "gemma3-270m"), backend="embedded"))
    assert units["smollm2"] == units["gemma3-270m"]
