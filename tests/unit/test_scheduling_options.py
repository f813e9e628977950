"""Replicas, concurrency and the xdist unit of work, from options to server groups."""

from __future__ import annotations

import pytest

from pytest_llmbench.options import Settings, _concurrency, _endpoints, resolve
from pytest_llmbench.run.xdist import server_units


def test_endpoint_replicas_follow_their_model() -> None:
    assert _endpoints("a=http://x:1,http://y:2,b=http://z:3") == (
        (("a", ("http://x:1", "http://y:2")), ("b", ("http://z:3",))),
        (),
    )


def test_repeated_endpoint_flags_add_replicas_once() -> None:
    assert _endpoints("a=http://x:1,a=http://y:2,a=http://x:1") == (
        (("a", ("http://x:1", "http://y:2")),),
        (),
    )


@pytest.mark.parametrize("text", ["http://x:1", "=http://x:1", "a="])
def test_an_endpoint_without_a_model_is_a_usage_error(text: str) -> None:
    with pytest.raises(pytest.UsageError, match="MODEL=URL"):
        _endpoints(text)


def test_a_url_star_n_is_its_servers_count_and_the_url_stays_bare() -> None:
    endpoints, counts = _endpoints("q=http://gpu1:8080/v1*4,http://gpu2:8080/v1,b=http://z*12")
    assert endpoints == (
        ("q", ("http://gpu1:8080/v1", "http://gpu2:8080/v1")),
        ("b", ("http://z",)),
    )
    assert counts == (("http://gpu1:8080/v1", 4), ("http://z", 12))
    settings = Settings(models=("q", "b"), endpoint=endpoints, endpoint_in_flight=counts)
    assert settings.urls_for("q") == ("http://gpu1:8080/v1", "http://gpu2:8080/v1")
    assert settings.in_flight_for("q") == (4, None)
    assert settings.in_flight_for("b") == (12,)
    assert settings.in_flight_for("other") == (None,)  # the base URL: no count


def test_a_url_given_again_keeps_its_count_and_serves_once() -> None:
    # Bare the second time: the same server, still taking 2.
    assert _endpoints("a=http://x*2,http://x,b=http://x*2") == (
        (("a", ("http://x",)), ("b", ("http://x",))),
        (("http://x", 2),),
    )


@pytest.mark.parametrize("suffix", ["*0", "*x", "*-1", "*", "*2.5", "*2*3x"])
def test_a_bad_star_suffix_is_a_usage_error_naming_the_item(suffix: str) -> None:
    item = f"http://y:2{suffix}"
    with pytest.raises(pytest.UsageError, match="--llmbench-endpoint") as raised:
        _endpoints(f"a=http://x:1,{item}")
    assert repr(item) in str(raised.value)


def test_a_url_with_two_counts_is_a_usage_error_naming_it() -> None:
    with pytest.raises(pytest.UsageError, match=r"gives http://x two counts: \*2 and \*3"):
        _endpoints("a=http://x*2,b=http://x*3")


def test_endpoint_counts_reach_settings_from_the_flag_the_environment_and_the_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def resolved(*args: str) -> Settings:
        return resolve(pytester.parseconfig(*args))

    expected = (("m", ("http://x", "http://y")),), (("http://x", 2), ("http://y", 1))
    flags = resolved("--llmbench-endpoint=m=http://x*2", "--llmbench-endpoint=m=http://y*1")
    assert (flags.endpoint, flags.endpoint_in_flight) == expected
    pytester.makeini("[pytest]\nllmbench_endpoint =\n    m=http://x*2\n    http://y*1\n")
    ini = resolved()
    assert (ini.endpoint, ini.endpoint_in_flight) == expected
    monkeypatch.setenv("LLMBENCH_ENDPOINT", "m=http://y*3,http://x")  # beats the ini
    env = resolved()
    assert (env.endpoint, env.endpoint_in_flight) == (
        (("m", ("http://y", "http://x")),),
        (("http://y", 3),),
    )
    monkeypatch.setenv("LLMBENCH_ENDPOINT", "m=http://x*0")
    with pytest.raises(pytest.UsageError, match="'m=http://x\\*0'"):
        resolved()


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
