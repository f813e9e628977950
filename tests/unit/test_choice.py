"""Choosing a model: costs, the frontier, variants and recommendations, against hand-computed
expectations (results/choice.py)."""

from __future__ import annotations

import pytest

from pytest_llmbench.backends.memory import NOT_KNOWN, MemoryFigure
from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.options import Limits, _limits, _variants, parse_size
from pytest_llmbench.results.aggregate import aggregate
from pytest_llmbench.results.choice import choose, cost_of, dominates

GB = 10**9


def results(model: str, passed: int, tasks: int, tok_s: float, ttfts: list[float] | None = None):
    """`tasks` one-case tasks t0..; the first `passed` pass. Each answer: 100 tokens decoded at
    `tok_s`, its time to first token from `ttfts` (cycled)."""
    ttfts = ttfts or [0.5]
    return [
        CaseResult(
            model=model, suite="python", task=f"t{i}", case="c",
            outcome="passed" if i < passed else "failed", file="tasks/x.yaml",
            generation=GenerationStats(
                seconds=1.0, completion_tokens=100, decode_tok_s=tok_s, decode_timed_by="server",
                ttft_s=ttfts[i % len(ttfts)], concurrency=1,
            ),
            load_s=1.5,
        )
        for i in range(tasks)
    ]  # fmt: skip


def measured(gigabytes: float) -> MemoryFigure:
    size = int(gigabytes * GB)
    return MemoryFigure(size, size - GB // 10, "measured: resident memory (test)", True, 10)


def test_a_cheaper_model_that_is_not_significantly_worse_is_recommended() -> None:
    # A passes 8 of 10 tasks, B 7 (the same ones but one): a difference of one task in ten,
    # whose paired interval includes zero. B decodes 2.1x as fast in 40 % less memory.
    reports = aggregate(results("A", 8, 10, 20.0) + results("B", 7, 10, 42.0), ("A", "B"))
    choice = choose(reports, {"A": measured(4.0), "B": measured(2.4)})
    assert choice.recommendations == (
        "choose (no limits): B: not significantly worse than A (paired, 95 %), 2.1x faster, "
        "40 % less memory",
    )
    assert choice.frontier == ("A", "B")  # A is better, B cheaper: neither beats the other


def test_a_cheaper_model_that_is_significantly_worse_is_not_recommended() -> None:
    reports = aggregate(results("A", 20, 20, 20.0) + results("B", 2, 20, 42.0), ("A", "B"))
    choice = choose(reports, {"A": measured(4.0), "B": measured(2.4)})
    (line,) = choice.recommendations
    assert line == (
        "choose (no limits): A (20/20 cases); B is 2.1x faster, 40 % less memory but "
        "significantly worse (-90 points of cases, paired 95 %)"
    )


def test_the_frontier_leaves_out_a_model_another_beats_on_every_axis() -> None:
    reports = aggregate(
        results("A", 8, 10, 20.0) + results("B", 7, 10, 42.0) + results("C", 6, 10, 30.0),
        ("A", "B", "C"),
    )
    memory = {"A": measured(4.0), "B": measured(2.4), "C": measured(3.0)}
    assert choose(reports, memory).frontier == ("A", "B")  # B beats C on all three
    # Without memory figures C is compared on quality and speed only: B still beats it.
    assert choose(reports, {}).frontier == ("A", "B")
    assert dominates((0.7, 42.0, None), (0.6, 30.0, 3 * GB))
    assert not dominates((0.7, 42.0, 3 * GB), (0.7, 42.0, 3 * GB))  # equal: neither


def test_limits_choose_among_the_models_within_them_and_say_why_others_are_not() -> None:
    reports = aggregate(
        results("A", 8, 10, 20.0) + results("B", 7, 10, 42.0) + results("C", 6, 10, 30.0),
        ("A", "B", "C"),
    )
    memory = {"A": measured(4.0), "B": measured(2.4), "C": NOT_KNOWN}
    fast = Limits(min_speed=25, text="speed>=25")
    small = Limits(max_memory=3 * GB, text="memory<=3GB")
    tiny = Limits(max_memory=GB, text="memory<=1GB")
    lines = choose(reports, memory, limits=(fast, small, tiny)).recommendations
    assert lines == (
        # B and C are fast enough; C is slower and no smaller (its memory is not known).
        "choose (speed>=25): B (7/10 cases): no model within them costs less",
        # C's memory is not known: it cannot be shown to fit.
        "choose (memory<=3GB): B (7/10 cases), the only model within them",
        "choose (memory<=1GB): no model is within them (A: 4.0 GB; B: 2.4 GB; C: memory n/a)",
    )


def test_variants_are_compared_with_their_reference() -> None:
    reports = aggregate(
        results("q8", 8, 10, 20.0, [0.4]) + results("q4", 7, 10, 42.0, [0.2]), ("q8", "q4")
    )
    choice = choose(reports, {"q8": measured(4.0), "q4": measured(2.4)}, variants=[("q8", ["q4"])])
    (variant,) = choice.variants
    assert (variant.reference, variant.variant) == ("q8", "q4")
    assert variant.lost == ("python:t7",) and variant.gained == ()
    assert variant.comparison.cases.delta == pytest.approx(-0.1)
    assert not variant.comparison.cases.significant
    assert variant.comparison.tasks.only_old == 1 and variant.comparison.tasks.only_new == 0
    assert variant.speed_ratio == pytest.approx(2.1)
    assert variant.memory_ratio == pytest.approx(0.6)
    assert variant.ttft_ratio == pytest.approx(0.5)
    assert choice.variant_of("q4") is variant and choice.variant_of("q8") is None


def test_one_model_or_pseudo_models_give_nothing_to_choose() -> None:
    one = choose(aggregate(results("A", 8, 10, 20.0), ("A",)), {"A": measured(4.0)})
    assert one.recommendations == () and one.frontier == ()
    pseudo = aggregate(results("A", 8, 10, 20.0) + results("reference", 10, 10, 1.0),
                       ("A", "reference"))  # fmt: skip
    assert choose(pseudo, {}).recommendations == ()


def test_cost_figures_and_their_sources() -> None:
    (report,) = aggregate(results("A", 8, 10, 20.0, [0.1, 0.2, 0.3, 0.4, 1.0]), ("A",))
    cost = cost_of(report, measured(4.0)).to_dict()
    assert cost["ttft_median_s"] == pytest.approx(0.3)
    assert cost["ttft_p90_s"] == pytest.approx(1.0)  # 0.4 + 0.6 * (1.0 - 0.4)
    assert cost["ttft_source"] == "measured: request sent to first streamed token, 10 answers"
    assert cost["decode_tok_s"] == 20.0
    assert cost["decode_source"] == "measured: the server's timings"
    assert cost["memory_peak_bytes"] == 4 * GB
    assert cost["memory_source"] == "measured: resident memory (test)"
    assert cost["load_s"] == 1.5
    blank = cost_of(report).to_dict()
    assert (blank["memory_peak_bytes"], blank["memory_source"]) == (None, "n/a")


def test_the_options_read_as_written() -> None:
    assert _variants("qwen/qwen3-4b@q8_0=qwen/qwen3-4b@q4_k_m,qwen/qwen3-4b@q3_k_l") == (
        ("qwen/qwen3-4b@q8_0", ("qwen/qwen3-4b@q4_k_m", "qwen/qwen3-4b@q3_k_l")),
    )
    assert _variants("qwen3:8b=qwen3:4b,/m/a.gguf=/m/b.gguf") == (
        ("qwen3:8b", ("qwen3:4b",)),
        ("/m/a.gguf", ("/m/b.gguf",)),
    )
    (first, second) = _limits("speed>=20,memory<=8GB,ttft<=1.5,suite=python;memory<=512MiB")
    assert (first.min_speed, first.max_memory, first.max_ttft, first.suite) == (
        20.0, 8 * GB, 1.5, "python",
    )  # fmt: skip
    assert second.max_memory == 512 * 2**20 and str(second) == "memory<=512MiB"
    assert parse_size("1.5 GiB") == 3 * 2**29
    for wrong in ("speed<=20", "memory>=1GB", "colour=red", "memory<=lots"):
        with pytest.raises(ValueError):
            _limits(wrong)
    for wrong in ("justone", "a=a", "=b"):
        with pytest.raises(ValueError):
            _variants(wrong)


def test_differences_within_timing_noise_decide_nothing() -> None:
    # The same model twice: 4 % faster and 1 MB smaller is noise, not a cheaper model.
    reports = aggregate(results("A", 5, 10, 63.0) + results("B", 5, 10, 65.5), ("A", "B"))
    memory = {"A": measured(0.654), "B": MemoryFigure(653_000_000, 653_000_000, "m", True, 9)}
    choice = choose(reports, memory)
    assert choice.frontier == ("A", "B")
    assert choice.recommendations == (
        "choose (no limits): A (5/10 cases): no model within them costs less",
    )
    # 10 % faster is a saving, said as such.
    faster = aggregate(results("A", 5, 10, 60.0) + results("B", 5, 10, 66.0), ("A", "B"))
    (line,) = choose(faster, {}).recommendations
    assert line.endswith("B: not significantly worse than A (paired, 95 %), 10 % faster")
    assert choose(faster, {}).frontier == ("B",)
